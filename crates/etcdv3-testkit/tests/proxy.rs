//! The fault proxy between a raw gRPC client and a real etcd member.

use std::time::Duration;

use etcdv3_proto::etcdserverpb::{RangeRequest, kv_client::KvClient};
use etcdv3_testkit::{EtcdCluster, FaultProxy, ProxyMode};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

async fn channel(url: String) -> Channel {
    Endpoint::from_shared(url)
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy()
}

async fn range(ch: &Channel, timeout: Duration) -> Result<i64, tonic::Status> {
    let mut req = tonic::Request::new(RangeRequest {
        key: b"k".to_vec(),
        ..Default::default()
    });
    req.set_timeout(timeout);
    let mut kv = KvClient::new(ch.clone());
    match tokio::time::timeout(timeout, kv.range(req)).await {
        Ok(r) => r.map(|r| r.into_inner().header.unwrap().revision),
        Err(_) => Err(tonic::Status::deadline_exceeded("client-side timeout")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_blackholes_pauses_and_resets() {
    let cluster = EtcdCluster::single().await.unwrap();
    let proxy = FaultProxy::start(&cluster.endpoint(0)).await.unwrap();
    assert!(proxy.endpoint().starts_with("http://127.0.0.1:"));
    let ch = channel(proxy.endpoint()).await;
    let short = Duration::from_millis(300);

    assert!(range(&ch, Duration::from_secs(5)).await.unwrap() > 0);
    assert_eq!(proxy.accepted(), 1);

    proxy.blackhole();
    assert_eq!(proxy.mode(), ProxyMode::Blackhole);
    assert!(
        range(&ch, short).await.is_err(),
        "blackholed traffic never answers"
    );

    // Paused traffic is delivered once forwarding resumes.
    proxy.pause();
    let pending = {
        let ch = ch.clone();
        tokio::spawn(async move { range(&ch, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "paused traffic is held");
    proxy.forward();
    // The blackholed request corrupted nothing visible here only if the HTTP/2 framing
    // survived; reset the connection to start clean either way.
    let _ = pending.await;

    proxy.reset_connections();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // After a reset the channel reconnects through the proxy and works again.
    let started = Instant::now();
    loop {
        if range(&ch, Duration::from_secs(2)).await.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no recovery after reset"
        );
    }
    assert!(proxy.accepted() >= 2, "the reset forced a new connection");

    proxy.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    range(&ch, Duration::from_secs(5)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "both directions are delayed"
    );
    proxy.set_latency(Duration::ZERO);

    proxy.refuse();
    proxy.reset_connections();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        range(&ch, Duration::from_secs(1)).await.is_err(),
        "new connections are reset"
    );
    proxy.forward();
}
