//! The Watch API against real etcd: options, many watches on one stream, cancel and drop,
//! compaction (typed end and resync), progress, fragments, slow readers, close, and the
//! server's watcher count. Failures and resumes are in `watch_faults.rs`.

mod common;

use std::time::{Duration, Instant};

use common::{client, cluster, cluster_with, eventually};
use etcdv3::{Client, Compare, ErrorKind, EventKind, KeyRange, Kv, Op, WatchResponse, WatchStream};
use etcdv3_testkit::EtcdCluster;

/// The next response, failing after 10 s.
async fn next(w: &mut WatchStream) -> WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), w.message())
        .await
        .expect("a response within 10 s")
        .expect("no error")
        .expect("the watch goes on")
}

/// The error that ends the watch, failing after 10 s.
async fn ending(w: &mut WatchStream) -> etcdv3::Error {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), w.message())
            .await
            .expect("an answer within 10 s")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the watch ended without an error"),
            Err(e) => return e,
        }
    }
}

/// Reads until `n` events have arrived; returns them as (key, revision, kind).
async fn events(w: &mut WatchStream, n: usize) -> Vec<(String, i64, EventKind)> {
    let mut out = Vec::new();
    while out.len() < n {
        let resp = next(w).await;
        for e in resp.events() {
            out.push((
                e.kv().key_str().unwrap().to_string(),
                e.revision(),
                e.kind(),
            ));
        }
    }
    assert_eq!(out.len(), n, "no more events than expected");
    out
}

/// The keys of the next `n` events.
async fn keys(w: &mut WatchStream, n: usize) -> Vec<String> {
    events(w, n).await.into_iter().map(|(k, _, _)| k).collect()
}

async fn put(c: &Client, k: &str, v: &str) -> i64 {
    c.kv().put(k, v).await.unwrap().header().revision()
}

/// etcd's count of watchers (or of watch streams) on member 0.
async fn server_count(etcd: &EtcdCluster, metric: &str) -> f64 {
    etcd.metric(0, metric).await.unwrap().unwrap_or(0.0)
}

const WATCHERS: &str = "etcd_debugging_mvcc_watcher_total";
const STREAMS: &str = "etcd_debugging_mvcc_watch_stream_total";

/// Waits until etcd counts `want` of `metric`.
async fn server_counts(etcd: &EtcdCluster, metric: &str, want: f64) {
    let what = format!("{metric} == {want}");
    eventually(Duration::from_secs(10), &what, || async {
        (server_count(etcd, metric).await == want).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_puts_and_deletes_in_order() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let mut w = c.watch("k").await.unwrap();
    let r1 = put(&c, "k", "1").await;
    let r2 = put(&c, "k", "2").await;
    let r3 = c.kv().delete("k").await.unwrap().header().revision();
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(next(&mut w).await.into_events());
    }
    let kinds: Vec<_> = got
        .iter()
        .map(|e| (e.revision(), e.kind(), e.is_create(), e.is_modify()))
        .collect();
    assert_eq!(
        kinds,
        [
            (r1, EventKind::Put, true, false),
            (r2, EventKind::Put, false, true),
            (r3, EventKind::Delete, false, false)
        ]
    );
    assert_eq!(got[1].kv().value(), b"2");
    assert_eq!(got[2].kv().value(), b"", "a delete has no value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_prefixes_and_from_key() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let mut range = c.watch("a").range_end("c").await.unwrap();
    let mut prefix = c.watch("p/").prefix().await.unwrap();
    let mut from = c.watch("m").from_key().await.unwrap();
    let mut all = c.watch(KeyRange::all()).await.unwrap();
    for k in ["a", "b", "c", "p/1", "p", "q", "z"] {
        put(&c, k, "v").await;
    }
    assert_eq!(keys(&mut range, 2).await, ["a", "b"]);
    assert_eq!(keys(&mut prefix, 1).await, ["p/1"]);
    assert_eq!(keys(&mut from, 4).await, ["p/1", "p", "q", "z"]);
    assert_eq!(
        keys(&mut all, 7).await,
        ["a", "b", "c", "p/1", "p", "q", "z"]
    );
    // Nothing more arrived for the narrow ones.
    put(&c, "a", "again").await;
    assert_eq!(keys(&mut range, 1).await, ["a"]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), prefix.message())
            .await
            .is_err(),
        "a key outside the prefix is not delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_watches_share_one_stream_and_each_gets_its_own_events() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let mut watches = Vec::new();
    for i in 0..10 {
        watches.push(c.watch(format!("k{i}")).await.unwrap());
    }
    // A clone shares the stream too; a require-leader watch has its own, and so does a
    // separate watcher (Go's NewWatcher).
    let mut leader = c.clone().watch("k0").require_leader().await.unwrap();
    let own = c.new_watcher();
    let mut separate = own.watch("k1").await.unwrap();
    let _same = own.clone().watch("k2").await.unwrap();
    server_counts(&etcd, STREAMS, 3.0).await;
    server_counts(&etcd, WATCHERS, 13.0).await;
    for round in 0..3 {
        for i in 0..10 {
            put(&c, &format!("k{i}"), &format!("{round}")).await;
        }
    }
    for (i, w) in watches.iter_mut().enumerate() {
        let got = events(w, 3).await;
        assert!(got.iter().all(|(k, _, _)| *k == format!("k{i}")), "{got:?}");
        assert!(got.windows(2).all(|p| p[0].1 < p[1].1), "in order");
    }
    assert_eq!(keys(&mut leader, 3).await, ["k0", "k0", "k0"]);
    assert_eq!(keys(&mut separate, 3).await, ["k1", "k1", "k1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_revision_replays_history_and_a_future_one_waits() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let r1 = put(&c, "h", "1").await;
    let r2 = put(&c, "h", "2").await;
    let r3 = put(&c, "h", "3").await;
    let mut past = c.watch("h").start_revision(r2).await.unwrap();
    let got: Vec<i64> = events(&mut past, 2).await.iter().map(|e| e.1).collect();
    assert_eq!(got, [r2, r3]);
    assert!(r1 < r2);

    let future = r3 + 5;
    let mut w = c.watch("h").start_revision(future).await.unwrap();
    let mut last = 0;
    while last < future + 1 {
        last = put(&c, "h", "more").await;
    }
    let got: Vec<i64> = events(&mut w, 2).await.iter().map(|e| e.1).collect();
    assert_eq!(
        got,
        [future, future + 1],
        "starts exactly at the future revision"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_prev_kv() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let mut no_put = c.watch("f").no_put().await.unwrap();
    let mut no_delete = c.watch("f").no_delete().await.unwrap();
    let mut prev = c.watch("f").prev_kv().await.unwrap();
    // Mixed on the same stream: one with prev_kv, one without.
    let mut plain = c.watch("f").await.unwrap();
    put(&c, "f", "one").await;
    put(&c, "f", "two").await;
    c.kv().delete("f").await.unwrap();
    let kinds = |v: Vec<(String, i64, EventKind)>| v.into_iter().map(|e| e.2).collect::<Vec<_>>();
    assert_eq!(kinds(events(&mut no_put, 1).await), [EventKind::Delete]);
    assert_eq!(
        kinds(events(&mut no_delete, 2).await),
        [EventKind::Put, EventKind::Put]
    );
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(next(&mut prev).await.into_events());
    }
    assert!(got[0].prev_kv().is_none(), "a create has no previous value");
    assert_eq!(got[1].prev_kv().unwrap().value(), b"one");
    assert_eq!(got[2].prev_kv().unwrap().value(), b"two");
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(next(&mut plain).await.into_events());
    }
    assert!(got.iter().all(|e| e.prev_kv().is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_is_one_response_with_every_event() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let mut w = c.watch("t/").prefix().await.unwrap();
    let txn = c
        .kv()
        .txn()
        .when([Compare::version("t/a").eq(0)])
        .and_then([
            Op::put("t/a", "1"),
            Op::put("t/b", "2"),
            Op::put("t/c", "3"),
        ])
        .await
        .unwrap();
    let resp = next(&mut w).await;
    assert_eq!(resp.events().len(), 3);
    assert!(
        resp.events()
            .iter()
            .all(|e| e.revision() == txn.header().revision())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_notify_comes_first_and_once() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let rev = put(&c, "x", "0").await;
    let mut w = c.watch("n").created_notify().await.unwrap();
    let first = next(&mut w).await;
    assert!(first.is_created() && !first.is_progress_notify());
    assert!(first.events().is_empty());
    assert_eq!(first.header().revision(), rev);
    assert_eq!(first.watch_id(), w.watch_id());
    assert!(w.watch_id() >= 0);
    put(&c, "n", "1").await;
    let second = next(&mut w).await;
    assert!(!second.is_created());
    assert_eq!(second.events().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_shows_as_a_delete() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let lease = c.lease().grant(1).await.unwrap();
    put(&c, "leased", "v").await;
    c.kv().put("leased", "v").lease(lease.id()).await.unwrap();
    let mut w = c.watch("leased").await.unwrap();
    let resp = next(&mut w).await;
    assert_eq!(resp.events()[0].kind(), EventKind::Delete);
    assert_eq!(resp.events()[0].kv().key(), b"leased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_sending() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    for err in [
        c.watch("").await.unwrap_err(),
        c.watch("b").range_end("a").await.unwrap_err(),
        c.watch("k").start_revision(-1).await.unwrap_err(),
        c.watch("k").buffer(0).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
        assert!(err.is_invalid_request());
    }
    assert_eq!(server_count(&etcd, STREAMS).await, 0.0, "nothing was sent");
    // The whole keyspace is not an empty key.
    let mut all = c.watch(KeyRange::all()).await.unwrap();
    put(&c, "any", "v").await;
    assert_eq!(keys(&mut all, 1).await, ["any"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_start_ends_with_the_compaction_revision() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let r1 = put(&c, "c", "1").await;
    put(&c, "c", "2").await;
    let r3 = put(&c, "c", "3").await;
    c.kv().compact(r3).await.unwrap();
    let mut w = c.watch("c").start_revision(r1).await.unwrap();
    let err = ending(&mut w).await;
    assert!(err.is_compacted(), "{err}");
    assert_eq!(err.compact_revision(), Some(r3));
    assert!(w.message().await.unwrap().is_none(), "then the end");
    server_counts(&etcd, WATCHERS, 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_on_compaction_delivers_the_state_then_continues() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let r1 = put(&c, "s/a", "1").await;
    put(&c, "s/b", "2").await;
    put(&c, "s/c", "3").await;
    c.kv().delete("s/a").await.unwrap();
    let compacted = put(&c, "s/b", "22").await;
    c.kv().compact(compacted).await.unwrap();
    let mut w = c
        .watch("s/")
        .prefix()
        .start_revision(r1)
        .resync_on_compaction()
        .await
        .unwrap();
    let resync = next(&mut w).await;
    assert!(resync.is_resync() && !resync.is_progress_notify());
    assert_eq!(resync.compact_revision(), compacted);
    let state: Vec<_> = resync
        .events()
        .iter()
        .map(|e| {
            (
                e.kv().key_str().unwrap().to_string(),
                e.kv().value_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        state,
        [
            ("s/b".to_string(), "22".to_string()),
            ("s/c".to_string(), "3".to_string())
        ]
    );
    let read_at = resync.header().revision();
    assert!(read_at >= compacted);
    let r = put(&c, "s/d", "4").await;
    let got = events(&mut w, 1).await;
    assert_eq!(got[0].0, "s/d");
    assert_eq!(got[0].1, r, "no gap and no repeat after the resync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_notifications_carry_the_revision() {
    let etcd = EtcdCluster::builder()
        .watch_progress_notify_interval(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let c = client(&etcd).await;
    let rev = put(&c, "other", "v").await;
    let mut w = c.watch("quiet").progress_notify().await.unwrap();
    let start = Instant::now();
    let resp = next(&mut w).await;
    assert!(resp.is_progress_notify(), "{resp:?}");
    assert_eq!(resp.header().revision(), rev);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // A watch that did not ask gets none.
    let mut silent = c.watch("quiet2").await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(700), silent.message())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_progress_reaches_every_watch_of_the_stream() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    // Without watches there is nothing to notify.
    c.request_progress().await.unwrap();
    let mut a = c.watch("pa").await.unwrap();
    let mut b = c.watch("pb").await.unwrap();
    let rev = put(&c, "elsewhere", "v").await;
    c.request_progress().await.unwrap();
    for w in [&mut a, &mut b] {
        let resp = next(w).await;
        assert!(resp.is_progress_notify(), "{resp:?}");
        assert_eq!(resp.header().revision(), rev);
        assert_eq!(resp.watch_id(), -1);
    }
    // Through a handle, from another task.
    let handle = a.handle();
    let rev = put(&c, "elsewhere", "w").await;
    tokio::spawn(async move { handle.request_progress().await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next(&mut a).await.header().revision(), rev);
    assert_eq!(next(&mut b).await.header().revision(), rev);
}

/// A cluster whose requests (and so watch fragments) are at most 256 KiB, with twelve 100 KiB
/// values written one by one: a watch from the first revision gets all of them in one
/// catch-up response of 1.2 MiB.
async fn large_history() -> (EtcdCluster, i64) {
    let etcd = cluster_with(1, &["--max-request-bytes=262144"]).await;
    let c = client(&etcd).await;
    let value = "v".repeat(100 * 1024);
    let mut first = 0;
    for i in 0..12 {
        let r = put(&c, &format!("big/{i:02}"), &value).await;
        if first == 0 {
            first = r;
        }
    }
    (etcd, first)
}

async fn small_recv_client(etcd: &EtcdCluster) -> Client {
    Client::builder()
        .endpoints(etcd.endpoints())
        .max_send_message_size(512 * 1024)
        .max_recv_message_size(1024 * 1024)
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_are_joined_and_fit_a_small_receive_limit() {
    let (etcd, first) = large_history().await;
    // Fragmented, with a 1 MiB receive limit: every event arrives.
    let small = small_recv_client(&etcd).await;
    let mut w = small
        .watch("big/")
        .prefix()
        .start_revision(first)
        .fragment()
        .await
        .unwrap();
    let got = events(&mut w, 12).await;
    let want: Vec<String> = (0..12).map(|i| format!("big/{i:02}")).collect();
    assert_eq!(got.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), want);
    // Not fragmented, same limit: the response is too large for the client.
    let mut w = small
        .watch("big/")
        .prefix()
        .start_revision(first)
        .await
        .unwrap();
    let err = ending(&mut w).await;
    assert_eq!(err.kind(), ErrorKind::ResponseTooLarge, "{err}");
    // Not fragmented, default limit (2 GiB, as Go): it arrives whole.
    let big = client(&etcd).await;
    let mut w = big
        .watch("big/")
        .prefix()
        .start_revision(first)
        .await
        .unwrap();
    assert_eq!(keys(&mut w, 12).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_lags_alone() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let mut slow = c.watch("lag/").prefix().buffer(8).await.unwrap();
    let mut fast = c.watch("lag/").prefix().await.unwrap();
    server_counts(&etcd, WATCHERS, 2.0).await;
    let total = 2000;
    let writers: Vec<_> = (0..10)
        .map(|t| {
            let kv = c.kv();
            tokio::spawn(async move {
                for i in 0..total / 10 {
                    kv.put(format!("lag/{t}/{i}"), "v").await.unwrap();
                }
            })
        })
        .collect();
    let reader = tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        let mut last = 0;
        while seen.len() < total {
            for e in next(&mut fast).await.events() {
                assert!(e.revision() > last, "in order, once");
                last = e.revision();
                assert!(seen.insert(e.kv().key().to_vec()));
            }
        }
        (seen.len(), fast)
    });
    // Calls on the same client keep answering while events pour in.
    for _ in 0..20 {
        let t = Instant::now();
        c.kv().get("lag/0/0").await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(2));
    }
    for w in writers {
        w.await.unwrap();
    }
    let (seen, _fast) = reader.await.unwrap();
    assert_eq!(seen, total, "the fast reader got every event");
    // The slow one holds its 8 responses, then says where to resume.
    let mut last = 0;
    for _ in 0..8 {
        last = next(&mut slow).await.events()[0].revision();
    }
    let err = ending(&mut slow).await;
    assert!(err.is_lagged(), "{err}");
    assert_eq!(err.resume_revision(), Some(last + 1));
    // The lagged watch was cancelled on the server; the fast one still runs.
    server_counts(&etcd, WATCHERS, 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_drop_and_close_free_the_servers_watchers() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let mut cancelled = c.watch("a").await.unwrap();
    let dropped = c.watch("b").await.unwrap();
    let mut kept = c.watch("c").await.unwrap();
    let mut other = c.watch("d").await.unwrap();
    server_counts(&etcd, WATCHERS, 4.0).await;

    cancelled.handle().cancel();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), cancelled.message())
            .await
            .unwrap()
            .unwrap()
            .is_none(),
        "a cancelled watch ends without an error"
    );
    drop(dropped);
    server_counts(&etcd, WATCHERS, 2.0).await;
    // The others did not notice.
    put(&c, "c", "1").await;
    assert_eq!(keys(&mut kept, 1).await, ["c"]);

    // A watch whose creation is abandoned is cancelled too.
    let abandoned = c.watch("e").into_future();
    drop(abandoned);
    let t = Instant::now();
    c.close().await;
    for w in [&mut kept, &mut other] {
        let err = tokio::time::timeout(Duration::from_secs(1), w.message())
            .await
            .expect("ends within 1 s of close")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
    }
    assert!(t.elapsed() < Duration::from_secs(2));
    server_counts(&etcd, WATCHERS, 0.0).await;
    server_counts(&etcd, STREAMS, 0.0).await;
    // And a watch after close fails at once.
    let err = c.watch("f").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_coming_and_going_never_disturb_a_running_one() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let mut steady = c.watch("steady").await.unwrap();
    let churn = {
        let c = c.clone();
        tokio::spawn(async move {
            for i in 0..50 {
                let w = c.watch(format!("churn/{i}")).await.unwrap();
                if i % 2 == 0 {
                    w.cancel();
                }
                drop(w);
                // Some abandoned before etcd answers.
                let _ = tokio::time::timeout(
                    Duration::from_micros(50),
                    c.watch(format!("gone/{i}")).into_future(),
                )
                .await;
            }
        })
    };
    let mut revs = Vec::new();
    for i in 0..50 {
        revs.push(put(&c, "steady", &i.to_string()).await);
    }
    churn.await.unwrap();
    let got: Vec<i64> = events(&mut steady, 50).await.iter().map(|e| e.1).collect();
    assert_eq!(got, revs);
    server_counts(&etcd, WATCHERS, 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_client_ends_its_watches() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let mut w = c.watch("k").await.unwrap();
    drop(c);
    let err = tokio::time::timeout(Duration::from_secs(2), w.message())
        .await
        .expect("ends once the client is gone")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    server_counts(&etcd, WATCHERS, 0.0).await;
}
