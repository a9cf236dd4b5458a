//! The few raw gRPC calls the testkit itself makes: health probes, status, auth setup.

use std::time::Duration;

use etcdv3_proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthUserAddRequest, AuthUserGrantRoleRequest,
    AuthenticateRequest, RangeRequest, StatusRequest, StatusResponse, auth_client::AuthClient,
    kv_client::KvClient, maintenance_client::MaintenanceClient,
};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

/// Opens a channel to `url`, failing after `timeout` (connect and each request).
pub(crate) async fn connect(
    url: &str,
    tls: Option<&ClientTlsConfig>,
    timeout: Duration,
) -> Result<Channel, tonic::transport::Error> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(timeout)
        .timeout(timeout);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.clone())?;
    }
    endpoint.connect().await
}

/// A Range on key `health`, with the auth token when one is given.
pub(crate) async fn range(
    channel: Channel,
    serializable: bool,
    token: Option<&str>,
) -> Result<(), Status> {
    let mut request = Request::new(RangeRequest {
        key: b"health".to_vec(),
        serializable,
        ..Default::default()
    });
    if let Some(token) = token {
        let value = token
            .parse()
            .map_err(|_| Status::internal("auth token is not valid metadata"))?;
        request.metadata_mut().insert("token", value);
    }
    KvClient::new(channel).range(request).await.map(drop)
}

/// True for the statuses etcd returns when a request reached the auth check. For Range
/// the check runs after the (linearizable) read, so the member did answer.
pub(crate) fn is_auth_rejection(status: &Status) -> bool {
    match status.code() {
        Code::PermissionDenied | Code::Unauthenticated => true,
        Code::InvalidArgument => status.message().contains("user name is empty"),
        _ => false,
    }
}

/// True for a learner's refusal of a request it does not serve (a linearizable Range).
pub(crate) fn is_learner_rejection(status: &Status) -> bool {
    status.code() == Code::FailedPrecondition
        && status.message().contains("not supported for learner")
}

/// Maintenance.Status.
pub(crate) async fn status(channel: Channel) -> Result<StatusResponse, Status> {
    MaintenanceClient::new(channel)
        .status(StatusRequest {})
        .await
        .map(tonic::Response::into_inner)
}

/// Auth.Authenticate, returning the token.
pub(crate) async fn authenticate(
    channel: Channel,
    name: &str,
    password: &str,
) -> Result<String, Status> {
    AuthClient::new(channel)
        .authenticate(AuthenticateRequest {
            name: name.to_owned(),
            password: password.to_owned(),
        })
        .await
        .map(|r| r.into_inner().token)
}

/// One step of enabling auth.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AuthStep {
    AddRootUser,
    AddRootRole,
    GrantRootRole,
    Enable,
}

impl AuthStep {
    pub(crate) const ALL: [AuthStep; 4] = [
        AuthStep::AddRootUser,
        AuthStep::AddRootRole,
        AuthStep::GrantRootRole,
        AuthStep::Enable,
    ];

    pub(crate) fn describe(self) -> &'static str {
        match self {
            AuthStep::AddRootUser => "adding user root",
            AuthStep::AddRootRole => "adding role root",
            AuthStep::GrantRootRole => "granting role root to user root",
            AuthStep::Enable => "enabling auth",
        }
    }

    /// Runs the step. A step whose earlier attempt took effect counts as done.
    pub(crate) async fn run(self, channel: Channel, root_password: &str) -> Result<(), Status> {
        let mut auth = AuthClient::new(channel);
        let result = match self {
            AuthStep::AddRootUser => auth
                .user_add(AuthUserAddRequest {
                    name: "root".to_owned(),
                    password: root_password.to_owned(),
                    ..Default::default()
                })
                .await
                .map(drop),
            AuthStep::AddRootRole => auth
                .role_add(AuthRoleAddRequest {
                    name: "root".to_owned(),
                })
                .await
                .map(drop),
            AuthStep::GrantRootRole => auth
                .user_grant_role(AuthUserGrantRoleRequest {
                    user: "root".to_owned(),
                    role: "root".to_owned(),
                })
                .await
                .map(drop),
            AuthStep::Enable => auth.auth_enable(AuthEnableRequest {}).await.map(drop),
        };
        match result {
            Err(s)
                if s.code() == Code::FailedPrecondition
                    && s.message().contains("already exists") =>
            {
                Ok(())
            }
            other => other,
        }
    }
}

/// True for statuses worth retrying while a fresh cluster settles (leader changes,
/// timeouts, connection hiccups).
pub(crate) fn is_transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}
