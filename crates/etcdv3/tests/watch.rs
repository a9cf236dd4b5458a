//! The Watch API against real etcd: options, many watchers on one stream, cancel and drop,
//! compaction (typed end and resync), progress, fragments, slow readers, close, and the
//! server's watcher count.

mod common;

use std::time::Duration;

use common::{client, cluster};
use etcdv3::{Client, EventKind, Kv, WatchResponse, WatchStream};

/// The next response, failing after 10 s.
async fn next(w: &mut WatchStream) -> WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), w.message())
        .await
        .expect("a response within 10 s")
        .expect("no error")
        .expect("the watch goes on")
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
    out
}

async fn put(c: &Client, k: &str, v: &str) -> i64 {
    c.kv().put(k, v).await.unwrap().header().revision()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_puts_and_deletes_in_order() {
    let etcd = cluster(1).await;
    let c = client(&etcd).await;
    let mut w = c.watch("k").await.unwrap();
    let r1 = put(&c, "k", "1").await;
    let r2 = put(&c, "k", "2").await;
    let r3 = c.kv().delete("k").await.unwrap().header().revision();
    let got = events(&mut w, 3).await;
    assert_eq!(
        got,
        [
            ("k".into(), r1, EventKind::Put),
            ("k".into(), r2, EventKind::Put),
            ("k".into(), r3, EventKind::Delete)
        ]
    );
}
