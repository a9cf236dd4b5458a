//! The authenticated client against real etcd: connecting with a user and password, the shared
//! token on every call and stream, and invisible refreshes when etcd stops accepting it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use etcdv3::{Client, ErrorKind, Kv};
use etcdv3_testkit::EtcdCluster;

const ROOT_PASSWORD: &str = "root-pw";

async fn auth_cluster(args: &[&str]) -> EtcdCluster {
    let mut b = EtcdCluster::builder().auth(ROOT_PASSWORD);
    for a in args {
        b = b.arg(*a);
    }
    b.start().await.expect("start etcd with auth")
}

async fn root(etcd: &EtcdCluster) -> Client {
    Client::builder()
        .endpoints(etcd.endpoints())
        .user("root", ROOT_PASSWORD)
        .connect()
        .await
        .expect("connect as root")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_connects_and_a_wrong_password_fails_connect() {
    let etcd = auth_cluster(&[]).await;
    let c = root(&etcd).await;
    c.kv().put("k", "v").await.unwrap();
    assert_eq!(c.kv().get("k").await.unwrap().count(), 1);

    let err = Client::builder()
        .endpoints(etcd.endpoints())
        .user("root", "wrong")
        .connect()
        .await
        .unwrap_err();
    assert!(err.is_auth_failed(), "{err:?}");
    assert!(!err.to_string().contains("wrong"), "no password in {err}");
    let err = Client::builder()
        .endpoints(etcd.endpoints())
        .user("nobody", "pw")
        .connect()
        .await
        .unwrap_err();
    assert!(err.is_auth_failed(), "{err:?}");

    // Without credentials, etcd refuses the calls, typed.
    let anonymous = Client::connect(etcd.endpoints()).await.unwrap();
    let err = anonymous.kv().put("k", "v").await.unwrap_err();
    assert!(
        err.is_permission_denied() || err.code() == Some(etcdv3::Code::UserEmpty),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_client_works_against_a_cluster_without_auth() {
    let etcd = common::cluster(1).await;
    let c = Client::builder()
        .endpoints(etcd.endpoints())
        .user("root", "anything")
        .connect()
        .await
        .unwrap();
    c.kv().put("k", "v").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_and_never_shown() {
    let b = Client::builder()
        .endpoints(["127.0.0.1:1"])
        .user("alice", "hunter2");
    let shown = format!("{b:?}");
    assert!(
        shown.contains("alice") && !shown.contains("hunter2"),
        "{shown}"
    );
    let err = b.clone().token("tok").connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let shown = format!("{:?}", Client::builder().token("secret-token"));
    assert!(!shown.contains("secret-token"), "{shown}");
    for b in [
        Client::builder().endpoints(["127.0.0.1:1"]).user("", "pw"),
        Client::builder().endpoints(["127.0.0.1:1"]).token(""),
    ] {
        assert_eq!(b.connect().await.unwrap_err().kind(), ErrorKind::Config);
    }
}

/// Simple tokens that expire after 2 s idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_simple_tokens_are_refreshed_without_the_caller_noticing() {
    work_across_token_expiries(auth_cluster(&["--auth-token-ttl=2"]).await).await;
}

/// JWT tokens that expire 3 s after they were issued, used or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_jwt_tokens_are_refreshed_without_the_caller_noticing() {
    let etcd = EtcdCluster::builder()
        .auth(ROOT_PASSWORD)
        .jwt(Duration::from_secs(3))
        .start()
        .await
        .expect("start etcd with JWT auth");
    work_across_token_expiries(etcd).await;
}

/// Bursts of work 3 s apart, so the token has expired at most bursts: puts from 10 tasks, an
/// open watch, a watch created after an idle spell and a kept-alive lease all go on with no
/// failed request and no missed event.
async fn work_across_token_expiries(etcd: EtcdCluster) {
    let c = root(&etcd).await;
    // Renewed every 4 s: the token expires between renewals too.
    let lease = c.lease().grant(12).await.unwrap().id();
    let _alive = c.lease().keep_alive(lease);
    let mut watch = c.watch("t/").prefix().await.unwrap();
    let failures = Arc::new(AtomicUsize::new(0));
    let bursts = 10;
    let mut puts = 0;
    let mut late_watch = None;
    for burst in 0..bursts {
        tokio::time::sleep(Duration::from_secs(3)).await;
        if burst == 2 {
            // Created with an expired token on the shared stream.
            late_watch = Some(c.watch("t/").prefix().await.expect("a watch after idling"));
        }
        let tasks: Vec<_> = (0..10)
            .map(|t| {
                let (kv, failures) = (c.kv(), failures.clone());
                tokio::spawn(async move {
                    if let Err(e) = kv.put(format!("t/{burst}/{t}"), "v").await {
                        failures.fetch_add(1, Ordering::Relaxed);
                        panic!("put failed: {e:?}");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        puts += 10;
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = 0;
    while seen < puts {
        let resp = tokio::time::timeout_at(deadline.into(), watch.message())
            .await
            .expect("every event")
            .unwrap()
            .unwrap();
        seen += resp.events().len();
    }
    assert_eq!(seen, puts);
    let mut late = late_watch.unwrap();
    let mut seen_late = 0;
    while seen_late < puts - 20 {
        let resp = tokio::time::timeout_at(deadline.into(), late.message())
            .await
            .expect("every later event")
            .unwrap()
            .unwrap();
        seen_late += resp.events().len();
    }
    assert_eq!(seen_late, puts - 20);
    let ttl = c.lease().time_to_live(lease).await.unwrap();
    assert!(ttl.ttl() > 0, "the lease was kept alive: {ttl:?}");
    // The tokens did expire: the client authenticated again, at most about once per burst
    // (one refresh for all ten puts), not once per failed call.
    let authenticated = etcd
        .metric(
            0,
            r#"grpc_server_handled_total{grpc_method="Authenticate",grpc_code="OK"}"#,
        )
        .await
        .unwrap()
        .unwrap_or(0.0);
    assert!(
        (3.0..=2.0 * f64::from(bursts) + 4.0).contains(&authenticated),
        "{authenticated} authentications"
    );
}

/// With `--client-cert-auth`, the certificate's common name is the user: root's certificate
/// works with no password; alice's, a user with no roles, is refused.
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_names_the_user() {
    let etcd = EtcdCluster::builder()
        .tls(etcdv3_testkit::TlsMode::MutualTls)
        .auth(ROOT_PASSWORD)
        .start()
        .await
        .unwrap();
    let files = etcd.tls().unwrap();
    let as_cert = |cert: &str, key: &str| {
        etcdv3::TlsConfig::new()
            .ca_cert_pem(files.ca_cert_pem())
            .client_cert_pem(cert, key)
    };
    let root = Client::builder()
        .endpoints(etcd.endpoints())
        .tls(as_cert(files.client_cert_pem(), files.client_key_pem()))
        .connect()
        .await
        .unwrap();
    root.kv().put("cn", "root").await.unwrap();
    let alice = Client::builder()
        .endpoints(etcd.endpoints())
        .tls(as_cert(files.alice_cert_pem(), files.alice_key_pem()))
        .connect()
        .await
        .unwrap();
    let err = alice.kv().get("cn").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
}

/// A user with read permission on a prefix reads and watches it, cannot write it, and cannot
/// read elsewhere: typed `PermissionDenied`, nothing applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_are_enforced_for_a_user() {
    let etcd = auth_cluster(&[]).await;
    let root = root(&etcd).await;
    let auth = root.auth();
    auth.user_add("reader", "reader-pw").await.unwrap();
    auth.role_add("readers").await.unwrap();
    auth.role_grant_permission(
        "readers",
        etcdv3::Permission::Read,
        etcdv3::KeyRange::prefix("pub/"),
    )
    .await
    .unwrap();
    auth.user_grant_role("reader", "readers").await.unwrap();
    root.kv().put("pub/a", "1").await.unwrap();
    root.kv().put("private/a", "1").await.unwrap();

    let reader = Client::builder()
        .endpoints(etcd.endpoints())
        .user("reader", "reader-pw")
        .connect()
        .await
        .unwrap();
    assert_eq!(reader.kv().get("pub/").prefix().await.unwrap().count(), 1);
    let mut watch = reader.watch("pub/").prefix().await.unwrap();
    root.kv().put("pub/b", "2").await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.events()[0].kv().key(), b"pub/b");

    let err = reader.kv().put("pub/a", "x").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
    assert!(!err.may_have_been_applied());
    let err = reader.kv().get("private/a").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
    // A watch outside the permission is refused at creation, typed.
    let err = reader.watch("private/").prefix().await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
    assert_eq!(root.kv().get("pub/a").await.unwrap().kvs()[0].value(), b"1");
}
