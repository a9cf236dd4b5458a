//! The watch benchmarks, run with the etcdv3 client: `watch`, `watch-get`, `watch-latency`
//! and `watch-scale`.
//!
//! Go's tool opens a watch stream per `clientv3.NewWatcher`; etcdv3 has one watch stream per
//! `Client` (all its watches share it), so each stream here is its own copy of a connection's
//! client made with [`Client::for_endpoint`]: a separate gRPC stream on the shared HTTP/2
//! connection. Stream `i` uses connection `(i % --clients) % --conns`, as in Go.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcdv3::{Client, ClientBuilder, Event, Kv, KvClient, WatchStream};
use futures_util::stream::{FuturesUnordered, StreamExt};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::task::JoinSet;

use crate::cli::{Global, WatchArgs, WatchGetArgs, WatchLatencyArgs, WatchScaleArgs};
use crate::load::cpu::CpuTimes;
use crate::load::keys::{KeySpec, random_value};
use crate::load::mem::rss_bytes;
use crate::load::report::{Recorder, ScaleReport};
use crate::load::runner::{Part, RunOutput};
use crate::load::watch::{EventRun, EventSource, PutPlan, put_and_watch, stream_connection};

/// The targets for `watch-scale`.
const SCALE_TARGET_WATCHERS: u64 = 100_000;
const SCALE_TARGET_SECS: f64 = 10.0;
const SCALE_TARGET_BYTES: f64 = 1024.0;

/// A validated watch benchmark.
#[derive(Debug)]
pub(crate) enum Job {
    Watch(WatchArgs),
    Get(WatchGetArgs),
    Latency(WatchLatencyArgs),
    Scale(WatchScaleArgs),
}

fn check_put_rate(rate: f64) -> Result<(), String> {
    if rate.is_finite() && rate >= 0.0 {
        Ok(())
    } else {
        Err(format!("--put-rate must be 0 or positive, got {rate}"))
    }
}

fn check_key_size(size: usize) -> Result<(), String> {
    if size == 0 {
        Err("--key-size must be at least 1 (etcd has no empty keys)".into())
    } else {
        Ok(())
    }
}

impl Job {
    /// Checks the flags before anything connects.
    pub(crate) fn watch(a: &WatchArgs) -> Result<Job, String> {
        check_put_rate(a.put_rate)?;
        if a.streams == 0 || a.watch_per_stream == 0 || a.watched_key_total == 0 {
            return Err(
                "--streams, --watch-per-stream and --watched-key-total must be at least 1".into(),
            );
        }
        watched_keys(a)?;
        Ok(Job::Watch(a.clone()))
    }

    /// Checks the flags before anything connects.
    pub(crate) fn get(a: &WatchGetArgs) -> Result<Job, String> {
        if a.watchers == 0 || a.streams == 0 || a.events == 0 {
            return Err("--watchers, --streams and --events must be at least 1".into());
        }
        Ok(Job::Get(a.clone()))
    }

    /// Checks the flags before anything connects.
    pub(crate) fn latency(a: &WatchLatencyArgs) -> Result<Job, String> {
        check_put_rate(a.put_rate)?;
        check_key_size(a.key_size)?;
        if a.streams == 0 || a.watchers_per_stream == 0 {
            return Err("--streams and --watchers-per-stream must be at least 1".into());
        }
        Ok(Job::Latency(a.clone()))
    }

    /// Checks the flags before anything connects.
    pub(crate) fn scale(a: &WatchScaleArgs) -> Result<Job, String> {
        check_key_size(a.key_size)?;
        if a.watchers == 0 {
            return Err("--watchers must be at least 1".into());
        }
        Ok(Job::Scale(a.clone()))
    }

    /// Runs it on `clients` (one per `--conns`); `builder` opens the extra connection that
    /// Go's tool uses for puts or gets.
    pub(crate) async fn run(
        self,
        g: &Global,
        builder: &ClientBuilder,
        clients: &[Client],
    ) -> Result<RunOutput, String> {
        let streams = Streams { g, clients };
        match self {
            Job::Watch(a) => watch(&a, g, &streams).await,
            Job::Get(a) => watch_get(&a, builder, &streams).await,
            Job::Latency(a) => watch_latency(&a, builder, &streams).await,
            Job::Scale(a) => watch_scale(&a, builder, &clients[0]).await,
        }
    }
}

/// Hands out a client per watch stream.
struct Streams<'a> {
    g: &'a Global,
    clients: &'a [Client],
}

impl Streams<'_> {
    /// The client of stream `i`: a copy of its connection's client with a watch stream of its
    /// own, pinned to one endpoint (connection `c` to endpoint `c`, round robin, as Go's tool
    /// dials them).
    fn client(&self, i: usize) -> Result<Client, String> {
        let c = stream_connection(i, self.g.clients, self.clients.len());
        let endpoints: Vec<&str> = self
            .g
            .endpoints
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .collect();
        let endpoint = endpoints[c % endpoints.len()];
        self.clients[c]
            .for_endpoint(endpoint)
            .map_err(|e| format!("cannot make watch stream {i}: {e}"))
    }

    fn clients(&self, n: usize) -> Result<Vec<Client>, String> {
        (0..n).map(|i| self.client(i)).collect()
    }
}

/// One etcdv3 watch as an event source.
struct Events(WatchStream);

impl EventSource for Events {
    async fn next_events(&mut self, revisions: &mut Vec<i64>) -> Result<bool, String> {
        match self.0.message().await {
            Ok(Some(resp)) => {
                revisions.extend(resp.events().iter().map(Event::revision));
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}

async fn put_revision(
    kv: KvClient,
    key: Vec<u8>,
    value: Vec<u8>,
) -> (KvClient, Result<i64, String>) {
    let r = kv.put(key, value).await;
    (
        kv,
        r.map(|resp| resp.header().revision())
            .map_err(|e| e.to_string()),
    )
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn part(name: &'static str, title: &str, elapsed: Duration, recorder: Recorder) -> Part {
    Part {
        name,
        title: Some(title.to_owned()),
        elapsed,
        recorder,
    }
}

/// Go's watched keys: `--watched-key-total` keys of `--key-size` bytes, key `i` holding the
/// varint of `i % --key-space-size` with `--sequential-keys`, else of a random index.
fn watched_keys(a: &WatchArgs) -> Result<Vec<Vec<u8>>, String> {
    check_key_size(a.key_size)?;
    let spec = KeySpec {
        prefix: Vec::new(),
        size: a.key_size,
        space: a.key_space_size,
        sequential: a.sequential_keys,
    };
    spec.validate()?;
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    Ok((0..a.watched_key_total)
        .map(|i| spec.key_for_request(i, &mut rng))
        .collect())
}

/// `watch`: phase 1 creates `--watch-per-stream` watches on each stream, one after another,
/// and records each creation; phase 2 puts `--put-total` times (put `i` to watched key
/// `i % len`) from `--clients` workers and records every event's put-to-event latency.
async fn watch(a: &WatchArgs, g: &Global, streams: &Streams<'_>) -> Result<RunOutput, String> {
    let keys = Arc::new(watched_keys(a)?);
    let stream_clients = streams.clients(a.streams)?;

    let cpu_before = CpuTimes::now();
    let start_unix = now_unix();
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for client in &stream_clients {
        let (client, keys, next) = (client.clone(), keys.clone(), next.clone());
        let per_stream = a.watch_per_stream;
        tasks.spawn(async move {
            let mut rec = Recorder::new();
            let mut made = Vec::with_capacity(per_stream);
            for _ in 0..per_stream {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let key = &keys[(i % keys.len() as u64) as usize];
                let t0 = Instant::now();
                match client.watch(key.clone()).await {
                    Ok(w) => {
                        rec.record_ok(t0 - start, t0.elapsed());
                        made.push((key.clone(), w));
                    }
                    Err(e) => rec.record_err(&e.to_string()),
                }
            }
            (rec, made)
        });
    }
    let mut creations = Recorder::new();
    let mut watches = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (rec, made) = joined.map_err(|e| format!("a watch stream task failed: {e}"))?;
        creations.merge(&rec);
        watches.extend(made);
    }
    let make_elapsed = start.elapsed();

    // Events each watch gets: the puts to its key (keys may repeat in the list).
    let mut puts_per_key: HashMap<&[u8], u64> = HashMap::new();
    for i in 0..a.put_total {
        *puts_per_key
            .entry(&keys[(i % keys.len() as u64) as usize])
            .or_default() += 1;
    }
    let sources: Vec<(Events, u64)> = watches
        .into_iter()
        .map(|(key, w)| {
            let want = puts_per_key.get(key.as_slice()).copied().unwrap_or(0);
            (Events(w), want)
        })
        .collect();
    let plan = PutPlan {
        total: a.put_total,
        putters: g.clients,
        rate: a.put_rate,
        settle: a.event_timeout,
    };
    let kvs: Vec<KvClient> = streams.clients.iter().map(Client::kv).collect();
    let put_keys = keys.clone();
    let events = put_and_watch(&plan, sources, &kvs, move |kv, i| {
        let key = put_keys[(i % put_keys.len() as u64) as usize].clone();
        put_revision(kv, key, b"data".to_vec())
    })
    .await;
    let cpu = CpuTimes::now().since(cpu_before);
    drop(stream_clients);

    Ok(RunOutput {
        elapsed: make_elapsed + events.elapsed,
        start_unix,
        cpu,
        parts: vec![
            part(
                "watch-make",
                "Watch creation summary",
                make_elapsed,
                creations,
            ),
            part(
                "watch-put",
                "Watch events received summary (from sending the put)",
                events.elapsed,
                events.put_to_event,
            ),
        ],
        primary: Some(1),
        notes: Vec::new(),
        scale: None,
        leases: None,
    })
}

/// `watch-get`: puts the key `watchkey` `--events` times, then starts `--watchers` watches
/// from the first of those revisions, spread over `--streams` streams; from the first
/// creation until every watcher has read its events, a separate connection does serializable
/// gets of `abc` one after another, and their latency is the report.
async fn watch_get(
    a: &WatchGetArgs,
    builder: &ClientBuilder,
    streams: &Streams<'_>,
) -> Result<RunOutput, String> {
    const KEY: &str = "watchkey";
    let kv = streams.clients[0].kv();
    let mut first_revision = 0;
    for i in 0..a.events {
        let resp = kv
            .put(KEY, i.to_string())
            .await
            .map_err(|e| format!("cannot put {KEY}: {e}"))?;
        if i == 0 {
            first_revision = resp.header().revision();
        }
    }
    let getter = builder
        .clone()
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let stream_clients = streams.clients(a.streams)?;

    let (first_tx, mut first_rx) = tokio::sync::watch::channel(false);
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = CpuTimes::now();
    let start_unix = now_unix();
    let gets = {
        let (kv, stop) = (getter.kv(), stop.clone());
        tokio::spawn(async move {
            let mut rec = Recorder::new();
            if first_rx.wait_for(|created| *created).await.is_err() {
                return (rec, Duration::ZERO);
            }
            let start = Instant::now();
            // At least one get, even when the watchers were faster than this task: a get
            // that overlaps the end of the catch-up still counts (Go drops it, and can end
            // with an empty report).
            loop {
                let t0 = Instant::now();
                match kv.get("abc").serializable().await {
                    Ok(_) => rec.record_ok(t0 - start, t0.elapsed()),
                    Err(e) => rec.record_err(&e.to_string()),
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            (rec, start.elapsed())
        })
    };
    let first_tx = Arc::new(first_tx);
    let mut watchers = JoinSet::new();
    for i in 0..a.watchers {
        let client = stream_clients[i % stream_clients.len()].clone();
        let (first_tx, want) = (first_tx.clone(), a.events);
        watchers.spawn(async move {
            let mut w = client
                .watch(KEY)
                .start_revision(first_revision)
                .await
                .map_err(|e| format!("cannot create a watch: {e}"))?;
            first_tx.send_replace(true);
            let mut seen = 0;
            while seen < want {
                match w.message().await {
                    Ok(Some(resp)) => seen += resp.events().len() as u64,
                    Ok(None) => return Err("a watch ended early".to_owned()),
                    Err(e) => return Err(format!("a watch failed: {e}")),
                }
            }
            Ok(w)
        });
    }
    let mut failure = None;
    let mut done = Vec::with_capacity(a.watchers);
    while let Some(joined) = watchers.join_next().await {
        match joined.map_err(|e| format!("a watcher task failed: {e}"))? {
            Ok(w) => done.push(w),
            Err(msg) => failure = failure.or(Some(msg)),
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(first_tx);
    let (rec, elapsed) = gets
        .await
        .map_err(|e| format!("the get task failed: {e}"))?;
    let cpu = CpuTimes::now().since(cpu_before);
    drop(done);
    getter.close().await;
    if let Some(msg) = failure {
        return Err(msg);
    }
    Ok(RunOutput {
        elapsed,
        start_unix,
        cpu,
        parts: vec![part("get", "Get during watch summary", elapsed, rec)],
        primary: None,
        notes: Vec::new(),
        scale: None,
        leases: None,
    })
}

/// `watch-latency`: `--streams` x `--watchers-per-stream` watches on one random key; a
/// separate connection puts to it `--put-total` times, one after another at `--put-rate`.
async fn watch_latency(
    a: &WatchLatencyArgs,
    builder: &ClientBuilder,
    streams: &Streams<'_>,
) -> Result<RunOutput, String> {
    let mut rng = rand::rng();
    let key = random_value(a.key_size, &mut rng);
    let value = random_value(a.val_size, &mut rng);
    let stream_clients = streams.clients(a.streams)?;
    let mut creating = FuturesUnordered::new();
    for client in &stream_clients {
        for _ in 0..a.watchers_per_stream {
            let mut w = client.watch(key.clone());
            if a.prevkv {
                w = w.prev_kv();
            }
            creating.push(w.into_future());
        }
    }
    let mut sources = Vec::with_capacity(creating.len());
    while let Some(created) = creating.next().await {
        let w = created.map_err(|e| format!("cannot create a watch: {e}"))?;
        sources.push((Events(w), a.put_total));
    }
    let putter = builder
        .clone()
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let plan = PutPlan {
        total: a.put_total,
        putters: 1,
        rate: a.put_rate,
        settle: a.event_timeout,
    };
    let run = put_and_watch(&plan, sources, &[putter.kv()], move |kv, _| {
        put_revision(kv, key.clone(), value.clone())
    })
    .await;
    putter.close().await;
    drop(stream_clients);
    Ok(latency_output(run))
}

/// The three parts of `watch-latency`; the JSON document leads with the watch part, Go's
/// figure.
fn latency_output(run: EventRun) -> RunOutput {
    RunOutput {
        elapsed: run.elapsed,
        start_unix: run.start_unix,
        cpu: run.cpu,
        parts: vec![
            part("put", "Put summary", run.elapsed, run.puts),
            part(
                "watch",
                "Watch events summary (from the put's response, 0 if the event came first)",
                run.elapsed,
                run.watch,
            ),
            part(
                "put-to-event",
                "Put to event summary (from sending the put)",
                run.elapsed,
                run.put_to_event,
            ),
        ],
        primary: Some(1),
        notes: Vec::new(),
        scale: None,
        leases: None,
    }
}

/// `watch-scale`: `--watchers` watches on one key from one client, `--in-flight` creations
/// at a time; the client's resident memory before and after; then one put, and the time
/// until every watch has its event.
async fn watch_scale(
    a: &WatchScaleArgs,
    builder: &ClientBuilder,
    client: &Client,
) -> Result<RunOutput, String> {
    let mut rng = rand::rng();
    let key = random_value(a.key_size, &mut rng);
    let value = random_value(a.val_size, &mut rng);
    let putter = builder
        .clone()
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let n = a.watchers;
    let window = if a.in_flight == 0 {
        usize::MAX
    } else {
        a.in_flight
    };

    let cpu_before = CpuTimes::now();
    let start_unix = now_unix();
    let rss_before = rss_bytes();
    let start = Instant::now();
    let mut creations = Recorder::new();
    let mut watches = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    {
        let mut creating = FuturesUnordered::new();
        let mut asked = 0u64;
        loop {
            while asked < n && creating.len() < window {
                let w = client.watch(key.clone());
                creating.push(async move {
                    let t0 = Instant::now();
                    let r = w.await;
                    (t0, r)
                });
                asked += 1;
            }
            let Some((t0, created)) = creating.next().await else {
                break;
            };
            match created {
                Ok(w) => {
                    creations.record_ok(t0 - start, t0.elapsed());
                    watches.push(w);
                }
                Err(e) => creations.record_err(&e.to_string()),
            }
        }
    }
    let create_elapsed = start.elapsed();
    let rss_after = rss_bytes();
    let created = watches.len() as u64;

    let mut readers = JoinSet::new();
    for mut w in watches {
        readers.spawn(async move {
            let got = loop {
                match w.message().await {
                    Ok(Some(resp)) if !resp.events().is_empty() => break Ok(Instant::now()),
                    Ok(Some(_)) => continue,
                    Ok(None) => break Err("the watch ended before the event".to_owned()),
                    Err(e) => break Err(e.to_string()),
                }
            };
            // Handed back so that no cancellation runs while others still wait.
            (w, got)
        });
    }
    // Let every reader reach its first wait before the put.
    tokio::task::yield_now().await;
    let put_at = Instant::now();
    putter
        .kv()
        .put(key, value)
        .await
        .map_err(|e| format!("cannot put the watched key: {e}"))?;
    let mut delivery = Recorder::new();
    let mut kept = Vec::with_capacity(readers.len());
    let deadline = tokio::time::Instant::from_std(put_at + a.event_timeout);
    let mut last = put_at;
    loop {
        let joined = tokio::select! {
            joined = readers.join_next() => joined,
            () = tokio::time::sleep_until(deadline) => break,
        };
        let Some(joined) = joined else { break };
        let (w, got) = joined.map_err(|e| format!("a reader task failed: {e}"))?;
        kept.push(w);
        match got {
            Ok(at) => {
                delivery.record_ok(put_at - start, at - put_at);
                last = last.max(at);
            }
            Err(msg) => delivery.record_err(&msg),
        }
    }
    let late = readers.len() as u64;
    delivery.record_errors(
        &format!("no event within {:?} of the put", a.event_timeout),
        late,
    );
    readers.abort_all();
    let cpu = CpuTimes::now().since(cpu_before);
    let delivered = delivery.ok();
    let deliver_elapsed = last - put_at;
    drop(kept);
    putter.close().await;

    let before = rss_before.unwrap_or(0);
    let after = rss_after.unwrap_or(0);
    let per_watcher = if created == 0 || rss_before.is_none() || rss_after.is_none() {
        0.0
    } else {
        after.saturating_sub(before) as f64 / created as f64
    };
    let scale = ScaleReport {
        watchers: n,
        created,
        create_secs: create_elapsed.as_secs_f64(),
        rss_before_bytes: before,
        rss_after_bytes: after,
        rss_per_watcher_bytes: per_watcher,
        deliver_secs: (delivered == created && created > 0)
            .then_some(deliver_elapsed.as_secs_f64()),
        delivered,
    };
    Ok(RunOutput {
        elapsed: create_elapsed,
        start_unix,
        cpu,
        parts: vec![
            part(
                "watch-create",
                "Watch creation summary",
                create_elapsed,
                creations,
            ),
            part(
                "event",
                "Event delivery summary (from sending the put)",
                deliver_elapsed,
                delivery,
            ),
        ],
        primary: Some(0),
        notes: scale_notes(&scale, rss_before.is_some() && rss_after.is_some()),
        scale: Some(scale),
        leases: None,
    })
}

/// The text lines of `watch-scale`: what it found and the targets.
fn scale_notes(s: &ScaleReport, have_rss: bool) -> Vec<String> {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    let mut notes = vec![
        "Watch scale:".to_owned(),
        format!(
            "  Watchers:\t{} asked, {} created, one key, one client (one gRPC stream)",
            s.watchers, s.created
        ),
        format!("  Created in:\t{:.4} secs.", s.create_secs),
    ];
    if have_rss {
        notes.push(format!(
            "  Client RSS:\t{:.1} MiB before, {:.1} MiB after: {:.0} bytes per watcher",
            mib(s.rss_before_bytes),
            mib(s.rss_after_bytes),
            s.rss_per_watcher_bytes
        ));
    } else {
        notes.push("  Client RSS:\tunknown (no /proc/self/status)".to_owned());
    }
    notes.push(match s.deliver_secs {
        Some(secs) => format!("  All got the event in:\t{secs:.4} secs."),
        None => format!(
            "  Got the event:\t{} of {} (see the errors above)",
            s.delivered, s.created
        ),
    });
    notes.push("Targets:".to_owned());
    if s.watchers >= SCALE_TARGET_WATCHERS {
        let ok = s.created >= SCALE_TARGET_WATCHERS && s.create_secs <= SCALE_TARGET_SECS;
        notes.push(format!(
            "  {SCALE_TARGET_WATCHERS} watchers created within {SCALE_TARGET_SECS} s: {}",
            verdict(ok)
        ));
    } else {
        notes.push(format!(
            "  {SCALE_TARGET_WATCHERS} watchers created within {SCALE_TARGET_SECS} s: not \
             judged (--watchers {} is fewer)",
            s.watchers
        ));
    }
    if have_rss && s.created > 0 {
        notes.push(format!(
            "  RSS growth at most {SCALE_TARGET_BYTES} bytes per watcher: {}",
            verdict(s.rss_per_watcher_bytes <= SCALE_TARGET_BYTES)
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale(watchers: u64, secs: f64, per: f64) -> ScaleReport {
        ScaleReport {
            watchers,
            created: watchers,
            create_secs: secs,
            rss_before_bytes: 10 << 20,
            rss_after_bytes: 20 << 20,
            rss_per_watcher_bytes: per,
            deliver_secs: Some(0.5),
            delivered: watchers,
        }
    }

    #[test]
    fn scale_targets_are_judged() {
        let text = scale_notes(&scale(100_000, 4.0, 700.0), true).join("\n");
        assert!(text.contains("within 10 s: met"), "{text}");
        assert!(text.contains("per watcher: met"), "{text}");
        let text = scale_notes(&scale(100_000, 12.0, 1500.0), true).join("\n");
        assert!(text.contains("within 10 s: missed"), "{text}");
        assert!(text.contains("per watcher: missed"), "{text}");
        let text = scale_notes(&scale(10_000, 1.0, 700.0), true).join("\n");
        assert!(text.contains("not judged"), "{text}");
        let text = scale_notes(&scale(10, 1.0, 0.0), false).join("\n");
        assert!(text.contains("unknown"), "{text}");
        assert!(!text.contains("per watcher:"), "{text}");
    }
}
