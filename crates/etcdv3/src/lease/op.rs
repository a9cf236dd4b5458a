//! The requests of the Lease API, as values.

use etcdv3_proto::etcdserverpb as pb;

use crate::error::{Error, Result};

/// The longest TTL etcd grants, in seconds (Go's `MaxLeaseTTL`): a grant above it fails with
/// [`Code::LeaseTtlTooLarge`](crate::Code::LeaseTtlTooLarge).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// A lease grant: a TTL in seconds and, optionally, the lease ID to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrantOp {
    ttl: i64,
    id: Option<i64>,
}

impl GrantOp {
    /// A grant of a lease that lives `ttl` seconds unless kept alive; etcd chooses its ID.
    pub fn new(ttl: i64) -> Self {
        GrantOp { ttl, id: None }
    }

    /// Asks for this lease ID instead of letting etcd choose one (Go cannot). It must be
    /// positive; etcd answers [`Code::LeaseExist`](crate::Code::LeaseExist) when a lease with
    /// this ID exists.
    ///
    /// A grant with a chosen ID is never retried after it may have reached etcd: a retry of a
    /// grant that was applied would answer `LeaseExist`. A grant without one is retried like
    /// Go's (a grant applied twice leaves an unused lease that expires after its TTL).
    pub fn id(mut self, id: i64) -> Self {
        self.id = Some(id);
        self
    }

    /// The requested TTL in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The requested lease ID, if one was chosen.
    pub fn chosen_id(&self) -> Option<i64> {
        self.id
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.ttl <= 0 {
            return Err(Error::invalid(format!(
                "lease grant: the TTL must be positive (got {})",
                self.ttl
            )));
        }
        if let Some(id) = self.id
            && id <= 0
        {
            return Err(Error::invalid(format!(
                "lease grant: a chosen lease ID must be positive (got {id})"
            )));
        }
        Ok(())
    }

    pub(crate) fn into_proto(self) -> pb::LeaseGrantRequest {
        pb::LeaseGrantRequest {
            ttl: self.ttl,
            id: self.id.unwrap_or(0),
        }
    }
}

/// A lease revocation: the lease ends at once and every key attached to it is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevokeOp {
    id: i64,
}

impl RevokeOp {
    /// Revokes lease `id`.
    pub fn new(id: i64) -> Self {
        RevokeOp { id }
    }

    /// The lease to revoke.
    pub fn id(&self) -> i64 {
        self.id
    }

    pub(crate) fn into_proto(self) -> pb::LeaseRevokeRequest {
        pb::LeaseRevokeRequest { id: self.id }
    }
}

/// A question about one lease: its remaining and granted TTL, and optionally its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimeToLiveOp {
    id: i64,
    keys: bool,
}

impl TimeToLiveOp {
    /// Asks about lease `id`.
    pub fn new(id: i64) -> Self {
        TimeToLiveOp { id, keys: false }
    }

    /// Also lists the keys attached to the lease (Go's `WithAttachedKeys`).
    pub fn with_keys(mut self) -> Self {
        self.keys = true;
        self
    }

    /// The lease asked about.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Whether the attached keys are asked for.
    pub fn wants_keys(&self) -> bool {
        self.keys
    }

    pub(crate) fn into_proto(self) -> pb::LeaseTimeToLiveRequest {
        pb::LeaseTimeToLiveRequest {
            id: self.id,
            keys: self.keys,
        }
    }
}

/// A request for the IDs of every lease in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LeasesOp {}

impl LeasesOp {
    /// Lists every lease.
    pub fn new() -> Self {
        LeasesOp {}
    }
}

/// One renewal of one lease, on a short stream of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeepAliveOnceOp {
    id: i64,
}

impl KeepAliveOnceOp {
    /// Renews lease `id` once.
    pub fn new(id: i64) -> Self {
        KeepAliveOnceOp { id }
    }

    /// The lease to renew.
    pub fn id(&self) -> i64 {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_need_a_positive_ttl_and_id() {
        for ttl in [0, -1, i64::MIN] {
            let err = GrantOp::new(ttl).validate().unwrap_err();
            assert!(err.is_invalid_request(), "{ttl}: {err:?}");
        }
        for id in [0, -7] {
            let err = GrantOp::new(10).id(id).validate().unwrap_err();
            assert!(err.is_invalid_request(), "{id}: {err:?}");
        }
        GrantOp::new(1).validate().unwrap();
        // The server judges the upper bound: it answers LeaseTtlTooLarge.
        GrantOp::new(MAX_LEASE_TTL + 1).validate().unwrap();
        let req = GrantOp::new(30).id(77).into_proto();
        assert_eq!((req.ttl, req.id), (30, 77));
        assert_eq!(GrantOp::new(30).into_proto().id, 0, "0 lets etcd choose");
    }

    #[test]
    fn time_to_live_asks_for_keys_only_when_told() {
        assert!(!TimeToLiveOp::new(5).into_proto().keys);
        let req = TimeToLiveOp::new(5).with_keys().into_proto();
        assert!(req.keys);
        assert_eq!(req.id, 5);
    }
}
