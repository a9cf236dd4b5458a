//! An etcd v3 client: KV, transactions, compaction, watches, leases, auth, cluster
//! membership, maintenance, locks, elections and STM over a resilient transport, with typed
//! errors.
//!
//! ```no_run
//! use etcdv3::{Client, Compare, Kv, Op};
//!
//! # async fn demo() -> etcdv3::Result<()> {
//! let client = Client::connect(["http://127.0.0.1:2379"]).await?;
//! let kv = client.kv();
//!
//! kv.put("config/mode", "standby").await?;
//! let resp = kv.get("config/").prefix().await?;
//! assert_eq!(resp.count(), 1);
//!
//! // Switch atomically, only if nobody else did.
//! let txn = kv
//!     .txn()
//!     .when([Compare::value("config/mode").eq("standby")])
//!     .and_then([Op::put("config/mode", "active")])
//!     .await?;
//! assert!(txn.succeeded());
//!
//! // Old revisions can be compacted away; reading them is then a typed error.
//! let rev = txn.header().revision();
//! kv.compact(rev).await?;
//! let err = kv.get("config/mode").revision(rev - 1).await.unwrap_err();
//! assert!(err.is_compacted());
//!
//! // Follow changes: every revision once, in order, across member failures.
//! let mut watch = client.watch("config/").prefix().await?;
//! kv.put("config/mode", "standby").await?;
//! let resp = watch.message().await?.expect("the watch runs until cancelled");
//! assert_eq!(resp.events()[0].kv().value(), b"standby");
//!
//! // A key that lives as long as this process keeps its lease alive.
//! let lease = client.lease().grant(10).await?;
//! kv.put("workers/1", "busy").lease(lease.id()).await?;
//! let alive = client.lease().keep_alive(lease.id());
//! // ... work ...
//! drop(alive); // no longer renewed: the key goes after 10 s (or revoke it now)
//! client.lease().revoke(lease.id()).await?;
//! # Ok(()) }
//! ```
//!
//! # Behavior
//!
//! - **Connections.** [`Client::connect`] connects to every endpoint at once and succeeds when
//!   any one answers within the connect timeout; the error otherwise names each endpoint's
//!   failure. Each endpoint has one HTTP/2 connection that concurrent requests share.
//! - **Calls.** Every service method returns a [`Call`]: set `.timeout(d)`,
//!   `.require_leader()` or `.no_deadline()`, then `.await` it. A call owns a handle to its
//!   service, so its future is `Send + 'static`: `tokio::spawn(kv.put("k", "v").into_future())`.
//! - **Deadlines.** Every call has a deadline: the client's request timeout (10 s by default),
//!   or the call's own. It bounds retries too. Calls that wait by design (lock, campaign,
//!   observe, the opening of streams) have none unless they set one; a call with no deadline
//!   ends when it succeeds, fails for good, is dropped or the client closes.
//! - **Failover and retries.** Requests go round-robin to endpoints that are up. A request
//!   whose connection could not be made moves to the next endpoint, whatever it is. Reads
//!   (gets and read-only transactions) are also retried on other endpoints after a lost
//!   connection or an `Unavailable` answer. Writes that may have reached the server are never
//!   retried: you get the error and [`Error::may_have_been_applied`] tells you what it means.
//! - **One member.** [`Client::for_endpoint`] pins calls to one endpoint, in the list or not,
//!   with the client's settings and no failover.
//! - **Closing.** [`Client::close`] ends every stream, background task and connection and
//!   returns when they are gone; later calls fail with [`ErrorKind::Closed`]. Dropping the last
//!   clone does the same without waiting.
//! - **Validation.** Empty keys, negative revisions or limits, contradictory put options and
//!   requests over the send limit fail before anything is sent.
//! - **Cancellation.** Dropping a request future cancels the request: the client resets its
//!   HTTP/2 stream and etcd stops working on it. A write may still have been applied if it had
//!   already been sent.
//! - **Leases.** [`Client::lease`] grants, revokes, lists and inspects leases. Every lease a
//!   client keeps alive ([`LeaseClient::keep_alive`]) is renewed by one background task over
//!   one shared stream, at a third of its TTL; the stream moves to another member at once when
//!   its member fails. A lease that does not exist is always
//!   [`is_lease_not_found`](Error::is_lease_not_found) (Go answers some calls with TTL -1 or
//!   a silently closed channel); a kept lease that etcd stops answering for longer than its
//!   TTL ends its handle with [`ErrorKind::LeaseExpired`]. [`LeaseClient::register`] keeps a
//!   lease and its keys, and grants and puts them again when the lease is lost (reported as
//!   [`RegistrationEvent`]s).
//! - **Watches.** [`Client::watch`] returns a [`WatchStream`] once etcd created the watch. All
//!   watches of a client share one gRPC stream; when its member fails, every watch is created
//!   again on another member from the first revision it had not delivered, so nothing is lost
//!   or delivered twice. Each watch buffers at most [`WatchOp::buffer`] responses: a reader
//!   that falls further behind ends its own watch with [`ErrorKind::Lagged`] and the revision
//!   to resume from, without slowing anything else. Compaction ends a watch with
//!   [`Code::Compacted`] and the compaction revision, or, with
//!   [`resync_on_compaction`](WatchOp::resync_on_compaction), delivers the current state and
//!   goes on.
//! - **Auth administration.** [`Client::auth`] turns auth on and off and manages users,
//!   roles and their [`Permission`]s on [`KeyRange`]s. Empty names and passwords fail before
//!   anything is sent; passwords never show in `Debug` output or errors. Once auth is on, a
//!   request without a user fails with [`Code::UserEmpty`], which
//!   [`is_permission_denied`](Error::is_permission_denied) covers.
//! - **Membership.** [`Client::cluster`] lists, adds (as voters or learners), removes,
//!   updates and promotes members. Peer URLs are checked before anything is sent; only the
//!   member list is retried. A learner answers only serializable reads and `Status`: other
//!   calls sent to it fail with [`Code::NotSupportedForLearner`] and move to another endpoint
//!   when the client has one.
//! - **Maintenance.** [`Client::maintenance`] lists, raises and disarms alarms, and asks one
//!   member at a time (by endpoint, never failing over) for its status, hashes,
//!   defragmentation or a snapshot; a snapshot stream checks etcd's sha256 trailer, and
//!   [`MaintenanceClient::snapshot_save`] writes a file that appears only complete.
//!   [`MaintenanceClient::move_leader`] finds the leader itself.
//!   [`ClientBuilder::reject_old_cluster`] refuses members older than 3.4 at connect.
//! - **Locks and elections.** [`Session`], [`Mutex`] and [`Election`] use Go's key layout, so
//!   they interoperate with Go programs, `etcdctl lock`/`elect` and etcd's Lock and Election
//!   services ([`Client::lock_service`], [`Client::election_service`]). A `lock()` or
//!   `campaign()` dropped before it resolves deletes its key in the background.
//! - **Authenticated clients.** [`ClientBuilder::user`] authenticates at `connect` and
//!   refreshes the shared token when etcd stops accepting it; callers never see it.
//! - **Transactions in code.** [`Stm`] runs a closure that reads and writes keys over any
//!   [`Kv`] and commits its writes in one etcd transaction only if its reads are still
//!   current, running it again otherwise; the four [`Isolation`] levels are Go's.
//! - **Deleting everything.** As in Go, `kv.delete("").prefix()` (or [`KeyRange::all`]) deletes
//!   every key in the store. There is no confirmation.
//!
//! # Errors: did my write happen?
//!
//! One [`Error`] type. etcd's own errors decode into [`Code`]; predicates such as
//! [`Error::is_compacted`] or [`Error::is_unavailable`] answer the usual questions, and
//! [`std::error::Error::source`] gives the underlying I/O, TLS or HTTP/2 error. For writes, the
//! question that matters is answered by [`Error::may_have_been_applied`]. Reads at a
//! compacted revision report where the store is compacted to ([`Error::compact_revision`]). The table follows
//! etcd's server code (`EtcdServer.processInternalRaftRequestOnce` and the gRPC layer in front
//! of it): a refusal comes before the proposal enters raft; a timeout, a stop or a cancellation
//! after it leaves the outcome unknown.
//!
//! | failure | [`kind`](Error::kind) | predicates | may have been applied |
//! |---|---|---|---|
//! | bad input, over the send limit | `InvalidRequest`, `RequestTooLarge` | `is_invalid_request`, `is_request_too_large` | no: never sent |
//! | could not connect, stream refused | `Connect` | `is_connect`, `is_unavailable` | no: never sent |
//! | etcd refused: no leader, not leader, too many requests, learner | `Server` | `is_no_leader`, `is_unavailable` ... | no: refused before raft |
//! | etcd refused: permission, no space, compacted, key not found, too large ... | `Server` | `is_permission_denied`, `is_no_space`, `is_compacted`, `is_request_too_large` ... | no: checked before or at apply, where a failed write changes nothing |
//! | etcd's commit wait ended: `Timeout`, `TimeoutDueToLeaderFail`, `TimeoutDueToConnectionLost` | `Server` (`Timeout` when the call's deadline had passed) | `is_timeout`, `is_unavailable` | **yes** |
//! | etcd stopped or cancelled the request: `Stopped`, `Canceled` | `Server` | `is_unavailable`, `is_canceled` | **yes** |
//! | the connection broke after sending | `Unavailable` | `is_unavailable` | **yes** |
//! | the call's deadline passed after sending (on the client, or etcd's gRPC `DeadlineExceeded`) | `Timeout` | `is_timeout` | **yes** |
//! | the call's deadline passed before sending (still dialling) | `Timeout` | `is_timeout` | no |
//! | the answer was over the receive limit, or garbled | `ResponseTooLarge`, `Protocol` | `is_response_too_large` | **yes**: etcd processed it |
//! | the client was closed while the call was in flight | `Closed` | `is_closed` | yes if it had been sent |
//!
//! A failed transaction (its compares false) is not an error: etcd applied the `or_else`
//! branch. An error from a transaction means none of it was applied, except where the table
//! says "yes".
//!
//! # Request size limits
//!
//! Three limits meet: the client's send limit
//! ([`ClientBuilder::max_send_message_size`], 2 MiB by default), etcd's `--max-request-bytes`
//! (1.5 MiB by default), and etcd's gRPC layer, which refuses any message over
//! `--max-request-bytes` + 512 KiB before etcd looks at it. With the defaults, a request over
//! 2 MiB fails on the client without being sent; one between 1.5 and 2 MiB reaches etcd, which
//! answers [`Code::RequestTooLarge`]. If you raise the client's limit above the server's gRPC
//! cap, etcd's gRPC layer answers instead; that refusal too is
//! [`is_request_too_large`](Error::is_request_too_large) with code [`Code::RequestTooLarge`].
//! Nothing over a limit is ever applied. To store larger values, raise `--max-request-bytes` on
//! every member and the client's send limit together.
//!
//! # Unix sockets
//!
//! etcd serves clients on a unix socket with `--listen-client-urls unix://NAME` (3.5 and
//! later); it creates the socket `NAME` in its working directory. Connect with
//! `unix://` and the socket's path (absolute, or relative to your working directory):
//! `Client::connect(["unix:///var/lib/etcd/etcd.sock"])`. `unixs://` uses TLS.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | yes | TLS and mutual TLS with rustls ([`TlsConfig`]) |

mod auth;
pub mod call;
mod client;
mod cluster;
mod concurrency;
mod config;
mod error;
mod kv;
mod lease;
mod maintenance;
mod transport;
mod watch;

pub use crate::auth::{
    AuthClient, AuthDisableOp, AuthDisableResponse, AuthEnableOp, AuthEnableResponse, AuthStatusOp,
    AuthStatusResponse, KeyPermission, Permission, RoleAddOp, RoleAddResponse, RoleDeleteOp,
    RoleDeleteResponse, RoleGetOp, RoleGetResponse, RoleGrantPermissionOp,
    RoleGrantPermissionResponse, RoleListOp, RoleListResponse, RoleRevokePermissionOp,
    RoleRevokePermissionResponse, UserAddOp, UserAddResponse, UserChangePasswordOp,
    UserChangePasswordResponse, UserDeleteOp, UserDeleteResponse, UserGetOp, UserGetResponse,
    UserGrantRoleOp, UserGrantRoleResponse, UserListOp, UserListResponse, UserRevokeRoleOp,
    UserRevokeRoleResponse,
};
pub use crate::call::{Call, CallOptions, Deadline};
pub use crate::client::Client;
pub use crate::cluster::{
    ClusterClient, Member, MemberAddOp, MemberAddResponse, MemberListOp, MemberListResponse,
    MemberPromoteOp, MemberPromoteResponse, MemberRemoveOp, MemberRemoveResponse, MemberUpdateOp,
    MemberUpdateResponse,
};
pub use crate::concurrency::{
    CampaignOp, CampaignResponse, DEFAULT_SESSION_TTL, Election, ElectionServiceClient, Isolation,
    LeaderKey, LeaderOp, LeaderResponse, LeaderStream, LockOp, LockResponse, LockServiceClient,
    Mutex, ObserveStream, ProclaimOp, ProclaimResponse, ResignOp, ResignResponse, RpcCampaignOp,
    RpcLeaderOp, RpcLockOp, RpcObserveOp, RpcProclaimOp, RpcResignOp, RpcUnlockOp, Session,
    SessionBuilder, Stm, StmTxn, TryLockOp, UnlockOp, UnlockResponse,
};
pub use crate::config::{Backoff, ClientBuilder, KeepAlive, TlsConfig};
pub use crate::error::{Code, Error, ErrorKind, GrpcCode, Result};
pub use crate::kv::{
    Compact, CompactOp, CompactResponse, Compare, CompareOp, CompareTarget, Delete, DeleteOp,
    DeleteResponse, Get, GetOp, GetResponse, KeyRange, KeyValue, Kv, KvClient, Op, OpResponse, Put,
    PutOp, PutResponse, ResponseHeader, SortOrder, SortTarget, Txn, TxnOp, TxnResponse, prefix_end,
};
pub use crate::lease::{
    GrantOp, KeepAliveOnceOp, LeaseClient, LeaseGrantResponse, LeaseKeepAlive,
    LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveResponse, LeasesOp, MAX_LEASE_TTL, RegisterOp, Registration, RegistrationEvent,
    RevokeOp, TimeToLiveOp,
};
pub use crate::maintenance::{
    AlarmActivateOp, AlarmDisarmOp, AlarmListOp, AlarmMember, AlarmResponse, AlarmType,
    DefragmentOp, DefragmentResponse, DowngradeAction, DowngradeInfo, DowngradeOp,
    DowngradeResponse, HashKvOp, HashKvResponse, HashOp, HashResponse, MaintenanceClient,
    MoveLeaderOp, MoveLeaderResponse, SnapshotOp, SnapshotProgress, SnapshotResponse,
    SnapshotSaveOp, SnapshotSaved, SnapshotStream, StatusOp, StatusResponse,
};
pub use crate::watch::{
    DEFAULT_WATCH_BUFFER, Event, EventKind, Watch, WatchClient, WatchHandle, WatchOp,
    WatchResponse, WatchStream,
};
