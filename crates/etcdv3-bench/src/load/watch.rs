//! Puts and the watch events they cause, measured the same way for any client: `watch`'s put
//! phase and `watch-latency` run on it.
//!
//! Watch readers ([`EventSource`]s) are started first. Then `putters` workers issue the puts,
//! rate limited, each remembering when its put was sent, when the response came and the
//! revision it created. Each reader notes when every event arrived, by revision. Afterwards
//! every event is matched to its put by revision, which gives two latencies per event:
//!
//! - **watch** (Go's `watch-latency`): from the put's response to the event; zero when the
//!   event came first (Go clamps the same way).
//! - **put-to-event**: from sending the put to the event, the whole path of one change.
//!
//! Readers stop once they have their expected number of events, or [`PutPlan::settle`] after
//! the last put; the events still missing then count as errors.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::cpu::CpuTimes;
use super::limiter::Limiter;
use super::report::Recorder;

/// A reader of watch responses: one watch, or several sharing one stream.
///
/// `next_events` must be cancel-safe (dropping its future loses no response): readers are
/// stopped by dropping it.
pub(crate) trait EventSource: Send + 'static {
    /// Waits for the next response and appends the revision of each of its events to
    /// `revisions` (nothing for a response without events). `Ok(false)`: the watch ended.
    fn next_events(
        &mut self,
        revisions: &mut Vec<i64>,
    ) -> impl Future<Output = Result<bool, String>> + Send;
}

/// The put side of a run.
#[derive(Debug, Clone)]
pub(crate) struct PutPlan {
    /// Puts in all (`--put-total`).
    pub(crate) total: u64,
    /// Concurrent put workers; worker `i` uses connection `i % conns`.
    pub(crate) putters: usize,
    /// Puts per second over all workers; 0 = unlimited (`--put-rate`).
    pub(crate) rate: f64,
    /// How long readers may still wait for events after the last put.
    pub(crate) settle: Duration,
}

/// What a put-and-watch run recorded.
#[derive(Debug)]
pub(crate) struct EventRun {
    /// From the first put to the last event (or the end of waiting for it).
    pub(crate) elapsed: Duration,
    /// The start as a Unix time in seconds.
    pub(crate) start_unix: u64,
    /// CPU time the whole process used.
    pub(crate) cpu: CpuTimes,
    /// Put latency.
    pub(crate) puts: Recorder,
    /// Per event: from the put's response to the event (zero if the event came first).
    pub(crate) watch: Recorder,
    /// Per event: from sending the put to the event.
    pub(crate) put_to_event: Recorder,
}

/// One put: when it was sent and answered, and the revision it made.
#[derive(Debug, Clone, Copy)]
struct PutRecord {
    revision: i64,
    sent: Instant,
    answered: Instant,
}

/// What one reader saw: events as (revision, arrival), and the error that ended it early.
type Seen = (Vec<(i64, Instant)>, Option<String>);

/// Runs the puts `put(connection, index)` (which returns the connection and the revision the
/// put created) while `sources` read, each expecting the given number of events.
pub(crate) async fn put_and_watch<S, C, F, Fut>(
    plan: &PutPlan,
    sources: Vec<(S, u64)>,
    conns: &[C],
    put: F,
) -> EventRun
where
    S: EventSource,
    C: Clone + Send + 'static,
    F: Fn(C, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (C, Result<i64, String>)> + Send + 'static,
{
    assert!(!conns.is_empty(), "at least one connection");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut readers = JoinSet::new();
    let mut expected = Vec::with_capacity(sources.len());
    for (index, (source, want)) in sources.into_iter().enumerate() {
        expected.push(want);
        readers.spawn(read_events(index, source, want, stop_rx.clone()));
    }

    let cpu_before = CpuTimes::now();
    let start_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let limiter = Arc::new(Limiter::new(plan.rate));
    let put = Arc::new(put);
    let mut putters = JoinSet::new();
    for w in 0..plan.putters.max(1) {
        let mut conn = conns[w % conns.len()].clone();
        let (next, limiter, put) = (next.clone(), limiter.clone(), put.clone());
        let total = plan.total;
        putters.spawn(async move {
            let mut done = Vec::new();
            let mut rec = Recorder::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                limiter.wait().await;
                let sent = Instant::now();
                let (back, result) = put(conn, i).await;
                let answered = Instant::now();
                conn = back;
                match result {
                    Ok(revision) => {
                        rec.record_ok(sent - start, answered - sent);
                        done.push(PutRecord {
                            revision,
                            sent,
                            answered,
                        });
                    }
                    Err(msg) => rec.record_err(&msg),
                }
            }
            (done, rec)
        });
    }
    let mut puts = Recorder::new();
    let mut records = Vec::new();
    while let Some(joined) = putters.join_next().await {
        let (done, rec) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        puts.merge(&rec);
        records.extend(done);
    }
    let puts_end = Instant::now();

    let mut seen: Vec<Seen> = (0..expected.len()).map(|_| (Vec::new(), None)).collect();
    let deadline = tokio::time::Instant::from_std(puts_end + plan.settle);
    loop {
        let joined = tokio::select! {
            joined = readers.join_next() => joined,
            () = tokio::time::sleep_until(deadline) => {
                // Stop the late readers; they return what they saw.
                let _ = stop_tx.send(true);
                readers.join_next().await
            }
        };
        let Some(joined) = joined else { break };
        let (index, got) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        seen[index] = got;
    }
    let last_event = seen
        .iter()
        .flat_map(|(events, _)| events.iter().map(|&(_, at)| at))
        .max();
    let end = last_event.map_or(puts_end, |at| at.max(puts_end));
    let cpu = CpuTimes::now().since(cpu_before);

    let (watch, put_to_event) = match_events(start, &mut records, &seen, &expected, plan.settle);
    EventRun {
        elapsed: end - start,
        start_unix,
        cpu,
        puts,
        watch,
        put_to_event,
    }
}

/// Reads `source` until it has `want` events or `stop` is set.
async fn read_events<S: EventSource>(
    index: usize,
    mut source: S,
    want: u64,
    mut stop: watch::Receiver<bool>,
) -> (usize, Seen) {
    let mut events = Vec::with_capacity(usize::try_from(want.min(1 << 20)).unwrap_or(0));
    let mut revisions = Vec::new();
    let mut ended = None;
    while (events.len() as u64) < want {
        tokio::select! {
            biased;
            changed = stop.wait_for(|stop| *stop) => {
                // Stopped, or the run is gone: either way nothing more is wanted.
                let _ = changed;
                break;
            }
            next = source.next_events(&mut revisions) => {
                let at = Instant::now();
                match next {
                    Ok(true) => events.extend(revisions.drain(..).map(|r| (r, at))),
                    Ok(false) => {
                        ended = Some("the watch ended before all events arrived".to_owned());
                        break;
                    }
                    Err(msg) => {
                        ended = Some(msg);
                        break;
                    }
                }
            }
        }
    }
    (index, (events, ended))
}

/// Matches every event to its put by revision and records both latencies; an expected event
/// that did not come counts as an error, under the reader's error if it had one.
fn match_events(
    start: Instant,
    records: &mut [PutRecord],
    seen: &[Seen],
    expected: &[u64],
    settle: Duration,
) -> (Recorder, Recorder) {
    records.sort_unstable_by_key(|r| r.revision);
    let mut watch = Recorder::new();
    let mut put_to_event = Recorder::new();
    let timeout = format!("no event within {settle:?} after the last put");
    for ((events, ended), &want) in seen.iter().zip(expected) {
        let mut matched = 0u64;
        for &(revision, at) in events {
            let Ok(i) = records.binary_search_by_key(&revision, |r| r.revision) else {
                // A change this run did not make.
                continue;
            };
            let put = records[i];
            let started = put.sent.saturating_duration_since(start);
            watch.record_ok(started, at.saturating_duration_since(put.answered));
            put_to_event.record_ok(started, at.saturating_duration_since(put.sent));
            matched += 1;
        }
        let missing = want.saturating_sub(matched);
        let message = ended.as_deref().unwrap_or(&timeout);
        watch.record_errors(message, missing);
        put_to_event.record_errors(message, missing);
    }
    (watch, put_to_event)
}

/// The connection of watch stream `stream`, as in Go's tool: stream `i` belongs to client
/// `i % clients`, and client `c` uses connection `c % conns`.
pub(crate) fn stream_connection(stream: usize, clients: usize, conns: usize) -> usize {
    (stream % clients.max(1)) % conns.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    /// Events arrive on a channel: each message is one response's revisions.
    struct Fake(mpsc::UnboundedReceiver<Vec<i64>>);

    impl EventSource for Fake {
        async fn next_events(&mut self, revisions: &mut Vec<i64>) -> Result<bool, String> {
            match self.0.recv().await {
                Some(r) => {
                    revisions.extend(r);
                    Ok(true)
                }
                None => Ok(false),
            }
        }
    }

    #[test]
    fn streams_spread_like_go() {
        assert_eq!(stream_connection(7, 100, 10), 7);
        assert_eq!(stream_connection(13, 100, 10), 3);
        // One client: every stream on connection 0, however many connections.
        assert_eq!(stream_connection(5, 1, 10), 0);
        assert_eq!(stream_connection(5, 4, 2), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_put_is_matched_to_every_reader() {
        let (tx_a, rx_a) = mpsc::unbounded_channel();
        let (tx_b, rx_b) = mpsc::unbounded_channel();
        let senders = Arc::new(vec![tx_a, tx_b]);
        let plan = PutPlan {
            total: 20,
            putters: 3,
            rate: 0.0,
            settle: Duration::from_secs(5),
        };
        let out = put_and_watch(
            &plan,
            vec![(Fake(rx_a), 20), (Fake(rx_b), 20)],
            &[senders],
            |s: Arc<Vec<mpsc::UnboundedSender<Vec<i64>>>>, i| async move {
                let revision = 100 + i as i64;
                for tx in s.iter() {
                    tx.send(vec![revision]).unwrap();
                }
                (s, Ok(revision))
            },
        )
        .await;
        assert_eq!((out.puts.ok(), out.puts.error_count()), (20, 0));
        assert_eq!((out.watch.ok(), out.watch.error_count()), (40, 0));
        assert_eq!(out.put_to_event.ok(), 40);
    }

    #[tokio::test(start_paused = true)]
    async fn missing_events_are_errors_after_the_settle_time() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (_keep, never) = mpsc::unbounded_channel::<Vec<i64>>();
        let plan = PutPlan {
            total: 4,
            putters: 1,
            rate: 0.0,
            settle: Duration::from_millis(200),
        };
        let out = put_and_watch(
            &plan,
            vec![(Fake(rx), 4), (Fake(never), 4)],
            &[tx],
            |tx: mpsc::UnboundedSender<Vec<i64>>, i| async move {
                let revision = 10 + i as i64;
                // Two puts' events in one response; once also a change nobody put.
                if i % 2 == 1 {
                    let mut revisions = vec![revision - 1, revision];
                    if i == 1 {
                        revisions.push(999);
                    }
                    tx.send(revisions).unwrap();
                }
                if i == 3 {
                    return (tx, Err("boom".to_owned()));
                }
                (tx, Ok(revision))
            },
        )
        .await;
        assert_eq!((out.puts.ok(), out.puts.error_count()), (3, 1));
        // Reader one: 10, 11 and 12 matched, 13's put failed; reader two: nothing.
        assert_eq!(out.watch.ok(), 3);
        let st = out.watch.stats(out.elapsed);
        assert_eq!(
            st.error_counts["no event within 200ms after the last put"],
            5
        );
    }

    #[tokio::test]
    async fn a_reader_that_ends_reports_why() {
        let (tx, rx) = mpsc::unbounded_channel();
        drop(tx);
        let plan = PutPlan {
            total: 2,
            putters: 1,
            rate: 0.0,
            settle: Duration::from_secs(5),
        };
        let out = put_and_watch(&plan, vec![(Fake(rx), 2)], &[()], |c: (), i| async move {
            (c, Ok(i as i64 + 1))
        })
        .await;
        let st = out.watch.stats(out.elapsed);
        assert_eq!(
            st.error_counts["the watch ended before all events arrived"],
            2
        );
    }
}
