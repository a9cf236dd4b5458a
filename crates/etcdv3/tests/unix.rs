//! Unix domain socket endpoints against real etcd. Kept out of `scripts/compat.sh`: etcd 3.4
//! cannot serve clients on a unix socket.

use etcdv3::{Client, Kv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_endpoints_reach_etcd() {
    let cl = etcdv3_testkit::EtcdCluster::builder()
        .unix_socket(true)
        .start()
        .await
        .unwrap();
    let unix = cl.unix_endpoint(0).expect("a unix socket endpoint");
    assert!(unix.starts_with("unix:///"), "{unix}");
    let c = Client::connect([unix]).await.unwrap();
    c.kv().put("over", "unix").await.unwrap();
    let tcp = Client::connect(cl.endpoints()).await.unwrap();
    assert_eq!(
        tcp.kv().get("over").await.unwrap().kvs()[0].value(),
        b"unix"
    );
}
