//! The one error type of the crate, its kinds, and etcd's server error codes.
//!
//! Every fallible call returns [`Error`]. Ask it what happened with [`Error::kind`],
//! [`Error::code`] (for errors etcd itself returned) or a predicate such as
//! [`Error::is_compacted`] or [`Error::is_unavailable`]. Messages say what failed and,
//! where there is one, what to do about it.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the etcd client.
///
/// Cheap to move (one pointer). Use [`kind`](Error::kind), [`code`](Error::code) and the
/// `is_*` predicates to decide what to do; the `Display` text is for people.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    code: Option<Code>,
    grpc: Option<GrpcCode>,
    message: String,
    endpoint: Option<String>,
    compact_revision: Option<i64>,
    resume_revision: Option<i64>,
    /// The request had been written to the server when the failure happened.
    sent: bool,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client configuration is invalid (bad endpoint string, contradictory limits ...).
    /// Reported by [`ClientBuilder::connect`](crate::ClientBuilder::connect).
    Config,
    /// The request was rejected by the client before it was sent (empty key, negative
    /// revision, invalid option combination).
    InvalidRequest,
    /// The encoded request is larger than the client's send limit; nothing was sent.
    RequestTooLarge,
    /// The response is larger than the client's receive limit; the request was processed.
    ResponseTooLarge,
    /// No connection could be made to an endpoint (refused, timed out, TLS handshake
    /// failed). The request was not sent.
    Connect,
    /// The connection broke or the endpoint became unavailable while the call was in flight.
    /// A write may or may not have been applied.
    Unavailable,
    /// The call's deadline passed before an answer arrived, on the client or on the server
    /// (gRPC `DeadlineExceeded`). A write may have been applied when it had been sent; see
    /// [`Error::may_have_been_applied`].
    Timeout,
    /// The caller cancelled the call (for example by dropping a stream handle).
    Canceled,
    /// etcd answered with an error status; see [`Error::code`] and [`Error::grpc_code`].
    Server,
    /// The client was closed.
    Closed,
    /// The server sent something the client did not expect.
    Protocol,
    /// A kept-alive lease got no answer from etcd within its TTL (for the first answer: the
    /// connect timeout + 1 s), so it may have expired on the server. Ends a
    /// [`LeaseKeepAlive`](crate::LeaseKeepAlive); see [`Error::is_lease_expired`].
    LeaseExpired,
    /// A watch's reader fell behind: its buffer
    /// ([`WatchOp::buffer`](crate::WatchOp::buffer)) was full when etcd sent more, so the
    /// watch ended after the responses it held. Start a new watch at
    /// [`Error::resume_revision`] to miss nothing.
    Lagged,
    /// A local file could not be created, written, synced or renamed (for example where
    /// [`MaintenanceClient::snapshot_save`](crate::MaintenanceClient::snapshot_save) writes);
    /// [`source`](std::error::Error::source) is the `io::Error`.
    Io,
    /// A member runs a version of etcd older than this client supports (3.4). Only
    /// [`ClientBuilder::reject_old_cluster`](crate::ClientBuilder::reject_old_cluster) checks
    /// it; see [`Error::is_old_cluster`].
    OldCluster,
    /// A [`Mutex`](crate::Mutex) waiter's key was gone when its turn came: its session's lease
    /// expired or was revoked (Go's `ErrSessionExpired`). Nothing is held; see
    /// [`Error::is_session_expired`].
    SessionExpired,
    /// [`Mutex::try_lock`](crate::Mutex::try_lock) found the lock held by another session
    /// (Go's `ErrLocked`); see [`Error::is_locked`].
    Locked,
    /// [`Mutex::unlock`](crate::Mutex::unlock) on a mutex that is not held (Go's
    /// `ErrLockReleased`); see [`Error::is_lock_released`].
    LockReleased,
    /// [`Election::proclaim`](crate::Election::proclaim) by a candidate that is not the
    /// leader (Go's `ErrElectionNotLeader`); see [`Error::is_not_election_leader`].
    NotElectionLeader,
    /// [`Election::leader`](crate::Election::leader) found no leader (Go's
    /// `ErrElectionNoLeader`); see [`Error::is_no_election_leader`].
    NoElectionLeader,
    /// An [`Stm`](crate::Stm) transaction found other writers' changes at each of its
    /// [`max_attempts`](crate::Stm::max_attempts) commits and gave up; nothing was written.
    /// See [`Error::is_conflict`].
    Conflict,
}

/// The gRPC status code that came with a server error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum GrpcCode {
    Ok,
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl GrpcCode {
    /// The code for a `grpc-status` number; unknown numbers are [`GrpcCode::Unknown`].
    pub(crate) fn from_i32(code: i32) -> Self {
        const BY_NUMBER: [GrpcCode; 17] = [
            GrpcCode::Ok,
            GrpcCode::Canceled,
            GrpcCode::Unknown,
            GrpcCode::InvalidArgument,
            GrpcCode::DeadlineExceeded,
            GrpcCode::NotFound,
            GrpcCode::AlreadyExists,
            GrpcCode::PermissionDenied,
            GrpcCode::ResourceExhausted,
            GrpcCode::FailedPrecondition,
            GrpcCode::Aborted,
            GrpcCode::OutOfRange,
            GrpcCode::Unimplemented,
            GrpcCode::Internal,
            GrpcCode::Unavailable,
            GrpcCode::DataLoss,
            GrpcCode::Unauthenticated,
        ];
        usize::try_from(code)
            .ok()
            .and_then(|i| BY_NUMBER.get(i).copied())
            .unwrap_or(GrpcCode::Unknown)
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = ($grpc:ident, $msg:literal), )*) => {
        /// An error code etcd returns, decoded from the server's status message.
        ///
        /// Covers every `etcdserver:` error of etcd's API (3.4 to 3.7), including the ones the Go
        /// client leaves as raw statuses.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $name, )*
        }

        impl Code {
            const ALL: &'static [(Code, GrpcCode, &'static str)] = &[
                $( (Code::$name, GrpcCode::$grpc, $msg), )*
            ];
        }
    };
}

codes! {
    /// The request has no key.
    EmptyKey = (InvalidArgument, "etcdserver: key is not provided"),
    /// `ignore_value`/`ignore_lease` was used on a key that does not exist.
    KeyNotFound = (InvalidArgument, "etcdserver: key not found"),
    /// A value was given together with `ignore_value`.
    ValueProvided = (InvalidArgument, "etcdserver: value is provided"),
    /// A lease was given together with `ignore_lease`.
    LeaseProvided = (InvalidArgument, "etcdserver: lease is provided"),
    /// The transaction has more operations than the server's `--max-txn-ops`.
    TooManyOps = (InvalidArgument, "etcdserver: too many operations in txn request"),
    /// The transaction writes the same key twice.
    DuplicateKey = (InvalidArgument, "etcdserver: duplicate key given in txn request"),
    /// The `client-api-version` metadata was not valid.
    InvalidClientApiVersion = (InvalidArgument, "etcdserver: invalid client api version"),
    /// The sort target or order is not valid.
    InvalidSortOption = (InvalidArgument, "etcdserver: invalid sort option"),
    /// The requested revision has been compacted away.
    Compacted = (OutOfRange, "etcdserver: mvcc: required revision has been compacted"),
    /// The requested revision is newer than the store's current revision.
    FutureRev = (OutOfRange, "etcdserver: mvcc: required revision is a future revision"),
    /// The backend quota is exhausted (NOSPACE alarm).
    NoSpace = (ResourceExhausted, "etcdserver: mvcc: database space exceeded"),
    /// The lease does not exist (expired or revoked).
    LeaseNotFound = (NotFound, "etcdserver: requested lease not found"),
    /// A lease with the requested ID already exists.
    LeaseExist = (FailedPrecondition, "etcdserver: lease already exists"),
    /// The requested lease TTL is too large.
    LeaseTtlTooLarge = (OutOfRange, "etcdserver: too large lease TTL"),
    /// The watch was cancelled by the server.
    WatchCanceled = (Canceled, "etcdserver: watch canceled"),
    /// A member with that ID already exists.
    MemberExist = (FailedPrecondition, "etcdserver: member ID already exist"),
    /// A member with those peer URLs already exists.
    PeerUrlExist = (FailedPrecondition, "etcdserver: Peer URLs already exists"),
    /// Reconfiguration would leave too few started members.
    MemberNotEnoughStarted = (FailedPrecondition, "etcdserver: re-configuration failed due to not enough started members"),
    /// The member URLs are not valid.
    MemberBadUrls = (InvalidArgument, "etcdserver: given member URLs are invalid"),
    /// No member has that ID.
    MemberNotFound = (NotFound, "etcdserver: member not found"),
    /// Only a learner can be promoted.
    MemberNotLearner = (FailedPrecondition, "etcdserver: can only promote a learner member"),
    /// The learner is not yet in sync with the leader.
    LearnerNotReady = (FailedPrecondition, "etcdserver: can only promote a learner member which is in sync with leader"),
    /// The cluster already has the maximum number of learners.
    TooManyLearners = (FailedPrecondition, "etcdserver: too many learner members in cluster"),
    /// The request came from a member of another cluster.
    ClusterIdMismatch = (FailedPrecondition, "etcdserver: cluster ID mismatch"),
    /// The request is larger than the server's `--max-request-bytes`.
    RequestTooLarge = (InvalidArgument, "etcdserver: request is too large"),
    /// The server is overloaded and rejected the request.
    TooManyRequests = (ResourceExhausted, "etcdserver: too many requests"),
    /// Auth cannot be enabled: there is no `root` user.
    RootUserNotExist = (FailedPrecondition, "etcdserver: root user does not exist"),
    /// Auth cannot be enabled: `root` does not have the `root` role.
    RootRoleNotExist = (FailedPrecondition, "etcdserver: root user does not have root role"),
    /// A user with that name already exists.
    UserAlreadyExist = (FailedPrecondition, "etcdserver: user name already exists"),
    /// Auth is enabled and the request carried no user (no token).
    UserEmpty = (InvalidArgument, "etcdserver: user name is empty"),
    /// No user has that name.
    UserNotFound = (FailedPrecondition, "etcdserver: user name not found"),
    /// A role with that name already exists.
    RoleAlreadyExist = (FailedPrecondition, "etcdserver: role name already exists"),
    /// No role has that name.
    RoleNotFound = (FailedPrecondition, "etcdserver: role name not found"),
    /// The role name is empty.
    RoleEmpty = (InvalidArgument, "etcdserver: role name is empty"),
    /// Wrong user name or password.
    AuthFailed = (InvalidArgument, "etcdserver: authentication failed, invalid user ID or password"),
    /// The permission was not given in the request.
    PermissionNotGiven = (InvalidArgument, "etcdserver: permission not given"),
    /// The user lacks the permission for this request.
    PermissionDenied = (PermissionDenied, "etcdserver: permission denied"),
    /// The role is not granted to the user.
    RoleNotGranted = (FailedPrecondition, "etcdserver: role is not granted to the user"),
    /// The permission is not granted to the role.
    PermissionNotGranted = (FailedPrecondition, "etcdserver: permission is not granted to the role"),
    /// Auth is not enabled on the server.
    AuthNotEnabled = (FailedPrecondition, "etcdserver: authentication is not enabled"),
    /// The auth token is unknown or expired.
    InvalidAuthToken = (Unauthenticated, "etcdserver: invalid auth token"),
    /// The auth management request is not valid.
    InvalidAuthMgmt = (InvalidArgument, "etcdserver: invalid auth management"),
    /// Auth data changed while the request was being checked.
    AuthOldRevision = (InvalidArgument, "etcdserver: revision of auth store is old"),
    /// The member has no leader.
    NoLeader = (Unavailable, "etcdserver: no leader"),
    /// The request must go to the leader.
    NotLeader = (FailedPrecondition, "etcdserver: not leader"),
    /// The leader changed while the request was being processed.
    LeaderChanged = (Unavailable, "etcdserver: leader changed"),
    /// The cluster version does not support the request.
    NotCapable = (FailedPrecondition, "etcdserver: not capable"),
    /// The server is stopping.
    Stopped = (Unavailable, "etcdserver: server stopped"),
    /// The server timed out waiting for the request to commit; it may still be applied.
    Timeout = (Unavailable, "etcdserver: request timed out"),
    /// As [`Code::Timeout`], probably because the previous leader failed.
    TimeoutDueToLeaderFail = (Unavailable, "etcdserver: request timed out, possibly due to previous leader failure"),
    /// As [`Code::Timeout`], probably because the connection was lost.
    TimeoutDueToConnectionLost = (Unavailable, "etcdserver: request timed out, possibly due to connection lost"),
    /// The server timed out waiting for its applied index.
    TimeoutWaitAppliedIndex = (Unavailable, "etcdserver: request timed out, waiting for the applied index took too long"),
    /// The cluster is unhealthy.
    Unhealthy = (Unavailable, "etcdserver: unhealthy cluster"),
    /// The cluster detected data corruption.
    Corrupt = (DataLoss, "etcdserver: corrupt cluster"),
    /// A learner member cannot serve this request.
    NotSupportedForLearner = (FailedPrecondition, "etcdserver: rpc not supported for learner"),
    /// The leader transfer target is not valid.
    BadLeaderTransferee = (FailedPrecondition, "etcdserver: bad leader transferee"),
    /// The downgrade target version is malformed.
    WrongDowngradeVersionFormat = (InvalidArgument, "etcdserver: wrong downgrade target version format"),
    /// The downgrade target version is not allowed.
    InvalidDowngradeTargetVersion = (InvalidArgument, "etcdserver: invalid downgrade target version"),
    /// The cluster version is not known, so a downgrade cannot be checked.
    ClusterVersionUnavailable = (FailedPrecondition, "etcdserver: cluster version not found during downgrade"),
    /// A downgrade is already in progress.
    DowngradeInProcess = (FailedPrecondition, "etcdserver: cluster has a downgrade job in progress"),
    /// There is no downgrade to cancel.
    NoInflightDowngrade = (FailedPrecondition, "etcdserver: no inflight downgrade job"),
    /// The server cancelled the request.
    Canceled = (Canceled, "etcdserver: request canceled"),
    /// The server's own deadline for the request passed.
    DeadlineExceeded = (DeadlineExceeded, "etcdserver: context deadline exceeded"),
}

impl Code {
    /// Decodes a server status message (e.g. `"etcdserver: no leader"`) into a code.
    pub fn from_message(message: &str) -> Option<Code> {
        Self::ALL
            .iter()
            .find(|(_, _, m)| *m == message)
            .map(|(c, _, _)| *c)
    }

    fn entry(self) -> &'static (Code, GrpcCode, &'static str) {
        Self::ALL
            .iter()
            .find(|(c, _, _)| *c == self)
            .expect("every code is in the table")
    }

    /// The exact message etcd sends for this code.
    pub fn message(self) -> &'static str {
        self.entry().2
    }

    /// The gRPC status code etcd sends with this code.
    pub fn grpc_code(self) -> GrpcCode {
        self.entry().1
    }

    /// Whether a write answered with this code may have been applied. etcd returns these
    /// codes after the proposal entered raft (the commit wait timed out, the server stopped,
    /// or the request context ended); every other code is a refusal before applying.
    pub fn may_have_been_applied(self) -> bool {
        matches!(
            self,
            Code::Timeout
                | Code::TimeoutDueToLeaderFail
                | Code::TimeoutDueToConnectionLost
                | Code::Stopped
                | Code::Canceled
                | Code::DeadlineExceeded
        )
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            code: None,
            grpc: None,
            message: message.into(),
            endpoint: None,
            compact_revision: None,
            resume_revision: None,
            sent: false,
            source: None,
        }))
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    pub(crate) fn timeout(after: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("deadline of {after:?} exceeded before etcd answered"),
        )
    }

    /// Keeps `source` as the cause ([`std::error::Error::source`]).
    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.0.source = Some(Arc::new(source));
        self
    }

    /// A copy of this error, sharing its cause (for a failure handed to several callers).
    pub(crate) fn duplicate(&self) -> Self {
        let i = &self.0;
        Error(Box::new(Inner {
            kind: i.kind,
            code: i.code,
            grpc: i.grpc,
            message: i.message.clone(),
            endpoint: i.endpoint.clone(),
            compact_revision: i.compact_revision,
            resume_revision: i.resume_revision,
            sent: i.sent,
            source: i.source.clone(),
        }))
    }

    /// Records that the request had been written to the server when this error happened.
    pub(crate) fn sent(mut self) -> Self {
        self.0.sent = true;
        self
    }

    /// Whether the request had been written to the server.
    pub(crate) fn was_sent(&self) -> bool {
        self.0.sent
    }

    /// Turns this error into a timeout (the call's deadline passed, however the failure
    /// surfaced), keeping its code, cause and whether the request was sent.
    pub(crate) fn into_timeout(mut self, after: Duration) -> Self {
        if self.0.kind != ErrorKind::Timeout {
            self.0.message = format!(
                "deadline of {after:?} exceeded before etcd answered ({})",
                self.0.message
            );
            self.0.kind = ErrorKind::Timeout;
        }
        self
    }

    pub(crate) fn request_too_large(size: usize, limit: usize) -> Self {
        Self::new(
            ErrorKind::RequestTooLarge,
            format!(
                "request is {size} bytes, over the client's send limit of {limit} bytes \
                 (raise it with ClientBuilder::max_send_message_size; the server's own limit is --max-request-bytes)"
            ),
        )
    }

    pub(crate) fn response_too_large(size: &str, limit: &str) -> Self {
        Self::new(
            ErrorKind::ResponseTooLarge,
            format!(
                "response of {size} is over the client's receive limit of {limit} (raise it \
                 with ClientBuilder::max_recv_message_size, or ask for less: limit, keys_only)"
            ),
        )
    }

    /// A local file operation that failed: `what` names it and the file.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        let what = what.into();
        Self::new(ErrorKind::Io, format!("{what}: {source}")).with_source(source)
    }

    /// An STM transaction that conflicted at each of its `attempts` commits.
    pub(crate) fn conflict(attempts: u32) -> Self {
        Self::new(
            ErrorKind::Conflict,
            format!(
                "the STM transaction conflicted with other writers at each of its {attempts} \
                 commits, so nothing was written (raise Stm::max_attempts, or touch fewer \
                 contended keys)"
            ),
        )
    }

    pub(crate) fn closed() -> Self {
        Self::new(ErrorKind::Closed, "the client was closed")
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    /// An error for a server status. The server answered, so the request was sent; a gRPC
    /// `DeadlineExceeded` is a [`ErrorKind::Timeout`].
    pub(crate) fn server(code: Option<Code>, grpc: GrpcCode, message: impl Into<String>) -> Self {
        let kind = match grpc {
            GrpcCode::DeadlineExceeded => ErrorKind::Timeout,
            _ => ErrorKind::Server,
        };
        let mut e = Self::new(kind, message);
        e.0.code = code;
        e.0.grpc = Some(grpc);
        e.0.sent = true;
        e
    }

    pub(crate) fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        if self.0.endpoint.is_none() {
            self.0.endpoint = Some(endpoint.into());
        }
        self
    }

    /// This error as another kind (a status etcd's concurrency services send as text).
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.0.kind = kind;
        self
    }

    /// Appends advice to the message.
    pub(crate) fn with_hint(mut self, hint: &str) -> Self {
        self.0.message = format!("{} ({hint})", self.0.message);
        self
    }

    /// A watch whose reader fell behind; `resume` is the first revision it did not deliver.
    pub(crate) fn lagged(resume: i64, buffer: usize) -> Self {
        let mut e = Self::new(
            ErrorKind::Lagged,
            format!(
                "the watch's reader fell behind: {buffer} responses were waiting to be read when \
                 etcd sent more, so the watch ended; watch again from revision {resume} to miss \
                 nothing (read faster, or raise WatchOp::buffer)"
            ),
        );
        e.0.resume_revision = Some(resume);
        e
    }

    pub(crate) fn with_compact_revision(mut self, rev: i64) -> Self {
        self.0.compact_revision = Some(rev);
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The etcd error code, when etcd itself returned the error.
    pub fn code(&self) -> Option<Code> {
        self.0.code
    }

    /// The gRPC status code, when the error came with a gRPC status.
    pub fn grpc_code(&self) -> Option<GrpcCode> {
        self.0.grpc
    }

    /// The endpoint the failing call went to, when known.
    pub fn endpoint(&self) -> Option<&str> {
        self.0.endpoint.as_deref()
    }

    /// For a [`Code::Compacted`] error: the revision the store is compacted to, when known.
    ///
    /// Reads at a compacted revision look it up from the server (one cheap watch request) so that
    /// callers can restart from `compact_revision()`.
    pub fn compact_revision(&self) -> Option<i64> {
        self.0.compact_revision
    }

    /// For a [`Lagged`](ErrorKind::Lagged) watch: the first revision it did not deliver,
    /// where a new watch should start.
    pub fn resume_revision(&self) -> Option<i64> {
        self.0.resume_revision
    }

    /// Whether a watch ended because its reader fell behind ([`ErrorKind::Lagged`]); see
    /// [`resume_revision`](Self::resume_revision).
    pub fn is_lagged(&self) -> bool {
        self.0.kind == ErrorKind::Lagged
    }

    /// The human-readable message without the endpoint prefix.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    fn has_code(&self, code: Code) -> bool {
        self.0.code == Some(code)
    }

    /// The requested revision has been compacted ([`Code::Compacted`]).
    pub fn is_compacted(&self) -> bool {
        self.has_code(Code::Compacted)
    }

    /// The requested revision is in the future ([`Code::FutureRev`]).
    pub fn is_future_revision(&self) -> bool {
        self.has_code(Code::FutureRev)
    }

    /// The endpoint or cluster is unavailable: no connection, the connection broke, or etcd
    /// answered with a gRPC `Unavailable` status (no leader, server stopping, commit timed out).
    pub fn is_unavailable(&self) -> bool {
        matches!(self.0.kind, ErrorKind::Connect | ErrorKind::Unavailable)
            || self.0.grpc == Some(GrpcCode::Unavailable)
    }

    /// The call ran out of time, on the client ([`ErrorKind::Timeout`]) or on the server.
    pub fn is_timeout(&self) -> bool {
        self.0.kind == ErrorKind::Timeout
            || matches!(
                self.0.code,
                Some(
                    Code::Timeout
                        | Code::TimeoutDueToLeaderFail
                        | Code::TimeoutDueToConnectionLost
                        | Code::TimeoutWaitAppliedIndex
                        | Code::DeadlineExceeded
                )
            )
    }

    /// No connection could be made to the endpoint(s); the request was not sent.
    pub fn is_connect(&self) -> bool {
        self.0.kind == ErrorKind::Connect
    }

    /// The member has no leader ([`Code::NoLeader`]).
    pub fn is_no_leader(&self) -> bool {
        self.has_code(Code::NoLeader)
    }

    /// The request had to go to the leader ([`Code::NotLeader`]).
    pub fn is_not_leader(&self) -> bool {
        self.has_code(Code::NotLeader)
    }

    /// Wrong user name or password ([`Code::AuthFailed`]).
    pub fn is_auth_failed(&self) -> bool {
        self.has_code(Code::AuthFailed)
    }

    /// The auth token is invalid or expired ([`Code::InvalidAuthToken`]).
    pub fn is_invalid_auth_token(&self) -> bool {
        self.has_code(Code::InvalidAuthToken)
    }

    /// etcd refused the request for lack of permission: the user lacks it
    /// ([`Code::PermissionDenied`]), or auth is enabled and the request carried no user
    /// ([`Code::UserEmpty`]: the client has no credentials, or its token was not accepted).
    pub fn is_permission_denied(&self) -> bool {
        self.has_code(Code::PermissionDenied) || self.has_code(Code::UserEmpty)
    }

    /// The key does not exist (`ignore_value`/`ignore_lease` on a missing key).
    pub fn is_key_not_found(&self) -> bool {
        self.has_code(Code::KeyNotFound)
    }

    /// The lease does not exist ([`Code::LeaseNotFound`]).
    pub fn is_lease_not_found(&self) -> bool {
        self.has_code(Code::LeaseNotFound)
    }

    /// Keeping a lease alive ended because etcd did not answer within the lease's TTL
    /// ([`ErrorKind::LeaseExpired`]): the lease may be gone. Unlike
    /// [`is_lease_not_found`](Self::is_lease_not_found) this is the client's conclusion, not
    /// etcd's answer; ask with `time_to_live` when it matters.
    pub fn is_lease_expired(&self) -> bool {
        self.0.kind == ErrorKind::LeaseExpired
    }

    /// A member runs an etcd older than this client supports ([`ErrorKind::OldCluster`], Go's
    /// `ErrOldCluster`).
    pub fn is_old_cluster(&self) -> bool {
        self.0.kind == ErrorKind::OldCluster
    }

    /// A mutex waiter's session expired before it got the lock ([`ErrorKind::SessionExpired`],
    /// Go's `ErrSessionExpired`).
    pub fn is_session_expired(&self) -> bool {
        self.0.kind == ErrorKind::SessionExpired
    }

    /// `try_lock` found the lock held by another session ([`ErrorKind::Locked`], Go's
    /// `ErrLocked`).
    pub fn is_locked(&self) -> bool {
        self.0.kind == ErrorKind::Locked
    }

    /// `unlock` on a mutex that is not held ([`ErrorKind::LockReleased`], Go's
    /// `ErrLockReleased`).
    pub fn is_lock_released(&self) -> bool {
        self.0.kind == ErrorKind::LockReleased
    }

    /// `proclaim` by a candidate that is not the leader ([`ErrorKind::NotElectionLeader`],
    /// Go's `ErrElectionNotLeader`).
    pub fn is_not_election_leader(&self) -> bool {
        self.0.kind == ErrorKind::NotElectionLeader
    }

    /// The election has no leader ([`ErrorKind::NoElectionLeader`], Go's
    /// `ErrElectionNoLeader`).
    pub fn is_no_election_leader(&self) -> bool {
        self.0.kind == ErrorKind::NoElectionLeader
    }

    /// The backend quota is exhausted ([`Code::NoSpace`]).
    pub fn is_no_space(&self) -> bool {
        self.has_code(Code::NoSpace)
    }

    /// The request is too large, for the client's send limit or the server's
    /// `--max-request-bytes`.
    pub fn is_request_too_large(&self) -> bool {
        self.0.kind == ErrorKind::RequestTooLarge || self.has_code(Code::RequestTooLarge)
    }

    /// The response was larger than the client's receive limit.
    pub fn is_response_too_large(&self) -> bool {
        self.0.kind == ErrorKind::ResponseTooLarge
    }

    /// The request was rejected before it was sent because it is invalid.
    pub fn is_invalid_request(&self) -> bool {
        self.0.kind == ErrorKind::InvalidRequest
    }

    /// The client configuration is invalid.
    pub fn is_config(&self) -> bool {
        self.0.kind == ErrorKind::Config
    }

    /// The client was closed.
    pub fn is_closed(&self) -> bool {
        self.0.kind == ErrorKind::Closed
    }

    /// Whether a write that failed with this error may still have taken effect on the server.
    ///
    /// `true` when the request had been sent and the failure does not prove it was refused:
    /// the connection broke in flight ([`ErrorKind::Unavailable`]), the deadline passed after
    /// the request was written ([`ErrorKind::Timeout`]), etcd's commit timed out or was
    /// interrupted ([`Code::Timeout`], [`Code::TimeoutDueToLeaderFail`],
    /// [`Code::TimeoutDueToConnectionLost`], [`Code::Stopped`], [`Code::Canceled`]), or the
    /// answer was lost ([`ErrorKind::ResponseTooLarge`], [`ErrorKind::Protocol`]).
    ///
    /// `false` when the write provably did not happen: it was never sent
    /// ([`ErrorKind::Connect`], [`ErrorKind::InvalidRequest`], [`ErrorKind::RequestTooLarge`],
    /// [`ErrorKind::Config`]), or etcd refused it before applying ([`Code::NoLeader`],
    /// [`Code::PermissionDenied`], [`Code::NoSpace`], [`Code::RequestTooLarge`] and every other
    /// code). A failed transaction was not applied at all: etcd applies it whole or not at
    /// all. The crate docs have the whole table.
    ///
    /// ```no_run
    /// # async fn demo(kv: etcdv3::KvClient) -> etcdv3::Result<()> {
    /// use etcdv3::Kv;
    /// match kv.put("balance", "100").await {
    ///     Ok(_) => {}
    ///     // Safe to try again: etcd never applied it.
    ///     Err(e) if !e.may_have_been_applied() => kv.put("balance", "100").await.map(drop)?,
    ///     // Read back before deciding: the put may be there.
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn may_have_been_applied(&self) -> bool {
        match self.0.kind {
            ErrorKind::Config
            | ErrorKind::InvalidRequest
            | ErrorKind::RequestTooLarge
            | ErrorKind::Connect
            | ErrorKind::Lagged
            | ErrorKind::Io
            | ErrorKind::OldCluster
            | ErrorKind::SessionExpired
            | ErrorKind::Locked
            | ErrorKind::LockReleased
            | ErrorKind::NotElectionLeader
            | ErrorKind::NoElectionLeader
            | ErrorKind::Conflict => false,
            ErrorKind::Unavailable
            | ErrorKind::ResponseTooLarge
            | ErrorKind::Protocol
            | ErrorKind::LeaseExpired => true,
            ErrorKind::Timeout | ErrorKind::Closed | ErrorKind::Canceled | ErrorKind::Server => {
                if !self.0.sent {
                    return false;
                }
                match (self.0.code, self.0.grpc) {
                    (Some(code), _) => code.may_have_been_applied(),
                    // The client's own deadline, close or cancellation after sending.
                    (None, None) => true,
                    (None, Some(grpc)) => matches!(
                        grpc,
                        GrpcCode::Unavailable
                            | GrpcCode::Unknown
                            | GrpcCode::Internal
                            | GrpcCode::Canceled
                            | GrpcCode::DeadlineExceeded
                            | GrpcCode::DataLoss
                    ),
                }
            }
        }
    }

    /// An [`Stm`](crate::Stm) transaction gave up after
    /// [`max_attempts`](crate::Stm::max_attempts) conflicting commits
    /// ([`ErrorKind::Conflict`]); nothing was written.
    pub fn is_conflict(&self) -> bool {
        self.0.kind == ErrorKind::Conflict
    }

    /// The call was cancelled, by the caller or by the server.
    pub fn is_canceled(&self) -> bool {
        self.0.kind == ErrorKind::Canceled
            || self.has_code(Code::Canceled)
            || self.0.grpc == Some(GrpcCode::Canceled)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind);
        if let Some(code) = self.0.code {
            d.field("code", &code);
        }
        if let Some(grpc) = self.0.grpc {
            d.field("grpc", &grpc);
        }
        d.field("message", &self.0.message);
        if let Some(ep) = &self.0.endpoint {
            d.field("endpoint", ep);
        }
        if let Some(rev) = self.0.compact_revision {
            d.field("compact_revision", &rev);
        }
        if let Some(rev) = self.0.resume_revision {
            d.field("resume_revision", &rev);
        }
        if self.0.sent {
            d.field("sent", &true);
        }
        if let Some(source) = &self.0.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ep) = &self.0.endpoint {
            write!(f, "{ep}: ")?;
        }
        f.write_str(&self.0.message)?;
        if let Some(rev) = self.0.compact_revision {
            write!(f, " (compacted up to revision {rev})")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_message() {
        for (code, grpc, msg) in Code::ALL {
            assert_eq!(Code::from_message(msg), Some(*code));
            assert_eq!(code.message(), *msg);
            assert_eq!(code.grpc_code(), *grpc);
            assert!(msg.starts_with("etcdserver: "), "{msg}");
        }
        assert_eq!(Code::ALL.len(), 63);
    }

    #[test]
    fn unknown_messages_do_not_decode() {
        assert_eq!(Code::from_message("etcdserver: something new"), None);
        assert_eq!(Code::from_message(""), None);
        assert_eq!(Code::from_message("etcdserver: no leader "), None);
    }

    #[test]
    fn predicates_follow_codes() {
        let e = Error::server(
            Some(Code::NoLeader),
            GrpcCode::Unavailable,
            Code::NoLeader.message(),
        );
        assert!(e.is_no_leader());
        assert!(e.is_unavailable());
        assert!(!e.is_timeout());
        assert_eq!(e.kind(), ErrorKind::Server);

        let e = Error::server(
            Some(Code::Timeout),
            GrpcCode::Unavailable,
            Code::Timeout.message(),
        );
        assert!(e.is_timeout() && e.is_unavailable());

        let e = Error::server(
            Some(Code::Compacted),
            GrpcCode::OutOfRange,
            Code::Compacted.message(),
        )
        .with_compact_revision(7);
        assert!(e.is_compacted() && !e.is_unavailable());
        assert_eq!(e.compact_revision(), Some(7));
        assert!(e.to_string().contains("revision 7"));

        let e = Error::request_too_large(3_000_000, 2_097_152);
        assert!(e.is_request_too_large());
        assert!(e.to_string().contains("2097152"), "{e}");

        let e = Error::server(Some(Code::RequestTooLarge), GrpcCode::InvalidArgument, "x");
        assert!(e.is_request_too_large());
    }

    #[test]
    fn a_request_without_a_user_is_permission_denied() {
        for code in [Code::PermissionDenied, Code::UserEmpty] {
            let e = Error::server(Some(code), code.grpc_code(), code.message());
            assert!(e.is_permission_denied(), "{code:?}");
            assert!(!e.may_have_been_applied(), "{code:?}");
        }
        for code in [Code::AuthFailed, Code::InvalidAuthToken, Code::RoleNotFound] {
            let e = Error::server(Some(code), code.grpc_code(), code.message());
            assert!(!e.is_permission_denied(), "{code:?}");
        }
    }

    #[test]
    fn grpc_codes_by_number() {
        assert_eq!(GrpcCode::from_i32(0), GrpcCode::Ok);
        assert_eq!(GrpcCode::from_i32(4), GrpcCode::DeadlineExceeded);
        assert_eq!(GrpcCode::from_i32(8), GrpcCode::ResourceExhausted);
        assert_eq!(GrpcCode::from_i32(14), GrpcCode::Unavailable);
        assert_eq!(GrpcCode::from_i32(16), GrpcCode::Unauthenticated);
        assert_eq!(GrpcCode::from_i32(17), GrpcCode::Unknown);
        assert_eq!(GrpcCode::from_i32(-1), GrpcCode::Unknown);
    }

    #[test]
    fn what_may_have_been_applied() {
        let never_sent = Error::new(ErrorKind::Connect, "refused");
        assert!(!never_sent.may_have_been_applied());
        assert!(!Error::invalid("empty key").may_have_been_applied());
        assert!(!Error::request_too_large(3, 2).may_have_been_applied());
        let lost = Error::new(ErrorKind::Unavailable, "reset").sent();
        assert!(lost.may_have_been_applied());
        let early = Error::timeout(Duration::from_secs(1));
        assert!(!early.may_have_been_applied(), "timed out before sending");
        assert!(early.sent().may_have_been_applied());
        for code in Code::ALL.iter().map(|(c, _, _)| *c) {
            let e = Error::server(Some(code), code.grpc_code(), code.message());
            let applied = matches!(
                code,
                Code::Timeout
                    | Code::TimeoutDueToLeaderFail
                    | Code::TimeoutDueToConnectionLost
                    | Code::Stopped
                    | Code::Canceled
                    | Code::DeadlineExceeded
            );
            assert_eq!(e.may_have_been_applied(), applied, "{code:?}");
        }
        let raw = Error::server(None, GrpcCode::Unavailable, "transport is closing");
        assert!(raw.may_have_been_applied());
        let refused = Error::server(None, GrpcCode::Unimplemented, "unknown method");
        assert!(!refused.may_have_been_applied());
    }

    #[test]
    fn display_names_the_endpoint() {
        let e = Error::new(ErrorKind::Connect, "connection refused").with_endpoint("127.0.0.1:1");
        assert_eq!(e.to_string(), "127.0.0.1:1: connection refused");
        assert!(e.is_connect() && e.is_unavailable());
    }
}
