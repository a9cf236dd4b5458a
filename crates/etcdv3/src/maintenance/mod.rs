//! The Maintenance API: alarms, member status, defragmentation, hashes, leader transfer,
//! downgrades and snapshots.
//!
//! Most of it is about one member: [`status`](MaintenanceClient::status),
//! [`defragment`](MaintenanceClient::defragment), [`hash`](MaintenanceClient::hash),
//! [`hash_kv`](MaintenanceClient::hash_kv) and [`snapshot`](MaintenanceClient::snapshot) take
//! the endpoint to ask and never fail over to another (as Go's, which dial that endpoint).
//! Alarms and downgrades concern the whole cluster and go to any member.
//!
//! ```no_run
//! # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
//! let maintenance = client.maintenance();
//! for ep in client.endpoints() {
//!     let status = maintenance.status(&ep).await?;
//!     println!(
//!         "{ep}: etcd {}, {} of {} bytes in use, leader {:x}",
//!         status.version(),
//!         status.db_size_in_use(),
//!         status.db_size(),
//!         status.leader()
//!     );
//! }
//! let saved = maintenance
//!     .snapshot_save("http://127.0.0.1:2379", "/var/backups/etcd.db")
//!     .await?;
//! println!("{} bytes, restore with etcd {:?}", saved.size(), saved.version());
//! # Ok(()) }
//! ```

mod op;
mod snapshot;
mod types;

use std::path::PathBuf;
use std::time::Duration;

use etcdv3_proto::etcdserverpb as pb;
use tokio::time::Instant;

pub use self::op::{
    AlarmActivateOp, AlarmDisarmOp, AlarmListOp, DefragmentOp, DowngradeAction, DowngradeOp,
    HashKvOp, HashOp, MoveLeaderOp, SnapshotOp, SnapshotProgress, SnapshotSaveOp, StatusOp,
};
pub use self::snapshot::{SnapshotSaved, SnapshotStream};
pub use self::types::{
    AlarmMember, AlarmResponse, AlarmType, DefragmentResponse, DowngradeInfo, DowngradeResponse,
    HashKvResponse, HashResponse, MoveLeaderResponse, SnapshotResponse, StatusResponse,
};
use crate::call::{Call, CallOptions, Deadline};
use crate::client::Client;
use crate::error::{Code, Error, ErrorKind, GrpcCode, Result};
use crate::transport::rpc::Rpc;
use crate::transport::status::from_status;

/// The oldest etcd minor version this client supports, and that
/// [`ClientBuilder::reject_old_cluster`](crate::ClientBuilder::reject_old_cluster) accepts.
pub(crate) const MIN_SERVER_VERSION: (u64, u64) = (3, 4);

/// The Maintenance service of a [`Client`]: [`Client::maintenance`]. Cheap to clone.
///
/// Every method returns a [`Call`]: set its options, then `.await` it.
///
/// **Which member answers.** [`status`](Self::status), [`defragment`](Self::defragment),
/// [`hash`](Self::hash), [`hash_kv`](Self::hash_kv), [`snapshot`](Self::snapshot) and
/// [`snapshot_save`](Self::snapshot_save) ask the endpoint they are given, in the client's
/// list or not, with the client's settings, and never fail over to another (a failed
/// connection is retried on the same endpoint, within the call's deadline).
/// [`move_leader`](Self::move_leader) finds the leader itself. The alarm and downgrade calls
/// go to any member, with the client's usual failover.
#[derive(Debug, Clone)]
pub struct MaintenanceClient {
    client: Client,
}

impl MaintenanceClient {
    pub(crate) fn new(client: Client) -> Self {
        MaintenanceClient { client }
    }

    /// Lists the active alarms of every member.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// for alarm in client.maintenance().alarm_list().await?.alarms() {
    ///     println!("member {:x}: {}", alarm.member_id(), alarm.alarm());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn alarm_list(&self) -> Call<MaintenanceClient, AlarmListOp> {
        Call::new(self.clone(), AlarmListOp::new())
    }

    /// Disarms alarms: the `alarm` of member `member_id`, where member 0 stands for every
    /// member and [`AlarmType::None`] for every kind. `alarm_disarm(0, AlarmType::None)`
    /// disarms every alarm, as Go's `AlarmDisarm` with an empty `AlarmMember` does.
    ///
    /// With a wildcard, the active alarms are listed first and each one that matches is
    /// disarmed on its own; the answer lists them all. (etcd itself ignores wildcards in a
    /// disarm: Go resolves only the all-wildcard form, this client every form.) Disarming an
    /// alarm that is not active changes nothing and answers no alarm.
    ///
    /// A NOSPACE alarm comes back at the next write unless the database shrank under its
    /// quota first: compact, [`defragment`](Self::defragment) every member, then disarm.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// use etcdv3::AlarmType;
    ///
    /// let disarmed = client.maintenance().alarm_disarm(0, AlarmType::NoSpace).await?;
    /// println!("{} alarms disarmed", disarmed.alarms().len());
    /// # Ok(()) }
    /// ```
    pub fn alarm_disarm(
        &self,
        member_id: u64,
        alarm: AlarmType,
    ) -> Call<MaintenanceClient, AlarmDisarmOp> {
        Call::new(self.clone(), AlarmDisarmOp::new(member_id, alarm))
    }

    /// Raises `alarm` on member `member_id`, as etcd does itself when a member's quota runs
    /// out ([`AlarmType::NoSpace`]: the cluster then refuses writes) or its data is found
    /// corrupt ([`AlarmType::Corrupt`]: it refuses everything). Go has no such call; it is
    /// for tests and drills. Member 0, [`AlarmType::None`] and unknown kinds fail with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) before anything is sent.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, member: u64) -> etcdv3::Result<()> {
    /// use etcdv3::AlarmType;
    ///
    /// client.maintenance().alarm_activate(member, AlarmType::NoSpace).await?;
    /// # Ok(()) }
    /// ```
    pub fn alarm_activate(
        &self,
        member_id: u64,
        alarm: AlarmType,
    ) -> Call<MaintenanceClient, AlarmActivateOp> {
        Call::new(self.clone(), AlarmActivateOp::new(member_id, alarm))
    }

    /// The status of the member at `endpoint`: its version, database size, raft state, the
    /// leader it knows, its alarms. A malformed endpoint fails with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config).
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let status = client.maintenance().status("http://127.0.0.1:2379").await?;
    /// if status.is_leader() {
    ///     println!("{:x} leads term {}", status.header().member_id(), status.raft_term());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn status(&self, endpoint: impl Into<String>) -> Call<MaintenanceClient, StatusOp> {
        Call::new(self.clone(), StatusOp::new(endpoint))
    }

    /// Defragments the database of the member at `endpoint`, giving its free pages back to
    /// the file system. The member does not serve requests meanwhile, so do one member at a
    /// time. On a large database this takes longer than the default deadline: set one with
    /// `.timeout(d)`. It is not retried once it may have reached the member.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// use std::time::Duration;
    ///
    /// for ep in client.endpoints() {
    ///     client.maintenance().defragment(&ep).timeout(Duration::from_secs(60)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn defragment(&self, endpoint: impl Into<String>) -> Call<MaintenanceClient, DefragmentOp> {
        Call::new(self.clone(), DefragmentOp::new(endpoint))
    }

    /// The hash of the whole database of the member at `endpoint` (Go has no method for it).
    /// It is taken at whatever revision the member is at: to compare members, use
    /// [`hash_kv`](Self::hash_kv) with a revision.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let hash = client.maintenance().hash("http://127.0.0.1:2379").await?;
    /// println!("{:08x} at revision {}", hash.hash(), hash.header().revision());
    /// # Ok(()) }
    /// ```
    pub fn hash(&self, endpoint: impl Into<String>) -> Call<MaintenanceClient, HashOp> {
        Call::new(self.clone(), HashOp::new(endpoint))
    }

    /// The hash of the key-value history of the member at `endpoint`, from its compaction
    /// revision up to `revision` (0: the current one). Members that applied the same writes
    /// give the same hash for the same revision: a consistency check. A negative revision
    /// fails with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest); a compacted
    /// one with [`Code::Compacted`], a future one with [`Code::FutureRev`].
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// use etcdv3::Kv;
    ///
    /// let m = client.maintenance();
    /// let rev = client.kv().put("k", "v").await?.header().revision();
    /// let a = m.hash_kv("http://127.0.0.1:2379", rev).await?;
    /// let b = m.hash_kv("http://127.0.0.1:22379", rev).await?;
    /// assert_eq!(a.hash(), b.hash());
    /// # Ok(()) }
    /// ```
    pub fn hash_kv(
        &self,
        endpoint: impl Into<String>,
        revision: i64,
    ) -> Call<MaintenanceClient, HashKvOp> {
        Call::new(self.clone(), HashKvOp::new(endpoint, revision))
    }

    /// Makes member `target_id` the leader, and answers once it leads.
    ///
    /// Only the leader can hand leadership over, so this asks the status of every endpoint
    /// of the client, picks the leader they report (of the highest term) and sends the
    /// request to it, also when the leader is not in the client's list (its URL then comes
    /// from the member list). That is what `etcdctl move-leader` does; Go's `MoveLeader`
    /// sends the request to whichever endpoint its balancer picks and fails with
    /// [`Code::NotLeader`] unless it is the leader. On a client pinned to one endpoint
    /// ([`Client::for_endpoint`]) the request goes to that endpoint as it is, and a follower
    /// answers [`Code::NotLeader`].
    ///
    /// Target 0 fails with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest)
    /// before anything is sent; a target that is not a voting member with
    /// [`Code::BadLeaderTransferee`]; no leader with [`Code::NoLeader`]. The call's deadline
    /// covers the search and the transfer.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, follower: u64) -> etcdv3::Result<()> {
    /// client.maintenance().move_leader(follower).await?;
    /// # Ok(()) }
    /// ```
    pub fn move_leader(&self, target_id: u64) -> Call<MaintenanceClient, MoveLeaderOp> {
        Call::new(self.clone(), MoveLeaderOp::new(target_id))
    }

    /// Validates, enables or cancels a downgrade of the cluster version to `version`
    /// (`"major.minor.patch"`, one minor version below the current one; etcd 3.5+; ignored
    /// for [`DowngradeAction::Cancel`]). An empty version for the other actions fails with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) before anything is sent.
    /// etcd answers [`Code::WrongDowngradeVersionFormat`], [`Code::InvalidDowngradeTargetVersion`],
    /// [`Code::DowngradeInProcess`] or [`Code::NoInflightDowngrade`] when it refuses. Not
    /// retried once it may have reached etcd.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// use etcdv3::DowngradeAction;
    ///
    /// let m = client.maintenance();
    /// m.downgrade(DowngradeAction::Validate, "3.5.0").await?;
    /// let resp = m.downgrade(DowngradeAction::Enable, "3.5.0").await?;
    /// println!("cluster version {}", resp.version());
    /// # Ok(()) }
    /// ```
    pub fn downgrade(
        &self,
        action: DowngradeAction,
        version: impl Into<String>,
    ) -> Call<MaintenanceClient, DowngradeOp> {
        Call::new(self.clone(), DowngradeOp::new(action, version))
    }

    /// Streams a snapshot of the database of the member at `endpoint`: resolves once etcd
    /// sent its first message, to a [`SnapshotStream`] of the rest, which checks the sha256
    /// etcd appends.
    ///
    /// Opening is retried on the same endpoint (never another) until the call's deadline:
    /// the client's request timeout unless the call sets one. Once etcd started sending, a
    /// failure ends the stream with the error. A deadline set with `.timeout(d)` bounds the
    /// whole transfer; without one the transfer takes as long as it takes (`.no_deadline()`
    /// also lets the opening wait). Dropping the stream cancels it.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let mut snap = client.maintenance().snapshot("http://127.0.0.1:2379").await?;
    /// let mut bytes = Vec::with_capacity(snap.total_bytes() as usize);
    /// while let Some(msg) = snap.message().await? {
    ///     bytes.extend_from_slice(msg.blob());
    /// }
    /// // Here the checksum has matched: `bytes` is the database and its sha256.
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self, endpoint: impl Into<String>) -> Call<MaintenanceClient, SnapshotOp> {
        Call::new(self.clone(), SnapshotOp::new(endpoint))
    }

    /// Saves a snapshot of the member at `endpoint` to the file `path`, as Go's
    /// `snapshot.SaveWithVersion` and `etcdctl snapshot save` do, and returns its size and
    /// the storage version that made it (3.6+).
    ///
    /// It creates `path` + `.part` with mode 0600 first (so an unwritable destination fails
    /// with [`ErrorKind::Io`] before anything is asked of etcd), streams the snapshot into
    /// it, checks it (size % 512 == 32, and the trailing 32 bytes are the sha256 of the rest),
    /// syncs it and renames it to `path`, replacing any file there. `path` appears only
    /// complete: on any failure (the member dies, the checksum is wrong, the disk is full) or
    /// when the future is dropped, the `.part` file is removed and `path` is left as it was.
    /// `.progress(f)` reports the bytes written and the total. Deadlines are as for
    /// [`snapshot`](Self::snapshot).
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let saved = client
    ///     .maintenance()
    ///     .snapshot_save("http://127.0.0.1:2379", "backup.db")
    ///     .progress(|p| eprintln!("{} of {:?} bytes", p.written(), p.total()))
    ///     .await?;
    /// println!("{} bytes from etcd {:?}", saved.size(), saved.version());
    /// # Ok(()) }
    /// ```
    pub fn snapshot_save(
        &self,
        endpoint: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> Call<MaintenanceClient, SnapshotSaveOp> {
        Call::new(self.clone(), SnapshotSaveOp::new(endpoint, path))
    }

    async fn alarm_list_now(self, op: AlarmListOp, options: CallOptions) -> Result<AlarmResponse> {
        let r: pb::AlarmResponse = self
            .client
            .unary(Rpc::Alarm, op.into_proto(), options)
            .await?;
        Ok(r.into())
    }

    async fn alarm_disarm_now(
        self,
        op: AlarmDisarmOp,
        options: CallOptions,
    ) -> Result<AlarmResponse> {
        if op.is_exact() {
            let req = op::deactivate(op.member_id(), op.alarm());
            let r: pb::AlarmResponse = self.client.unary(Rpc::Alarm, req, options).await?;
            return Ok(r.into());
        }
        let listed = self
            .clone()
            .alarm_list_now(AlarmListOp::new(), options)
            .await?;
        let mut header = *listed.header();
        let mut disarmed = Vec::new();
        for m in listed.alarms() {
            if !op.matches(m.member_id(), m.alarm()) {
                continue;
            }
            let req = op::deactivate(m.member_id(), m.alarm());
            let r: pb::AlarmResponse = self.client.unary(Rpc::Alarm, req, options).await?;
            let r = AlarmResponse::from(r);
            header = *r.header();
            disarmed.extend_from_slice(r.alarms());
        }
        Ok(AlarmResponse::new(header, disarmed))
    }

    async fn alarm_activate_now(
        self,
        op: AlarmActivateOp,
        options: CallOptions,
    ) -> Result<AlarmResponse> {
        op.validate()?;
        let r: pb::AlarmResponse = self
            .client
            .unary(Rpc::Alarm, op.into_proto(), options)
            .await?;
        Ok(r.into())
    }

    async fn status_now(self, op: StatusOp, options: CallOptions) -> Result<StatusResponse> {
        let r: pb::StatusResponse = self
            .client
            .for_endpoint(op.endpoint())?
            .unary(Rpc::Status, pb::StatusRequest {}, options)
            .await?;
        Ok(r.into())
    }

    async fn defragment_now(
        self,
        op: DefragmentOp,
        options: CallOptions,
    ) -> Result<DefragmentResponse> {
        let r: pb::DefragmentResponse = self
            .client
            .for_endpoint(op.endpoint())?
            .unary(Rpc::Defragment, pb::DefragmentRequest {}, options)
            .await?;
        Ok(r.into())
    }

    async fn hash_now(self, op: HashOp, options: CallOptions) -> Result<HashResponse> {
        let r: pb::HashResponse = self
            .client
            .for_endpoint(op.endpoint())?
            .unary(Rpc::Hash, pb::HashRequest {}, options)
            .await?;
        Ok(r.into())
    }

    async fn hash_kv_now(self, op: HashKvOp, options: CallOptions) -> Result<HashKvResponse> {
        op.validate()?;
        let req = pb::HashKvRequest {
            revision: op.revision(),
        };
        let r: pb::HashKvResponse = self
            .client
            .for_endpoint(op.endpoint())?
            .unary(Rpc::HashKv, req, options)
            .await?;
        Ok(r.into())
    }

    async fn move_leader_now(
        self,
        op: MoveLeaderOp,
        options: CallOptions,
    ) -> Result<MoveLeaderResponse> {
        op.validate()?;
        let transfer = async {
            let leader = if self.client.is_pinned() {
                self.client.clone()
            } else {
                self.leader(options).await?
            };
            let r: pb::MoveLeaderResponse = leader
                .unary(Rpc::MoveLeader, op.into_proto(), options)
                .await?;
            Ok(r.into())
        };
        match self.client.prompt_timeout(options) {
            Some(d) => tokio::time::timeout(d, transfer)
                .await
                .unwrap_or_else(|_| Err(Error::timeout(d))),
            None => transfer.await,
        }
    }

    /// A client pinned to the leader: the member the client's endpoints report as leader (in
    /// the highest term), at one of those endpoints or else at its first client URL.
    async fn leader(&self, options: CallOptions) -> Result<Client> {
        let endpoints = self.client.endpoints();
        let asked = futures_util::future::join_all(endpoints.iter().map(|ep| async move {
            let r: pb::StatusResponse = self
                .client
                .for_endpoint(ep)?
                .unary(Rpc::Status, pb::StatusRequest {}, options)
                .await?;
            Ok::<_, Error>((ep, r))
        }))
        .await;
        let mut answers = Vec::new();
        let mut failure = None;
        for a in asked {
            match a {
                Ok(a) => answers.push(a),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        let Some(leader) = answers
            .iter()
            .filter(|(_, s)| s.leader != 0)
            .max_by_key(|(_, s)| s.raft_term)
            .map(|(_, s)| s.leader)
        else {
            return Err(failure.unwrap_or_else(|| {
                from_status(GrpcCode::Unavailable, Code::NoLeader.message())
                    .with_hint("no endpoint of the client knows a leader")
            }));
        };
        let member_of = |s: &pb::StatusResponse| s.header.as_ref().map(|h| h.member_id);
        if let Some((ep, _)) = answers.iter().find(|(_, s)| member_of(s) == Some(leader)) {
            return self.client.for_endpoint(ep);
        }
        let list = pb::MemberListRequest {
            linearizable: false,
        };
        let members: pb::MemberListResponse =
            self.client.unary(Rpc::MemberList, list, options).await?;
        let url = members
            .members
            .iter()
            .find(|m| m.id == leader)
            .and_then(|m| m.client_ur_ls.first())
            .ok_or_else(|| {
                from_status(GrpcCode::Unavailable, Code::NoLeader.message()).with_hint(&format!(
                    "the leader {leader:x} is not among the client's endpoints and has no \
                     client URL in the member list"
                ))
            })?;
        self.client.for_endpoint(url)
    }

    async fn downgrade_now(
        self,
        op: DowngradeOp,
        options: CallOptions,
    ) -> Result<DowngradeResponse> {
        op.validate()?;
        let r: pb::DowngradeResponse = self
            .client
            .unary(Rpc::Downgrade, op.into_proto(), options)
            .await?;
        Ok(r.into())
    }

    async fn snapshot_now(self, op: SnapshotOp, options: CallOptions) -> Result<SnapshotStream> {
        let deadline = match options.get_deadline() {
            Deadline::After(d) => Some((Instant::now() + d, d)),
            _ => None,
        };
        let member = self.client.for_endpoint(op.endpoint())?;
        let grpc = member
            .open_stream(Rpc::Snapshot, options, &[pb::SnapshotRequest {}])
            .await?;
        SnapshotStream::start(grpc, deadline).await
    }

    async fn snapshot_save_now(
        self,
        op: SnapshotSaveOp,
        options: CallOptions,
    ) -> Result<SnapshotSaved> {
        let (endpoint, path, progress) = op.into_parts();
        // Checked before the destination is touched, so a bad endpoint leaves no file.
        self.client.for_endpoint(&endpoint)?;
        let (file, part) = snapshot::create_part(&path).await?;
        let stream = match self.snapshot_now(SnapshotOp::new(endpoint), options).await {
            Ok(s) => s,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        snapshot::save(stream, file, part, path, progress.as_deref()).await
    }
}

impl Call<MaintenanceClient, SnapshotSaveOp> {
    /// Reports progress to `f`; see [`SnapshotSaveOp::progress`].
    pub fn progress(self, f: impl Fn(SnapshotProgress) + Send + Sync + 'static) -> Self {
        self.map(|op| op.progress(f))
    }
}

crate::call::call_futures!(MaintenanceClient {
    AlarmListOp => AlarmResponse: alarm_list_now,
    AlarmDisarmOp => AlarmResponse: alarm_disarm_now,
    AlarmActivateOp => AlarmResponse: alarm_activate_now,
    StatusOp => StatusResponse: status_now,
    DefragmentOp => DefragmentResponse: defragment_now,
    HashOp => HashResponse: hash_now,
    HashKvOp => HashKvResponse: hash_kv_now,
    MoveLeaderOp => MoveLeaderResponse: move_leader_now,
    DowngradeOp => DowngradeResponse: downgrade_now,
    SnapshotOp => SnapshotStream: snapshot_now,
    SnapshotSaveOp => SnapshotSaved: snapshot_save_now,
});

/// The `major.minor` of a version string such as `"3.6.15"`.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Why a member's reported `version` is refused, if it is: older than
/// [`MIN_SERVER_VERSION`], or not a version at all.
fn refuse_version(endpoint: &str, version: &str) -> Option<Error> {
    let (min_major, min_minor) = MIN_SERVER_VERSION;
    match major_minor(version) {
        Some(v) if v >= MIN_SERVER_VERSION => None,
        Some(_) => Some(
            Error::new(
                ErrorKind::OldCluster,
                format!(
                    "the member at {endpoint} runs etcd {version}, older than {min_major}.{min_minor}, \
                     the oldest this client supports (upgrade it, or connect without \
                     reject_old_cluster)"
                ),
            )
            .with_endpoint(endpoint),
        ),
        None => Some(
            Error::protocol(format!(
                "the member at {endpoint} reports version {version:?}, which is not \
                 major.minor.patch"
            ))
            .with_endpoint(endpoint),
        ),
    }
}

/// Go's `RejectOldCluster`: asks every endpoint's status within `timeout` and fails when a
/// member is older than [`MIN_SERVER_VERSION`]. Endpoints that cannot be reached are
/// skipped, since connecting succeeds while one endpoint answers; when none answers, the
/// first failure is returned.
pub(crate) async fn check_cluster_version(client: &Client, timeout: Duration) -> Result<()> {
    let options = CallOptions::with_timeout(timeout);
    let endpoints = client.endpoints();
    let asked = futures_util::future::join_all(endpoints.iter().map(|ep| async move {
        let r: pb::StatusResponse = client
            .for_endpoint(ep)?
            .unary(Rpc::Status, pb::StatusRequest {}, options)
            .await?;
        Ok::<_, Error>(r.version)
    }))
    .await;
    let mut answered = false;
    let mut unreachable = None;
    for (ep, result) in endpoints.iter().zip(asked) {
        match result {
            Ok(version) => {
                answered = true;
                if let Some(e) = refuse_version(ep, &version) {
                    return Err(e);
                }
            }
            Err(e) if e.is_unavailable() || e.is_timeout() => {
                unreachable = unreachable.or(Some(e));
            }
            Err(e) => return Err(e),
        }
    }
    match (answered, unreachable) {
        (false, Some(e)) => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_to_major_minor() {
        assert_eq!(major_minor("3.6.15"), Some((3, 6)));
        assert_eq!(major_minor("3.4.0-rc.1"), Some((3, 4)));
        assert_eq!(major_minor("10.0"), Some((10, 0)));
        assert_eq!(major_minor("3"), None);
        assert_eq!(major_minor(""), None);
        assert_eq!(major_minor("x.y.z"), None);
    }

    #[test]
    fn members_older_than_3_4_are_refused() {
        for ok in ["3.4.0", "3.4.45", "3.5.34", "3.6.15", "3.7.2", "4.0.0"] {
            assert!(refuse_version("e", ok).is_none(), "{ok}");
        }
        for old in ["3.3.27", "3.2.0", "2.3.8"] {
            let e = refuse_version("http://e:2379", old).expect(old);
            assert!(e.is_old_cluster(), "{old}: {e:?}");
            assert!(e.to_string().contains(old), "{e}");
            assert_eq!(e.endpoint(), Some("http://e:2379"));
        }
        let e = refuse_version("e", "garbage").unwrap();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(!e.is_old_cluster());
    }
}
