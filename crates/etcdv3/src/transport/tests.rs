//! The transport's stream machinery, close and blocking calls against real etcd members.

use std::time::{Duration, Instant};

use etcdv3_proto::etcdserverpb as pb;
use etcdv3_testkit::EtcdCluster;

use super::rpc::Rpc;
use super::stream::GrpcStream;
use crate::call::CallOptions;
use crate::{Client, ErrorKind, Kv};

type Watch = GrpcStream<pb::WatchRequest, pb::WatchResponse>;

fn create(key: &str, start_revision: i64) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: key.as_bytes().to_vec(),
                start_revision,
                ..Default::default()
            },
        )),
    }
}

/// Opens a raw watch stream through the transport, starting at `start_revision`.
async fn open_watch(client: &Client, key: &str, start_revision: i64) -> Watch {
    let opts = CallOptions::with_timeout(Duration::from_secs(10));
    client
        .open_stream(Rpc::Watch, opts, &[create(key, start_revision)])
        .await
        .expect("open watch stream")
}

/// Reads responses until one carries events; returns (key, value, mod_revision) of each event.
async fn next_events(stream: &mut Watch) -> Vec<(String, String, i64)> {
    loop {
        let resp = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10 s")
            .expect("stream healthy")
            .expect("stream open");
        assert!(!resp.canceled, "watch canceled: {}", resp.cancel_reason);
        if resp.events.is_empty() {
            continue;
        }
        return resp
            .events
            .into_iter()
            .map(|e| {
                let kv = e.kv.expect("event kv");
                (
                    String::from_utf8(kv.key).unwrap(),
                    String::from_utf8(kv.value).unwrap(),
                    kv.mod_revision,
                )
            })
            .collect();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_broken_by_a_killed_member_reopens_on_a_live_one_without_loss() {
    let cluster = EtcdCluster::builder().members(3).start().await.unwrap();
    let client = Client::connect(cluster.endpoints()).await.unwrap();
    let kv = client.kv();
    let start = kv.put("w", "0").await.unwrap().header().revision();

    // Put the stream on a follower, so that killing its member leaves the leader up and the
    // writes below need no election.
    let leader = cluster.endpoint(cluster.leader().await.unwrap());
    let mut stream = loop {
        let opened = open_watch(&client, "w", start + 1).await;
        if **opened.endpoint() != *leader {
            break opened;
        }
    };
    let first_endpoint = stream.endpoint().clone();
    kv.put("w", "1").await.unwrap();
    let seen = next_events(&mut stream).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, "1");
    let last_rev = seen[0].2;

    let member = cluster
        .endpoints()
        .iter()
        .position(|e| **e == *first_endpoint)
        .expect("the stream is on a member");
    cluster.kill(member).await.unwrap();
    let broken = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream notices the dead member");
    let err = broken.expect_err("no more responses from a killed member");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");

    // Writes go on through the same client while the watch is down.
    kv.put("w", "2").await.unwrap();
    kv.put("w", "3").await.unwrap();

    let mut stream = open_watch(&client, "w", last_rev + 1).await;
    assert_ne!(
        stream.endpoint(),
        &first_endpoint,
        "re-opened on a live member"
    );
    let mut values = Vec::new();
    while values.len() < 2 {
        values.extend(next_events(&mut stream).await.into_iter().map(|e| e.1));
    }
    assert_eq!(
        values,
        ["2", "3"],
        "resumed from the next revision: nothing lost or repeated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_an_open_stream_and_every_background_task() {
    let cluster = EtcdCluster::single().await.unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();

    let client = Client::connect(cluster.endpoints()).await.unwrap();
    let mut stream = open_watch(&client, "k", 0).await;
    let created = stream.message().await.unwrap().expect("created");
    assert!(created.created);
    // The stream can carry requests after the first: a second watch on it.
    stream.send(&create("other", 0)).unwrap();
    let second = stream.message().await.unwrap().expect("second created");
    assert!(second.created && second.watch_id != created.watch_id);
    assert!(
        client.transport().shutdown().task_count() >= 2,
        "the connection driver and keep-alive tasks run"
    );

    let reader = tokio::spawn(async move {
        let ended = stream.message().await;
        (ended, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let closing = Instant::now();
    client.close().await;
    let closed_in = closing.elapsed();
    let (ended, at) = reader.await.unwrap();
    let err = ended.expect_err("the stream ends");
    assert_eq!(err.kind(), ErrorKind::Closed, "{err:?}");
    assert!(
        at.duration_since(closing) < Duration::from_millis(100),
        "{:?}",
        at.duration_since(closing)
    );
    assert!(closed_in < Duration::from_secs(1), "{closed_in:?}");
    assert_eq!(client.transport().shutdown().task_count(), 0);
    // The runtime is back to the tasks it had: no driver, ping or reader task is left. (A
    // finished task is released by the runtime just after it ends: give it a moment.)
    let mut tasks_after = metrics.num_alive_tasks();
    for _ in 0..20 {
        if tasks_after <= tasks_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        tasks_after = metrics.num_alive_tasks();
    }
    assert!(
        tasks_after <= tasks_before,
        "{tasks_after} tasks alive after close, {tasks_before} before"
    );

    // Closing again is harmless; every later call fails at once.
    client.close().await;
    let started = Instant::now();
    let err = client.kv().get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert!(started.elapsed() < Duration::from_millis(50));
    let err = client
        .open_stream::<_, pb::WatchResponse>(Rpc::Watch, CallOptions::new(), &[create("k", 0)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_client_ends_its_tasks() {
    let cluster = EtcdCluster::single().await.unwrap();
    let client = Client::connect(cluster.endpoints()).await.unwrap();
    let mut stream = open_watch(&client, "k", 0).await;
    assert!(stream.message().await.unwrap().unwrap().created);
    let weak = client.downgrade();
    assert!(weak.upgrade().is_some());
    drop(client);
    assert!(weak.upgrade().is_none(), "a weak handle does not keep it");
    let ended = tokio::time::timeout(Duration::from_millis(500), stream.message())
        .await
        .expect("the stream ends when the last client is gone");
    assert_eq!(ended.unwrap_err().kind(), ErrorKind::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_deadline_waits_calmly_until_close() {
    let cluster = EtcdCluster::single().await.unwrap();
    let client = Client::connect(cluster.endpoints()).await.unwrap();
    client.kv().put("k", "v").await.unwrap();
    cluster.stop(0).await.unwrap();

    let before = client.transport().attempts();
    let waiting = {
        let kv = client.kv();
        tokio::spawn(async move { kv.get("k").no_deadline().await })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!waiting.is_finished(), "no deadline: it waits");
    let attempts = client.transport().attempts() - before;
    // Backoff from 25 ms doubling to 500 ms: about ten attempts in 3 s, not thousands.
    assert!(
        (3..=20).contains(&attempts),
        "{attempts} attempts in 3 s with the member down"
    );
    let closing = Instant::now();
    client.close().await;
    let err = waiting.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err:?}");
    assert!(closing.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_deadline_outlasts_an_outage() {
    let cluster = EtcdCluster::single().await.unwrap();
    let client = Client::builder()
        .endpoints(cluster.endpoints())
        .max_attempts(2)
        .connect()
        .await
        .unwrap();
    client.kv().put("k", "v").await.unwrap();
    cluster.stop(0).await.unwrap();
    let waiting = {
        let kv = client.kv();
        tokio::spawn(async move { kv.get("k").no_deadline().await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!waiting.is_finished(), "max_attempts does not bound it");
    cluster.restart(0).await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("answered once the member is back")
        .unwrap()
        .unwrap();
    assert_eq!(resp.kvs()[0].value(), b"v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_call_that_times_out_leaves_its_endpoint_up() {
    let cluster = EtcdCluster::single().await.unwrap();
    let client = Client::connect(cluster.endpoints()).await.unwrap();
    let ep = client.transport().endpoint(&cluster.endpoint(0)).unwrap();
    cluster.pause(0).unwrap();

    // A watch waits by design: running out of time says nothing about the member.
    let short = CallOptions::with_timeout(Duration::from_millis(300));
    let err = client
        .open_stream::<_, pb::WatchResponse>(Rpc::Watch, short, &[create("k", 0)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(!client.transport().balancer.is_down(&ep));

    // A prompt call that times out marks it down.
    let err = client
        .kv()
        .get("k")
        .timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(client.transport().balancer.is_down(&ep));
    cluster.resume(0).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stream_ends_cleanly_after_its_last_message() {
    let cluster = EtcdCluster::single().await.unwrap();
    let client = Client::connect(cluster.endpoints()).await.unwrap();
    client.kv().put("k", "v").await.unwrap();
    let mut stream: GrpcStream<pb::SnapshotRequest, pb::SnapshotResponse> = client
        .open_stream(Rpc::Snapshot, CallOptions::new(), &[pb::SnapshotRequest {}])
        .await
        .unwrap();
    let err = stream.send(&pb::SnapshotRequest {}).unwrap_err();
    assert!(err.is_invalid_request(), "one request only: {err:?}");
    let mut bytes = 0;
    let mut last_remaining = None;
    while let Some(part) = stream.message().await.unwrap() {
        bytes += part.blob.len();
        last_remaining = Some(part.remaining_bytes);
    }
    assert!(bytes > 0, "the snapshot has data");
    assert_eq!(
        last_remaining,
        Some(0),
        "the last part says nothing remains"
    );
    assert!(
        stream.message().await.unwrap().is_none(),
        "an ended stream stays ended"
    );
}
