//! The Watch examples of Go's `example_watch_test.go`, as runnable tests against a real etcd:
//! watch a key, a prefix, a range, and with progress notifications. Each is what a first-time
//! user would write.

mod common;

use std::time::Duration;

use etcdv3::{Client, Kv};
use etcdv3_testkit::EtcdCluster;

async fn connect(etcd: &EtcdCluster) -> etcdv3::Result<Client> {
    Client::connect(etcd.endpoints()).await
}

/// Go's `ExampleWatcher_watch`: watch one key, read its events in a spawned task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_watch() -> etcdv3::Result<()> {
    let etcd = common::cluster(1).await;
    let client = connect(&etcd).await?;

    let mut watch = client.watch("foo").await?;
    let reader = tokio::spawn(async move {
        let resp = watch.message().await?.expect("an event");
        let event = &resp.events()[0];
        Ok::<_, etcdv3::Error>(format!(
            "{:?} {:?} : {:?}",
            event.kind(),
            event.kv().key_str()?,
            event.kv().value_str()?
        ))
    });
    client.kv().put("foo", "bar").await?;
    let line = reader.await.expect("the reader ran")?;
    assert_eq!(line, r#"Put "foo" : "bar""#);
    Ok(())
}

/// Go's `ExampleWatcher_watchWithPrefix`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_watch_with_prefix() -> etcdv3::Result<()> {
    let etcd = common::cluster(1).await;
    let client = connect(&etcd).await?;

    let mut watch = client.watch("foo").prefix().await?;
    client.kv().put("foo1", "bar").await?;
    let resp = watch.message().await?.expect("an event");
    let kv = resp.events()[0].kv();
    assert_eq!((kv.key_str()?, kv.value_str()?), ("foo1", "bar"));
    Ok(())
}

/// Go's `ExampleWatcher_watchWithRange`: keys in `[foo1, foo4)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_watch_with_range() -> etcdv3::Result<()> {
    let etcd = common::cluster(1).await;
    let client = connect(&etcd).await?;

    let mut watch = client.watch("foo1").range_end("foo4").await?;
    for key in ["foo1", "foo2", "foo3", "foo4", "foo5"] {
        client.kv().put(key, "bar").await?;
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let resp = watch.message().await?.expect("events");
        for e in resp.events() {
            seen.push(e.kv().key_str()?.to_owned());
        }
    }
    assert_eq!(seen, ["foo1", "foo2", "foo3"]);
    Ok(())
}

/// Go's `ExampleWatcher_watchWithProgressNotify`: an idle watch is told how far the store is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_watch_with_progress_notify() -> etcdv3::Result<()> {
    let etcd = EtcdCluster::builder()
        .watch_progress_notify_interval(Duration::from_millis(500))
        .start()
        .await
        .expect("start etcd");
    let client = connect(&etcd).await?;

    let revision = client.kv().put("other", "v").await?.header().revision();
    let mut watch = client.watch("foo").progress_notify().await?;
    let resp = watch.message().await?.expect("a notification");
    assert!(resp.is_progress_notify());
    assert_eq!(resp.header().revision(), revision);
    Ok(())
}
