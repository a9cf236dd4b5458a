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
