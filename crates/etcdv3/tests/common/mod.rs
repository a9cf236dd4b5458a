//! Shared set-up for the integration tests: real etcd clusters from the testkit.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use etcdv3::Client;
use etcdv3_testkit::EtcdCluster;

/// Starts a cluster of `members` real etcd members.
pub async fn cluster(members: usize) -> EtcdCluster {
    EtcdCluster::builder()
        .members(members)
        .start()
        .await
        .expect("start etcd")
}

/// Starts a cluster with extra server flags.
pub async fn cluster_with(members: usize, args: &[&str]) -> EtcdCluster {
    let mut b = EtcdCluster::builder().members(members);
    for a in args {
        b = b.arg(*a);
    }
    b.start().await.expect("start etcd")
}

/// A client connected to every member of `cluster`.
pub async fn client(cluster: &EtcdCluster) -> Client {
    Client::builder()
        .endpoints(cluster.endpoints())
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect")
}

/// A client of `cluster` whose requests time out after `timeout`.
pub async fn client_with_timeout(cluster: &EtcdCluster, timeout: Duration) -> Client {
    Client::builder()
        .endpoints(cluster.endpoints())
        .request_timeout(timeout)
        .connect()
        .await
        .expect("connect")
}

/// A client of the proxy's endpoint only, making one attempt per call: failures come back as
/// they happened, unretried.
pub async fn one_attempt_client(proxy: &etcdv3_testkit::FaultProxy) -> Client {
    Client::builder()
        .endpoints([proxy.endpoint()])
        .max_attempts(1)
        .connect()
        .await
        .expect("connect through the proxy")
}

/// The `--quota-backend-bytes` of [`quota_cluster`]: 256 KiB.
pub const SMALL_QUOTA: i64 = 256 * 1024;

/// A single member with a backend quota of [`SMALL_QUOTA`].
pub async fn quota_cluster() -> EtcdCluster {
    cluster_with(1, &[&format!("--quota-backend-bytes={SMALL_QUOTA}")]).await
}

/// Puts 16 KiB values under `k0`, `k1` ... until a put fails, and returns that failure (on a
/// [`quota_cluster`], the quota running out).
pub async fn put_until_failure(c: &Client) -> etcdv3::Error {
    use etcdv3::Kv;

    let value = vec![b'x'; 16 * 1024];
    // etcd measures the database when its write batch commits (every 100 ms), so on a fast
    // disk many puts can land before the quota trips: keep writing, within bounds.
    for i in 0..2000 {
        if let Err(e) = c.kv().put(format!("k{i}"), value.clone()).await {
            return e;
        }
    }
    panic!("a 256 KiB quota must fill up within 2000 puts of 16 KiB");
}

/// Runs a scenario once on a single member and once on three members.
#[macro_export]
macro_rules! per_topology {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn single_member() {
                super::$name(1).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn three_members() {
                super::$name(3).await;
            }
        }
    )*};
}

/// Polls `check` every 100 ms until it returns `Some`, failing after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The member carrying the client's lease keep-alive stream: the one with a `LeaseKeepAlive`
/// stream started and not finished.
pub async fn keep_alive_carrier(cl: &EtcdCluster) -> usize {
    eventually(
        Duration::from_secs(10),
        "one member carries the stream",
        || async move {
            let mut open = Vec::new();
            for i in 0..cl.len() {
                if !cl.is_running(i) {
                    continue;
                }
                let m = r#"{grpc_method="LeaseKeepAlive"}"#;
                let metric =
                    |name: String| async move { cl.metric(i, &name).await.unwrap().unwrap_or(0.0) };
                let started = metric(format!("grpc_server_started_total{m}")).await;
                let handled = metric(format!("grpc_server_handled_total{m}")).await;
                if started > handled {
                    open.push(i);
                }
            }
            (open.len() == 1).then(|| open[0])
        },
    )
    .await
}
