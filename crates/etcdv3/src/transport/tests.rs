//! The transport's stream machinery against real etcd members.

use std::time::Duration;

use etcdv3_proto::etcdserverpb as pb;
use etcdv3_testkit::EtcdCluster;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{CallOptions, Picked};
use crate::{Client, Kv};

type Events = tonic::Streaming<pb::WatchResponse>;

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
async fn open_watch(
    client: &Client,
    key: &str,
    start_revision: i64,
) -> (Events, Picked, mpsc::Sender<pb::WatchRequest>) {
    let opts = CallOptions::with_timeout(Duration::from_secs(10));
    let (stream, picked) = client
        .transport()
        .open_stream(&opts, |conn, md| {
            let (tx, rx) = mpsc::channel(4);
            let first = create(key, start_revision);
            async move {
                tx.send(first).await.expect("queue create");
                let mut req = tonic::Request::new(ReceiverStream::new(rx));
                *req.metadata_mut() = md;
                let stream = conn.watch().watch(req).await?.into_inner();
                Ok((stream, tx))
            }
        })
        .await
        .expect("open watch stream");
    let (events, tx) = stream;
    (events, picked, tx)
}

/// Reads responses until one carries events; returns (key, value, mod_revision) of each event.
async fn next_events(stream: &mut Events) -> Vec<(String, String, i64)> {
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
    let (mut stream, picked, _keep_open) = loop {
        let opened = open_watch(&client, "w", start + 1).await;
        if *opened.1.endpoint != *leader {
            break opened;
        }
    };
    kv.put("w", "1").await.unwrap();
    let seen = next_events(&mut stream).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, "1");
    let last_rev = seen[0].2;

    let member = cluster
        .endpoints()
        .iter()
        .position(|e| **e == *picked.endpoint)
        .expect("the stream is on a member");
    cluster.kill(member).await.unwrap();
    let broken = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream notices the dead member");
    assert!(
        !matches!(broken, Ok(Some(_))),
        "no more responses from a killed member"
    );

    // Writes go on through the same client while the watch is down.
    kv.put("w", "2").await.unwrap();
    kv.put("w", "3").await.unwrap();

    let (mut stream, again, _keep_open) = open_watch(&client, "w", last_rev + 1).await;
    assert_ne!(
        again.endpoint, picked.endpoint,
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
