//! KV against real etcd: the `kv_test.go` items of the Go client's acceptance list.

mod common;

use std::time::{Duration, Instant};

use common::{client, client_with_timeout, cluster, cluster_with};
use etcdv3::{Client, Code, ErrorKind, KeyRange, Kv, SortOrder, SortTarget};

fn keys(resp: &etcdv3::GetResponse) -> Vec<String> {
    resp.kvs()
        .iter()
        .map(|kv| kv.key_str().unwrap().to_owned())
        .collect()
}

async fn put_all(c: &Client, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        c.kv().put(*k, *v).await.unwrap();
    }
}

async fn put_get_roundtrip(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let put = kv.put("foo", "bar").await.unwrap();
    let rev = put.header().revision();
    assert!(rev > 1);
    let got = kv.get("foo").await.unwrap();
    assert_eq!(got.count(), 1);
    let item = &got.kvs()[0];
    assert_eq!((item.key(), item.value()), (&b"foo"[..], &b"bar"[..]));
    assert_eq!(
        (item.create_revision(), item.mod_revision(), item.version()),
        (rev, rev, 1)
    );
    assert_eq!(got.header().revision(), rev);
    assert_ne!(got.header().cluster_id(), 0);

    let second = kv.put("foo", "baz").prev_kv().await.unwrap();
    let prev = second.prev_kv().expect("prev kv");
    assert_eq!(prev.value(), b"bar");
    let got = kv.get("foo").await.unwrap();
    assert_eq!(got.kvs()[0].version(), 2);
    assert_eq!(got.kvs()[0].create_revision(), rev);
    assert!(kv.get("missing").await.unwrap().kvs().is_empty());
}

async fn put_errors(members: usize) {
    let cl = cluster_with(members, &["--max-request-bytes=1024"]).await;
    let c = client(&cl).await;
    let err = c.kv().put("", "v").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    // Over the server's --max-request-bytes: etcd rejects it.
    let err = c.kv().put("big", vec![b'x'; 2048]).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::RequestTooLarge), "{err:?}");
    assert!(err.is_request_too_large());
    // Over the client's own send limit: rejected before sending, naming the limit.
    let small = Client::builder()
        .endpoints(cl.endpoints())
        .max_send_message_size(512)
        .connect()
        .await
        .unwrap();
    let err = small.kv().put("big", vec![b'x'; 600]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RequestTooLarge);
    assert!(err.to_string().contains("512"), "{err}");
    assert!(c.kv().get("big").await.unwrap().kvs().is_empty());
}

async fn put_ignore_value_and_lease(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let err = kv.put("nokey", "").ignore_value().await.unwrap_err();
    assert_eq!(err.code(), Some(Code::KeyNotFound));
    assert!(err.is_key_not_found());
    let err = kv.put("nokey", "v").ignore_lease().await.unwrap_err();
    assert!(err.is_key_not_found(), "{err:?}");

    kv.put("k", "v1").await.unwrap();
    kv.put("k", "").ignore_value().await.unwrap();
    assert_eq!(kv.get("k").await.unwrap().kvs()[0].value(), b"v1");
    kv.put("k", "v2").ignore_lease().await.unwrap();
    let got = kv.get("k").await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"v2");
    assert_eq!(got.kvs()[0].lease(), 0);
    // Contradictory options never reach the server.
    let err = kv.put("k", "v3").ignore_value().await.unwrap_err();
    assert!(err.is_invalid_request());
}

async fn range_variants(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    put_all(
        &c,
        &[
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("c", "4"),
            ("foo", "5"),
            ("foo/abc", "6"),
            ("fop", "7"),
        ],
    )
    .await;
    let rev_after_c = kv.get("c").await.unwrap().kvs()[0].mod_revision();

    let r = kv.get("a").range_end("c").await.unwrap();
    assert_eq!(keys(&r), ["a", "b"]);
    let r = kv.get(KeyRange::range("a", "c")).await.unwrap();
    assert_eq!(keys(&r), ["a", "b"]);
    let r = kv.get("b".."foo").await.unwrap();
    assert_eq!(keys(&r), ["b", "c"]);
    let r = kv.get("foo").prefix().await.unwrap();
    assert_eq!(keys(&r), ["foo", "foo/abc"]);
    let r = kv.get("c").from_key().await.unwrap();
    assert_eq!(keys(&r), ["c", "foo", "foo/abc", "fop"]);
    let r = kv.get(..).await.unwrap();
    assert_eq!(r.count(), 6);
    let r = kv.get("").prefix().await.unwrap();
    assert_eq!(r.count(), 6, "empty prefix means every key");

    // Limit reports `more` and the full count.
    let r = kv.get(..).limit(2).await.unwrap();
    assert_eq!(keys(&r), ["a", "b"]);
    assert!(r.more());
    assert_eq!(r.count(), 6);

    // Reads at an older revision see older values.
    let r = kv.get("c").revision(rev_after_c - 1).await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"3");
    let first = kv.get("a").await.unwrap().kvs()[0].mod_revision();
    let r = kv.get(..).revision(first).await.unwrap();
    assert_eq!(keys(&r), ["a"]);

    // Sorting.
    let r = kv
        .get(..)
        .sort(SortTarget::Key, SortOrder::Descend)
        .await
        .unwrap();
    assert_eq!(keys(&r), ["fop", "foo/abc", "foo", "c", "b", "a"]);
    let r = kv
        .get(..)
        .sort(SortTarget::Value, SortOrder::Descend)
        .limit(1)
        .await
        .unwrap();
    assert_eq!(keys(&r), ["fop"]);
    let r = kv
        .get(..)
        .sort(SortTarget::ModRevision, SortOrder::Descend)
        .await
        .unwrap();
    assert_eq!(keys(&r)[0], "fop");
    let r = kv
        .get(..)
        .sort(SortTarget::Version, SortOrder::Descend)
        .limit(1)
        .await
        .unwrap();
    assert_eq!(keys(&r), ["c"]);
    let r = kv
        .get(..)
        .sort(SortTarget::CreateRevision, SortOrder::Ascend)
        .await
        .unwrap();
    assert_eq!(keys(&r), ["a", "b", "c", "foo", "foo/abc", "fop"]);

    // Revision filters.
    let r = kv.get(..).min_mod_revision(rev_after_c).await.unwrap();
    assert_eq!(keys(&r), ["c", "foo", "foo/abc", "fop"]);
    let r = kv.get(..).max_mod_revision(rev_after_c - 1).await.unwrap();
    assert_eq!(keys(&r), ["a", "b"]);
    let r = kv.get(..).min_create_revision(rev_after_c).await.unwrap();
    assert_eq!(keys(&r), ["foo", "foo/abc", "fop"]);
    let r = kv.get(..).max_create_revision(first).await.unwrap();
    assert_eq!(keys(&r), ["a"]);

    // Go's first/last shorthands.
    let one = |r: etcdv3::GetResponse| keys(&r);
    assert_eq!(one(kv.get("f").first_create().await.unwrap()), ["foo"]);
    assert_eq!(one(kv.get("f").last_create().await.unwrap()), ["fop"]);
    assert_eq!(one(kv.get("f").first_key().await.unwrap()), ["foo"]);
    assert_eq!(one(kv.get("f").last_key().await.unwrap()), ["fop"]);
    kv.put("foo", "5").await.unwrap();
    assert_eq!(one(kv.get("f").last_rev().await.unwrap()), ["foo"]);
    assert_eq!(one(kv.get("f").first_rev().await.unwrap()), ["foo/abc"]);

    // Serializable, keys-only, count-only.
    let r = kv.get("foo").serializable().await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"5");
    let r = kv.get("foo").prefix().keys_only().await.unwrap();
    assert_eq!(keys(&r), ["foo", "foo/abc"]);
    assert!(r.kvs().iter().all(|kv| kv.value().is_empty()));
    let r = kv.get(..).count_only().await.unwrap();
    assert_eq!(r.count(), 6);
    assert!(r.kvs().is_empty());
    let r = kv.get(..).keys_only().count_only().await.unwrap();
    assert_eq!((r.count(), r.kvs().len()), (6, 0));
}

async fn prefix_of_ff_keys(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    kv.put(b"\xff".to_vec(), "a").await.unwrap();
    kv.put(b"\xff\xff".to_vec(), "b").await.unwrap();
    kv.put(b"\xfe".to_vec(), "c").await.unwrap();
    let r = kv.get(b"\xff".to_vec()).prefix().await.unwrap();
    assert_eq!(r.count(), 2);
    let r = kv.get(b"\xfe\xff".to_vec()).prefix().await.unwrap();
    assert_eq!(r.count(), 0);
}

async fn delete_ranges(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let all = [
        ("a", "1"),
        ("b", "2"),
        ("c", "3"),
        ("c/abc", "4"),
        ("d", "5"),
    ];
    put_all(&c, &all).await;
    let d = kv.delete("c").prefix().prev_kv().await.unwrap();
    assert_eq!(d.deleted(), 2);
    let prev: Vec<_> = d.prev_kvs().iter().map(|kv| kv.value().to_vec()).collect();
    assert_eq!(prev, [b"3".to_vec(), b"4".to_vec()]);
    assert_eq!(keys(&kv.get(..).await.unwrap()), ["a", "b", "d"]);

    let d = kv.delete("a").range_end("c").await.unwrap();
    assert_eq!(d.deleted(), 2);
    assert!(d.prev_kvs().is_empty(), "no prev_kv asked");
    assert_eq!(keys(&kv.get(..).await.unwrap()), ["d"]);

    put_all(&c, &all).await;
    let d = kv.delete("c").from_key().await.unwrap();
    assert_eq!(d.deleted(), 3);
    assert_eq!(keys(&kv.get(..).await.unwrap()), ["a", "b"]);
    let d = kv.delete("zzz").await.unwrap();
    assert_eq!(d.deleted(), 0);
    let d = kv.delete(..).await.unwrap();
    assert_eq!(d.deleted(), 2);
    assert!(kv.delete("").await.unwrap_err().is_invalid_request());
}

async fn compact_errors_and_compacted_reads(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let mut last = 0;
    for i in 0..5 {
        last = kv
            .put("k", format!("v{i}"))
            .await
            .unwrap()
            .header()
            .revision();
    }
    let compact_at = last - 2;
    kv.compact(compact_at).physical().await.unwrap();
    let err = kv.compact(compact_at).await.unwrap_err();
    assert!(err.is_compacted(), "{err:?}");
    assert_eq!(err.code(), Some(Code::Compacted));
    let err = kv.compact(last + 100).await.unwrap_err();
    assert!(err.is_future_revision(), "{err:?}");
    assert_eq!(err.code(), Some(Code::FutureRev));
    assert!(kv.compact(0).await.unwrap_err().is_invalid_request());

    // A read below the compaction names the compaction revision.
    let err = kv.get("k").revision(compact_at - 1).await.unwrap_err();
    assert!(err.is_compacted(), "{err:?}");
    assert_eq!(err.compact_revision(), Some(compact_at), "{err:?}");
    // At the compaction revision itself the value is still readable.
    let r = kv.get("k").revision(compact_at).await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"v2");
    // A read in the future is a typed error too.
    let err = kv.get("k").revision(last + 10).await.unwrap_err();
    assert!(err.is_future_revision(), "{err:?}");
    assert!(
        kv.get("k")
            .revision(-1)
            .await
            .unwrap_err()
            .is_invalid_request()
    );
}

async fn closed_client_fails_fast(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    c.kv().put("a", "b").await.unwrap();
    let clone = c.clone();
    c.close().await;
    let started = Instant::now();
    let err = clone.kv().get("a").await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(100));
}

async fn call_timeout_bounds_a_hung_member(members: usize) {
    let cl = cluster(members).await;
    let c = Client::builder()
        .endpoints([cl.endpoint(0)])
        .connect()
        .await
        .unwrap();
    c.kv().put("a", "b").await.unwrap();
    cl.pause(0).unwrap();
    let started = Instant::now();
    let err = c
        .kv()
        .get("a")
        .timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    let took = started.elapsed();
    cl.resume(0).unwrap();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // The client is fine after the member comes back.
    let r = c
        .kv()
        .get("a")
        .timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.kvs()[0].value(), b"b");
}

per_topology!(
    put_get_roundtrip,
    put_errors,
    put_ignore_value_and_lease,
    range_variants,
    prefix_of_ff_keys,
    delete_ranges,
    compact_errors_and_compacted_reads,
    closed_client_fails_fast,
    call_timeout_bounds_a_hung_member,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_retries_until_a_stopped_member_restarts() {
    let cl = cluster(1).await;
    let c = client_with_timeout(&cl, Duration::from_secs(20)).await;
    c.kv().put("k", "v").await.unwrap();
    cl.stop(0).await.unwrap();
    let reader = {
        let c = c.clone();
        tokio::spawn(async move { c.kv().get("k").await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!reader.is_finished(), "the get should be retrying");
    cl.restart(0).await.unwrap();
    let r = reader.await.unwrap().expect("get after restart");
    assert_eq!(r.kvs()[0].value(), b"v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_to_a_stopped_member_fails_then_get_recovers() {
    let cl = cluster(1).await;
    let c = client_with_timeout(&cl, Duration::from_secs(2)).await;
    cl.stop(0).await.unwrap();
    let err = c.kv().put("k", "v").await.unwrap_err();
    assert!(err.is_unavailable() || err.is_timeout(), "{err:?}");
    cl.restart(0).await.unwrap();
    let r = c
        .kv()
        .get("k")
        .timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(r.kvs().is_empty(), "the failed put was not applied");
    c.kv().put("k", "v2").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_leader_fails_fast_without_quorum() {
    let cl = cluster(3).await;
    let survivor = Client::builder()
        .endpoints([cl.endpoint(2)])
        .connect()
        .await
        .unwrap();
    survivor.kv().put("k", "v").await.unwrap();
    cl.kill(0).await.unwrap();
    cl.kill(1).await.unwrap();
    // Wait until the survivor notices it lost the leader (election timeout 1 s by default).
    let started = Instant::now();
    let err = loop {
        let err = survivor
            .with_require_leader()
            .kv()
            .put("k", "v2")
            .timeout(Duration::from_secs(3))
            .await
            .unwrap_err();
        if err.is_no_leader() || started.elapsed() > Duration::from_secs(15) {
            break err;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(err.is_no_leader(), "{err:?}");
    assert!(err.is_unavailable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_request_limits_matrix() {
    // (server --max-request-bytes, client send limit, value size, expected)
    let cases: [(usize, usize, usize, Option<ErrorKind>); 4] = [
        (1024, 2 * 1024 * 1024, 512, None),
        (1024, 2 * 1024 * 1024, 2048, Some(ErrorKind::Server)),
        (8192, 1024, 2048, Some(ErrorKind::RequestTooLarge)),
        (8192, 16 * 1024, 4096, None),
    ];
    for (server_max, client_max, size, expected) in cases {
        let cl = cluster_with(1, &[&format!("--max-request-bytes={server_max}")]).await;
        let c = Client::builder()
            .endpoints(cl.endpoints())
            .max_send_message_size(client_max)
            .connect()
            .await
            .unwrap();
        let result = c.kv().put("k", vec![b'v'; size]).await;
        match expected {
            None => {
                result.unwrap();
                assert_eq!(c.kv().get("k").await.unwrap().kvs()[0].value().len(), size);
            }
            Some(kind) => {
                let err = result.unwrap_err();
                assert_eq!(
                    err.kind(),
                    kind,
                    "{server_max}/{client_max}/{size}: {err:?}"
                );
                assert!(err.is_request_too_large());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_quota_exhaustion_is_no_space() {
    let cl = common::quota_cluster().await;
    let c = client(&cl).await;
    let err = common::put_until_failure(&c).await;
    assert!(err.is_no_space(), "{err:?}");
    assert_eq!(err.code(), Some(Code::NoSpace));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_over_the_receive_limit_are_named() {
    let cl = cluster(1).await;
    let c = Client::builder()
        .endpoints(cl.endpoints())
        .max_send_message_size(512)
        .max_recv_message_size(1024)
        .connect()
        .await
        .unwrap();
    for i in 0..4 {
        c.kv().put(format!("k{i}"), vec![b'v'; 400]).await.unwrap();
    }
    assert_eq!(c.kv().get("k0").await.unwrap().kvs()[0].value().len(), 400);
    let err = c.kv().get("k").prefix().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResponseTooLarge, "{err:?}");
    assert!(err.is_response_too_large());
    assert!(err.to_string().contains("1024"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_after_failed_calls_on_a_stopped_member() {
    let cl = cluster(1).await;
    let c = client_with_timeout(&cl, Duration::from_secs(1)).await;
    cl.stop(0).await.unwrap();
    assert!(c.kv().get("k").await.is_err());
    assert!(c.kv().put("k", "v").await.is_err());
    c.close().await;
    let started = Instant::now();
    assert!(c.kv().get("k").await.unwrap_err().is_closed());
    assert!(c.kv().put("k", "v").await.unwrap_err().is_closed());
    assert!(started.elapsed() < Duration::from_millis(100));
}
