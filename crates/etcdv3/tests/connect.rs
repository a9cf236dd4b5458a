//! Connecting: endpoint forms, per-endpoint failure reasons, connect deadlines, failover.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{client, cluster};
use etcdv3::{Client, ErrorKind, Kv};

/// A loopback port with nothing listening on it.
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn bad_endpoint_strings_are_config_errors() {
    for eps in [
        vec![],
        vec!["localhost"],
        vec!["http://a:1/x"],
        vec!["ftp://a:1"],
        vec!["a:0"],
    ] {
        let err = Client::connect(eps.clone()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{eps:?}: {err}");
        assert!(err.is_config());
    }
    let err = Client::builder()
        .endpoints(["127.0.0.1:2379"])
        .max_send_message_size(10)
        .max_recv_message_size(5)
        .connect()
        .await
        .unwrap_err();
    assert!(err.is_config(), "{err}");
}

#[tokio::test]
async fn unreachable_endpoints_are_each_named_with_their_reason() {
    let (a, b) = (dead_port(), dead_port());
    let started = Instant::now();
    let err = Client::builder()
        .endpoints([format!("127.0.0.1:{a}"), format!("http://127.0.0.1:{b}")])
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(err.is_unavailable());
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{a}")), "{text}");
    assert!(text.contains(&format!("http://127.0.0.1:{b}")), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn connect_returns_within_the_connect_timeout_when_a_handshake_hangs() {
    // Accepts TCP connections but never answers: the TLS handshake cannot finish.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let started = Instant::now();
    let err = Client::builder()
        .endpoints([format!("https://127.0.0.1:{port}")])
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        err.to_string().contains("TLS handshake got no answer"),
        "{err}"
    );
    drop(hole);
}

#[tokio::test]
async fn a_port_that_accepts_but_never_speaks_http2_is_named_as_such() {
    // TCP connects, but nothing answers the HTTP/2 preface.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let err = Client::builder()
        .endpoints([format!("http://127.0.0.1:{port}")])
        .connect_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(
        err.to_string()
            .contains("connected, but the HTTP/2 handshake got no answer"),
        "{err}"
    );
    drop(hole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_succeeds_while_any_endpoint_is_up_and_calls_avoid_dead_ones() {
    let cl = cluster(1).await;
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let c = Client::builder()
        .endpoints([dead.clone(), cl.endpoint(0), dead])
        .connect()
        .await
        .expect("one live endpoint is enough");
    for i in 0..20 {
        c.kv().put(format!("k{i}"), "v").await.unwrap();
        assert_eq!(c.kv().get(format!("k{i}")).await.unwrap().count(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_follower_keeps_reads_and_writes_going() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    for i in 0..10 {
        c.kv().put(format!("before{i}"), "v").await.unwrap();
    }
    let leader = cl.leader().await.unwrap();
    let victim = (leader + 1) % 3;
    cl.kill(victim).await.unwrap();
    for i in 0..30 {
        let key = format!("after{i}");
        if let Err(e) = c.kv().put(key.as_str(), "v").await {
            // A put already written to the killed member's connection before the client saw
            // it break fails as Unavailable (it may have been applied, so it is not retried
            // for us). Putting the same key again is harmless; it must then work.
            assert!(
                e.is_unavailable() && e.may_have_been_applied(),
                "put {i} after killing member {victim}: {e:?}"
            );
            c.kv()
                .put(key.as_str(), "v")
                .await
                .unwrap_or_else(|e| panic!("put {i} again after killing member {victim}: {e:?}"));
        }
        let r = c.kv().get("after").prefix().await.unwrap();
        assert_eq!(r.count(), i + 1);
    }
    assert_eq!(c.kv().get("before").prefix().await.unwrap().count(), 10);
    cl.restart(victim).await.unwrap();
    let only_victim = Client::connect([cl.endpoint(victim)]).await.unwrap();
    let r = only_victim.kv().get("after").prefix().await.unwrap();
    assert_eq!(r.count(), 30, "the restarted member caught up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_fails_writes_only_with_unavailable_and_recovers() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    c.kv().put("warm", "up").await.unwrap();
    let leader = cl.leader().await.unwrap();
    cl.kill(leader).await.unwrap();
    let mut succeeded = Vec::new();
    let mut streak = 0;
    let started = Instant::now();
    let mut i = 0;
    while streak < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no recovery after leader loss"
        );
        let key = format!("w{i}");
        i += 1;
        match c.kv().put(key.clone(), "v").await {
            Ok(_) => {
                succeeded.push(key);
                streak += 1;
            }
            Err(e) => {
                // A write that may have reached the server is never retried: the caller sees
                // an availability error and decides.
                assert!(e.is_unavailable() || e.is_timeout(), "{e:?}");
                streak = 0;
            }
        }
        // Reads keep working throughout (they are retried on the live members).
        c.kv().get("warm").await.unwrap();
    }
    let stored = c.kv().get("w").prefix().keys_only().await.unwrap();
    for key in &succeeded {
        assert!(
            stored.kvs().iter().any(|kv| kv.key() == key.as_bytes()),
            "acknowledged write {key} is missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_one_client() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let tasks: Vec<_> = (0..100)
        .map(|t| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    c.kv().put(format!("t{t}/{i}"), "v").await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        c.kv().get("t").prefix().count_only().await.unwrap().count(),
        1000
    );
}
