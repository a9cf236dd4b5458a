//! Network faults between the client and real etcd members, injected by the testkit's proxy.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::cluster;
use etcdv3::{Client, ErrorKind, KeepAlive, Kv};
use etcdv3_testkit::FaultProxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_apply_at_most_once_while_connections_keep_dropping() {
    let cl = cluster(1).await;
    let proxy = FaultProxy::start(&cl.endpoint(0)).await.unwrap();
    let c = Client::builder()
        .endpoints([proxy.endpoint()])
        .request_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    c.kv().put("k", "0").await.unwrap();
    // Slow the link a little so that resets land while puts are in flight.
    proxy.set_latency(Duration::from_millis(1));

    let stop = Arc::new(AtomicBool::new(false));
    let chaos = {
        let stop = stop.clone();
        let proxy = Arc::new(proxy);
        let p = proxy.clone();
        (
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    p.reset_connections();
                }
            }),
            proxy,
        )
    };
    let mut acknowledged = 0;
    let mut failed = 0;
    for i in 1..=20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        match c.kv().put("k", i.to_string()).await {
            Ok(_) => acknowledged += 1,
            Err(e) => {
                assert!(e.is_unavailable() || e.is_timeout(), "{e:?}");
                failed += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    chaos.0.await.unwrap();
    assert!(
        chaos.1.accepted() > 1,
        "connections were dropped and re-made"
    );

    let direct = Client::connect(cl.endpoints()).await.unwrap();
    let version = direct.kv().get("k").await.unwrap().kvs()[0].version();
    // One initial put plus at most one application per attempted put: a write whose
    // connection broke is never sent twice.
    assert!(
        version <= 21,
        "version {version}: some put was applied twice"
    );
    assert!(
        version > acknowledged,
        "every acknowledged put was applied (version {version}, acknowledged {acknowledged})"
    );
    assert_eq!(acknowledged + failed, 20);
    assert!(
        acknowledged > 0 && failed > 0,
        "{acknowledged} acknowledged, {failed} failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_move_off_a_blackholed_member() {
    let cl = cluster(3).await;
    let proxy = FaultProxy::start(&cl.endpoint(0)).await.unwrap();
    let c = Client::builder()
        .endpoints([proxy.endpoint(), cl.endpoint(1), cl.endpoint(2)])
        .connect()
        .await
        .unwrap();
    c.kv().put("k", "v").await.unwrap();
    proxy.blackhole();
    let mut timeouts = 0;
    for _ in 0..30 {
        match c.kv().get("k").timeout(Duration::from_millis(500)).await {
            Ok(r) => assert_eq!(r.kvs()[0].value(), b"v"),
            Err(e) => {
                assert!(e.is_timeout(), "{e:?}");
                timeouts += 1;
            }
        }
    }
    assert!(
        timeouts <= 2,
        "{timeouts} of 30 reads hit the blackholed member"
    );
    // Writes keep going through the healthy members too.
    for i in 0..10 {
        c.kv()
            .put(format!("w{i}"), "v")
            .timeout(Duration::from_secs(5))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_delivers_once_it_resumes() {
    let cl = cluster(1).await;
    let proxy = FaultProxy::start(&cl.endpoint(0)).await.unwrap();
    let c = Client::connect([proxy.endpoint()]).await.unwrap();
    c.kv().put("k", "v").await.unwrap();
    proxy.pause();
    let reader = {
        let c = c.clone();
        tokio::spawn(async move { c.kv().get("k").await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!reader.is_finished());
    proxy.forward();
    let r = reader.await.unwrap().unwrap();
    assert_eq!(r.kvs()[0].value(), b"v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_pings_detect_a_silent_partition_before_the_deadline() {
    let cl = cluster(1).await;
    let proxy = FaultProxy::start(&cl.endpoint(0)).await.unwrap();
    let c = Client::builder()
        .endpoints([proxy.endpoint()])
        .keep_alive(KeepAlive::every(Duration::from_secs(5)).timeout(Duration::from_secs(1)))
        .request_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    c.kv().put("k", "v").await.unwrap();
    proxy.blackhole();
    let started = std::time::Instant::now();
    let err = c.kv().put("k", "v2").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert!(err.is_unavailable());
    assert!(
        !err.is_timeout(),
        "the ping timeout, not the 30 s deadline, ended it: {err:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_to_a_dead_endpoint_share_their_dials() {
    let cl = cluster(1).await;
    let proxy = FaultProxy::start(&cl.endpoint(0)).await.unwrap();
    let c = common::one_attempt_client(&proxy).await;
    c.kv().put("k", "v").await.unwrap();
    proxy.refuse();
    proxy.reset_connections();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = proxy.accepted();
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.kv().get("k").await })
        })
        .collect();
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    }
    let dials = proxy.accepted() - before;
    assert!(dials <= 10, "{dials} dials for 50 calls");
    // Once the endpoint is back, the next call dials again and succeeds.
    proxy.forward();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(c.kv().get("k").await.unwrap().count(), 1);
}
