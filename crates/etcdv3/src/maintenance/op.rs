//! The requests of the Maintenance API, as values.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use etcdv3_proto::etcdserverpb as pb;

use super::types::AlarmType;
use crate::error::{Error, Result};

/// Lists every active alarm of the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlarmListOp {}

impl AlarmListOp {
    /// Lists every alarm.
    pub fn new() -> Self {
        AlarmListOp {}
    }

    pub(crate) fn into_proto(self) -> pb::AlarmRequest {
        pb::AlarmRequest {
            action: pb::alarm_request::AlarmAction::Get as i32,
            member_id: 0,
            alarm: AlarmType::None.to_i32(),
        }
    }
}

/// Disarms alarms: one member's alarm of one kind, or, with wildcards, several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlarmDisarmOp {
    member_id: u64,
    alarm: AlarmType,
}

impl AlarmDisarmOp {
    /// Disarms the alarms of member `member_id` (0: every member) of kind `alarm`
    /// ([`AlarmType::None`]: every kind).
    pub fn new(member_id: u64, alarm: AlarmType) -> Self {
        AlarmDisarmOp { member_id, alarm }
    }

    /// The member whose alarms are disarmed; 0 for every member.
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    /// The kind of alarm disarmed; [`AlarmType::None`] for every kind.
    pub fn alarm(&self) -> AlarmType {
        self.alarm
    }

    /// Whether this request names one alarm exactly, so that it goes to etcd as it is; the
    /// others are resolved against the list of active alarms first.
    pub(crate) fn is_exact(&self) -> bool {
        self.member_id != 0 && self.alarm != AlarmType::None
    }

    /// Whether the active alarm `m` is one this request disarms.
    pub(crate) fn matches(&self, member_id: u64, alarm: AlarmType) -> bool {
        (self.member_id == 0 || self.member_id == member_id)
            && (self.alarm == AlarmType::None || self.alarm == alarm)
    }
}

pub(crate) fn deactivate(member_id: u64, alarm: AlarmType) -> pb::AlarmRequest {
    pb::AlarmRequest {
        action: pb::alarm_request::AlarmAction::Deactivate as i32,
        member_id,
        alarm: alarm.to_i32(),
    }
}

/// Raises an alarm on a member, as etcd does itself when a quota runs out or data is corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlarmActivateOp {
    member_id: u64,
    alarm: AlarmType,
}

impl AlarmActivateOp {
    /// Raises `alarm` on member `member_id`.
    pub fn new(member_id: u64, alarm: AlarmType) -> Self {
        AlarmActivateOp { member_id, alarm }
    }

    /// The member the alarm is raised on.
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    /// The kind of alarm raised.
    pub fn alarm(&self) -> AlarmType {
        self.alarm
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.member_id == 0 {
            return Err(Error::invalid(
                "alarm activate: name the member the alarm is raised on (member ID 0 is no member)",
            ));
        }
        match self.alarm {
            AlarmType::NoSpace | AlarmType::Corrupt => Ok(()),
            other => Err(Error::invalid(format!(
                "alarm activate: only NOSPACE and CORRUPT alarms can be raised (got {other}); \
                 etcd ignores NONE and stops on a kind it does not know"
            ))),
        }
    }

    pub(crate) fn into_proto(self) -> pb::AlarmRequest {
        pb::AlarmRequest {
            action: pb::alarm_request::AlarmAction::Activate as i32,
            member_id: self.member_id,
            alarm: self.alarm.to_i32(),
        }
    }
}

/// Asks one endpoint for its member's status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusOp {
    endpoint: String,
}

impl StatusOp {
    /// Asks `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        StatusOp {
            endpoint: endpoint.into(),
        }
    }

    /// The endpoint asked.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// Defragments the backend database of one endpoint's member.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefragmentOp {
    endpoint: String,
}

impl DefragmentOp {
    /// Defragments the member at `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        DefragmentOp {
            endpoint: endpoint.into(),
        }
    }

    /// The endpoint whose member is defragmented.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// Asks one endpoint for the hash of its member's whole database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashOp {
    endpoint: String,
}

impl HashOp {
    /// Asks `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        HashOp {
            endpoint: endpoint.into(),
        }
    }

    /// The endpoint asked.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// Asks one endpoint for the hash of its member's key-value history up to a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashKvOp {
    endpoint: String,
    revision: i64,
}

impl HashKvOp {
    /// Asks `endpoint` for the hash up to `revision` (0: the current revision).
    pub fn new(endpoint: impl Into<String>, revision: i64) -> Self {
        HashKvOp {
            endpoint: endpoint.into(),
            revision,
        }
    }

    /// The endpoint asked.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The revision the hash goes up to; 0 for the current one.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.revision < 0 {
            return Err(Error::invalid(format!(
                "hash_kv: the revision must not be negative (got {}; 0 means the current one)",
                self.revision
            )));
        }
        Ok(())
    }
}

/// Moves the cluster's leadership to another member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MoveLeaderOp {
    target_id: u64,
}

impl MoveLeaderOp {
    /// Makes member `target_id` the leader.
    pub fn new(target_id: u64) -> Self {
        MoveLeaderOp { target_id }
    }

    /// The member that is to lead.
    pub fn target_id(&self) -> u64 {
        self.target_id
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.target_id == 0 {
            return Err(Error::invalid(
                "move_leader: name the member that is to lead (member ID 0 is no member)",
            ));
        }
        Ok(())
    }

    pub(crate) fn into_proto(self) -> pb::MoveLeaderRequest {
        pb::MoveLeaderRequest {
            target_id: self.target_id,
        }
    }
}

/// What a downgrade request does (etcd 3.5+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DowngradeAction {
    /// Checks that the cluster can be downgraded to the version, changing nothing.
    Validate,
    /// Starts the downgrade: the cluster version goes down to the target, after which the
    /// members can be replaced with the older binary one at a time.
    Enable,
    /// Cancels a downgrade in progress.
    Cancel,
}

/// A downgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DowngradeOp {
    action: DowngradeAction,
    version: String,
}

impl DowngradeOp {
    /// A downgrade request; `version` is the target cluster version, `"major.minor.patch"`
    /// (e.g. `"3.5.0"`), and is not sent with [`DowngradeAction::Cancel`].
    pub fn new(action: DowngradeAction, version: impl Into<String>) -> Self {
        DowngradeOp {
            action,
            version: version.into(),
        }
    }

    /// What the request does.
    pub fn action(&self) -> DowngradeAction {
        self.action
    }

    /// The target version.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.action != DowngradeAction::Cancel && self.version.is_empty() {
            return Err(Error::invalid(format!(
                "downgrade {:?}: give the target version, e.g. \"3.5.0\"",
                self.action
            )));
        }
        Ok(())
    }

    pub(crate) fn into_proto(self) -> pb::DowngradeRequest {
        use pb::downgrade_request::DowngradeAction as A;
        let (action, version) = match self.action {
            DowngradeAction::Validate => (A::Validate, self.version),
            DowngradeAction::Enable => (A::Enable, self.version),
            DowngradeAction::Cancel => (A::Cancel, String::new()),
        };
        pb::DowngradeRequest {
            action: action as i32,
            version,
        }
    }
}

/// Streams a snapshot of one endpoint's member's database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotOp {
    endpoint: String,
}

impl SnapshotOp {
    /// A snapshot of the member at `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        SnapshotOp {
            endpoint: endpoint.into(),
        }
    }

    /// The endpoint the snapshot comes from.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// How far a [`snapshot_save`](crate::MaintenanceClient::snapshot_save) has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SnapshotProgress {
    written: u64,
    total: Option<u64>,
}

impl SnapshotProgress {
    pub(crate) fn new(written: u64, total: Option<u64>) -> Self {
        SnapshotProgress { written, total }
    }

    /// The bytes written to the file so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The size the file will have (the database and its 32-byte checksum), once etcd said
    /// how large the database is (in its first message).
    pub fn total(&self) -> Option<u64> {
        self.total
    }
}

type ProgressFn = Arc<dyn Fn(SnapshotProgress) + Send + Sync>;

/// Saves a snapshot of one endpoint's member to a file.
#[derive(Clone)]
#[non_exhaustive]
pub struct SnapshotSaveOp {
    endpoint: String,
    path: PathBuf,
    progress: Option<ProgressFn>,
}

impl SnapshotSaveOp {
    /// Saves the snapshot of the member at `endpoint` to `path`.
    pub fn new(endpoint: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        SnapshotSaveOp {
            endpoint: endpoint.into(),
            path: path.into(),
            progress: None,
        }
    }

    /// Calls `f` after each piece written to the file (and once before the first, with 0
    /// bytes written). It runs on the task that saves: keep it short and never block in it.
    pub fn progress(mut self, f: impl Fn(SnapshotProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// The endpoint the snapshot comes from.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Where the snapshot is saved.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn into_parts(self) -> (String, PathBuf, Option<ProgressFn>) {
        (self.endpoint, self.path, self.progress)
    }
}

impl fmt::Debug for SnapshotSaveOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotSaveOp")
            .field("endpoint", &self.endpoint)
            .field("path", &self.path)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disarm_wildcards_match_as_documented() {
        let all = AlarmDisarmOp::new(0, AlarmType::None);
        assert!(!all.is_exact());
        assert!(all.matches(7, AlarmType::NoSpace) && all.matches(8, AlarmType::Corrupt));
        let one_member = AlarmDisarmOp::new(7, AlarmType::None);
        assert!(
            one_member.matches(7, AlarmType::Corrupt) && !one_member.matches(8, AlarmType::Corrupt)
        );
        let one_kind = AlarmDisarmOp::new(0, AlarmType::NoSpace);
        assert!(
            one_kind.matches(8, AlarmType::NoSpace) && !one_kind.matches(8, AlarmType::Corrupt)
        );
        let exact = AlarmDisarmOp::new(7, AlarmType::NoSpace);
        assert!(exact.is_exact());
        assert!(exact.matches(7, AlarmType::NoSpace) && !exact.matches(8, AlarmType::NoSpace));
    }

    #[test]
    fn bad_requests_fail_before_sending() {
        assert!(
            AlarmActivateOp::new(0, AlarmType::NoSpace)
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        assert!(
            AlarmActivateOp::new(1, AlarmType::None)
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        assert!(
            AlarmActivateOp::new(1, AlarmType::Other(9))
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        AlarmActivateOp::new(1, AlarmType::Corrupt)
            .validate()
            .unwrap();
        assert!(
            MoveLeaderOp::new(0)
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        assert!(
            HashKvOp::new("e", -1)
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        HashKvOp::new("e", 0).validate().unwrap();
        assert!(
            DowngradeOp::new(DowngradeAction::Enable, "")
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        DowngradeOp::new(DowngradeAction::Cancel, "")
            .validate()
            .unwrap();
    }

    #[test]
    fn requests_reach_the_wire() {
        let r = AlarmListOp::new().into_proto();
        assert_eq!((r.action, r.member_id, r.alarm), (0, 0, 0));
        let r = AlarmActivateOp::new(5, AlarmType::NoSpace).into_proto();
        assert_eq!((r.action, r.member_id, r.alarm), (1, 5, 1));
        let r = deactivate(5, AlarmType::Corrupt);
        assert_eq!((r.action, r.member_id, r.alarm), (2, 5, 2));
        let r = DowngradeOp::new(DowngradeAction::Validate, "3.5.0").into_proto();
        assert_eq!((r.action, r.version.as_str()), (0, "3.5.0"));
        let r = DowngradeOp::new(DowngradeAction::Enable, "3.5.0").into_proto();
        assert_eq!(r.action, 1);
        let r = DowngradeOp::new(DowngradeAction::Cancel, "3.5.0").into_proto();
        assert_eq!((r.action, r.version.as_str()), (2, ""));
        assert_eq!(MoveLeaderOp::new(9).into_proto().target_id, 9);
    }

    #[test]
    fn alarm_types_round_trip() {
        for t in [
            AlarmType::None,
            AlarmType::NoSpace,
            AlarmType::Corrupt,
            AlarmType::Other(7),
        ] {
            assert_eq!(AlarmType::from_i32(t.to_i32()), t);
        }
        assert_eq!(AlarmType::NoSpace.to_string(), "NOSPACE");
    }
}
