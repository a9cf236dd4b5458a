//! Client-level settings against real etcd: endpoints, default deadlines, attempt limits,
//! request metadata, cancellation.

mod common;

use std::time::{Duration, Instant};

use common::cluster;
use etcdv3::{Client, ErrorKind, Kv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_reported_as_given() {
    let cl = cluster(1).await;
    let given = vec![cl.endpoint(0), cl.endpoint(0).replace("http://", "")];
    let c = Client::connect(given.clone()).await.unwrap();
    assert_eq!(c.endpoints(), given);
    let copy = c.with_require_leader();
    assert_eq!(
        copy.endpoints(),
        given,
        "configured copies share the endpoints"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_request_timeout_bounds_every_call() {
    let cl = cluster(1).await;
    let c = Client::builder()
        .endpoints(cl.endpoints())
        .request_timeout(Duration::from_millis(400))
        .connect()
        .await
        .unwrap();
    c.kv().put("k", "v").await.unwrap();
    cl.pause(0).unwrap();
    let started = Instant::now();
    let err = c.kv().get("k").await.unwrap_err();
    let took = started.elapsed();
    cl.resume(0).unwrap();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(
        took >= Duration::from_millis(390) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // A configured copy overrides the default for its calls only.
    let patient = c.with_request_timeout(Duration::from_secs(10));
    assert_eq!(patient.kv().get("k").await.unwrap().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_limits_retries() {
    let cl = cluster(1).await;
    let one_shot = Client::builder()
        .endpoints(cl.endpoints())
        .max_attempts(1)
        .request_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    cl.stop(0).await.unwrap();
    let started = Instant::now();
    let err = one_shot.kv().get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "one attempt, no retry loop until the deadline"
    );
}

/// Reads etcd's Prometheus metrics over plain HTTP on the client port.
async fn metrics(endpoint: &str) -> String {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_carries_the_client_api_version() {
    let cl = cluster(1).await;
    let c = Client::connect(cl.endpoints()).await.unwrap();
    for i in 0..5 {
        c.kv().put(format!("k{i}"), "v").await.unwrap();
    }
    let text = metrics(&cl.endpoint(0)).await;
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("etcd_server_client_requests_total")
                && l.contains("client_api_version=\"3.7\"")
                && l.contains("type=\"unary\"")
        })
        .unwrap_or_else(|| panic!("no client_api_version=3.7 counter in:\n{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 5.0, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_call_cancels_it_without_harming_the_client() {
    let cl = cluster(1).await;
    let c = Client::connect(cl.endpoints()).await.unwrap();
    c.kv().put("k", "v").await.unwrap();
    cl.pause(0).unwrap();
    let pending = {
        let c = c.clone();
        tokio::spawn(async move { c.kv().get("k").timeout(Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    pending.abort();
    let joined = pending.await;
    assert!(joined.unwrap_err().is_cancelled());
    cl.resume(0).unwrap();
    let r = c
        .kv()
        .get("k")
        .timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.kvs()[0].value(), b"v");
}
