//! Clients of etcd's v3lock and v3election gRPC services, which run Go's `concurrency`
//! package inside the server.

use std::pin::Pin;
use std::task::{Context, Poll};

use etcdv3_proto::{v3electionpb as epb, v3lockpb as lpb};
use futures_util::Stream;
use futures_util::stream::{BoxStream, StreamExt};

use crate::call::{Call, CallOptions};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::kv::{KeyValue, ResponseHeader, header};
use crate::transport::rpc::Rpc;

/// etcd's Lock service (v3lock): [`Client::lock_service`]. Cheap to clone.
///
/// The server runs Go's `concurrency.Mutex` with a session on the caller's lease, so these
/// locks use the same keys as [`Mutex`](crate::Mutex) and exclude it both ways. The lock is
/// held until [`unlock`](Self::unlock) or until the lease ends.
///
/// ```no_run
/// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
/// let lease = client.lease().grant(10).await?;
/// let _alive = client.lease().keep_alive(lease.id());
/// let locked = client.lock_service().lock("jobs/lock", lease.id()).await?;
/// // ... holding it ...
/// client.lock_service().unlock(locked.key()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LockServiceClient {
    client: Client,
}

/// A Lock service lock request being built: [`LockServiceClient::lock`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcLockOp {
    name: Vec<u8>,
    lease: i64,
}

/// A Lock service unlock request being built: [`LockServiceClient::unlock`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcUnlockOp {
    key: Vec<u8>,
}

/// The answer to a Lock service lock: the key that holds the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockResponse {
    header: ResponseHeader,
    key: Vec<u8>,
}

impl LockResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The key that holds the lock (`name/<lease in hex>`): give it to
    /// [`LockServiceClient::unlock`].
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

/// The answer to a Lock service unlock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnlockResponse {
    header: ResponseHeader,
}

impl UnlockResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

fn check_name(what: &str, name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: the name must not be empty"
        )));
    }
    Ok(())
}

fn check_lease(what: &str, lease: i64) -> Result<()> {
    if lease <= 0 {
        return Err(Error::invalid(format!(
            "{what}: the lease ID must be positive (got {lease})"
        )));
    }
    Ok(())
}

impl LockServiceClient {
    pub(crate) fn new(client: Client) -> Self {
        LockServiceClient { client }
    }

    /// Acquires the lock `name` for lease `lease`, waiting for as long as it takes unless the
    /// call sets a `.timeout(d)`. An empty name or a lease ≤ 0 fail with
    /// [`ErrorKind::InvalidRequest`] before anything is sent; a lease etcd does not know with
    /// [`Code::LeaseNotFound`](crate::Code::LeaseNotFound).
    ///
    /// When the call is given up (timeout, dropped future) the server stops waiting and
    /// deletes its key. Not retried once it may have reached etcd.
    pub fn lock(&self, name: impl Into<Vec<u8>>, lease: i64) -> Call<LockServiceClient, RpcLockOp> {
        Call::new(
            self.clone(),
            RpcLockOp {
                name: name.into(),
                lease,
            },
        )
    }

    /// Releases the lock held by `key` (the key from [`lock`](Self::lock)): a plain delete.
    /// An empty key fails with [`ErrorKind::InvalidRequest`].
    pub fn unlock(&self, key: impl Into<Vec<u8>>) -> Call<LockServiceClient, RpcUnlockOp> {
        Call::new(self.clone(), RpcUnlockOp { key: key.into() })
    }

    async fn lock_now(self, op: RpcLockOp, options: CallOptions) -> Result<LockResponse> {
        check_name("lock", &op.name)?;
        check_lease("lock", op.lease)?;
        let req = lpb::LockRequest {
            name: op.name,
            lease: op.lease,
        };
        let r: lpb::LockResponse = self.client.unary(Rpc::Lock, req, options).await?;
        Ok(LockResponse {
            header: header(r.header),
            key: r.key,
        })
    }

    async fn unlock_now(self, op: RpcUnlockOp, options: CallOptions) -> Result<UnlockResponse> {
        check_name("unlock", &op.key)?;
        let req = lpb::UnlockRequest { key: op.key };
        let r: lpb::UnlockResponse = self.client.unary(Rpc::Unlock, req, options).await?;
        Ok(UnlockResponse {
            header: header(r.header),
        })
    }
}

crate::call::call_futures!(LockServiceClient {
    RpcLockOp => LockResponse: lock_now,
    RpcUnlockOp => UnlockResponse: unlock_now,
});

/// etcd's Election service (v3election): [`Client::election_service`]. Cheap to clone.
///
/// The server runs Go's `concurrency.Election` with a session on the caller's lease, so
/// these candidacies use the same keys as [`Election`](crate::Election) and each sees the
/// other's leaders. etcd's "election: not leader" and "election: no leader" answers come back
/// as [`ErrorKind::NotElectionLeader`] and [`ErrorKind::NoElectionLeader`].
///
/// ```no_run
/// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
/// let lease = client.lease().grant(10).await?;
/// let _alive = client.lease().keep_alive(lease.id());
/// let elections = client.election_service();
/// let won = elections.campaign("service/leader", lease.id(), "10.0.0.1").await?;
/// let leader = won.leader().expect("etcd names the leader key").clone();
/// elections.proclaim(&leader, "10.0.0.2").await?;
/// elections.resign(&leader).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ElectionServiceClient {
    client: Client,
}

/// What identifies a leadership: the election's name, the leader's key, its create revision
/// and lease (the Election service's `LeaderKey`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaderKey {
    name: Vec<u8>,
    key: Vec<u8>,
    rev: i64,
    lease: i64,
}

impl LeaderKey {
    /// A leader key from its parts, e.g. to resign a leadership won by an earlier process.
    pub fn new(name: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>, rev: i64, lease: i64) -> Self {
        LeaderKey {
            name: name.into(),
            key: key.into(),
            rev,
            lease,
        }
    }

    /// The election's name.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The leader's key (`name/<lease in hex>`).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The leader key's create revision.
    pub fn rev(&self) -> i64 {
        self.rev
    }

    /// The leader's lease.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    fn into_proto(self) -> epb::LeaderKey {
        epb::LeaderKey {
            name: self.name,
            key: self.key,
            rev: self.rev,
            lease: self.lease,
        }
    }
}

impl From<epb::LeaderKey> for LeaderKey {
    fn from(k: epb::LeaderKey) -> Self {
        LeaderKey::new(k.name, k.key, k.rev, k.lease)
    }
}

/// The answer to an Election service campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CampaignResponse {
    header: ResponseHeader,
    leader: Option<LeaderKey>,
}

impl CampaignResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The leadership won: give it to proclaim and resign.
    pub fn leader(&self) -> Option<&LeaderKey> {
        self.leader.as_ref()
    }
}

/// The answer to an Election service proclaim.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProclaimResponse {
    header: ResponseHeader,
}

impl ProclaimResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

/// The answer to an Election service resign.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResignResponse {
    header: ResponseHeader,
}

impl ResignResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

/// The Election service's leader: from [`ElectionServiceClient::leader`] and each message of
/// [`ElectionServiceClient::observe`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaderResponse {
    header: ResponseHeader,
    kv: Option<KeyValue>,
}

impl LeaderResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The leader's key and value (its proclaimed proposal).
    pub fn kv(&self) -> Option<&KeyValue> {
        self.kv.as_ref()
    }
}

impl From<epb::LeaderResponse> for LeaderResponse {
    fn from(r: epb::LeaderResponse) -> Self {
        LeaderResponse {
            header: header(r.header),
            kv: r.kv.map(KeyValue::from),
        }
    }
}

/// An Election service campaign being built: [`ElectionServiceClient::campaign`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcCampaignOp {
    name: Vec<u8>,
    lease: i64,
    value: Vec<u8>,
}

/// An Election service proclaim being built: [`ElectionServiceClient::proclaim`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcProclaimOp {
    leader: LeaderKey,
    value: Vec<u8>,
}

/// An Election service leader request being built: [`ElectionServiceClient::leader`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcLeaderOp {
    name: Vec<u8>,
}

/// An Election service observe being built: [`ElectionServiceClient::observe`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcObserveOp {
    name: Vec<u8>,
}

/// An Election service resign being built: [`ElectionServiceClient::resign`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcResignOp {
    leader: LeaderKey,
}

/// etcd sends the election package's errors as plain text statuses.
fn election_error(e: Error) -> Error {
    match e.message() {
        m if m.ends_with("election: not leader") => e.with_kind(ErrorKind::NotElectionLeader),
        m if m.ends_with("election: no leader") => e.with_kind(ErrorKind::NoElectionLeader),
        _ => e,
    }
}

impl ElectionServiceClient {
    pub(crate) fn new(client: Client) -> Self {
        ElectionServiceClient { client }
    }

    /// Runs for leader of `name` with lease `lease` and proposal `value`; returns once
    /// elected, waiting for as long as it takes unless the call sets a `.timeout(d)`. An
    /// empty name or a lease ≤ 0 fail with [`ErrorKind::InvalidRequest`] before anything is
    /// sent. Not retried once it may have reached etcd.
    pub fn campaign(
        &self,
        name: impl Into<Vec<u8>>,
        lease: i64,
        value: impl Into<Vec<u8>>,
    ) -> Call<ElectionServiceClient, RpcCampaignOp> {
        Call::new(
            self.clone(),
            RpcCampaignOp {
                name: name.into(),
                lease,
                value: value.into(),
            },
        )
    }

    /// Sets the leader's value; [`ErrorKind::NotElectionLeader`] when `leader` no longer
    /// leads.
    pub fn proclaim(
        &self,
        leader: &LeaderKey,
        value: impl Into<Vec<u8>>,
    ) -> Call<ElectionServiceClient, RpcProclaimOp> {
        Call::new(
            self.clone(),
            RpcProclaimOp {
                leader: leader.clone(),
                value: value.into(),
            },
        )
    }

    /// The current leader of `name`; [`ErrorKind::NoElectionLeader`] when there is none.
    pub fn leader(&self, name: impl Into<Vec<u8>>) -> Call<ElectionServiceClient, RpcLeaderOp> {
        Call::new(self.clone(), RpcLeaderOp { name: name.into() })
    }

    /// Follows the leader of `name`: a stream of its leaders and their proclamations. The
    /// first message comes once there is a leader; the stream has no deadline unless the
    /// call sets one.
    pub fn observe(&self, name: impl Into<Vec<u8>>) -> Call<ElectionServiceClient, RpcObserveOp> {
        Call::new(self.clone(), RpcObserveOp { name: name.into() })
    }

    /// Gives up the leadership `leader`.
    pub fn resign(&self, leader: &LeaderKey) -> Call<ElectionServiceClient, RpcResignOp> {
        Call::new(
            self.clone(),
            RpcResignOp {
                leader: leader.clone(),
            },
        )
    }

    async fn campaign_now(
        self,
        op: RpcCampaignOp,
        options: CallOptions,
    ) -> Result<CampaignResponse> {
        check_name("campaign", &op.name)?;
        check_lease("campaign", op.lease)?;
        let req = epb::CampaignRequest {
            name: op.name,
            lease: op.lease,
            value: op.value,
        };
        let r: epb::CampaignResponse = self
            .client
            .unary(Rpc::Campaign, req, options)
            .await
            .map_err(election_error)?;
        Ok(CampaignResponse {
            header: header(r.header),
            leader: r.leader.map(LeaderKey::from),
        })
    }

    async fn proclaim_now(
        self,
        op: RpcProclaimOp,
        options: CallOptions,
    ) -> Result<ProclaimResponse> {
        check_name("proclaim", &op.leader.name)?;
        let req = epb::ProclaimRequest {
            leader: Some(op.leader.into_proto()),
            value: op.value,
        };
        let r: epb::ProclaimResponse = self
            .client
            .unary(Rpc::Proclaim, req, options)
            .await
            .map_err(election_error)?;
        Ok(ProclaimResponse {
            header: header(r.header),
        })
    }

    async fn leader_now(self, op: RpcLeaderOp, options: CallOptions) -> Result<LeaderResponse> {
        check_name("leader", &op.name)?;
        let req = epb::LeaderRequest { name: op.name };
        let r: epb::LeaderResponse = self
            .client
            .unary(Rpc::Leader, req, options)
            .await
            .map_err(election_error)?;
        Ok(r.into())
    }

    async fn observe_now(self, op: RpcObserveOp, options: CallOptions) -> Result<ObserveStream> {
        check_name("observe", &op.name)?;
        let req = epb::LeaderRequest { name: op.name };
        let stream = self
            .client
            .open_stream::<_, epb::LeaderResponse>(Rpc::Observe, options, &[req])
            .await
            .map_err(election_error)?;
        let inner = futures_util::stream::unfold(Some(stream), |stream| async move {
            let mut stream = stream?;
            match stream.message().await {
                Ok(Some(r)) => Some((Ok(LeaderResponse::from(r)), Some(stream))),
                Ok(None) => None,
                Err(e) => Some((Err(election_error(e)), None)),
            }
        })
        .boxed();
        Ok(ObserveStream { inner })
    }

    async fn resign_now(self, op: RpcResignOp, options: CallOptions) -> Result<ResignResponse> {
        check_name("resign", &op.leader.name)?;
        let req = epb::ResignRequest {
            leader: Some(op.leader.into_proto()),
        };
        let r: epb::ResignResponse = self
            .client
            .unary(Rpc::Resign, req, options)
            .await
            .map_err(election_error)?;
        Ok(ResignResponse {
            header: header(r.header),
        })
    }
}

crate::call::call_futures!(ElectionServiceClient {
    RpcCampaignOp => CampaignResponse: campaign_now,
    RpcProclaimOp => ProclaimResponse: proclaim_now,
    RpcLeaderOp => LeaderResponse: leader_now,
    RpcObserveOp => ObserveStream: observe_now,
    RpcResignOp => ResignResponse: resign_now,
});

/// The leaders of an election as the Election service reports them: from
/// [`ElectionServiceClient::observe`]. Read it with [`message`](Self::message) or as a
/// [`Stream`]; dropping it ends the server-side observation.
pub struct ObserveStream {
    inner: BoxStream<'static, Result<LeaderResponse>>,
}

impl std::fmt::Debug for ObserveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserveStream").finish_non_exhaustive()
    }
}

impl ObserveStream {
    /// The next leader or proclamation; an error when the stream broke, then `None`.
    pub async fn message(&mut self) -> Result<Option<LeaderResponse>> {
        self.inner.next().await.transpose()
    }
}

impl Stream for ObserveStream {
    type Item = Result<LeaderResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}
