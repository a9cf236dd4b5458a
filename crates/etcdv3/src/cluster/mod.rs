//! The Cluster API: list, add, remove, update and promote members.
//!
//! See [`ClusterClient`] for an example and what etcd refuses.

mod op;
mod types;

use etcdv3_proto::etcdserverpb as pb;

pub use self::op::{MemberAddOp, MemberListOp, MemberPromoteOp, MemberRemoveOp, MemberUpdateOp};
pub use self::types::{
    Member, MemberAddResponse, MemberListResponse, MemberPromoteResponse, MemberRemoveResponse,
    MemberUpdateResponse,
};
use crate::call::{Call, CallOptions};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::kv::header;
use crate::transport::rpc::Rpc;

/// The Cluster service of a [`Client`]: [`Client::cluster`]. Cheap to clone.
///
/// Every method returns a [`Call`]: set its options, then `.await` it. Member IDs are the
/// `u64` raft IDs etcd uses (`etcdctl` prints them in hex).
///
/// ```no_run
/// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
/// let cluster = client.cluster();
/// for m in cluster.member_list().await?.members() {
///     println!("{:x} {} {:?} learner={}", m.id(), m.name(), m.peer_urls(), m.is_learner());
/// }
///
/// // Grow the cluster safely: add a learner, start it, promote it once it caught up.
/// let added = cluster.member_add_as_learner(["http://10.0.0.4:2380"]).await?;
/// let id = added.member().id();
/// // ... start etcd on 10.0.0.4 with --initial-cluster-state=existing and
/// //     --initial-cluster=added.initial_cluster("node4") ...
/// loop {
///     match cluster.member_promote(id).await {
///         Ok(_) => break,
///         Err(e) if e.code() == Some(etcdv3::Code::LearnerNotReady) => {
///             tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///         }
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok(()) }
/// ```
///
/// # Behavior
///
/// - **Checked peer URLs.** `member_add`, `member_add_as_learner` and `member_update` check
///   their peer URLs before sending, as etcd would: at least one; each `http://host:port` or
///   `https://host:port`, or `unix://name` or `unixs://name`; no path (not even `/`), query,
///   fragment or user. A bad list fails with
///   [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) and a message naming the
///   URL and what is wrong; nothing is sent.
/// - **Retries.** Only `member_list` is retried on another member after a lost connection or
///   an `Unavailable` answer (as in Go). The changes are retried only when they provably were
///   not sent, or when a learner refused them and the client has other endpoints.
/// - **Learners** answer none of these calls (not even a serializable `member_list`): they
///   fail with [`Code::NotSupportedForLearner`](crate::Code::NotSupportedForLearner), and a
///   client with other endpoints moves the call to one of them.
/// - **etcd's own checks** (`--strict-reconfig-check`, on by default) refuse a change that
///   could cost the cluster its quorum: [`Code::Unhealthy`](crate::Code::Unhealthy) when the
///   member that handles it has not been connected to enough peers for the last 5 s (for
///   example just after the cluster started), and
///   [`Code::MemberNotEnoughStarted`](crate::Code::MemberNotEnoughStarted) when too few
///   voting members have started. Nothing changed then; retry later.
#[derive(Debug, Clone)]
pub struct ClusterClient {
    client: Client,
}

impl ClusterClient {
    pub(crate) fn new(client: Client) -> Self {
        ClusterClient { client }
    }

    /// Lists every member, learners included.
    ///
    /// Linearizable by default, like Go's `MemberList`: the member that answers first
    /// confirms with the leader that its view is current, so a change committed before the
    /// call is in the answer. `.serializable()` answers from that member's own view instead
    /// (Go's `WithSerializable()`): cheaper, and it works without a leader, but may miss a
    /// change committed a moment ago. etcd before 3.5 always answers serializably. Retried on
    /// another member after a lost connection or an `Unavailable` answer.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let list = client.cluster().member_list().await?;
    /// let learners = list.members().iter().filter(|m| m.is_learner()).count();
    /// println!("{} members, {learners} learners", list.members().len());
    ///
    /// let local = client.cluster().member_list().serializable().await?;
    /// # let _ = local;
    /// # Ok(()) }
    /// ```
    pub fn member_list(&self) -> Call<ClusterClient, MemberListOp> {
        Call::new(self.clone(), MemberListOp::new())
    }

    /// Adds a voting member that peers reach at `peer_urls`; start it afterwards with
    /// `--initial-cluster-state=existing` and
    /// [`MemberAddResponse::initial_cluster`]. Until it starts, it counts towards the quorum
    /// without voting: prefer [`member_add_as_learner`](Self::member_add_as_learner), then
    /// [`member_promote`](Self::member_promote).
    ///
    /// Bad peer URLs fail with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest)
    /// before anything is sent. etcd answers [`Code::PeerUrlExist`](crate::Code::PeerUrlExist)
    /// when a member already has one of the URLs, and may refuse for the cluster's safety
    /// ([`Code::Unhealthy`](crate::Code::Unhealthy),
    /// [`Code::MemberNotEnoughStarted`](crate::Code::MemberNotEnoughStarted)). Not retried once
    /// it may have reached etcd.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let added = client.cluster().member_add(["http://10.0.0.4:2380"]).await?;
    /// println!("new member {:x}", added.member().id());
    /// # Ok(()) }
    /// ```
    pub fn member_add<S: Into<String>>(
        &self,
        peer_urls: impl IntoIterator<Item = S>,
    ) -> Call<ClusterClient, MemberAddOp> {
        Call::new(self.clone(), MemberAddOp::new(peer_urls))
    }

    /// Adds a learner that peers reach at `peer_urls`: a member that receives the log but
    /// does not vote, so adding it cannot cost the quorum. It serves only serializable reads
    /// and `Status` until [`member_promote`](Self::member_promote) makes it a voter. etcd
    /// allows one learner at a time unless started with `--max-learners`: another answers
    /// [`Code::TooManyLearners`](crate::Code::TooManyLearners). Otherwise as
    /// [`member_add`](Self::member_add).
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let added = client.cluster().member_add_as_learner(["http://10.0.0.4:2380"]).await?;
    /// assert!(added.member().is_learner());
    /// # Ok(()) }
    /// ```
    pub fn member_add_as_learner<S: Into<String>>(
        &self,
        peer_urls: impl IntoIterator<Item = S>,
    ) -> Call<ClusterClient, MemberAddOp> {
        Call::new(self.clone(), MemberAddOp::new(peer_urls).as_learner())
    }

    /// Removes member `id` (a voter or a learner). A removed member that is running shuts
    /// itself down once it learns of the removal. Fails with
    /// [`Code::MemberNotFound`](crate::Code::MemberNotFound) when there is no such member, and
    /// may be refused for the cluster's safety
    /// ([`Code::Unhealthy`](crate::Code::Unhealthy),
    /// [`Code::MemberNotEnoughStarted`](crate::Code::MemberNotEnoughStarted)). Not retried
    /// once it may have reached etcd; send it to a member that stays, since the removed one
    /// may stop before it answers.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, id: u64) -> etcdv3::Result<()> {
    /// let left = client.cluster().member_remove(id).await?;
    /// assert!(left.member(id).is_none());
    /// # Ok(()) }
    /// ```
    pub fn member_remove(&self, id: u64) -> Call<ClusterClient, MemberRemoveOp> {
        Call::new(self.clone(), MemberRemoveOp::new(id))
    }

    /// Replaces the peer URLs of member `id` (a learner stays a learner). The member itself
    /// must listen on them for its peers to reach it. Bad peer URLs fail with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) before anything is
    /// sent; an unknown member with [`Code::MemberNotFound`](crate::Code::MemberNotFound),
    /// URLs another member has with [`Code::PeerUrlExist`](crate::Code::PeerUrlExist). Not
    /// retried once it may have reached etcd.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, id: u64) -> etcdv3::Result<()> {
    /// client.cluster().member_update(id, ["https://10.0.0.4:2380"]).await?;
    /// # Ok(()) }
    /// ```
    pub fn member_update<S: Into<String>>(
        &self,
        id: u64,
        peer_urls: impl IntoIterator<Item = S>,
    ) -> Call<ClusterClient, MemberUpdateOp> {
        Call::new(self.clone(), MemberUpdateOp::new(id, peer_urls))
    }

    /// Promotes learner `id` to a voting member. Any member may receive it (followers forward
    /// it to the leader). Until the learner has caught up with the leader's log (90 %), etcd
    /// answers [`Code::LearnerNotReady`](crate::Code::LearnerNotReady): retry later. A voter
    /// answers [`Code::MemberNotLearner`](crate::Code::MemberNotLearner), an unknown ID
    /// [`Code::MemberNotFound`](crate::Code::MemberNotFound). Not retried once it may have
    /// reached etcd. The answer comes once the change is committed; the promoted member
    /// itself refuses linearizable requests a moment longer, until it has applied it.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, id: u64) -> etcdv3::Result<()> {
    /// let promoted = client.cluster().member_promote(id).await?;
    /// assert!(!promoted.member(id).expect("still a member").is_learner());
    /// # Ok(()) }
    /// ```
    pub fn member_promote(&self, id: u64) -> Call<ClusterClient, MemberPromoteOp> {
        Call::new(self.clone(), MemberPromoteOp::new(id))
    }

    async fn list_now(self, op: MemberListOp, options: CallOptions) -> Result<MemberListResponse> {
        let r: pb::MemberListResponse = self
            .client
            .unary(Rpc::MemberList, op.into_proto(), options)
            .await?;
        Ok(r.into())
    }

    async fn add_now(self, op: MemberAddOp, options: CallOptions) -> Result<MemberAddResponse> {
        op.validate()?;
        let r: pb::MemberAddResponse = self
            .client
            .unary(Rpc::MemberAdd, op.into_proto(), options)
            .await?;
        let member = r
            .member
            .ok_or_else(|| Error::protocol("etcd answered a member add without the new member"))?;
        Ok(MemberAddResponse::new(
            header(r.header),
            member.into(),
            r.members,
        ))
    }

    async fn remove_now(
        self,
        op: MemberRemoveOp,
        options: CallOptions,
    ) -> Result<MemberRemoveResponse> {
        let r: pb::MemberRemoveResponse = self
            .client
            .unary(Rpc::MemberRemove, op.into_proto(), options)
            .await?;
        Ok(r.into())
    }

    async fn update_now(
        self,
        op: MemberUpdateOp,
        options: CallOptions,
    ) -> Result<MemberUpdateResponse> {
        op.validate()?;
        let r: pb::MemberUpdateResponse = self
            .client
            .unary(Rpc::MemberUpdate, op.into_proto(), options)
            .await?;
        Ok(r.into())
    }

    async fn promote_now(
        self,
        op: MemberPromoteOp,
        options: CallOptions,
    ) -> Result<MemberPromoteResponse> {
        let r: pb::MemberPromoteResponse = self
            .client
            .unary(Rpc::MemberPromote, op.into_proto(), options)
            .await?;
        Ok(r.into())
    }
}

impl Call<ClusterClient, MemberListOp> {
    /// Answers from one member's own view; see [`MemberListOp::serializable`].
    pub fn serializable(self) -> Self {
        self.map(MemberListOp::serializable)
    }
}

crate::call::call_futures!(ClusterClient {
    MemberListOp => MemberListResponse: list_now,
    MemberAddOp => MemberAddResponse: add_now,
    MemberRemoveOp => MemberRemoveResponse: remove_now,
    MemberUpdateOp => MemberUpdateResponse: update_now,
    MemberPromoteOp => MemberPromoteResponse: promote_now,
});
