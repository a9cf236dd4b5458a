//! Response types of the Maintenance API. Each carries every field etcd sends.

use std::fmt;

use etcdv3_proto::etcdserverpb as pb;

use crate::kv::ResponseHeader;

fn header(h: Option<pb::ResponseHeader>) -> ResponseHeader {
    h.map(ResponseHeader::from).unwrap_or_default()
}

/// The kind of an alarm etcd raises on a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AlarmType {
    /// No alarm. In [`alarm_disarm`](crate::MaintenanceClient::alarm_disarm) it stands for
    /// every kind.
    None,
    /// The backend quota (`--quota-backend-bytes`) is exhausted: etcd refuses writes with
    /// [`Code::NoSpace`](crate::Code::NoSpace) until the alarm is disarmed.
    NoSpace,
    /// A member found its data inconsistent with the others (3.3+): etcd refuses every
    /// request with [`Code::Corrupt`](crate::Code::Corrupt).
    Corrupt,
    /// A kind this client does not know, by its protobuf number (a newer etcd).
    Other(i32),
}

impl AlarmType {
    pub(crate) fn from_i32(n: i32) -> Self {
        match pb::AlarmType::try_from(n) {
            Ok(pb::AlarmType::None) => AlarmType::None,
            Ok(pb::AlarmType::Nospace) => AlarmType::NoSpace,
            Ok(pb::AlarmType::Corrupt) => AlarmType::Corrupt,
            Err(_) => AlarmType::Other(n),
        }
    }

    pub(crate) fn to_i32(self) -> i32 {
        match self {
            AlarmType::None => pb::AlarmType::None as i32,
            AlarmType::NoSpace => pb::AlarmType::Nospace as i32,
            AlarmType::Corrupt => pb::AlarmType::Corrupt as i32,
            AlarmType::Other(n) => n,
        }
    }
}

impl fmt::Display for AlarmType {
    /// etcd's name for the kind: `NONE`, `NOSPACE`, `CORRUPT`, or the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlarmType::None => f.write_str("NONE"),
            AlarmType::NoSpace => f.write_str("NOSPACE"),
            AlarmType::Corrupt => f.write_str("CORRUPT"),
            AlarmType::Other(n) => write!(f, "{n}"),
        }
    }
}

/// One alarm: a member and the kind of alarm raised on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AlarmMember {
    member_id: u64,
    alarm: AlarmType,
}

impl AlarmMember {
    /// The member the alarm is raised on.
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    /// The kind of alarm.
    pub fn alarm(&self) -> AlarmType {
        self.alarm
    }
}

impl From<pb::AlarmMember> for AlarmMember {
    fn from(m: pb::AlarmMember) -> Self {
        AlarmMember {
            member_id: m.member_id,
            alarm: AlarmType::from_i32(m.alarm),
        }
    }
}

/// The answer to an alarm request: the alarms listed, raised or disarmed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlarmResponse {
    header: ResponseHeader,
    alarms: Vec<AlarmMember>,
}

impl AlarmResponse {
    /// The response header (of the last request, when a disarm took several).
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// For a list, every active alarm; for an activation or a disarm, the alarms it changed
    /// (empty when there was nothing to change).
    pub fn alarms(&self) -> &[AlarmMember] {
        &self.alarms
    }

    pub(crate) fn new(header: ResponseHeader, alarms: Vec<AlarmMember>) -> Self {
        AlarmResponse { header, alarms }
    }
}

impl From<pb::AlarmResponse> for AlarmResponse {
    fn from(r: pb::AlarmResponse) -> Self {
        AlarmResponse {
            header: header(r.header),
            alarms: r.alarms.into_iter().map(AlarmMember::from).collect(),
        }
    }
}

/// A downgrade in progress, as a member reports it in its status (3.6+).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DowngradeInfo {
    enabled: bool,
    target_version: String,
}

impl DowngradeInfo {
    /// Whether a downgrade is enabled (between `downgrade(Enable, v)` and its completion or
    /// cancellation).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The cluster version the downgrade goes to, e.g. `"3.5.0"`; empty when none is enabled.
    pub fn target_version(&self) -> &str {
        &self.target_version
    }
}

/// The status of one member: [`MaintenanceClient::status`](crate::MaintenanceClient::status).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusResponse {
    header: ResponseHeader,
    version: String,
    db_size: i64,
    leader: u64,
    raft_index: u64,
    raft_term: u64,
    raft_applied_index: u64,
    errors: Vec<String>,
    db_size_in_use: i64,
    is_learner: bool,
    storage_version: String,
    db_size_quota: i64,
    downgrade_info: Option<DowngradeInfo>,
}

impl StatusResponse {
    /// The response header; its [`member_id`](ResponseHeader::member_id) is the member that
    /// answered.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The etcd version the member runs, e.g. `"3.6.15"`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The size of the member's backend database file, in bytes.
    pub fn db_size(&self) -> i64 {
        self.db_size
    }

    /// The bytes of the database actually in use (3.4+); the rest is free pages that
    /// [`defragment`](crate::MaintenanceClient::defragment) gives back. 0 from older members.
    pub fn db_size_in_use(&self) -> i64 {
        self.db_size_in_use
    }

    /// The member ID this member takes for the leader; 0 when it knows none.
    pub fn leader(&self) -> u64 {
        self.leader
    }

    /// Whether the member that answered is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.header.member_id()
    }

    /// The raft index the member has committed.
    pub fn raft_index(&self) -> u64 {
        self.raft_index
    }

    /// The member's raft term.
    pub fn raft_term(&self) -> u64 {
        self.raft_term
    }

    /// The raft index the member has applied (3.4+; 0 from older members).
    pub fn raft_applied_index(&self) -> u64 {
        self.raft_applied_index
    }

    /// Problems the member reports (3.4+): `"etcdserver: no leader"` and one entry per active
    /// alarm (e.g. `"memberID:… alarm:NOSPACE "`), as etcd writes them.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Whether the member is a learner (3.4+).
    pub fn is_learner(&self) -> bool {
        self.is_learner
    }

    /// The version of the member's storage format, e.g. `"3.6.0"` (3.6+; `None` from older
    /// members).
    pub fn storage_version(&self) -> Option<&str> {
        (!self.storage_version.is_empty()).then_some(self.storage_version.as_str())
    }

    /// The member's backend quota in bytes: `--quota-backend-bytes`, or etcd's default of
    /// 2 GiB without it (3.6+; 0 from older members).
    pub fn db_size_quota(&self) -> i64 {
        self.db_size_quota
    }

    /// The downgrade state the member knows (3.6+; `None` from older members).
    pub fn downgrade_info(&self) -> Option<&DowngradeInfo> {
        self.downgrade_info.as_ref()
    }
}

impl From<pb::StatusResponse> for StatusResponse {
    fn from(r: pb::StatusResponse) -> Self {
        StatusResponse {
            header: header(r.header),
            version: r.version,
            db_size: r.db_size,
            leader: r.leader,
            raft_index: r.raft_index,
            raft_term: r.raft_term,
            raft_applied_index: r.raft_applied_index,
            errors: r.errors,
            db_size_in_use: r.db_size_in_use,
            is_learner: r.is_learner,
            storage_version: r.storage_version,
            db_size_quota: r.db_size_quota,
            downgrade_info: r.downgrade_info.map(|d| DowngradeInfo {
                enabled: d.enabled,
                target_version: d.target_version,
            }),
        }
    }
}

/// The answer to a defragmentation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefragmentResponse {
    header: ResponseHeader,
}

impl DefragmentResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

impl From<pb::DefragmentResponse> for DefragmentResponse {
    fn from(r: pb::DefragmentResponse) -> Self {
        DefragmentResponse {
            header: header(r.header),
        }
    }
}

/// A hash of a member's whole backend database:
/// [`MaintenanceClient::hash`](crate::MaintenanceClient::hash).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashResponse {
    header: ResponseHeader,
    hash: u32,
}

impl HashResponse {
    /// The response header; its revision is the store's revision when the hash was taken.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The CRC-32 of the whole backend database (keys, leases, auth, membership), apart from
    /// the bookkeeping each member keeps for itself. For a consistency check between members,
    /// [`HashKvResponse::hash`] is the one etcd itself compares: it is tied to a revision.
    pub fn hash(&self) -> u32 {
        self.hash
    }
}

impl From<pb::HashResponse> for HashResponse {
    fn from(r: pb::HashResponse) -> Self {
        HashResponse {
            header: header(r.header),
            hash: r.hash,
        }
    }
}

/// A hash of a member's key-value history:
/// [`MaintenanceClient::hash_kv`](crate::MaintenanceClient::hash_kv).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashKvResponse {
    header: ResponseHeader,
    hash: u32,
    compact_revision: i64,
    hash_revision: i64,
}

impl HashKvResponse {
    /// The response header; its revision is the store's current revision.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The CRC-32 of every key-value revision from the compaction revision up to
    /// [`hash_revision`](Self::hash_revision). Members that agree on both revisions must
    /// give the same hash.
    pub fn hash(&self) -> u32 {
        self.hash
    }

    /// The compaction revision the hash starts after: the store's compaction revision below
    /// [`hash_revision`](Self::hash_revision) (-1 when nothing was compacted yet). Hashes of
    /// the same revision match only with the same compaction revision.
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// The revision the hash covers up to (3.6+; 0 from older members, where it is the
    /// requested revision, or the header's revision when 0 was asked).
    pub fn hash_revision(&self) -> i64 {
        self.hash_revision
    }
}

impl From<pb::HashKvResponse> for HashKvResponse {
    fn from(r: pb::HashKvResponse) -> Self {
        HashKvResponse {
            header: header(r.header),
            hash: r.hash,
            compact_revision: r.compact_revision,
            hash_revision: r.hash_revision,
        }
    }
}

/// The answer to a leader transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MoveLeaderResponse {
    header: ResponseHeader,
}

impl MoveLeaderResponse {
    /// The response header (of the former leader, which answers once the transfer is done).
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

impl From<pb::MoveLeaderResponse> for MoveLeaderResponse {
    fn from(r: pb::MoveLeaderResponse) -> Self {
        MoveLeaderResponse {
            header: header(r.header),
        }
    }
}

/// The answer to a downgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DowngradeResponse {
    header: ResponseHeader,
    version: String,
}

impl DowngradeResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The cluster version when etcd answered, `major.minor` (e.g. `"3.6"`).
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl From<pb::DowngradeResponse> for DowngradeResponse {
    fn from(r: pb::DowngradeResponse) -> Self {
        DowngradeResponse {
            header: header(r.header),
            version: r.version,
        }
    }
}

/// One message of a snapshot stream: a piece of the database, or at the end its checksum.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotResponse {
    header: ResponseHeader,
    remaining_bytes: u64,
    blob: Vec<u8>,
    version: String,
}

impl SnapshotResponse {
    /// The response header, as etcd sends it (etcd leaves it empty in snapshot messages).
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// How many database bytes etcd still has to send after this message; 0 in the last
    /// piece of the database and in the checksum message that follows it.
    pub fn remaining_bytes(&self) -> u64 {
        self.remaining_bytes
    }

    /// The bytes of this message, to be appended to what came before. The last 32 bytes of
    /// the stream are the sha256 of everything before them.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// Takes the bytes out.
    pub fn into_blob(self) -> Vec<u8> {
        self.blob
    }

    /// The storage version of the member that made the snapshot, e.g. `"3.6.0"`; see
    /// [`SnapshotStream::version`](crate::SnapshotStream::version) for when it is `None`.
    pub fn version(&self) -> Option<&str> {
        (!self.version.is_empty()).then_some(self.version.as_str())
    }
}

impl fmt::Debug for SnapshotResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotResponse")
            .field("header", &self.header)
            .field("remaining_bytes", &self.remaining_bytes)
            .field("blob", &format_args!("{} bytes", self.blob.len()))
            .field("version", &self.version)
            .finish()
    }
}

impl From<pb::SnapshotResponse> for SnapshotResponse {
    fn from(r: pb::SnapshotResponse) -> Self {
        SnapshotResponse {
            header: header(r.header),
            remaining_bytes: r.remaining_bytes,
            blob: r.blob,
            version: r.version,
        }
    }
}
