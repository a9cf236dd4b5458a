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

/// Key, value pairs of a registration.
pub(crate) type Keys = Vec<(Vec<u8>, Vec<u8>)>;

/// A self-healing registration: a lease of `ttl` seconds and the keys put with it. Build it
/// with [`LeaseClient::register`](crate::LeaseClient::register).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegisterOp {
    ttl: i64,
    keys: Keys,
}

impl RegisterOp {
    /// A registration of `keys` (key, value pairs) under a lease of `ttl` seconds.
    pub fn new<K, V>(ttl: i64, keys: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<Vec<u8>>,
        V: Into<Vec<u8>>,
    {
        RegisterOp {
            ttl,
            keys: keys
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The TTL of each lease, in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The keys and their values, in the order given.
    pub fn keys(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.keys
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.ttl <= 0 {
            return Err(Error::invalid(format!(
                "lease register: the TTL must be positive (got {})",
                self.ttl
            )));
        }
        if self.keys.is_empty() {
            return Err(Error::invalid(
                "lease register: give at least one key to put with the lease",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (key, _) in &self.keys {
            if key.is_empty() {
                return Err(Error::invalid("lease register: a key must not be empty"));
            }
            if !seen.insert(key.as_slice()) {
                return Err(Error::invalid(format!(
                    "lease register: the key {:?} is given twice (etcd refuses a transaction \
                     that puts a key twice)",
                    String::from_utf8_lossy(key)
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn into_parts(self) -> (i64, Keys) {
        (self.ttl, self.keys)
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

    #[test]
    fn registrations_need_a_positive_ttl_and_distinct_non_empty_keys() {
        let one = [("svc/a", "1")];
        for ttl in [0, -1, i64::MIN] {
            let err = RegisterOp::new(ttl, one).validate().unwrap_err();
            assert!(err.is_invalid_request(), "{ttl}: {err:?}");
        }
        let none: [(&str, &str); 0] = [];
        assert!(
            RegisterOp::new(5, none)
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        let empty = RegisterOp::new(5, [("svc/a", "1"), ("", "2")]);
        assert!(empty.validate().unwrap_err().is_invalid_request());
        let twice = RegisterOp::new(5, [("svc/a", "1"), ("svc/b", "2"), ("svc/a", "3")]);
        assert!(twice.validate().unwrap_err().is_invalid_request());

        let ok = RegisterOp::new(5, [("svc/b", ""), ("svc/a", "1")]);
        ok.validate().unwrap();
        assert_eq!(ok.ttl(), 5);
        assert_eq!(
            ok.keys(),
            [
                (b"svc/b".to_vec(), Vec::new()),
                (b"svc/a".to_vec(), b"1".to_vec())
            ]
        );
    }
}
