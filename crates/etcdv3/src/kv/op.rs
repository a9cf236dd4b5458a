//! Operations as values: what a get, put, delete or transaction asks for, independent of the
//! client that runs it.

use etcdv3_proto::etcdserverpb as pb;

use super::range::KeyRange;
use super::txn::Compare;
use crate::error::{Error, Result};

/// What to sort a get's results by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SortTarget {
    /// The key (bytewise).
    Key,
    /// The key's version.
    Version,
    /// The key's creation revision.
    CreateRevision,
    /// The key's last modification revision.
    ModRevision,
    /// The value (bytewise).
    Value,
}

/// Which direction to sort in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SortOrder {
    /// Smallest first.
    Ascend,
    /// Largest first.
    Descend,
}

impl SortTarget {
    fn to_proto(self) -> pb::range_request::SortTarget {
        use pb::range_request::SortTarget as T;
        match self {
            SortTarget::Key => T::Key,
            SortTarget::Version => T::Version,
            SortTarget::CreateRevision => T::Create,
            SortTarget::ModRevision => T::Mod,
            SortTarget::Value => T::Value,
        }
    }
}

/// One KV operation: the unit that [`Kv::execute`](crate::Kv::execute) runs and that
/// transactions are made of.
///
/// ```
/// use etcdv3::{Op, SortOrder, SortTarget};
///
/// let ops = [
///     Op::put("config/a", "1").prev_kv().into(),
///     Op::get("config/").prefix().sort(SortTarget::ModRevision, SortOrder::Descend).into(),
///     Op::delete("tmp/").prefix().into(),
/// ];
/// # let _: [Op; 3] = ops;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Op {
    /// Read keys.
    Get(GetOp),
    /// Write one key.
    Put(PutOp),
    /// Delete keys.
    Delete(DeleteOp),
    /// A nested transaction.
    Txn(TxnOp),
}

impl Op {
    /// A get of `keys` (a key, or any [`KeyRange`]).
    pub fn get(keys: impl Into<KeyRange>) -> GetOp {
        GetOp::new(keys)
    }

    /// A put of `value` at `key`.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> PutOp {
        PutOp::new(key, value)
    }

    /// A delete of `keys`.
    pub fn delete(keys: impl Into<KeyRange>) -> DeleteOp {
        DeleteOp::new(keys)
    }

    /// A transaction (usable nested inside another transaction).
    pub fn txn() -> TxnOp {
        TxnOp::default()
    }

    /// Whether the operation only reads (a get, or a transaction made only of gets).
    pub fn is_read_only(&self) -> bool {
        match self {
            Op::Get(_) => true,
            Op::Put(_) | Op::Delete(_) => false,
            Op::Txn(t) => t.is_read_only(),
        }
    }

    /// Checks the operation (and nested ones) before anything is sent.
    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            Op::Get(g) => g.validate(),
            Op::Put(p) => p.validate(),
            Op::Delete(d) => d.validate(),
            Op::Txn(t) => t.validate(),
        }
    }

    pub(crate) fn into_request_op(self) -> pb::RequestOp {
        use pb::request_op::Request;
        let request = match self {
            Op::Get(g) => Request::RequestRange(g.into_proto()),
            Op::Put(p) => Request::RequestPut(p.into_proto()),
            Op::Delete(d) => Request::RequestDeleteRange(d.into_proto()),
            Op::Txn(t) => Request::RequestTxn(t.into_proto()),
        };
        pb::RequestOp {
            request: Some(request),
        }
    }
}

fn check_key(what: &str, key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: key must not be empty (use KeyRange::all() or a prefix for whole ranges)"
        )));
    }
    Ok(())
}

fn check_non_negative(what: &str, name: &str, v: i64) -> Result<()> {
    if v < 0 {
        return Err(Error::invalid(format!(
            "{what}: {name} must not be negative, got {v}"
        )));
    }
    Ok(())
}

/// A get (etcd `Range`) request. Build with [`Op::get`] or [`Kv::get`](crate::Kv::get).
#[derive(Debug, Clone)]
#[must_use]
pub struct GetOp {
    keys: KeyRange,
    limit: i64,
    revision: i64,
    sort: Option<(SortTarget, SortOrder)>,
    serializable: bool,
    keys_only: bool,
    count_only: bool,
    min_mod_revision: i64,
    max_mod_revision: i64,
    min_create_revision: i64,
    max_create_revision: i64,
}

impl GetOp {
    /// A get of `keys`.
    pub fn new(keys: impl Into<KeyRange>) -> Self {
        GetOp {
            keys: keys.into(),
            limit: 0,
            revision: 0,
            sort: None,
            serializable: false,
            keys_only: false,
            count_only: false,
            min_mod_revision: 0,
            max_mod_revision: 0,
            min_create_revision: 0,
            max_create_revision: 0,
        }
    }

    /// Returns at most `limit` keys (0, the default, means no limit).
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }

    /// Reads at this revision (0, the default, means the latest).
    pub fn revision(mut self, revision: i64) -> Self {
        self.revision = revision;
        self
    }

    /// Sorts the results. Sorting by key ascending is what etcd does anyway and is sent as "no
    /// sort", so the server does not read the whole range first.
    pub fn sort(mut self, target: SortTarget, order: SortOrder) -> Self {
        self.sort = Some((target, order));
        self
    }

    /// Serves the read from the local member without going through consensus: faster, but it
    /// may return stale data.
    pub fn serializable(mut self) -> Self {
        self.serializable = true;
        self
    }

    /// Returns keys and metadata without values.
    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }

    /// Returns only the number of matching keys.
    pub fn count_only(mut self) -> Self {
        self.count_only = true;
        self
    }

    /// Only keys last modified at or after this revision.
    pub fn min_mod_revision(mut self, rev: i64) -> Self {
        self.min_mod_revision = rev;
        self
    }

    /// Only keys last modified at or before this revision.
    pub fn max_mod_revision(mut self, rev: i64) -> Self {
        self.max_mod_revision = rev;
        self
    }

    /// Only keys created at or after this revision.
    pub fn min_create_revision(mut self, rev: i64) -> Self {
        self.min_create_revision = rev;
        self
    }

    /// Only keys created at or before this revision.
    pub fn max_create_revision(mut self, rev: i64) -> Self {
        self.max_create_revision = rev;
        self
    }

    /// The key under the prefix that was created first (Go's `WithFirstCreate`): prefix, sort
    /// by creation revision ascending, limit 1.
    pub fn first_create(self) -> Self {
        self.top(SortTarget::CreateRevision, SortOrder::Ascend)
    }

    /// The key under the prefix that was created last (Go's `WithLastCreate`).
    pub fn last_create(self) -> Self {
        self.top(SortTarget::CreateRevision, SortOrder::Descend)
    }

    /// The smallest key under the prefix (Go's `WithFirstKey`).
    pub fn first_key(self) -> Self {
        self.top(SortTarget::Key, SortOrder::Ascend)
    }

    /// The largest key under the prefix (Go's `WithLastKey`).
    pub fn last_key(self) -> Self {
        self.top(SortTarget::Key, SortOrder::Descend)
    }

    /// The key under the prefix modified longest ago (Go's `WithFirstRev`).
    pub fn first_rev(self) -> Self {
        self.top(SortTarget::ModRevision, SortOrder::Ascend)
    }

    /// The key under the prefix modified most recently (Go's `WithLastRev`).
    pub fn last_rev(self) -> Self {
        self.top(SortTarget::ModRevision, SortOrder::Descend)
    }

    /// The first key under the prefix in the given order.
    fn top(self, target: SortTarget, order: SortOrder) -> Self {
        self.prefix().sort(target, order).limit(1)
    }

    /// Whether the read is serializable.
    pub fn is_serializable(&self) -> bool {
        self.serializable
    }

    /// The revision to read at (0 = latest).
    pub fn read_revision(&self) -> i64 {
        self.revision
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_key("get", self.keys.start())?;
        check_non_negative("get", "limit", self.limit)?;
        check_non_negative("get", "revision", self.revision)?;
        check_non_negative("get", "min_mod_revision", self.min_mod_revision)?;
        check_non_negative("get", "max_mod_revision", self.max_mod_revision)?;
        check_non_negative("get", "min_create_revision", self.min_create_revision)?;
        check_non_negative("get", "max_create_revision", self.max_create_revision)
    }

    pub(crate) fn into_proto(self) -> pb::RangeRequest {
        use pb::range_request::SortOrder as O;
        let (key, range_end) = self.keys.into_parts();
        let (target, order) = match self.sort {
            None | Some((SortTarget::Key, SortOrder::Ascend)) => {
                (pb::range_request::SortTarget::Key, O::None)
            }
            Some((t, SortOrder::Ascend)) => (t.to_proto(), O::Ascend),
            Some((t, SortOrder::Descend)) => (t.to_proto(), O::Descend),
        };
        pb::RangeRequest {
            key,
            range_end,
            limit: self.limit,
            revision: self.revision,
            sort_order: order as i32,
            sort_target: target as i32,
            serializable: self.serializable,
            keys_only: self.keys_only,
            count_only: self.count_only,
            min_mod_revision: self.min_mod_revision,
            max_mod_revision: self.max_mod_revision,
            min_create_revision: self.min_create_revision,
            max_create_revision: self.max_create_revision,
        }
    }
}

/// The key-range setters shared by requests that act on a range of keys.
macro_rules! key_range_setters {
    ($op:ident, $verb:literal) => {
        impl $op {
            #[doc = concat!("The keys this request ", $verb, ".")]
            pub fn keys(&self) -> &KeyRange {
                &self.keys
            }

            #[doc = concat!("Makes the request act on every key that starts with the given key (it ", $verb, " them).")]
            pub fn prefix(mut self) -> Self {
                self.keys = self.keys.into_prefix();
                self
            }

            #[doc = concat!("Makes the request act on every key from the given key to the end of the keyspace (it ", $verb, " them).")]
            pub fn from_key(mut self) -> Self {
                self.keys = self.keys.into_from_key();
                self
            }

            #[doc = concat!("Makes the request act on the keys in `[key, end)` (it ", $verb, " them).")]
            pub fn range_end(mut self, end: impl Into<Vec<u8>>) -> Self {
                self.keys = self.keys.with_end(end);
                self
            }
        }
    };
}

key_range_setters!(GetOp, "reads");
key_range_setters!(DeleteOp, "deletes");

/// A put request. Build with [`Op::put`] or [`Kv::put`](crate::Kv::put).
#[derive(Debug, Clone)]
#[must_use]
pub struct PutOp {
    key: Vec<u8>,
    value: Vec<u8>,
    lease: i64,
    prev_kv: bool,
    ignore_value: bool,
    ignore_lease: bool,
}

impl PutOp {
    /// A put of `value` at `key`.
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        PutOp {
            key: key.into(),
            value: value.into(),
            lease: 0,
            prev_kv: false,
            ignore_value: false,
            ignore_lease: false,
        }
    }

    /// The key written.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The value written.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// Attaches the key to a lease: the key is deleted when the lease expires.
    pub fn lease(mut self, lease: i64) -> Self {
        self.lease = lease;
        self
    }

    /// Returns the key-value as it was before the put.
    pub fn prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }

    /// Keeps the current value and only updates the lease (the key must exist; give an empty
    /// value).
    pub fn ignore_value(mut self) -> Self {
        self.ignore_value = true;
        self
    }

    /// Keeps the current lease and only updates the value (the key must exist; give no lease).
    pub fn ignore_lease(mut self) -> Self {
        self.ignore_lease = true;
        self
    }

    /// Whether the put keeps the stored value ([`PutOp::ignore_value`]).
    pub(crate) fn ignores_value(&self) -> bool {
        self.ignore_value
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_key("put", &self.key)?;
        if self.ignore_value && !self.value.is_empty() {
            return Err(Error::invalid(
                "put: ignore_value keeps the stored value, so the value given must be empty",
            ));
        }
        if self.ignore_lease && self.lease != 0 {
            return Err(Error::invalid(
                "put: ignore_lease keeps the stored lease, so no lease may be given",
            ));
        }
        Ok(())
    }

    pub(crate) fn into_proto(self) -> pb::PutRequest {
        pb::PutRequest {
            key: self.key,
            value: self.value,
            lease: self.lease,
            prev_kv: self.prev_kv,
            ignore_value: self.ignore_value,
            ignore_lease: self.ignore_lease,
        }
    }
}

/// A delete (etcd `DeleteRange`) request. Build with [`Op::delete`] or
/// [`Kv::delete`](crate::Kv::delete).
#[derive(Debug, Clone)]
#[must_use]
pub struct DeleteOp {
    keys: KeyRange,
    prev_kv: bool,
}

impl DeleteOp {
    /// A delete of `keys`.
    pub fn new(keys: impl Into<KeyRange>) -> Self {
        DeleteOp {
            keys: keys.into(),
            prev_kv: false,
        }
    }

    /// Returns the deleted key-values.
    pub fn prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_key("delete", self.keys.start())
    }

    pub(crate) fn into_proto(self) -> pb::DeleteRangeRequest {
        let (key, range_end) = self.keys.into_parts();
        pb::DeleteRangeRequest {
            key,
            range_end,
            prev_kv: self.prev_kv,
        }
    }
}

/// A transaction: if every comparison holds, run the `then` operations, else the `else`
/// operations, atomically. Build with [`Op::txn`] or [`Kv::txn`](crate::Kv::txn).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct TxnOp {
    compares: Vec<Compare>,
    success: Vec<Op>,
    failure: Vec<Op>,
}

impl TxnOp {
    /// Adds comparisons; all of them must hold for the `then` branch to run.
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compares.extend(compares);
        self
    }

    /// Adds operations to run when every comparison holds.
    pub fn and_then<O: Into<Op>>(mut self, ops: impl IntoIterator<Item = O>) -> Self {
        self.success.extend(ops.into_iter().map(Into::into));
        self
    }

    /// Adds operations to run when any comparison fails.
    pub fn or_else<O: Into<Op>>(mut self, ops: impl IntoIterator<Item = O>) -> Self {
        self.failure.extend(ops.into_iter().map(Into::into));
        self
    }

    /// Whether both branches only read.
    pub fn is_read_only(&self) -> bool {
        self.success
            .iter()
            .chain(&self.failure)
            .all(Op::is_read_only)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for c in &self.compares {
            c.validate()?;
        }
        self.success
            .iter()
            .chain(&self.failure)
            .try_for_each(Op::validate)
    }

    pub(crate) fn into_proto(self) -> pb::TxnRequest {
        pb::TxnRequest {
            compare: self.compares.into_iter().map(Compare::into_proto).collect(),
            success: self.success.into_iter().map(Op::into_request_op).collect(),
            failure: self.failure.into_iter().map(Op::into_request_op).collect(),
        }
    }
}

impl From<GetOp> for Op {
    fn from(op: GetOp) -> Self {
        Op::Get(op)
    }
}

impl From<PutOp> for Op {
    fn from(op: PutOp) -> Self {
        Op::Put(op)
    }
}

impl From<DeleteOp> for Op {
    fn from(op: DeleteOp) -> Self {
        Op::Delete(op)
    }
}

impl From<TxnOp> for Op {
    fn from(op: TxnOp) -> Self {
        Op::Txn(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::range_request::{SortOrder as PO, SortTarget as PT};

    #[test]
    fn sort_by_key_ascending_is_sent_as_no_sort() {
        let r = Op::get("a")
            .sort(SortTarget::Key, SortOrder::Ascend)
            .into_proto();
        assert_eq!(r.sort_order, PO::None as i32);
        let r = Op::get("a")
            .sort(SortTarget::Key, SortOrder::Descend)
            .into_proto();
        assert_eq!(
            (r.sort_target, r.sort_order),
            (PT::Key as i32, PO::Descend as i32)
        );
        let r = Op::get("a")
            .sort(SortTarget::ModRevision, SortOrder::Ascend)
            .into_proto();
        assert_eq!(
            (r.sort_target, r.sort_order),
            (PT::Mod as i32, PO::Ascend as i32)
        );
    }

    #[test]
    fn get_options_reach_the_request() {
        let r = Op::get("p/")
            .prefix()
            .limit(3)
            .revision(9)
            .serializable()
            .keys_only()
            .count_only()
            .min_mod_revision(1)
            .max_mod_revision(2)
            .min_create_revision(3)
            .max_create_revision(4)
            .into_proto();
        assert_eq!(
            (r.key.as_slice(), r.range_end.as_slice()),
            (&b"p/"[..], &b"p0"[..])
        );
        assert_eq!((r.limit, r.revision), (3, 9));
        assert!(r.serializable && r.keys_only && r.count_only);
        assert_eq!(
            (
                r.min_mod_revision,
                r.max_mod_revision,
                r.min_create_revision,
                r.max_create_revision
            ),
            (1, 2, 3, 4)
        );
    }

    #[test]
    fn validation_rejects_bad_requests_before_sending() {
        assert!(Op::get("").validate().unwrap_err().is_invalid_request());
        assert!(
            Op::put("", "v")
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        assert!(Op::delete("").validate().unwrap_err().is_invalid_request());
        assert!(Op::get("a").limit(-1).validate().is_err());
        assert!(Op::get("a").revision(-5).validate().is_err());
        assert!(Op::put("a", "v").ignore_value().validate().is_err());
        assert!(Op::put("a", "").ignore_value().validate().is_ok());
        assert!(
            Op::put("a", "v")
                .lease(5)
                .ignore_lease()
                .validate()
                .is_err()
        );
        let nested_bad = Op::txn().and_then([Op::txn().or_else([Op::put("", "x")])]);
        assert!(nested_bad.validate().is_err());
        assert!(Op::get(crate::KeyRange::all()).validate().is_ok());
        assert!(
            Op::get("").prefix().validate().is_ok(),
            "empty prefix = all keys"
        );
    }

    #[test]
    fn first_and_last_shorthands() {
        let r = Op::get("p/").last_create().into_proto();
        assert_eq!((r.range_end.as_slice(), r.limit), (&b"p0"[..], 1));
        assert_eq!(
            (r.sort_target, r.sort_order),
            (PT::Create as i32, PO::Descend as i32)
        );
        let r = Op::get("p/").first_key().into_proto();
        assert_eq!(
            (r.sort_order, r.limit),
            (PO::None as i32, 1),
            "key ascending is the default order"
        );
        let r = Op::get("p/").first_rev().into_proto();
        assert_eq!(
            (r.sort_target, r.sort_order),
            (PT::Mod as i32, PO::Ascend as i32)
        );
    }

    #[test]
    fn read_only_detection() {
        assert!(Op::from(Op::get("a")).is_read_only());
        assert!(!Op::from(Op::put("a", "b")).is_read_only());
        let t = Op::txn()
            .and_then([Op::get("a")])
            .or_else([Op::txn().and_then([Op::get("b")])]);
        assert!(t.is_read_only());
        let t = Op::txn()
            .and_then([Op::get("a")])
            .or_else([Op::delete("b")]);
        assert!(!t.is_read_only());
    }
}

/// A compaction request. Build with [`Kv::compact`](crate::Kv::compact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct CompactOp {
    revision: i64,
    physical: bool,
}

impl CompactOp {
    /// Compacts up to `revision`.
    pub fn new(revision: i64) -> Self {
        CompactOp {
            revision,
            physical: false,
        }
    }

    /// Waits until the compaction is applied to the backend database, so the space of the
    /// removed revisions can be reclaimed by a defragmentation.
    pub fn physical(mut self) -> Self {
        self.physical = true;
        self
    }

    /// The revision to compact up to.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Whether the compaction waits for the backend.
    pub fn is_physical(&self) -> bool {
        self.physical
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.revision <= 0 {
            return Err(Error::invalid(format!(
                "compact: revision must be positive, got {}",
                self.revision
            )));
        }
        Ok(())
    }

    pub(crate) fn into_proto(self) -> pb::CompactionRequest {
        pb::CompactionRequest {
            revision: self.revision,
            physical: self.physical,
        }
    }
}
