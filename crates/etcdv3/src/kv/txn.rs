//! Transaction comparisons.

use etcdv3_proto::etcdserverpb as pb;

use super::range::{KeyRange, prefix_end};
use crate::error::{Error, Result};

/// A comparison in a transaction's guard: `target(key) op operand`.
///
/// Start from what is compared, then say how:
///
/// ```
/// use etcdv3::Compare;
///
/// let guards = [
///     Compare::value("config/mode").eq("active"),
///     Compare::version("config/mode").gt(2),
///     Compare::mod_revision("lock").lt(100),
///     Compare::create_revision("jobs/").eq(0).with_prefix(), // no key under jobs/ exists
///     Compare::key_missing("leader"),
/// ];
/// # let _ = guards;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    keys: KeyRange,
    result: CompareOp,
    operand: Operand,
}

/// How a comparison compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CompareOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `>`
    Greater,
    /// `<`
    Less,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    Value(Vec<u8>),
    Version(i64),
    CreateRevision(i64),
    ModRevision(i64),
    Lease(i64),
}

/// The left side of a comparison; finish it with [`eq`](CompareTarget::eq),
/// [`ne`](CompareTarget::ne), [`gt`](CompareTarget::gt) or [`lt`](CompareTarget::lt).
#[derive(Debug, Clone)]
#[must_use]
pub struct CompareTarget<T> {
    key: Vec<u8>,
    make: fn(T) -> Operand,
}

impl<T> CompareTarget<T> {
    fn finish(self, result: CompareOp, v: T) -> Compare {
        Compare {
            keys: KeyRange::key(self.key),
            result,
            operand: (self.make)(v),
        }
    }

    /// Holds when the target equals `v`.
    pub fn eq(self, v: impl Into<T>) -> Compare {
        self.finish(CompareOp::Equal, v.into())
    }

    /// Holds when the target differs from `v`.
    pub fn ne(self, v: impl Into<T>) -> Compare {
        self.finish(CompareOp::NotEqual, v.into())
    }

    /// Holds when the target is greater than `v`.
    pub fn gt(self, v: impl Into<T>) -> Compare {
        self.finish(CompareOp::Greater, v.into())
    }

    /// Holds when the target is less than `v`.
    pub fn lt(self, v: impl Into<T>) -> Compare {
        self.finish(CompareOp::Less, v.into())
    }

    /// Compares with an operator chosen at run time.
    pub fn compare(self, op: CompareOp, v: impl Into<T>) -> Compare {
        self.finish(op, v.into())
    }
}

impl Compare {
    /// Compares the key's value (bytewise).
    pub fn value(key: impl Into<Vec<u8>>) -> CompareTarget<Vec<u8>> {
        CompareTarget {
            key: key.into(),
            make: Operand::Value,
        }
    }

    /// Compares the key's version (0 when the key does not exist).
    pub fn version(key: impl Into<Vec<u8>>) -> CompareTarget<i64> {
        CompareTarget {
            key: key.into(),
            make: Operand::Version,
        }
    }

    /// Compares the key's creation revision (0 when the key does not exist).
    pub fn create_revision(key: impl Into<Vec<u8>>) -> CompareTarget<i64> {
        CompareTarget {
            key: key.into(),
            make: Operand::CreateRevision,
        }
    }

    /// Compares the key's last modification revision (0 when the key does not exist).
    pub fn mod_revision(key: impl Into<Vec<u8>>) -> CompareTarget<i64> {
        CompareTarget {
            key: key.into(),
            make: Operand::ModRevision,
        }
    }

    /// Compares the lease attached to the key (0 for none).
    pub fn lease(key: impl Into<Vec<u8>>) -> CompareTarget<i64> {
        CompareTarget {
            key: key.into(),
            make: Operand::Lease,
        }
    }

    /// Holds when the key exists (version > 0); Go's `clientv3util.KeyExists`.
    pub fn key_exists(key: impl Into<Vec<u8>>) -> Compare {
        Compare::version(key).gt(0)
    }

    /// Holds when the key does not exist (version = 0); Go's `clientv3util.KeyMissing`.
    pub fn key_missing(key: impl Into<Vec<u8>>) -> Compare {
        Compare::version(key).eq(0)
    }

    /// Applies the comparison to every key in `[key, end)`: it holds only when it holds for
    /// each of them.
    pub fn with_range(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.keys = self.keys.with_end(end);
        self
    }

    /// Applies the comparison to every key that starts with the key.
    pub fn with_prefix(mut self) -> Self {
        let end = prefix_end(self.keys.start());
        self.keys = self.keys.with_end(end);
        self
    }

    /// The keys compared.
    pub fn keys(&self) -> &KeyRange {
        &self.keys
    }

    /// The comparison operator.
    pub fn op(&self) -> CompareOp {
        self.result
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.keys.start().is_empty() {
            return Err(Error::invalid("txn compare: key must not be empty"));
        }
        Ok(())
    }

    pub(crate) fn into_proto(self) -> pb::Compare {
        use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
        let result = match self.result {
            CompareOp::Equal => R::Equal,
            CompareOp::NotEqual => R::NotEqual,
            CompareOp::Greater => R::Greater,
            CompareOp::Less => R::Less,
        };
        let (target, union) = match self.operand {
            Operand::Value(v) => (T::Value, U::Value(v)),
            Operand::Version(v) => (T::Version, U::Version(v)),
            Operand::CreateRevision(v) => (T::Create, U::CreateRevision(v)),
            Operand::ModRevision(v) => (T::Mod, U::ModRevision(v)),
            Operand::Lease(v) => (T::Lease, U::Lease(v)),
        };
        let (key, range_end) = self.keys.into_parts();
        pb::Compare {
            result: result as i32,
            target: target as i32,
            key,
            range_end,
            target_union: Some(union),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};

    #[test]
    fn compares_encode_target_result_and_operand() {
        let c = Compare::value("k").eq("v").into_proto();
        assert_eq!((c.target, c.result), (T::Value as i32, R::Equal as i32));
        assert_eq!(c.target_union, Some(U::Value(b"v".to_vec())));
        let c = Compare::version("k").ne(3).into_proto();
        assert_eq!(
            (c.target, c.result),
            (T::Version as i32, R::NotEqual as i32)
        );
        let c = Compare::create_revision("k").gt(4).into_proto();
        assert_eq!(c.target_union, Some(U::CreateRevision(4)));
        assert_eq!(c.result, R::Greater as i32);
        let c = Compare::mod_revision("k").lt(5).into_proto();
        assert_eq!((c.target, c.result), (T::Mod as i32, R::Less as i32));
        let c = Compare::lease("k")
            .compare(CompareOp::Equal, 77)
            .into_proto();
        assert_eq!(
            (c.target, c.target_union),
            (T::Lease as i32, Some(U::Lease(77)))
        );
    }

    #[test]
    fn ranges_and_helpers() {
        let c = Compare::create_revision("p/")
            .eq(0)
            .with_prefix()
            .into_proto();
        assert_eq!(c.range_end, b"p0");
        let c = Compare::version("a").eq(1).with_range("c").into_proto();
        assert_eq!(c.range_end, b"c");
        assert_eq!(Compare::key_exists("x"), Compare::version("x").gt(0));
        assert_eq!(Compare::key_missing("x"), Compare::version("x").eq(0));
        assert!(Compare::value("").eq("v").validate().is_err());
    }
}
