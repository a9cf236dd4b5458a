//! The Auth API's administration against real etcd: users, roles and permissions round trip,
//! passwords (clear, none, bcrypt hash) authenticate as given, enabling auth refuses requests
//! without a user, etcd's refusals are typed, and bad input is refused before sending.
//!
//! The client cannot log in yet, so admin calls run while auth is off, or, with auth on, over
//! mutual TLS with the CN=root certificate. Passwords are checked with a raw `Authenticate`.

mod common;

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use common::{client, cluster};
use etcdv3::{
    AuthClient, AuthStatusResponse, Code, ErrorKind, GrpcCode, KeyPermission, KeyRange, Kv,
    Permission,
};
use etcdv3_proto::etcdserverpb::{AuthenticateRequest, auth_client::AuthClient as RawAuth};
use etcdv3_testkit::EtcdCluster;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

/// A bcrypt hash (cost 4) of [`HASHED_PASSWORD`].
const HASH: &str = "$2a$04$3skzEEzNS8QU6mzTrVGoKuGxpXB7pc0OkEk235NpkjYwPNqLQo11e";
const HASHED_PASSWORD: &str = "hashed-pw-3";

/// Logs in as `name` with `password` through a raw `Authenticate` on member 0: `Ok` when
/// etcd hands out a token, else etcd's message.
async fn authenticate(cl: &EtcdCluster, name: &str, password: &str) -> Result<(), String> {
    let mut raw = RawAuth::connect(cl.endpoint(0))
        .await
        .expect("dial etcd for Authenticate");
    raw.authenticate(AuthenticateRequest {
        name: name.to_owned(),
        password: password.to_owned(),
    })
    .await
    .map(|r| assert!(!r.into_inner().token.is_empty(), "an empty token"))
    .map_err(|status| status.message().to_owned())
}

/// Adds user `root` (with `password`) and grants it the `root` role, as enabling auth needs.
async fn add_root(auth: &AuthClient, password: &str) {
    auth.user_add("root", password).await.unwrap();
    auth.user_grant_role("root", "root").await.unwrap();
}

/// The cluster's etcd release: (major, minor).
fn version(cl: &EtcdCluster) -> (u32, u32) {
    let mut parts = cl
        .etcd_version()
        .split('.')
        .map(|p| p.parse::<u32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

/// `status()` of a caller etcd lets ask (auth off, or root): `None` on etcd 3.4, which has no
/// AuthStatus RPC (gRPC `Unimplemented`).
async fn status(cl: &EtcdCluster, auth: &AuthClient) -> Option<AuthStatusResponse> {
    let res = auth.status().await;
    if version(cl) < (3, 5) {
        let err = res.unwrap_err();
        assert_eq!(err.grpc_code(), Some(GrpcCode::Unimplemented), "{err:?}");
        return None;
    }
    Some(res.unwrap())
}

/// `status()` of a caller that is not root while auth is on: refused by etcd 3.5 and 3.6,
/// answered by 3.7 (which dropped the admin check).
async fn status_of_a_non_root_caller(cl: &EtcdCluster, auth: &AuthClient, code: Code) {
    let res = auth.status().await;
    match version(cl) {
        v if v < (3, 5) => assert_eq!(res.unwrap_err().grpc_code(), Some(GrpcCode::Unimplemented)),
        v if v < (3, 7) => {
            let err = res.unwrap_err();
            assert!(err.is_permission_denied(), "{err:?}");
            assert_eq!(err.code(), Some(code), "{err:?}");
        }
        _ => assert!(res.unwrap().enabled()),
    }
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(res: etcdv3::Result<T>, code: Code) {
    let err = res.unwrap_err();
    assert_eq!(err.code(), Some(code), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    assert!(!err.may_have_been_applied(), "a refusal: {err:?}");
}

async fn users_round_trip(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let auth = c.auth();
    assert!(auth.user_list().await.unwrap().users().is_empty());

    let added = auth.user_add("bob", "pw-b").await.unwrap();
    assert_ne!(added.header().cluster_id(), 0);
    auth.user_add("alice", "pw-a").await.unwrap();
    let list = auth.user_list().await.unwrap();
    assert_eq!(list.users(), ["alice", "bob"], "sorted");
    assert!(auth.user_get("alice").await.unwrap().roles().is_empty());

    auth.role_add("writer").await.unwrap();
    auth.role_add("reader").await.unwrap();
    auth.user_grant_role("alice", "writer").await.unwrap();
    auth.user_grant_role("alice", "reader").await.unwrap();
    // Granting a role the user has changes nothing.
    auth.user_grant_role("alice", "reader").await.unwrap();
    let alice = auth.user_get("alice").await.unwrap();
    assert_eq!(alice.roles(), ["reader", "writer"], "sorted");

    auth.user_revoke_role("alice", "writer").await.unwrap();
    assert_eq!(auth.user_get("alice").await.unwrap().roles(), ["reader"]);
    assert_code(
        auth.user_revoke_role("alice", "writer").await,
        Code::RoleNotGranted,
    );

    auth.user_change_password("alice", "pw-a2").await.unwrap();
    assert_eq!(auth.user_get("alice").await.unwrap().roles(), ["reader"]);

    auth.user_delete("bob").await.unwrap();
    assert_eq!(auth.user_list().await.unwrap().users(), ["alice"]);
    assert_code(auth.user_get("bob").await, Code::UserNotFound);
    // A deleted user can be added again, and starts with no roles (Go's
    // TestAddUserAfterDelete; its password is checked in passwords_authenticate_as_given).
    auth.user_grant_role("alice", "writer").await.unwrap();
    auth.user_add("bob", "pw-b2").await.unwrap();
    assert!(auth.user_get("bob").await.unwrap().roles().is_empty());

    // Deleting a role takes it from its users.
    auth.role_delete("reader").await.unwrap();
    assert_eq!(auth.user_get("alice").await.unwrap().roles(), ["writer"]);
    assert_eq!(auth.role_list().await.unwrap().roles(), ["writer"]);
}

async fn roles_and_permissions_round_trip(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let auth = c.auth();
    assert!(auth.role_list().await.unwrap().roles().is_empty());
    auth.role_add("app").await.unwrap();
    assert!(auth.role_get("app").await.unwrap().permissions().is_empty());

    // Every kind of range, each with a permission parsed from text.
    let grants = [
        ("read", KeyRange::key("config/mode")),
        ("WRITE", KeyRange::prefix("jobs/")),
        ("ReadWrite", KeyRange::from("a".."c")),
        ("read", KeyRange::from("m"..)),
        ("readwrite", KeyRange::all()),
    ];
    for (word, keys) in &grants {
        let permission: Permission = word.parse().unwrap();
        auth.role_grant_permission("app", permission, keys.clone())
            .await
            .unwrap();
    }
    let mut want: Vec<KeyPermission> = grants
        .iter()
        .map(|(word, keys)| KeyPermission::new(word.parse().unwrap(), keys.clone()))
        .collect();
    want.sort_by(|a, b| a.keys().start().cmp(b.keys().start()));
    let got = auth.role_get("app").await.unwrap();
    assert_eq!(got.permissions(), want, "sorted by start key");
    assert_eq!(got.permissions()[0].keys(), &KeyRange::all());
    assert_eq!(got.permissions()[0].permission(), Permission::ReadWrite);

    // Granting on a range the role has a permission on replaces it.
    auth.role_grant_permission("app", Permission::Write, "config/mode")
        .await
        .unwrap();
    let got = auth.role_get("app").await.unwrap();
    assert_eq!(got.permissions().len(), grants.len());
    let mode = got
        .permissions()
        .iter()
        .find(|p| p.keys() == &KeyRange::key("config/mode"))
        .unwrap();
    assert_eq!(mode.permission(), Permission::Write);

    // Revoking takes exactly the range it names.
    auth.role_revoke_permission("app", KeyRange::prefix("jobs/"))
        .await
        .unwrap();
    let got = auth.role_get("app").await.unwrap();
    assert_eq!(got.permissions().len(), grants.len() - 1);
    assert!(
        got.permissions()
            .iter()
            .all(|p| p.keys() != &KeyRange::prefix("jobs/"))
    );
    assert_code(
        auth.role_revoke_permission("app", KeyRange::prefix("jobs/"))
            .await,
        Code::PermissionNotGranted,
    );
    assert_code(
        auth.role_revoke_permission("app", KeyRange::prefix("config/mode"))
            .await,
        Code::PermissionNotGranted,
    );
    auth.role_revoke_permission("app", "a".."c").await.unwrap();
    auth.role_revoke_permission("app", KeyRange::from_key("m"))
        .await
        .unwrap();
    auth.role_revoke_permission("app", ..).await.unwrap();
    let got = auth.role_get("app").await.unwrap();
    assert_eq!(
        got.permissions(),
        [KeyPermission::new(Permission::Write, "config/mode")]
    );

    // From etcd 3.6 the root role reads back as read-write on every key; before, as nothing.
    auth.role_add("root").await.unwrap();
    let root = auth.role_get("root").await.unwrap();
    if version(&cl) >= (3, 6) {
        assert_eq!(
            root.permissions(),
            [KeyPermission::new(
                Permission::ReadWrite,
                KeyRange::range("", "\0")
            )]
        );
    } else {
        assert!(root.permissions().is_empty(), "{root:?}");
    }
    assert_eq!(auth.role_list().await.unwrap().roles(), ["app", "root"]);

    auth.role_delete("app").await.unwrap();
    assert_code(auth.role_get("app").await, Code::RoleNotFound);
    assert_eq!(auth.role_list().await.unwrap().roles(), ["root"]);
}

per_topology!(users_round_trip, roles_and_permissions_round_trip);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_errors_are_typed() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let auth = c.auth();
    auth.user_add("alice", "pw").await.unwrap();
    auth.role_add("app").await.unwrap();

    // Go's TestUserError.
    assert_code(
        auth.user_add("alice", "other").await,
        Code::UserAlreadyExist,
    );
    assert_code(auth.user_delete("nobody").await, Code::UserNotFound);
    assert_code(
        auth.user_grant_role("alice", "no-such-role").await,
        Code::RoleNotFound,
    );

    assert_code(auth.user_get("nobody").await, Code::UserNotFound);
    assert_code(
        auth.user_change_password("nobody", "pw").await,
        Code::UserNotFound,
    );
    assert_code(
        auth.user_grant_role("nobody", "app").await,
        Code::UserNotFound,
    );
    assert_code(
        auth.user_revoke_role("nobody", "app").await,
        Code::UserNotFound,
    );
    assert_code(
        auth.user_revoke_role("alice", "app").await,
        Code::RoleNotGranted,
    );
    assert_code(auth.role_add("app").await, Code::RoleAlreadyExist);
    assert_code(auth.role_get("nothing").await, Code::RoleNotFound);
    assert_code(auth.role_delete("nothing").await, Code::RoleNotFound);
    assert_code(
        auth.role_grant_permission("nothing", Permission::Read, "k")
            .await,
        Code::RoleNotFound,
    );
    assert_code(
        auth.role_revoke_permission("nothing", "k").await,
        Code::RoleNotFound,
    );
    assert_code(
        auth.role_revoke_permission("app", "k").await,
        Code::PermissionNotGranted,
    );

    // Enabling auth needs a root user, and that user needs the root role.
    assert_code(auth.enable().await, Code::RootUserNotExist);
    auth.user_add("root", "root-pw").await.unwrap();
    assert_code(auth.enable().await, Code::RootRoleNotExist);
    if let Some(s) = status(&cl, &auth).await {
        assert!(!s.enabled());
    }
    // Disabling auth that is off does nothing.
    auth.disable().await.unwrap();
    if let Some(s) = status(&cl, &auth).await {
        assert!(!s.enabled());
    }
    c.kv().put("k", "v").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_auth_refuses_requests_without_a_user() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let auth = c.auth();
    let before = status(&cl, &auth).await;
    c.kv().put("k", "v").await.unwrap();

    add_root(&auth, "root-pw").await;
    auth.user_add("alice", "alice-pw").await.unwrap();
    let ready = status(&cl, &auth).await;
    if let (Some(before), Some(ready)) = (&before, &ready) {
        assert!(!before.enabled() && !ready.enabled());
        assert!(
            ready.auth_revision() > before.auth_revision(),
            "{before:?} then {ready:?}"
        );
    }
    auth.enable().await.unwrap();

    // This client has no user: every request is refused, before being applied.
    let err = c.kv().put("k", "v2").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
    assert_eq!(err.code(), Some(Code::UserEmpty), "{err:?}");
    assert!(!err.may_have_been_applied());
    let err = c.kv().get("k").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
    // Go's TestUserErrorAuth: an unauthenticated UserAdd is ErrUserEmpty.
    let err = auth.user_add("bob", "bob-pw").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::UserEmpty), "{err:?}");
    assert!(err.is_permission_denied());
    // Only root may ask for the status now, except on etcd 3.7, which says auth is on.
    status_of_a_non_root_caller(&cl, &auth, Code::UserEmpty).await;
    let err = auth.disable().await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");

    // The users added before log in with their passwords; wrong ones fail.
    authenticate(&cl, "root", "root-pw").await.unwrap();
    authenticate(&cl, "alice", "alice-pw").await.unwrap();
    let wrong = authenticate(&cl, "alice", "root-pw").await.unwrap_err();
    assert_eq!(
        Code::from_message(&wrong),
        Some(Code::AuthFailed),
        "{wrong}"
    );
    let unknown = authenticate(&cl, "bob", "bob-pw").await.unwrap_err();
    assert_eq!(
        Code::from_message(&unknown),
        Some(Code::AuthFailed),
        "{unknown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_authenticate_as_given() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let auth = c.auth();
    let hashes = version(&cl) >= (3, 5);

    auth.user_add("alice", "first").await.unwrap();
    auth.user_change_password("alice", "second").await.unwrap();
    auth.user_add("bob", "").no_password().await.unwrap();
    auth.user_add("dave", "one").await.unwrap();
    auth.user_delete("dave").await.unwrap();
    auth.user_add("dave", "two").await.unwrap();
    auth.user_add("erin", "plain").await.unwrap();
    let carol = auth.user_add("carol", "").hashed_password(HASH).await;
    let erin = auth
        .user_change_password("erin", "")
        .hashed_password(HASH)
        .await;
    if hashes {
        carol.unwrap();
        erin.unwrap();
    } else {
        // etcd 3.4 would set an empty password: refused, nothing changed.
        for err in [carol.unwrap_err(), erin.unwrap_err()] {
            assert!(err.is_invalid_request(), "{err:?}");
            assert!(!err.may_have_been_applied());
        }
        assert_code(auth.user_get("carol").await, Code::UserNotFound);
    }
    add_root(&auth, "root-pw").await;
    auth.enable().await.unwrap();

    authenticate(&cl, "alice", "second").await.unwrap();
    authenticate(&cl, "alice", "first").await.unwrap_err();
    authenticate(&cl, "bob", "").await.unwrap_err();
    authenticate(&cl, "bob", "anything").await.unwrap_err();
    authenticate(&cl, "dave", "two").await.unwrap();
    authenticate(&cl, "dave", "one").await.unwrap_err();
    if hashes {
        authenticate(&cl, "carol", HASHED_PASSWORD).await.unwrap();
        authenticate(&cl, "carol", "").await.unwrap_err();
        authenticate(&cl, "carol", HASH).await.unwrap_err();
        authenticate(&cl, "erin", HASHED_PASSWORD).await.unwrap();
        authenticate(&cl, "erin", "plain").await.unwrap_err();
    } else {
        authenticate(&cl, "erin", "plain").await.unwrap();
        authenticate(&cl, "erin", "").await.unwrap_err();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_started_with_auth_refuses_clients_without_a_user() {
    let cl = EtcdCluster::builder()
        .auth("root-pw")
        .start()
        .await
        .expect("start etcd with auth");
    let c = client(&cl).await;
    status_of_a_non_root_caller(&cl, &c.auth(), Code::UserEmpty).await;
    let err = c.kv().put("k", "v").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
    authenticate(&cl, "root", "root-pw").await.unwrap();
}

/// A client of a mutual-TLS cluster that presents `cert` and `key`.
#[cfg(feature = "tls")]
async fn tls_client(
    cl: &EtcdCluster,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> etcdv3::Client {
    let files = cl.tls().unwrap();
    etcdv3::Client::builder()
        .endpoints(cl.endpoints())
        .tls(
            etcdv3::TlsConfig::new()
                .ca_cert_file(&files.ca_cert)
                .client_cert_files(cert, key),
        )
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect over mutual TLS")
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_certificate_manages_auth_while_it_is_on() {
    let cl = EtcdCluster::builder()
        .tls(etcdv3_testkit::TlsMode::MutualTls)
        .auth("root-pw")
        .start()
        .await
        .expect("start etcd with mutual TLS and auth");
    let files = cl.tls().unwrap().clone();
    let root = tls_client(&cl, &files.client_cert, &files.client_key).await;
    let auth = root.auth();
    let on = status(&cl, &auth).await;
    if let Some(on) = &on {
        assert!(on.enabled(), "{on:?}");
        assert!(on.auth_revision() > 0);
    }

    // With auth on, root manages users and roles.
    auth.user_add("alice", "").no_password().await.unwrap();
    auth.role_add("app").await.unwrap();
    auth.role_grant_permission("app", Permission::Read, KeyRange::prefix("config/"))
        .await
        .unwrap();
    assert_eq!(auth.user_list().await.unwrap().users(), ["alice", "root"]);
    if let (Some(on), Some(later)) = (on, status(&cl, &auth).await) {
        assert!(later.auth_revision() > on.auth_revision());
    }
    // etcd keeps root and its role while auth is on.
    assert_code(auth.user_delete("root").await, Code::InvalidAuthMgmt);
    assert_code(
        auth.user_revoke_role("root", "root").await,
        Code::InvalidAuthMgmt,
    );
    assert_code(auth.role_delete("root").await, Code::InvalidAuthMgmt);

    // alice (CN=alice) has no role: refused, typed.
    let alice = tls_client(&cl, &files.alice_cert, &files.alice_key).await;
    let err = alice.kv().put("config/x", "1").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
    assert_eq!(err.code(), Some(Code::PermissionDenied));
    status_of_a_non_root_caller(&cl, &alice.auth(), Code::PermissionDenied).await;

    auth.disable().await.unwrap();
    if let Some(s) = status(&cl, &auth).await {
        assert!(!s.enabled());
    }
    alice.kv().put("config/x", "1").await.unwrap();
    auth.enable().await.unwrap();
    if let Some(s) = status(&cl, &auth).await {
        assert!(s.enabled());
    }
    let err = alice.kv().put("config/x", "2").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
}

/// An admin call, boxed so calls of different requests fit in one list.
fn boxed<F, T>(call: F) -> BoxFuture<'static, etcdv3::Result<()>>
where
    F: IntoFuture<Output = etcdv3::Result<T>>,
    F::IntoFuture: Send + 'static,
{
    call.into_future().map(|r| r.map(drop)).boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_sending() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let auth = c.auth();
    let t = Duration::from_secs(3);
    // A frozen member: anything sent would wait for the timeout.
    cl.pause(0).unwrap();
    let started = Instant::now();
    let calls = [
        boxed(auth.user_add("", "pw").timeout(t)),
        boxed(auth.user_add("alice", "").timeout(t)),
        boxed(auth.user_add("alice", "pw").no_password().timeout(t)),
        boxed(
            auth.user_add("alice", "pw")
                .hashed_password(HASH)
                .timeout(t),
        ),
        boxed(
            auth.user_add("alice", "")
                .hashed_password("$2a$04$short")
                .timeout(t),
        ),
        boxed(auth.user_get("").timeout(t)),
        boxed(auth.user_delete("").timeout(t)),
        boxed(auth.user_change_password("", "pw").timeout(t)),
        boxed(auth.user_change_password("alice", "").timeout(t)),
        boxed(auth.user_grant_role("", "app").timeout(t)),
        boxed(auth.user_grant_role("alice", "").timeout(t)),
        boxed(auth.user_revoke_role("alice", "").timeout(t)),
        boxed(auth.role_add("").timeout(t)),
        boxed(auth.role_get("").timeout(t)),
        boxed(auth.role_delete("").timeout(t)),
        boxed(
            auth.role_grant_permission("", Permission::Read, "k")
                .timeout(t),
        ),
        boxed(
            auth.role_grant_permission("app", Permission::Read, "")
                .timeout(t),
        ),
        boxed(
            auth.role_grant_permission("app", Permission::Write, "b".."a")
                .timeout(t),
        ),
        boxed(auth.role_revoke_permission("", "k").timeout(t)),
    ];
    let count = calls.len();
    for (i, call) in calls.into_iter().enumerate() {
        let err = call.await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "call {i}: {err:?}");
        assert!(!err.may_have_been_applied());
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "nothing was sent by {count} calls: {:?}",
        started.elapsed()
    );
    cl.resume(0).unwrap();
    assert!(auth.user_list().await.unwrap().users().is_empty());
    assert!(auth.role_list().await.unwrap().roles().is_empty());

    // Requests never show their passwords.
    for shown in [
        format!("{:?}", auth.user_add("alice", "hunter2")),
        format!("{:?}", auth.user_change_password("alice", "hunter2")),
        format!("{:?}", auth.user_add("alice", "").hashed_password(HASH)),
    ] {
        assert!(
            !shown.contains("hunter2") && !shown.contains(HASH),
            "{shown}"
        );
        assert!(shown.contains("alice"), "{shown}");
    }
}
