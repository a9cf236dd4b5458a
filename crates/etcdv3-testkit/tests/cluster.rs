//! Real-etcd tests of the testkit itself.

use std::path::Path;
use std::time::Duration;

use etcdv3_proto::etcdserverpb::{
    AuthenticateRequest, MemberAddRequest, MemberAddResponse, MemberRemoveRequest, PutRequest,
    RangeRequest, RangeResponse, WatchCancelRequest, WatchCreateRequest, WatchRequest,
    auth_client::AuthClient, cluster_client::ClusterClient, kv_client::KvClient,
    watch_client::WatchClient, watch_request::RequestUnion,
};
use etcdv3_testkit::{ErrorKind, EtcdCluster, TlsMode};
use futures_util::future::join_all;
use futures_util::stream;
use tokio::time::{Instant, sleep};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

async fn channel(url: &str, tls: Option<ClientTlsConfig>, timeout: Duration) -> Channel {
    try_channel(url, tls, timeout)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e:?}"))
}

async fn try_channel(
    url: &str,
    tls: Option<ClientTlsConfig>,
    timeout: Duration,
) -> Result<Channel, tonic::transport::Error> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(timeout)
        .timeout(timeout);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    endpoint.connect().await
}

async fn range(ch: Channel, key: &str, token: Option<&str>) -> Result<RangeResponse, Status> {
    let mut request = Request::new(RangeRequest {
        key: key.as_bytes().to_vec(),
        ..Default::default()
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("token", token.parse().expect("token is ascii"));
    }
    KvClient::new(ch)
        .range(request)
        .await
        .map(|r| r.into_inner())
}

async fn put(ch: Channel, key: &str, value: &str) -> Result<(), Status> {
    KvClient::new(ch)
        .put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .map(drop)
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn single_member_answers_range() {
    let cluster = EtcdCluster::single().await.expect("start");
    assert_eq!(cluster.len(), 1);
    assert!(
        cluster.etcd_version().starts_with("3."),
        "{}",
        cluster.etcd_version()
    );
    let endpoints = cluster.endpoints();
    assert_eq!(endpoints, vec![cluster.endpoint(0)]);
    assert!(
        endpoints[0].starts_with("http://127.0.0.1:"),
        "{endpoints:?}"
    );
    assert!(cluster.member_id(0).is_some_and(|id| id != 0));
    assert!(cluster.pid(0).is_some());
    assert!(cluster.data_dir(0).join("member").is_dir());
    let log = std::fs::read_to_string(cluster.log_path(0)).expect("log");
    assert!(log.contains("m0"), "log does not mention the member name");

    let ch = channel(&cluster.endpoint(0), None, 5 * SECOND).await;
    put(ch.clone(), "k", "v").await.expect("put");
    let resp = range(ch, "k", None).await.expect("range");
    assert_eq!(resp.kvs.len(), 1);
    assert_eq!(resp.kvs[0].value, b"v");
    cluster.wait_healthy(5 * SECOND).await.expect("healthy");
    assert_eq!(cluster.leader().await.expect("leader"), 0);
}

#[tokio::test]
async fn three_members_fail_over_and_rejoin() {
    let cluster = EtcdCluster::builder()
        .members(3)
        .start()
        .await
        .expect("start");
    assert_eq!(cluster.len(), 3);
    let ids: Vec<u64> = (0..3).map(|i| cluster.member_id(i).expect("id")).collect();
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );

    let old = cluster.leader().await.expect("leader");
    assert!(old < 3);
    cluster.kill(old).await.expect("kill");
    assert_eq!(cluster.pid(old), None);
    assert_eq!(
        cluster.kill(old).await.expect_err("second kill").kind(),
        ErrorKind::NotRunning
    );

    let deadline = Instant::now() + 10 * SECOND;
    let new = loop {
        match cluster.leader().await {
            Ok(i) if i != old => break i,
            Ok(i) => panic!("killed member {i} reported as leader"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NoLeader, "{e}");
                assert!(Instant::now() < deadline, "no new leader within 10 s: {e}");
            }
        }
        sleep(Duration::from_millis(20)).await;
    };
    assert_ne!(new, old);

    // The two survivors form a quorum: a write through the new leader succeeds.
    let ch = channel(&cluster.endpoint(new), None, 5 * SECOND).await;
    put(ch, "after-failover", "1")
        .await
        .expect("put after failover");

    cluster.restart(old).await.expect("restart");
    assert!(cluster.pid(old).is_some());
    cluster.wait_healthy(10 * SECOND).await.expect("healthy");
    for i in 0..3 {
        let ch = channel(&cluster.endpoint(i), None, 5 * SECOND).await;
        let resp = range(ch, "after-failover", None).await.expect("range");
        assert_eq!(resp.kvs.len(), 1, "member {i} misses the write");
    }
    assert_eq!(
        cluster
            .restart(old)
            .await
            .expect_err("restart running")
            .kind(),
        ErrorKind::AlreadyRunning
    );
}

#[tokio::test]
async fn stop_and_restart_keeps_data() {
    let cluster = EtcdCluster::single().await.expect("start");
    let ch = channel(&cluster.endpoint(0), None, 5 * SECOND).await;
    put(ch, "durable", "yes").await.expect("put");

    cluster.stop(0).await.expect("stop");
    assert_eq!(cluster.pid(0), None);
    let log = std::fs::read_to_string(cluster.log_path(0)).expect("log");
    assert!(
        log.contains("SIGTERM") || log.contains("terminated"),
        "no graceful stop in log"
    );
    assert_eq!(
        cluster
            .wait_healthy(SECOND)
            .await
            .expect_err("nothing runs")
            .kind(),
        ErrorKind::NotRunning
    );

    cluster.restart(0).await.expect("restart");
    cluster.wait_healthy(10 * SECOND).await.expect("healthy");
    let ch = channel(&cluster.endpoint(0), None, 5 * SECOND).await;
    let resp = range(ch, "durable", None).await.expect("range");
    assert_eq!(resp.kvs.len(), 1);
    assert_eq!(resp.kvs[0].value, b"yes");
    // The restarted process serves metrics on the same URL.
    assert_eq!(
        cluster
            .metric(0, "etcd_server_has_leader")
            .await
            .expect("metric after restart"),
        Some(1.0)
    );
}

#[tokio::test]
async fn paused_member_times_out_until_resumed() {
    let cluster = EtcdCluster::single().await.expect("start");
    let ch = channel(&cluster.endpoint(0), None, Duration::from_millis(500)).await;
    range(ch.clone(), "k", None)
        .await
        .expect("range before pause");

    cluster.pause(0).expect("pause");
    let started = Instant::now();
    let status = range(ch.clone(), "k", None)
        .await
        .expect_err("paused member answered");
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < 3 * SECOND,
        "{elapsed:?}"
    );

    cluster.resume(0).expect("resume");
    range(ch, "k", None).await.expect("range after resume");
    cluster.wait_healthy(5 * SECOND).await.expect("healthy");
}

fn tls_config(cluster: &EtcdCluster, identity: Option<(&str, &str)>) -> ClientTlsConfig {
    let files = cluster.tls().expect("tls files");
    let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(files.ca_cert_pem()));
    match identity {
        Some((cert, key)) => config.identity(Identity::from_pem(cert, key)),
        None => config,
    }
}

async fn tls_range(url: &str, config: ClientTlsConfig) -> Result<RangeResponse, String> {
    let ch = try_channel(url, Some(config), 2 * SECOND)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    range(ch, "k", None)
        .await
        .map_err(|s| format!("range: {s:?}"))
}

#[tokio::test]
async fn mutual_tls_requires_a_trusted_client_cert() {
    let cluster = EtcdCluster::builder()
        .tls(TlsMode::MutualTls)
        .start()
        .await
        .expect("start");
    let url = cluster.endpoint(0);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let files = cluster.tls().expect("tls files");
    for path in [
        &files.ca_cert,
        &files.server_cert,
        &files.server_key,
        &files.client_cert,
        &files.client_key,
        &files.alice_cert,
        &files.alice_key,
        &files.rogue_cert,
        &files.rogue_key,
        &files.other_ca_cert,
    ] {
        assert!(path.is_file(), "{} missing", path.display());
    }

    let root = tls_config(
        &cluster,
        Some((files.client_cert_pem(), files.client_key_pem())),
    );
    tls_range(&url, root).await.expect("CA + root client cert");
    let alice = tls_config(
        &cluster,
        Some((files.alice_cert_pem(), files.alice_key_pem())),
    );
    tls_range(&url, alice)
        .await
        .expect("CA + alice client cert");

    tls_range(&url, tls_config(&cluster, None))
        .await
        .expect_err("no client cert accepted");
    let rogue = tls_config(
        &cluster,
        Some((files.rogue_cert_pem(), files.rogue_key_pem())),
    );
    tls_range(&url, rogue)
        .await
        .expect_err("client cert from an untrusted CA accepted");
    let plain = url.replacen("https://", "http://", 1);
    let ch = try_channel(&plain, None, 2 * SECOND).await;
    if let Ok(ch) = ch {
        range(ch, "k", None)
            .await
            .expect_err("plain http to a TLS port answered");
    }
}

#[tokio::test]
async fn server_tls_needs_only_the_ca() {
    let cluster = EtcdCluster::builder()
        .tls(TlsMode::Server)
        .start()
        .await
        .expect("start");
    let url = cluster.endpoint(0);
    tls_range(&url, tls_config(&cluster, None))
        .await
        .expect("CA only");
    let files = cluster.tls().expect("tls files");
    let wrong_ca =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(files.other_ca_cert_pem()));
    tls_range(&url, wrong_ca)
        .await
        .expect_err("server cert accepted with the wrong CA");
}

#[tokio::test]
async fn auth_requires_a_token() {
    let cluster = EtcdCluster::builder()
        .auth("rootpw")
        .start()
        .await
        .expect("start");
    let ch = channel(&cluster.endpoint(0), None, 5 * SECOND).await;

    let status = range(ch.clone(), "k", None)
        .await
        .expect_err("range without token answered");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("user name is empty"),
        "{status:?}"
    );

    let wrong = AuthClient::new(ch.clone())
        .authenticate(AuthenticateRequest {
            name: "root".into(),
            password: "wrong".into(),
        })
        .await
        .expect_err("wrong password accepted");
    assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");

    let token = AuthClient::new(ch.clone())
        .authenticate(AuthenticateRequest {
            name: "root".into(),
            password: "rootpw".into(),
        })
        .await
        .expect("authenticate")
        .into_inner()
        .token;
    assert!(!token.is_empty());
    range(ch, "k", Some(&token))
        .await
        .expect("range with token");
    cluster.wait_healthy(5 * SECOND).await.expect("healthy");
}

#[tokio::test]
async fn start_fails_fast_when_a_member_exits() {
    let started = Instant::now();
    let err = EtcdCluster::builder()
        .arg("--no-such-flag-for-etcd")
        .start()
        .await
        .expect_err("etcd accepted an unknown flag");
    assert_eq!(err.kind(), ErrorKind::MemberExited, "{err}");
    assert_eq!(err.member_index(), Some(0));
    assert!(err.to_string().contains("m0.log"), "no log tail: {err}");
    assert!(started.elapsed() < 10 * SECOND, "{:?}", started.elapsed());
}

#[tokio::test]
async fn zero_members_is_rejected() {
    let err = EtcdCluster::builder()
        .members(0)
        .start()
        .await
        .expect_err("zero members");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test]
async fn drop_kills_processes_and_removes_files() {
    let cluster = EtcdCluster::builder()
        .members(3)
        .start()
        .await
        .expect("start");
    let pids: Vec<u32> = (0..3).map(|i| cluster.pid(i).expect("pid")).collect();
    cluster.pause(1).expect("pause");
    let dir = cluster.temp_dir().to_path_buf();
    for pid in &pids {
        assert!(Path::new(&format!("/proc/{pid}")).exists());
    }
    drop(cluster);

    let deadline = Instant::now() + 2 * SECOND;
    loop {
        let alive: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still alive after drop: {alive:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
    assert!(!dir.exists(), "{} not removed", dir.display());
}

#[tokio::test]
async fn taken_port_is_retried_then_reported() {
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = squatter.local_addr().expect("addr").port();
    // A later flag overrides the testkit's own, so every attempt collides.
    let err = EtcdCluster::builder()
        .arg(format!("--listen-client-urls=http://127.0.0.1:{port}"))
        .start()
        .await
        .expect_err("etcd bound a taken port");
    assert_eq!(err.kind(), ErrorKind::PortInUse, "{err}");
    assert!(err.to_string().contains("address already in use"), "{err}");
}

const RANGES_HANDLED: &str = r#"grpc_server_handled_total{grpc_method="Range"}"#;

async fn ranges_handled(cluster: &EtcdCluster, i: usize) -> f64 {
    cluster
        .metric(i, RANGES_HANDLED)
        .await
        .unwrap_or_else(|e| panic!("m{i} metrics: {e}"))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn every_member_serves_metrics_and_counts_its_own_requests() {
    let cluster = EtcdCluster::builder()
        .members(3)
        .start()
        .await
        .expect("start");
    for i in 0..3 {
        let url = cluster.metrics_url(i);
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert_ne!(url, cluster.endpoint(i));
        let text = cluster.metrics(i).await.expect("metrics");
        assert!(
            text.lines().any(|l| l == "etcd_server_has_leader 1"),
            "m{i} has no leader per its metrics:\n{text}"
        );
        assert!(text.contains("# TYPE grpc_server_handled_total counter"));
        assert_eq!(
            cluster
                .metric(i, "etcd_server_has_leader")
                .await
                .expect("metric"),
            Some(1.0)
        );
    }

    let before: Vec<f64> = join_all((0..3).map(|i| ranges_handled(&cluster, i))).await;
    let ch = channel(&cluster.endpoint(1), None, 5 * SECOND).await;
    for _ in 0..5 {
        range(ch.clone(), "k", None).await.expect("range");
    }
    let after: Vec<f64> = join_all((0..3).map(|i| ranges_handled(&cluster, i))).await;
    // The counter is bumped before the answer is sent, so it is exact once we have them.
    assert_eq!(
        after[1],
        before[1] + 5.0,
        "before {before:?} after {after:?}"
    );
    assert_eq!(after[0], before[0], "before {before:?} after {after:?}");
    assert_eq!(after[2], before[2], "before {before:?} after {after:?}");

    assert_eq!(
        cluster
            .metric(
                1,
                r#"grpc_server_handled_total{grpc_method="NoSuchMethod"}"#
            )
            .await
            .expect("metric"),
        None
    );
}

#[tokio::test]
async fn metrics_count_server_side_watchers() {
    let cluster = EtcdCluster::single().await.expect("start");
    let watchers = || async {
        cluster
            .metric(0, "etcd_debugging_mvcc_watcher_total")
            .await
            .expect("metric")
            .expect("watcher gauge present")
    };
    let before = watchers().await;

    let (requests, rx) = tokio::sync::mpsc::channel::<WatchRequest>(1);
    let rx = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let create = RequestUnion::CreateRequest(WatchCreateRequest {
        key: b"w".to_vec(),
        ..Default::default()
    });
    requests
        .send(WatchRequest {
            request_union: Some(create),
        })
        .await
        .expect("send create");
    // etcd answers the call (headers) with its first message, so send before awaiting it.
    let ch = channel(&cluster.endpoint(0), None, 5 * SECOND).await;
    let mut responses = WatchClient::new(ch)
        .watch(rx)
        .await
        .expect("watch")
        .into_inner();
    let created = responses
        .message()
        .await
        .expect("watch response")
        .expect("stream open");
    assert!(created.created, "{created:?}");
    assert_eq!(watchers().await, before + 1.0);

    // etcd removes the watcher before it confirms the cancel.
    let cancel = RequestUnion::CancelRequest(WatchCancelRequest {
        watch_id: created.watch_id,
    });
    requests
        .send(WatchRequest {
            request_union: Some(cancel),
        })
        .await
        .expect("send cancel");
    let canceled = responses
        .message()
        .await
        .expect("watch response")
        .expect("stream open");
    assert!(canceled.canceled, "{canceled:?}");
    assert_eq!(watchers().await, before);
}

#[tokio::test]
async fn tls_clusters_serve_metrics_over_plain_http() {
    for mode in [TlsMode::Server, TlsMode::MutualTls] {
        let cluster = EtcdCluster::builder()
            .tls(mode)
            .start()
            .await
            .expect("start");
        assert!(cluster.endpoint(0).starts_with("https://"));
        assert!(cluster.metrics_url(0).starts_with("http://127.0.0.1:"));
        let text = cluster.metrics(0).await.expect("metrics");
        assert!(
            text.lines().any(|l| l == "etcd_server_has_leader 1"),
            "{mode:?}: no leader per the metrics:\n{text}"
        );
        // The testkit's readiness probes were Ranges over TLS.
        assert!(ranges_handled(&cluster, 0).await >= 1.0, "{mode:?}");
    }
}

#[tokio::test]
async fn metrics_errors() {
    let cluster = EtcdCluster::single().await.expect("start");
    for bad in ["", "name{", r#"name{a="b""#, "name{a=b}"] {
        let err = cluster.metric(0, bad).await.expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad:?}: {err}");
    }
    let err = cluster.metrics(1).await.expect_err("no member 1");
    assert_eq!(err.kind(), ErrorKind::NoSuchMember, "{err}");
    cluster.kill(0).await.expect("kill");
    let err = cluster.metrics(0).await.expect_err("killed member");
    assert_eq!(err.kind(), ErrorKind::NotRunning, "{err}");
    assert_eq!(err.member_index(), Some(0));
}

/// MemberAdd through `ch`, retried while etcd refuses it as unsafe: a member that has not
/// been connected to its peers for 5 s (just after the start) answers "unhealthy cluster".
async fn member_add(ch: Channel, peer_url: &str, learner: bool) -> MemberAddResponse {
    let deadline = Instant::now() + 20 * SECOND;
    loop {
        let request = MemberAddRequest {
            peer_ur_ls: vec![peer_url.to_owned()],
            is_learner: learner,
        };
        match ClusterClient::new(ch.clone()).member_add(request).await {
            Ok(resp) => return resp.into_inner(),
            Err(s)
                if s.message() == "etcdserver: unhealthy cluster" && Instant::now() < deadline =>
            {
                sleep(Duration::from_millis(200)).await;
            }
            Err(s) => panic!("MemberAdd {peer_url}: {s}"),
        }
    }
}

/// `--initial-cluster` for the member MemberAdd just added, named `name`.
fn initial_cluster(added: &MemberAddResponse, name: &str) -> String {
    let new_id = added.member.as_ref().expect("the new member").id;
    added
        .members
        .iter()
        .flat_map(|m| {
            let n = if m.id == new_id { name } else { &m.name };
            m.peer_ur_ls.iter().map(move |u| format!("{n}={u}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn a_learner_joins_the_running_cluster_and_leaves_when_removed() {
    let mut cluster = EtcdCluster::builder()
        .members(3)
        .start()
        .await
        .expect("start");
    let (i, peer_url) = cluster.add_member().expect("plan a member");
    assert_eq!(i, 3);
    assert_eq!(cluster.len(), 4);
    assert_eq!(cluster.member_name(3), "m3");
    assert_eq!(cluster.peer_url(3), peer_url);
    assert!(peer_url.starts_with("http://127.0.0.1:"), "{peer_url}");
    assert_eq!(cluster.endpoints().len(), 4);
    assert!(!cluster.is_running(3));
    assert_eq!(cluster.member_id(3), None);
    // Planned only: nothing to restart, and the others are healthy without it.
    let err = cluster
        .restart(3)
        .await
        .expect_err("restart a planned member");
    assert_eq!(err.kind(), ErrorKind::NotRunning, "{err}");
    cluster.wait_healthy(10 * SECOND).await.expect("healthy");

    let ch = channel(&cluster.endpoint(0), None, 5 * SECOND).await;
    put(ch.clone(), "before-join", "1").await.expect("put");
    let added = member_add(ch.clone(), &peer_url, true).await;
    let new_id = added.member.as_ref().expect("member").id;
    cluster
        .start_member(3, &initial_cluster(&added, "m3"))
        .await
        .expect("join");
    assert!(cluster.is_running(3));
    assert_eq!(cluster.member_id(3), Some(new_id));
    let err = cluster
        .start_member(3, "ignored")
        .await
        .expect_err("start twice");
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning, "{err}");

    // The learner has the data and serves serializable reads only.
    let learner = channel(&cluster.endpoint(3), None, 5 * SECOND).await;
    let deadline = Instant::now() + 10 * SECOND;
    loop {
        let resp = KvClient::new(learner.clone())
            .range(RangeRequest {
                key: b"before-join".to_vec(),
                serializable: true,
                ..Default::default()
            })
            .await
            .expect("serializable range on the learner")
            .into_inner();
        if resp.kvs.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the learner never caught up");
        sleep(Duration::from_millis(50)).await;
    }
    let refused = range(learner, "before-join", None)
        .await
        .expect_err("linearizable range on a learner");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused}");
    // The testkit's health checks accept a learner.
    cluster.wait_healthy(10 * SECOND).await.expect("healthy");

    ClusterClient::new(ch.clone())
        .member_remove(MemberRemoveRequest { id: new_id })
        .await
        .expect("remove the learner");
    cluster
        .wait_exit(3, 30 * SECOND)
        .await
        .expect("a removed member shuts down");
    assert!(!cluster.is_running(3));
    let err = cluster
        .wait_exit(3, SECOND)
        .await
        .expect_err("wait for a stopped member");
    assert_eq!(err.kind(), ErrorKind::NotRunning, "{err}");
    cluster.wait_healthy(10 * SECOND).await.expect("healthy");
}

#[tokio::test]
async fn a_member_not_added_first_cannot_join() {
    let mut cluster = EtcdCluster::single().await.expect("start");
    let (i, peer_url) = cluster.add_member().expect("plan a member");
    let initial = format!("m0={},m1={peer_url}", cluster.peer_url(0));
    let err = cluster
        .start_member(i, &initial)
        .await
        .expect_err("joined without MemberAdd");
    assert_eq!(err.kind(), ErrorKind::MemberExited, "{err}");
    assert_eq!(err.member_index(), Some(1));
    assert!(err.to_string().contains("m1.log"), "no log tail: {err}");
    let err = cluster
        .start_member(7, &initial)
        .await
        .expect_err("no such member");
    assert_eq!(err.kind(), ErrorKind::NoSuchMember, "{err}");
}
