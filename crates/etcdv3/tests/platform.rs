//! What every service builds on, against real etcd: spawnable calls, pinned calls, close,
//! and errors that say whether a write may have happened.

mod common;

use std::error::Error as _;
use std::time::{Duration, Instant};

use common::{client, cluster};
use etcdv3::{Client, ErrorKind, Kv};
use etcdv3_testkit::FaultProxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_send_and_static_so_they_can_be_spawned() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    // No handle to keep alive: the builder owns a clone of the service.
    let tasks: Vec<_> = (0..20)
        .map(|i| tokio::spawn(c.kv().put(format!("s/{i}"), "v").into_future()))
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let compaction = c.kv().compact(2).physical().require_leader();
    assert!(compaction.request().is_physical());
    tokio::spawn(compaction.into_future())
        .await
        .unwrap()
        .unwrap();
    let n = tokio::spawn(c.kv().get("s/").prefix().count_only().into_future())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.count(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_client_talks_to_one_member_only() {
    let cl = cluster(3).await;
    // The client knows only member 0; member 2 is reached by name.
    let c = Client::connect([cl.endpoint(0)]).await.unwrap();
    c.kv().put("k", "v").await.unwrap();
    let outside = c.for_endpoint(&cl.endpoint(2)).unwrap();
    assert_eq!(outside.endpoints(), [cl.endpoint(2)]);
    let r = outside.kv().get("k").await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"v");
    let member_2 = cl.member_id(2).unwrap();
    assert_eq!(r.header().member_id(), member_2, "answered by member 2");

    // Settings carry over (require-leader here), and it never fails over.
    let pinned = c
        .with_require_leader()
        .for_endpoint(&cl.endpoint(1))
        .unwrap();
    cl.kill(1).await.unwrap();
    let err = pinned
        .kv()
        .get("k")
        .timeout(Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert_eq!(err.endpoint(), Some(cl.endpoint(1).as_str()));
    // The client itself still works, and so do other pins.
    assert_eq!(c.kv().get("k").await.unwrap().count(), 1);
    assert_eq!(outside.kv().get("k").await.unwrap().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_inside_the_list_shares_its_connection() {
    let cl = cluster(1).await;
    let proxy = FaultProxy::start(&cl.endpoint(0)).await.unwrap();
    let c = Client::connect([proxy.endpoint()]).await.unwrap();
    c.kv().put("k", "v").await.unwrap();
    let accepted = proxy.accepted();
    let pinned = c.for_endpoint(&proxy.endpoint()).unwrap();
    for _ in 0..5 {
        pinned.kv().get("k").await.unwrap();
    }
    assert_eq!(proxy.accepted(), accepted, "no new connection was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_pin_is_a_config_error_and_dials_nothing() {
    let cl = cluster(1).await;
    let proxy = FaultProxy::start(&cl.endpoint(0)).await.unwrap();
    let c = Client::connect([proxy.endpoint()]).await.unwrap();
    let accepted = proxy.accepted();
    for bad in ["", "ftp://x:1", "127.0.0.1", "http://a:1/path"] {
        let err = c.for_endpoint(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}: {err}");
    }
    assert_eq!(proxy.accepted(), accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_fails_calls_in_flight_and_after() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    c.kv().put("k", "v").await.unwrap();
    cl.pause(0).unwrap();
    let in_flight = {
        let kv = c.kv();
        tokio::spawn(async move { kv.get("k").timeout(Duration::from_secs(30)).await.map(drop) })
    };
    let blocked = {
        let kv = c.kv();
        tokio::spawn(async move { kv.put("k", "w").no_deadline().await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let closing = Instant::now();
    c.close().await;
    assert!(closing.elapsed() < Duration::from_secs(1));
    for call in [in_flight, blocked] {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed, "{err:?}");
        assert!(err.is_closed());
    }
    assert!(c.is_closed() && c.kv().put("a", "b").await.unwrap_err().is_closed());
    assert!(c.for_endpoint(&cl.endpoint(0)).unwrap_err().is_closed());
    c.close().await;
    cl.resume(0).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_whether_a_write_may_have_been_applied() {
    let cl = cluster(1).await;
    let proxy = FaultProxy::start(&cl.endpoint(0)).await.unwrap();
    let c = common::one_attempt_client(&proxy).await;
    c.kv().put("k", "v").await.unwrap();

    // Never sent: the connection could not be made.
    proxy.refuse();
    proxy.reset_connections();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let err = c.kv().put("k", "refused").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert!(!err.may_have_been_applied());

    // Sent, then the deadline passed: it may have been applied.
    proxy.forward();
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.kv().get("k").await.unwrap();
    proxy.pause();
    let err = c
        .kv()
        .put("k", "stalled")
        .timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.may_have_been_applied());
    proxy.forward();

    // Refused by etcd before applying: not applied.
    let err = c
        .kv()
        .put("k", "v")
        .ignore_value()
        .lease(1)
        .await
        .unwrap_err();
    assert!(err.is_invalid_request(), "{err:?}");
    assert!(!err.may_have_been_applied());
    let err = c
        .kv()
        .put("missing", "")
        .ignore_value()
        .timeout(Duration::from_secs(5))
        .await;
    let err = err.unwrap_err();
    assert!(err.is_key_not_found(), "{err:?}");
    assert!(!err.may_have_been_applied());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_leader_refusals_were_not_applied() {
    let cl = cluster(3).await;
    let c = Client::connect([cl.endpoint(0)]).await.unwrap();
    c.kv().put("k", "v").await.unwrap();
    cl.kill(1).await.unwrap();
    cl.kill(2).await.unwrap();
    // Member 0 loses its leader after an election timeout; then it refuses at once.
    let started = Instant::now();
    let err = loop {
        let err = c
            .with_require_leader()
            .kv()
            .put("k", "w")
            .timeout(Duration::from_secs(3))
            .await
            .unwrap_err();
        if err.is_no_leader() || started.elapsed() > Duration::from_secs(20) {
            break err;
        }
    };
    assert!(err.is_no_leader(), "{err:?}");
    assert!(err.is_unavailable());
    assert!(!err.may_have_been_applied(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_keep_their_cause() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Client::connect([format!("127.0.0.1:{port}")])
        .await
        .unwrap_err();
    // The aggregate connect error names the endpoint; a call's error carries the cause.
    assert!(err.to_string().contains("is etcd running"), "{err}");
    let cl = cluster(1).await;
    let c = Client::builder()
        .endpoints([cl.endpoint(0), format!("127.0.0.1:{port}")])
        .max_attempts(1)
        .connect()
        .await
        .unwrap();
    let pinned = c.for_endpoint(&format!("127.0.0.1:{port}")).unwrap();
    let err = pinned.kv().get("k").await.unwrap_err();
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("an io::Error cause: {err:?}"));
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_grpc_size_cap_is_a_typed_refusal() {
    let cl = cluster(1).await;
    // A send limit above the server's: the request reaches etcd's gRPC layer, which refuses
    // anything over --max-request-bytes (1.5 MiB) + 512 KiB.
    let c = Client::builder()
        .endpoints(cl.endpoints())
        .max_send_message_size(3 * 1024 * 1024)
        .connect()
        .await
        .unwrap();
    let err = c
        .kv()
        .put("big", vec![b'x'; 2560 * 1024])
        .await
        .unwrap_err();
    assert!(err.is_request_too_large(), "{err:?}");
    assert!(err.to_string().contains("--max-request-bytes"), "{err}");
    assert!(!err.may_have_been_applied());
    // Between etcd's own limit and the gRPC cap, etcd's check answers.
    let err = c
        .kv()
        .put("big", vec![b'x'; 1700 * 1024])
        .await
        .unwrap_err();
    assert!(err.is_request_too_large(), "{err:?}");
    assert_eq!(err.code(), Some(etcdv3::Code::RequestTooLarge));
    assert!(c.kv().get("big").await.unwrap().kvs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_deadline_expiry_is_a_timeout_even_when_the_server_noticed_first() {
    let cl = cluster(1).await;
    // The server is told each deadline and cancels at it, racing the client's timer.
    let c = Client::builder()
        .endpoints(cl.endpoints())
        .propagate_deadlines(true)
        .connect()
        .await
        .unwrap();
    let mut expired = 0;
    for round in 0..10 {
        let calls: Vec<_> = (0..100)
            .map(|i| {
                tokio::spawn(
                    c.kv()
                        .put(format!("d/{round}/{i}"), vec![b'v'; 1024])
                        .timeout(Duration::from_millis(1 + (i % 4)))
                        .into_future(),
                )
            })
            .collect();
        for call in calls {
            if let Err(e) = call.await.unwrap() {
                assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
                assert!(e.is_timeout());
                expired += 1;
            }
        }
    }
    assert!(
        expired > 0,
        "some of 1000 calls with 1-4 ms deadlines expired"
    );
}
