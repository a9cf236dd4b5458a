//! Watch resume under real faults: members killed, frozen and stopped, connections reset and
//! blackholed, compaction while a watch is cut off. Writes are made once each (a "create if
//! absent" transaction, retried through failures), so every test knows the exact revision of
//! every write and checks that the watch delivered each one once, in order, at that revision.

mod common;

use std::collections::HashSet;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::cluster;
use etcdv3::{Client, Code, Compare, Error, Kv, Op, WatchResponse, WatchStream};
use etcdv3_testkit::{EtcdCluster, FaultProxy, ProxyMode};

/// Large enough that a reader on a busy machine never ends a watch with `Lagged`.
const BUFFER: usize = 100_000;

/// What a watch delivered, recorded by a task that reads it as fast as it can.
#[derive(Default)]
struct Log {
    /// Every event (resyncs apart): key and revision, in the order they arrived.
    events: Vec<(String, i64)>,
    /// For each response: the member that sent it, and how many events came before it.
    senders: Vec<(u64, usize)>,
    /// Creation notices delivered.
    created: usize,
    /// Resync responses, with how many events came before each.
    resyncs: Vec<(WatchResponse, usize)>,
    /// How the watch ended: `Some(None)` for a quiet end.
    end: Option<Option<Error>>,
}

impl Log {
    fn add(&mut self, resp: WatchResponse) {
        self.senders
            .push((resp.header().member_id(), self.events.len()));
        if resp.is_created() {
            self.created += 1;
        }
        if resp.is_resync() {
            self.resyncs.push((resp, self.events.len()));
            return;
        }
        for e in resp.events() {
            self.events
                .push((e.kv().key_str().unwrap().to_owned(), e.revision()));
        }
    }

    fn last_revision(&self) -> i64 {
        self.events.last().map_or(0, |e| e.1)
    }

    /// The distinct members that sent responses, in the order they first did.
    fn members(&self) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for &(m, _) in &self.senders {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    /// How many events `member` delivered.
    fn events_by(&self, member: u64) -> usize {
        let mut total = 0;
        for (i, &(m, before)) in self.senders.iter().enumerate() {
            let after = self
                .senders
                .get(i + 1)
                .map_or(self.events.len(), |&(_, b)| b);
            if m == member {
                total += after - before;
            }
        }
        total
    }
}

#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Log>>);

impl Recorded {
    fn lock(&self) -> MutexGuard<'_, Log> {
        // A failed assertion while the test held the lock must not take the reader down too.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `done` holds, polling every 10 ms; fails after `limit`, or at once when
    /// the watch ended without `done` holding.
    async fn until(&self, limit: Duration, what: &str, mut done: impl FnMut(&Log) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            {
                let log = self.lock();
                if done(&log) {
                    return;
                }
                if let Some(end) = &log.end {
                    panic!(
                        "{what}: the watch ended first ({end:?}) after {} events",
                        log.events.len()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: not within {limit:?} ({} events so far, last revision {})",
                    log.events.len(),
                    log.last_revision()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the watch to end; returns its error.
    async fn ended(&self, limit: Duration, what: &str) -> Option<Error> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(end) = self.lock().end.take() {
                return end;
            }
            assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn assert_running(&self, what: &str) {
        let log = self.lock();
        assert!(log.end.is_none(), "{what}: the watch ended: {:?}", log.end);
    }
}

/// Reads `w` in a task of its own, into a log.
fn record(mut w: WatchStream) -> Recorded {
    let log = Recorded::default();
    let l = log.clone();
    tokio::spawn(async move {
        loop {
            let next = w.message().await;
            let mut log = l.lock();
            match next {
                Ok(Some(resp)) => log.add(resp),
                Ok(None) => {
                    log.end = Some(None);
                    return;
                }
                Err(e) => {
                    log.end = Some(Some(e));
                    return;
                }
            }
        }
    });
    log
}

/// Creates `key` unless it exists, retrying through failures for up to 30 s; returns the
/// revision that created it. A retried write never makes a second event: once the key
/// exists, the transaction only reads it.
async fn create_once(c: &Client, key: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c
            .kv()
            .txn()
            .when([Compare::key_missing(key)])
            .and_then([Op::put(key, "v")])
            .or_else([Op::get(key)])
            .await;
        match r {
            Ok(r) if r.succeeded() => return r.header().revision(),
            Ok(r) => {
                let got = r.responses()[0].as_get().expect("a get response");
                return got.kvs()[0].mod_revision();
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "creating {key}: {e:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Creates keys, each once, with a few concurrent tasks, and keeps the revision of each.
struct Writer {
    next: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(String, i64)>>>,
}

impl Writer {
    /// Creates `{prefix}{i:05}` for `i` in `0..total`.
    fn start(c: &Client, prefix: &str, total: usize, concurrency: usize) -> Writer {
        let prefix = prefix.to_owned();
        Writer::start_with(c, total, concurrency, move |i| format!("{prefix}{i:05}"))
    }

    /// Creates `key(i)` for `i` in `0..total`.
    fn start_with(
        c: &Client,
        total: usize,
        concurrency: usize,
        key: impl Fn(usize) -> String + Send + Sync + 'static,
    ) -> Writer {
        let next = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let key = Arc::new(key);
        let tasks = (0..concurrency)
            .map(|_| {
                let (c, next, done) = (c.clone(), next.clone(), done.clone());
                let key = key.clone();
                tokio::spawn(async move {
                    let mut written = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return written;
                        }
                        let key = key(i);
                        let rev = create_once(&c, &key).await;
                        written.push((key, rev));
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Writer { next, done, tasks }
    }

    fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    async fn wait_done(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.done() < n {
            assert!(
                Instant::now() < deadline,
                "{n} writes: only {} within {limit:?}",
                self.done()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops taking new keys.
    fn stop(&self) {
        self.next.store(usize::MAX / 2, Ordering::Relaxed);
    }

    /// Every write made, in revision order.
    async fn finish(self) -> Vec<(String, i64)> {
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.unwrap());
        }
        all.sort_by_key(|w| w.1);
        all
    }
}

/// The log holds exactly `expected` (in revision order): nothing lost, nothing twice, in
/// order, each at the revision it was written.
fn assert_exactly(log: &Log, expected: &[(String, i64)]) {
    let got = &log.events;
    if got.as_slice() == expected {
        return;
    }
    let out_of_order: Vec<_> = got
        .windows(2)
        .filter(|p| p[0].1 >= p[1].1)
        .take(5)
        .collect();
    let got_set: HashSet<_> = got.iter().collect();
    let expected_set: HashSet<_> = expected.iter().collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|e| !got_set.contains(e))
        .take(5)
        .collect();
    let unexpected: Vec<_> = got
        .iter()
        .filter(|e| !expected_set.contains(e))
        .take(5)
        .collect();
    let first = got
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    // Which member sent which events: (member, index of its first event), per run.
    let mut runs: Vec<(u64, usize)> = Vec::new();
    for &(member, before) in &log.senders {
        if runs.last().is_none_or(|r| r.0 != member) {
            runs.push((member, before));
        }
    }
    panic!(
        "{} events delivered, {} expected; first difference at {first}: got {:?}, expected \
         {:?}\nout of order: {out_of_order:?}\nmissing: {missing:?}\nunexpected: \
         {unexpected:?}\nsenders: {runs:x?}",
        got.len(),
        expected.len(),
        got.get(first),
        expected.get(first),
    );
}

/// The index of the member with raft ID `id`.
fn member_index(cl: &EtcdCluster, id: u64) -> usize {
    (0..cl.len())
        .find(|&i| cl.member_id(i) == Some(id))
        .unwrap_or_else(|| panic!("no member has ID {id:x}"))
}

/// A client of the given members whose requests time out after 2 s (so writes stuck on a
/// frozen or lost leader fail fast and are tried again).
async fn client_of(cl: &EtcdCluster, members: &[usize]) -> Client {
    Client::builder()
        .endpoints(members.iter().map(|&i| cl.endpoint(i)))
        .request_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect")
}

/// The created notice's sender, once it arrived.
async fn created_on(log: &Recorded, cl: &EtcdCluster) -> usize {
    log.until(Duration::from_secs(10), "the creation notice", |l| {
        l.created == 1
    })
    .await;
    let id = log.lock().senders[0].0;
    member_index(cl, id)
}

/// Sets `key` from the version at `from` to a new value once, retrying through failures;
/// returns the revision of that write.
async fn update_once(c: &Client, key: &str, from: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c
            .kv()
            .txn()
            .when([Compare::mod_revision(key).eq(from)])
            .and_then([Op::put(key, "v2")])
            .or_else([Op::get(key)])
            .await;
        match r {
            Ok(r) if r.succeeded() => return r.header().revision(),
            Ok(r) => {
                let got = r.responses()[0].as_get().expect("a get response");
                return got.kvs()[0].mod_revision();
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "updating {key}: {e:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Cuts the proxy's connections and refuses new ones; returns once the client has tried to
/// dial again, so it has seen its connection break and nothing more reaches it.
async fn cut_off(proxy: &FaultProxy) {
    let before = proxy.accepted();
    proxy.refuse();
    proxy.reset_connections();
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.accepted() == before {
        assert!(
            Instant::now() < deadline,
            "the client did not dial again after its connection was reset"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL, restarted later.
    Kill,
    /// SIGSTOP, continued at the end.
    Freeze,
}

/// A prefix watch on a client of all three members; a writer through the other two creates
/// 10,000 keys while the watch's member fails.
async fn every_event_once_across(fault: Fault) {
    const KEYS: usize = 10_000;
    let cl = cluster(3).await;
    let watcher = common::client(&cl).await;
    let mut watch = watcher.watch("p/").prefix().created_notify().buffer(BUFFER);
    if fault == Fault::Freeze {
        watch = watch.stall_timeout(Duration::from_secs(2));
    }
    let log = record(watch.await.unwrap());
    let victim = created_on(&log, &cl).await;
    let victim_id = cl.member_id(victim).unwrap();
    let others: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let writes = client_of(&cl, &others).await;
    let writer = Writer::start(&writes, "p/", KEYS, 16);

    log.until(Duration::from_secs(30), "2,000 events", |l| {
        l.events.len() >= 2_000
    })
    .await;
    // Read before the fault: once it struck, other members may deliver at any moment.
    let before_fault = log.lock().events.len();
    match fault {
        Fault::Kill => cl.kill(victim).await.unwrap(),
        Fault::Freeze => cl.pause(victim).unwrap(),
    }
    writer.wait_done(6_000, Duration::from_secs(40)).await;
    if fault == Fault::Kill {
        cl.restart(victim).await.unwrap();
    }
    let mut written = writer.finish().await;
    assert_eq!(written.len(), KEYS);
    let last = create_once(&writes, "p/~end").await;
    written.push(("p/~end".to_owned(), last));
    log.until(Duration::from_secs(30), "the last write", |l| {
        l.last_revision() >= last
    })
    .await;
    if fault == Fault::Freeze {
        cl.resume(victim).unwrap();
    }

    let log = log.lock();
    assert_exactly(&log, &written);
    assert_eq!(
        log.created, 1,
        "one creation notice, never again on resumes"
    );
    assert!(log.end.is_none(), "{:?}", log.end);
    let members = log.members();
    assert_eq!(members[0], victim_id);
    assert!(
        members.len() >= 2,
        "the watch moved off member {victim}: {members:x?}"
    );
    assert!(log.events_by(victim_id) >= before_fault);
    assert!(
        log.events_by(victim_id) < log.events.len(),
        "other members delivered the rest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_lost_or_repeated_across_sigkill() {
    every_event_once_across(Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_lost_or_repeated_across_a_frozen_member() {
    every_event_once_across(Fault::Freeze).await;
}

/// Fifty watches share one stream (their creations pipelined and matched to etcd's answers
/// in order, on every new stream too). The member the stream is on is killed, then the
/// member it moved to: after each resume every watch still gets exactly its own events, the
/// ones started at a past revision as well as the ones started from now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_watches_on_one_stream_keep_their_own_events_across_two_failovers() {
    const WATCHES: usize = 50;
    const KEYS: usize = 3_000;
    let cl = cluster(3).await;
    let watcher = common::client(&cl).await;
    let writes = client_of(&cl, &[0, 1, 2]).await;
    let prefix = |w: usize| format!("m/{w:02}/");
    let mut expected: Vec<Vec<(String, i64)>> = vec![Vec::new(); WATCHES];
    let mut starts = vec![0; WATCHES];
    for w in (0..WATCHES).step_by(2) {
        let key = format!("{}before", prefix(w));
        starts[w] = create_once(&writes, &key).await;
        expected[w].push((key, starts[w]));
    }
    let calls = (0..WATCHES).map(|w| {
        watcher
            .watch(prefix(w))
            .prefix()
            .start_revision(starts[w])
            .created_notify()
            .buffer(BUFFER)
            .into_future()
    });
    let logs: Vec<Recorded> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|w| record(w.unwrap()))
        .collect();
    let first = created_on(&logs[0], &cl).await;
    let total = |logs: &[Recorded]| logs.iter().map(|l| l.lock().events.len()).sum::<usize>();

    let writer = Writer::start_with(&writes, KEYS, 8, move |i| {
        format!("m/{:02}/{:04}", i % WATCHES, i / WATCHES)
    });
    let mut victims = vec![first];
    for round in 1..=2 {
        let victim = *victims.last().unwrap();
        let victim_id = cl.member_id(victim).unwrap();
        let until_events = round * KEYS / 3;
        let deadline = Instant::now() + Duration::from_secs(30);
        while total(&logs) < until_events {
            assert!(
                Instant::now() < deadline,
                "round {round}: {until_events} events"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cl.kill(victim).await.unwrap();
        // Every watch moves with the stream: the next response comes from another member.
        logs[0]
            .until(Duration::from_secs(20), "watch 0 moved", |l| {
                l.senders.last().is_some_and(|s| s.0 != victim_id)
            })
            .await;
        let moved_to = logs[0].lock().senders.last().unwrap().0;
        cl.restart(victim).await.unwrap();
        cl.wait_healthy(Duration::from_secs(30)).await.unwrap();
        victims.push(member_index(&cl, moved_to));
    }
    for (key, rev) in writer.finish().await {
        let w: usize = key[2..4].parse().unwrap();
        expected[w].push((key, rev));
    }
    for (w, expected) in expected.iter_mut().enumerate() {
        let key = format!("{}~end", prefix(w));
        let rev = create_once(&writes, &key).await;
        expected.push((key, rev));
        logs[w]
            .until(Duration::from_secs(20), "the last write", |l| {
                l.last_revision() >= rev
            })
            .await;
    }
    for (w, log) in logs.iter().enumerate() {
        let log = log.lock();
        assert_exactly(&log, &expected[w]);
        assert_eq!(log.created, 1, "watch {w}: one creation notice");
        assert!(log.end.is_none(), "watch {w}: {:?}", log.end);
    }
    assert_ne!(victims[0], victims[1]);
    assert_ne!(
        victims[1], victims[2],
        "the second kill moved the stream again"
    );
}

/// A single member behind a proxy; the watch's client goes through the proxy, the writer
/// straight to the member.
async fn behind_proxy() -> (EtcdCluster, FaultProxy, Client, Client) {
    let cl = cluster(1).await;
    let proxy = FaultProxy::start(&cl.endpoint(0)).await.unwrap();
    let watcher = Client::connect([proxy.endpoint()]).await.unwrap();
    let direct = client_of(&cl, &[0]).await;
    (cl, proxy, watcher, direct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_lost_or_repeated_across_connection_resets() {
    const KEYS: usize = 5_000;
    let (_cl, proxy, watcher, direct) = behind_proxy().await;
    let log = record(
        watcher
            .watch("p/")
            .prefix()
            .created_notify()
            .buffer(BUFFER)
            .await
            .unwrap(),
    );
    log.until(Duration::from_secs(10), "the creation notice", |l| {
        l.created == 1
    })
    .await;
    let writer = Writer::start(&direct, "p/", KEYS, 8);
    let mut resets_mid_stream = 0;
    for step in 1..=4 {
        log.until(Duration::from_secs(30), "1,000 more events", |l| {
            l.events.len() >= step * 1_000
        })
        .await;
        if writer.done() < KEYS {
            resets_mid_stream += 1;
        }
        let dials = proxy.accepted();
        proxy.reset_connections();
        let deadline = Instant::now() + Duration::from_secs(10);
        while proxy.accepted() == dials {
            assert!(Instant::now() < deadline, "reset {step}: no new connection");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut written = writer.finish().await;
    let last = create_once(&direct, "p/~end").await;
    written.push(("p/~end".to_owned(), last));
    log.until(Duration::from_secs(30), "the last write", |l| {
        l.last_revision() >= last
    })
    .await;
    let log = log.lock();
    assert_exactly(&log, &written);
    assert_eq!(
        log.created, 1,
        "one creation notice, never again on resumes"
    );
    assert!(log.end.is_none(), "{:?}", log.end);
    assert!(
        resets_mid_stream >= 2,
        "only {resets_mid_stream} resets came while keys were being written"
    );
}

/// A watch with a 2 s stall timeout, through a proxy that goes silent for 6 s (`mode`) while
/// keys are written, then forwards again.
async fn every_event_once_across_a_silent_connection(mode: ProxyMode) {
    const KEYS: usize = 5_000;
    let (_cl, proxy, _, direct) = behind_proxy().await;
    // Creation (and so every attempt to re-create the watch) times out after 2 s.
    let watcher = Client::builder()
        .endpoints([proxy.endpoint()])
        .request_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let log = record(
        watcher
            .watch("p/")
            .prefix()
            .stall_timeout(Duration::from_secs(2))
            .buffer(BUFFER)
            .await
            .unwrap(),
    );
    let writer = Writer::start(&direct, "p/", KEYS, 4);
    log.until(Duration::from_secs(30), "1,000 events", |l| {
        l.events.len() >= 1_000
    })
    .await;
    proxy.set_mode(mode);
    let cut = Instant::now();
    let before = log.lock().events.len();
    // Long enough for the stall check to give up on the stream (2 s of silence, then 2 s
    // without an answer to its progress request) and try again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = log.lock().events.len();
    assert!(
        during - before < 100,
        "a silent connection delivered {} events",
        during - before
    );
    assert!(
        writer.done() > before + 1_000,
        "keys were written meanwhile"
    );
    proxy.forward();
    let healed = Instant::now();
    let mut written = writer.finish().await;
    let last = create_once(&direct, "p/~end").await;
    written.push(("p/~end".to_owned(), last));
    log.until(Duration::from_secs(30), "the last write", |l| {
        l.last_revision() >= last
    })
    .await;
    // Held bytes flow on; dropped ones break the connection, which the next attempt to
    // re-create the watch (within its 2 s creation timeout) finds out, and dials again.
    assert!(
        healed.elapsed() < Duration::from_secs(10),
        "caught up {:?} after the network healed ({:?} after the cut)",
        healed.elapsed(),
        cut.elapsed()
    );
    let log = log.lock();
    assert_exactly(&log, &written);
    assert!(log.end.is_none(), "{:?}", log.end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_lost_or_repeated_across_a_blackhole() {
    every_event_once_across_a_silent_connection(ProxyMode::Blackhole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_lost_or_repeated_across_a_stalled_connection() {
    every_event_once_across_a_silent_connection(ProxyMode::Pause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_quorum_a_require_leader_watch_ends_and_a_plain_watch_waits() {
    let cl = cluster(3).await;
    let c = common::client(&cl).await;
    let strict = record(c.watch("q/").prefix().require_leader().await.unwrap());
    let plain = record(c.watch("q/").prefix().await.unwrap());
    let mut expected = vec![("q/before".to_owned(), create_once(&c, "q/before").await)];
    for log in [&strict, &plain] {
        log.until(Duration::from_secs(10), "the first event", |l| {
            l.events.len() == 1
        })
        .await;
    }

    cl.stop(1).await.unwrap();
    cl.stop(2).await.unwrap();
    let err = strict
        .ended(Duration::from_secs(30), "the require-leader watch ends")
        .await
        .expect("an error, not a quiet end");
    assert!(err.is_no_leader(), "{err:?}");
    assert_eq!(err.code(), Some(Code::NoLeader), "{err:?}");
    // Give the plain watch the time an end would take to reach its reader.
    tokio::time::sleep(Duration::from_secs(1)).await;
    plain.assert_running("a plain watch waits for a leader");

    cl.restart(1).await.unwrap();
    cl.restart(2).await.unwrap();
    cl.wait_healthy(Duration::from_secs(30)).await.unwrap();
    for i in 0..3 {
        let key = format!("q/after{i}");
        let rev = create_once(&c, &key).await;
        expected.push((key, rev));
    }
    plain
        .until(
            Duration::from_secs(20),
            "the events written after the restart",
            |l| l.events.len() >= expected.len(),
        )
        .await;
    assert_exactly(&plain.lock(), &expected);
    assert_eq!(strict.lock().events, expected[..1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_require_leader_watch_moves_off_a_frozen_member() {
    let cl = cluster(3).await;
    let leader = cl.leader().await.unwrap();
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    // A new client's first stream goes to its first endpoint: a follower, so that freezing
    // it leaves the other two a leader and the watch somewhere to go.
    let watcher = Client::connect([
        cl.endpoint(followers[0]),
        cl.endpoint(followers[1]),
        cl.endpoint(leader),
    ])
    .await
    .unwrap();
    let log = record(
        watcher
            .watch("r/")
            .prefix()
            .require_leader()
            .stall_timeout(Duration::from_secs(2))
            .created_notify()
            .buffer(BUFFER)
            .await
            .unwrap(),
    );
    let victim = created_on(&log, &cl).await;
    assert_ne!(victim, leader, "the watch starts on a follower");
    let victim_id = cl.member_id(victim).unwrap();
    let others: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let writes = client_of(&cl, &others).await;
    let writer = Writer::start(&writes, "r/", 99_999, 2);
    log.until(Duration::from_secs(20), "200 events", |l| {
        l.events.len() >= 200
    })
    .await;
    cl.pause(victim).unwrap();
    log.until(
        Duration::from_secs(20),
        "an event from another member",
        |l| l.senders.iter().any(|&(m, _)| m != victim_id),
    )
    .await;
    let moved = log.lock().events.len();
    log.until(Duration::from_secs(20), "200 more events", |l| {
        l.events.len() >= moved + 200
    })
    .await;
    writer.stop();
    let mut written = writer.finish().await;
    let last = create_once(&writes, "r/~end").await;
    written.push(("r/~end".to_owned(), last));
    log.until(Duration::from_secs(20), "the last write", |l| {
        l.last_revision() >= last
    })
    .await;
    cl.resume(victim).unwrap();
    let log = log.lock();
    assert_exactly(&log, &written);
    assert_eq!(log.created, 1);
    assert!(log.end.is_none(), "{:?}", log.end);
}

/// Go's TestWatchReconnRequest: 200 watches are being created (pipelined on one stream)
/// when the connection is reset. Every creation still succeeds once, on the next stream, and
/// every watch gets exactly its own events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_in_flight_survive_a_connection_reset() {
    const WATCHES: usize = 200;
    let (_cl, proxy, watcher, direct) = behind_proxy().await;
    // Slow answers, so that the reset finds creations on the way.
    proxy.set_latency(Duration::from_millis(20));
    let resolved = Arc::new(AtomicUsize::new(0));
    let creations: Vec<_> = (0..WATCHES)
        .map(|i| {
            let (watcher, resolved) = (watcher.clone(), resolved.clone());
            tokio::spawn(async move {
                let w = watcher.watch(format!("w/{i:03}")).created_notify().await;
                resolved.fetch_add(1, Ordering::Relaxed);
                w
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while resolved.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "no watch was created");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let dials = proxy.accepted();
    proxy.reset_connections();
    let at_reset = resolved.load(Ordering::Relaxed);
    proxy.set_latency(Duration::ZERO);
    let mut logs = Vec::new();
    for c in creations {
        logs.push(record(
            c.await.unwrap().expect("the creation survives the reset"),
        ));
    }
    assert!(
        at_reset < WATCHES / 2,
        "{at_reset} of {WATCHES} creations were answered before the reset"
    );
    assert!(proxy.accepted() > dials, "the client dialled again");
    let mut expected = Vec::new();
    for i in 0..WATCHES {
        let key = format!("w/{i:03}");
        let rev = create_once(&direct, &key).await;
        expected.push((key, rev));
    }
    for (i, log) in logs.iter().enumerate() {
        log.until(Duration::from_secs(10), "the watch's event", |l| {
            !l.events.is_empty()
        })
        .await;
        let log = log.lock();
        assert_exactly(&log, &expected[i..=i]);
        assert_eq!(log.created, 1, "watch {i}: one creation notice");
    }
}

/// Go's TestWatchCancelDisconnected: a watch cancelled while its stream is cut off ends
/// quietly and is not created again; the other watch on the stream resumes, and etcd ends up
/// with one watcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_cancelled_while_cut_off_stays_cancelled() {
    let (cl, proxy, watcher, direct) = behind_proxy().await;
    let kept = record(watcher.watch("x/").prefix().await.unwrap());
    let dropped = watcher.watch("x/").prefix().await.unwrap();
    let handle = dropped.handle();
    let dropped = record(dropped);
    cut_off(&proxy).await;
    handle.cancel();
    dropped
        .until(Duration::from_secs(5), "the cancelled watch ends", |l| {
            l.end.is_some()
        })
        .await;
    assert!(
        matches!(dropped.lock().end, Some(None)),
        "a cancel ends quietly: {:?}",
        dropped.lock().end
    );
    let key = ("x/1".to_owned(), create_once(&direct, "x/1").await);
    proxy.forward();
    kept.until(Duration::from_secs(10), "the kept watch resumes", |l| {
        !l.events.is_empty()
    })
    .await;
    assert_exactly(&kept.lock(), &[key]);
    // etcd drops the cut connection's watchers on its own time.
    let cl = &cl;
    common::eventually(
        Duration::from_secs(10),
        "etcd has one watcher",
        || async move {
            let watchers = cl.metric(0, "etcd_debugging_mvcc_watcher_total").await;
            (watchers.unwrap() == Some(1.0)).then_some(())
        },
    )
    .await;
    assert!(dropped.lock().events.is_empty());
}

/// Go's TestWatchReconnInit and TestWatchWithCreatedNotificationDropConn: a watch from now
/// whose connection breaks before any event still gets what was written while it was cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_cut_off_before_any_event_misses_nothing() {
    let (_cl, proxy, watcher, direct) = behind_proxy().await;
    let log = record(watcher.watch("k/").prefix().created_notify().await.unwrap());
    log.until(Duration::from_secs(10), "the creation notice", |l| {
        l.created == 1
    })
    .await;
    cut_off(&proxy).await;
    let mut expected = Vec::new();
    for key in ["k/1", "k/2"] {
        expected.push((key.to_owned(), create_once(&direct, key).await));
    }
    proxy.forward();
    expected.push(("k/3".to_owned(), create_once(&direct, "k/3").await));
    log.until(Duration::from_secs(20), "three events", |l| {
        l.events.len() >= 3
    })
    .await;
    let log = log.lock();
    assert_exactly(&log, &expected);
    assert_eq!(log.created, 1, "the creation notice is not delivered again");
}

/// Go's TestWatchReconnRunning: a watch whose connection breaks after events neither repeats
/// them nor skips what was written while it was cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_cut_off_after_events_neither_repeats_nor_skips() {
    let (_cl, proxy, watcher, direct) = behind_proxy().await;
    let mut expected = vec![("k/0".to_owned(), create_once(&direct, "k/0").await)];
    let log = record(
        watcher
            .watch("k/")
            .prefix()
            .start_revision(expected[0].1)
            .created_notify()
            .await
            .unwrap(),
    );
    for key in ["k/1", "k/2"] {
        expected.push((key.to_owned(), create_once(&direct, key).await));
    }
    log.until(Duration::from_secs(10), "three events", |l| {
        l.events.len() >= 3
    })
    .await;
    cut_off(&proxy).await;
    for key in ["k/3", "k/4"] {
        expected.push((key.to_owned(), create_once(&direct, key).await));
    }
    proxy.forward();
    expected.push(("k/5".to_owned(), create_once(&direct, "k/5").await));
    log.until(Duration::from_secs(20), "six events", |l| {
        l.events.len() >= 6
    })
    .await;
    let log = log.lock();
    assert_exactly(&log, &expected);
    assert_eq!(log.created, 1, "the creation notice is not delivered again");
}

/// Go's TestWatchResumeAfterDisconnect: the member every watch of a client is on is killed;
/// keys are written and changed through the others; the member comes back and each watch
/// goes on from where it was: one from now with events, one from a past revision on one key,
/// and one from now created just before the kill, with no event yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_resume_where_they_were_after_their_member_restarts() {
    let cl = cluster(3).await;
    let watcher = Client::connect([cl.endpoint(2)]).await.unwrap();
    let writes = client_of(&cl, &[0, 1]).await;
    let all = record(watcher.watch("s/").prefix().created_notify().await.unwrap());
    let a1 = create_once(&writes, "s/a").await;
    let b = create_once(&writes, "s/b").await;
    let one = record(watcher.watch("s/a").start_revision(a1).await.unwrap());
    all.until(Duration::from_secs(10), "two events", |l| {
        l.events.len() >= 2
    })
    .await;
    one.until(Duration::from_secs(10), "one event", |l| {
        !l.events.is_empty()
    })
    .await;
    let late = record(watcher.watch("s/c").await.unwrap());

    cl.kill(2).await.unwrap();
    let a2 = update_once(&writes, "s/a", a1).await;
    let c = create_once(&writes, "s/c").await;
    cl.restart(2).await.unwrap();
    let d = create_once(&writes, "s/d").await;

    let key = |k: &str, r| (k.to_owned(), r);
    all.until(Duration::from_secs(20), "five events", |l| {
        l.events.len() >= 5
    })
    .await;
    one.until(Duration::from_secs(20), "two events", |l| {
        l.events.len() >= 2
    })
    .await;
    late.until(Duration::from_secs(20), "one event", |l| {
        !l.events.is_empty()
    })
    .await;
    assert_exactly(
        &all.lock(),
        &[
            key("s/a", a1),
            key("s/b", b),
            key("s/a", a2),
            key("s/c", c),
            key("s/d", d),
        ],
    );
    assert_exactly(&one.lock(), &[key("s/a", a1), key("s/a", a2)]);
    assert_exactly(&late.lock(), &[key("s/c", c)]);
    assert_eq!(
        all.lock().created,
        1,
        "the creation notice is not delivered again"
    );
}

/// Go's TestWatchResumeCompacted: the revisions a cut-off watch had not delivered are
/// compacted away before it can resume; it ends with `Compacted` after what it delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumed_past_a_compaction_ends_with_compacted() {
    let (_cl, proxy, watcher, direct) = behind_proxy().await;
    let log = record(watcher.watch("c/").prefix().await.unwrap());
    let first = create_once(&direct, "c/1").await;
    log.until(Duration::from_secs(10), "one event", |l| {
        !l.events.is_empty()
    })
    .await;
    cut_off(&proxy).await;
    create_once(&direct, "c/2").await;
    let compacted = create_once(&direct, "c/3").await;
    direct.kv().compact(compacted).physical().await.unwrap();
    proxy.forward();
    let err = log
        .ended(Duration::from_secs(20), "the watch ends")
        .await
        .expect("an error, not a quiet end");
    assert!(err.is_compacted(), "{err:?}");
    assert_eq!(err.compact_revision(), Some(compacted), "{err:?}");
    assert_exactly(&log.lock(), &[("c/1".to_owned(), first)]);
}

/// The same with `resync_on_compaction`: one resync response with the keys as they are, then
/// every change after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumed_past_a_compaction_resyncs_and_goes_on() {
    let (_cl, proxy, watcher, direct) = behind_proxy().await;
    let log = record(
        watcher
            .watch("c/")
            .prefix()
            .resync_on_compaction()
            .await
            .unwrap(),
    );
    let first = create_once(&direct, "c/1").await;
    log.until(Duration::from_secs(10), "one event", |l| {
        !l.events.is_empty()
    })
    .await;
    cut_off(&proxy).await;
    let two = create_once(&direct, "c/2").await;
    let three = create_once(&direct, "c/3").await;
    let compacted = direct.kv().delete("c/1").await.unwrap().header().revision();
    direct.kv().compact(compacted).physical().await.unwrap();
    proxy.forward();
    log.until(Duration::from_secs(20), "the resync", |l| {
        !l.resyncs.is_empty()
    })
    .await;
    let mut expected = vec![("c/1".to_owned(), first)];
    for key in ["c/4", "c/5", "c/6"] {
        expected.push((key.to_owned(), create_once(&direct, key).await));
    }
    log.until(
        Duration::from_secs(20),
        "the writes after the resync",
        |l| l.events.len() >= expected.len(),
    )
    .await;

    let log = log.lock();
    assert!(log.end.is_none(), "{:?}", log.end);
    assert_eq!(log.resyncs.len(), 1, "one resync");
    let (resync, after) = &log.resyncs[0];
    assert_eq!(
        *after, 1,
        "the resync comes after the event delivered before the cut"
    );
    assert!(resync.is_resync() && !resync.is_progress_notify());
    assert_eq!(resync.compact_revision(), compacted);
    assert!(resync.header().revision() >= compacted);
    let state: Vec<(String, i64)> = resync
        .events()
        .iter()
        .map(|e| (e.kv().key_str().unwrap().to_owned(), e.kv().mod_revision()))
        .collect();
    assert_eq!(state, [("c/2".to_owned(), two), ("c/3".to_owned(), three)]);
    // No gap: every write after the resync's revision, once.
    assert!(expected[1].1 > resync.header().revision());
    assert_exactly(&log, &expected);
}
