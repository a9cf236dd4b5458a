//! The Lease API: grant, revoke, time-to-live, list, and keep-alive.
//!
//! A lease is a TTL that etcd counts down; keys put with the lease
//! ([`PutOp::lease`](crate::PutOp::lease)) are deleted when it expires or is revoked. Lease IDs
//! are `i64`, as in [`KeyValue::lease`](crate::KeyValue::lease) and
//! [`Compare::lease`](crate::Compare::lease).
//!
//! ```no_run
//! # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
//! use etcdv3::Kv;
//!
//! let lease = client.lease().grant(10).await?;
//! client.kv().put("service/a", "10.0.0.1").lease(lease.id()).await?;
//!
//! // Keep it alive for as long as `alive` exists; it then expires and the key goes.
//! let mut alive = client.lease().keep_alive(lease.id());
//! while let Some(renewed) = alive.message().await? {
//!     println!("lease {:x} has {} s again", renewed.id(), renewed.ttl());
//! #   break;
//! }
//! client.lease().revoke(lease.id()).await?;
//! # Ok(()) }
//! ```
//!
//! # One rule for a missing lease
//!
//! Every call about a lease that does not exist (never granted, expired or revoked) fails with
//! [`Code::LeaseNotFound`](crate::Code::LeaseNotFound)
//! ([`Error::is_lease_not_found`](crate::Error::is_lease_not_found)): `revoke`,
//! `time_to_live`, `keep_alive_once`, a [`LeaseKeepAlive`] (which then ends), and a put with
//! the lease. Go differs: its `TimeToLive` answers TTL -1 without an error and its `KeepAlive`
//! channel closes silently.
//!
//! # Self-healing registration
//!
//! [`LeaseClient::register`] owns a lease and the keys put with it: when the lease is lost it
//! grants a new one, puts the keys again, and reports [`RegistrationEvent::Lost`] then
//! [`RegistrationEvent::Restored`] (Go has no such thing: its users watch the `KeepAlive`
//! channel and start over by hand).

mod keepalive;
mod op;
mod register;
mod types;

use std::sync::atomic::AtomicI64;

use etcdv3_proto::etcdserverpb as pb;

pub(crate) use self::keepalive::Keepers;
pub use self::keepalive::LeaseKeepAlive;
pub use self::op::{
    GrantOp, KeepAliveOnceOp, LeasesOp, MAX_LEASE_TTL, RegisterOp, RevokeOp, TimeToLiveOp,
};
pub use self::register::{Registration, RegistrationEvent};
pub use self::types::{
    LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse,
    LeaseStatus, LeaseTimeToLiveResponse,
};
use crate::call::{Call, CallOptions};
use crate::client::Client;
use crate::error::{Code, Error, GrpcCode, Result};
use crate::transport::rpc::Rpc;
use crate::transport::status::from_status;

/// The Lease service of a [`Client`]: [`Client::lease`]. Cheap to clone.
///
/// Every method but [`keep_alive`](Self::keep_alive) returns a [`Call`]: set its options, then
/// `.await` it. Keys put with a lease ([`PutOp::lease`](crate::PutOp::lease)) are deleted when
/// it expires or is revoked.
///
/// **One rule for a missing lease.** Every call about a lease that does not exist (never
/// granted, expired or revoked) fails with [`Code::LeaseNotFound`]
/// ([`Error::is_lease_not_found`]): `revoke`, `time_to_live`, `keep_alive_once`, a
/// [`LeaseKeepAlive`] (which then ends), and a put with the lease. Go differs: its
/// `TimeToLive` answers TTL -1 without an error and its `KeepAlive` channel closes silently.
#[derive(Debug, Clone)]
pub struct LeaseClient {
    client: Client,
}

impl LeaseClient {
    pub(crate) fn new(client: Client) -> Self {
        LeaseClient { client }
    }

    /// Grants a lease of `ttl` seconds (at most [`MAX_LEASE_TTL`]). Choose its ID with
    /// `.id(chosen)`.
    ///
    /// A TTL ≤ 0 or a chosen ID ≤ 0 fails with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) before anything is
    /// sent; a TTL above the maximum with [`Code::LeaseTtlTooLarge`], a chosen ID in use with
    /// [`Code::LeaseExist`]. A grant without a chosen ID is retried like a read (as in Go: a
    /// lease granted twice expires unused); one with a chosen ID is not retried once it may
    /// have reached etcd.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let lease = client.lease().grant(30).await?;
    /// println!("lease {:x} for {} s", lease.id(), lease.ttl());
    /// let mine = client.lease().grant(30).id(0x1234).await?;
    /// assert_eq!(mine.id(), 0x1234);
    /// # Ok(()) }
    /// ```
    pub fn grant(&self, ttl: i64) -> Call<LeaseClient, GrantOp> {
        Call::new(self.clone(), GrantOp::new(ttl))
    }

    /// Revokes lease `id`: it ends at once and its keys are deleted. Fails with
    /// [`Code::LeaseNotFound`] when there is no such lease.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, id: i64) -> etcdv3::Result<()> {
    /// client.lease().revoke(id).await?;
    /// # Ok(()) }
    /// ```
    pub fn revoke(&self, id: i64) -> Call<LeaseClient, RevokeOp> {
        Call::new(self.clone(), RevokeOp::new(id))
    }

    /// The remaining and granted TTL of lease `id`; `.with_keys()` also lists its keys. Fails
    /// with [`Code::LeaseNotFound`] when there is no such lease (Go answers TTL -1 instead).
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, id: i64) -> etcdv3::Result<()> {
    /// let ttl = client.lease().time_to_live(id).with_keys().await?;
    /// println!("{} of {} s left, {} keys", ttl.ttl(), ttl.granted_ttl(), ttl.keys().len());
    /// # Ok(()) }
    /// ```
    pub fn time_to_live(&self, id: i64) -> Call<LeaseClient, TimeToLiveOp> {
        Call::new(self.clone(), TimeToLiveOp::new(id))
    }

    /// Lists the IDs of every lease in the cluster.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// for id in client.lease().leases().await?.ids() {
    ///     println!("{id:x}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn leases(&self) -> Call<LeaseClient, LeasesOp> {
        Call::new(self.clone(), LeasesOp::new())
    }

    /// Renews lease `id` once, on a short stream of its own, and returns etcd's answer. Fails
    /// with [`Code::LeaseNotFound`] when there is no such lease. Its deadline is the client's
    /// request timeout unless the call sets one; it is retried on other members like a read.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, id: i64) -> etcdv3::Result<()> {
    /// let renewed = client.lease().keep_alive_once(id).await?;
    /// assert_eq!(renewed.id(), id);
    /// # Ok(()) }
    /// ```
    pub fn keep_alive_once(&self, id: i64) -> Call<LeaseClient, KeepAliveOnceOp> {
        Call::new(self.clone(), KeepAliveOnceOp::new(id))
    }

    /// Keeps lease `id` alive until the returned handle (and every other handle of the same
    /// lease) is dropped; the lease then expires after its TTL (it is not revoked).
    ///
    /// All leases of a client are renewed over one shared stream by one background task:
    /// each lease at a third of its TTL after etcd's last answer, once per period however
    /// many handles it has. When the stream breaks (its member died, the connection was lost,
    /// the member lost its leader) it is opened again at once on another member and every
    /// lease that is due is renewed. The stream always requires a leader.
    ///
    /// The handle yields each answer ([`LeaseKeepAlive::message`], or as a
    /// [`Stream`](futures_util::Stream)); a handle that is not read keeps only the latest one,
    /// and renewals go on at the same pace. It ends with an error:
    ///
    /// - [`Code::LeaseNotFound`] when etcd answers that the lease is gone (revoked, expired);
    /// - [`ErrorKind::LeaseExpired`](crate::ErrorKind::LeaseExpired) when no answer came
    ///   within the lease's TTL (for the first answer: the connect timeout + 1 s); the lease
    ///   may be gone;
    /// - [`ErrorKind::Closed`](crate::ErrorKind::Closed) when the client is closed or its last
    ///   handle dropped, and at once when called on a closed client.
    /// - [`Code::NoLeader`] when this `LeaseClient` comes from a client that requires a
    ///   leader ([`Client::with_require_leader`]) and the stream's member has none (Go's
    ///   `KeepAlive` with a require-leader context). Handles of other clients wait for a
    ///   leader on another stream, until their deadline.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// use futures_util::StreamExt;
    ///
    /// let lease = client.lease().grant(5).await?;
    /// let mut alive = client.lease().keep_alive(lease.id());
    /// while let Some(answer) = alive.next().await {
    ///     match answer {
    ///         Ok(renewed) => println!("{} s again", renewed.ttl()),
    ///         Err(e) if e.is_lease_not_found() || e.is_lease_expired() => break,
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn keep_alive(&self, id: i64) -> LeaseKeepAlive {
        self.client.keepers().keep_alive(&self.client, id)
    }

    /// Registers `keys` (key, value pairs) under a new lease of `ttl` seconds, kept alive and
    /// restored when lost: see [`Registration`].
    ///
    /// It grants the lease, puts every key with it in one transaction (all keys or none), and
    /// starts keeping it alive; it returns once the keys are in place. The call's options
    /// apply to each of its requests. A TTL ≤ 0, no keys, an empty key or a key given twice
    /// fail with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) before
    /// anything is sent; etcd's errors come back as they are (e.g. [`Code::TooManyOps`] for
    /// more keys than its `--max-txn-ops`, 128 by default). When the keys could not be put,
    /// the lease is revoked. Cancelling the call half-way leaves at most a lease that expires
    /// after its TTL, with its keys.
    ///
    /// Later, when the lease is lost, the registration grants a new one with the same TTL and
    /// puts the keys again (under the client's default options), until that works.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// use std::time::Duration;
    ///
    /// let reg = client
    ///     .lease()
    ///     .register(10, [("services/api/1", "10.0.0.1:8080"), ("health/api/1", "ok")])
    ///     .timeout(Duration::from_secs(3))
    ///     .await?;
    /// println!("lease {:x}", reg.lease_id());
    /// # Ok(()) }
    /// ```
    pub fn register<K, V>(
        &self,
        ttl: i64,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Call<LeaseClient, RegisterOp>
    where
        K: Into<Vec<u8>>,
        V: Into<Vec<u8>>,
    {
        Call::new(self.clone(), RegisterOp::new(ttl, keys))
    }

    async fn register_now(self, op: RegisterOp, options: CallOptions) -> Result<Registration> {
        op.validate()?;
        let (ttl, keys) = op.into_parts();
        let granted = AtomicI64::new(0);
        let id = register::grant_and_put(&self, ttl, &keys, options, &granted).await?;
        let alive = self.keep_alive(id);
        Ok(Registration::start(&self.client, id, ttl, keys, alive))
    }

    async fn grant_now(self, op: GrantOp, options: CallOptions) -> Result<LeaseGrantResponse> {
        op.validate()?;
        let rpc = match op.chosen_id() {
            Some(_) => Rpc::LeaseGrantWithId,
            None => Rpc::LeaseGrant,
        };
        let r: pb::LeaseGrantResponse = self.client.unary(rpc, op.into_proto(), options).await?;
        Ok(r.into())
    }

    async fn revoke_now(self, op: RevokeOp, options: CallOptions) -> Result<LeaseRevokeResponse> {
        let r: pb::LeaseRevokeResponse = self
            .client
            .unary(Rpc::LeaseRevoke, op.into_proto(), options)
            .await?;
        Ok(r.into())
    }

    async fn time_to_live_now(
        self,
        op: TimeToLiveOp,
        options: CallOptions,
    ) -> Result<LeaseTimeToLiveResponse> {
        let r: pb::LeaseTimeToLiveResponse = self
            .client
            .unary(Rpc::LeaseTimeToLive, op.into_proto(), options)
            .await?;
        // etcd answers TTL -1 for a lease it does not know (a live lease in its last second
        // has TTL 0).
        if r.ttl < 0 {
            return Err(lease_not_found(op.id(), "time-to-live answered TTL -1"));
        }
        Ok(r.into())
    }

    async fn leases_now(self, _op: LeasesOp, options: CallOptions) -> Result<LeaseLeasesResponse> {
        let r: pb::LeaseLeasesResponse = self
            .client
            .unary(Rpc::LeaseLeases, pb::LeaseLeasesRequest {}, options)
            .await?;
        Ok(r.into())
    }

    async fn keep_alive_once_now(
        self,
        op: KeepAliveOnceOp,
        options: CallOptions,
    ) -> Result<LeaseKeepAliveResponse> {
        let req = pb::LeaseKeepAliveRequest { id: op.id() };
        let mut stream = self
            .client
            .open_stream::<_, pb::LeaseKeepAliveResponse>(Rpc::LeaseKeepAliveOnce, options, &[req])
            .await?;
        let endpoint = stream.endpoint().clone();
        let r = stream.message().await?.ok_or_else(|| {
            Error::protocol("the keep-alive stream ended without an answer")
                .with_endpoint(&*endpoint)
        })?;
        if r.ttl <= 0 {
            return Err(
                lease_not_found(op.id(), "keep-alive answered TTL 0").with_endpoint(&*endpoint)
            );
        }
        Ok(r.into())
    }
}

/// The error of a call about a lease etcd does not know, in the shape etcd's own
/// `LeaseNotFound` status has.
pub(crate) fn lease_not_found(id: i64, what: &str) -> Error {
    from_status(GrpcCode::NotFound, Code::LeaseNotFound.message())
        .with_hint(&format!("lease {id} ({id:x}): {what}"))
}

impl Call<LeaseClient, GrantOp> {
    /// Asks for this lease ID; see [`GrantOp::id`].
    pub fn id(self, id: i64) -> Self {
        self.map(|op| op.id(id))
    }
}

impl Call<LeaseClient, TimeToLiveOp> {
    /// Also lists the keys attached to the lease; see [`TimeToLiveOp::with_keys`].
    pub fn with_keys(self) -> Self {
        self.map(TimeToLiveOp::with_keys)
    }
}

crate::call::call_futures!(LeaseClient {
    GrantOp => LeaseGrantResponse: grant_now,
    RevokeOp => LeaseRevokeResponse: revoke_now,
    TimeToLiveOp => LeaseTimeToLiveResponse: time_to_live_now,
    LeasesOp => LeaseLeasesResponse: leases_now,
    KeepAliveOnceOp => LeaseKeepAliveResponse: keep_alive_once_now,
    RegisterOp => Registration: register_now,
});
