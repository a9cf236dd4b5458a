//! Response types of the Lease API.

use std::fmt;

use etcdv3_proto::etcdserverpb as pb;

use crate::kv::ResponseHeader;

fn header(h: Option<pb::ResponseHeader>) -> ResponseHeader {
    h.map(ResponseHeader::from).unwrap_or_default()
}

/// The answer to a lease grant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseGrantResponse {
    header: ResponseHeader,
    id: i64,
    ttl: i64,
    error: String,
}

impl LeaseGrantResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The ID of the new lease: the chosen one, or one etcd picked.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The TTL etcd granted, in seconds. etcd may raise a short TTL to its minimum (about
    /// 1.5 election timeouts).
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The `error` field of etcd's answer. etcd reports failures as errors of the call, so
    /// this is normally empty; it is kept because etcd sends it.
    pub fn error(&self) -> &str {
        &self.error
    }
}

impl From<pb::LeaseGrantResponse> for LeaseGrantResponse {
    fn from(r: pb::LeaseGrantResponse) -> Self {
        LeaseGrantResponse {
            header: header(r.header),
            id: r.id,
            ttl: r.ttl,
            error: r.error,
        }
    }
}

/// The answer to a lease revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseRevokeResponse {
    header: ResponseHeader,
}

impl LeaseRevokeResponse {
    /// The response header; its revision is the one that deleted the lease's keys.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

impl From<pb::LeaseRevokeResponse> for LeaseRevokeResponse {
    fn from(r: pb::LeaseRevokeResponse) -> Self {
        LeaseRevokeResponse {
            header: header(r.header),
        }
    }
}

/// What etcd knows about one lease.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseTimeToLiveResponse {
    header: ResponseHeader,
    id: i64,
    ttl: i64,
    granted_ttl: i64,
    keys: Vec<Vec<u8>>,
}

impl LeaseTimeToLiveResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The lease.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The remaining TTL in whole seconds, rounded down (0 in the last second of a live
    /// lease).
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The TTL given at the grant, in seconds.
    pub fn granted_ttl(&self) -> i64 {
        self.granted_ttl
    }

    /// The keys attached to the lease, sorted; empty unless asked for with
    /// [`with_keys`](crate::Call::with_keys).
    pub fn keys(&self) -> &[Vec<u8>] {
        &self.keys
    }
}

impl fmt::Debug for LeaseTimeToLiveResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| String::from_utf8_lossy(k))
            .collect();
        f.debug_struct("LeaseTimeToLiveResponse")
            .field("header", &self.header)
            .field("id", &self.id)
            .field("ttl", &self.ttl)
            .field("granted_ttl", &self.granted_ttl)
            .field("keys", &keys)
            .finish()
    }
}

impl From<pb::LeaseTimeToLiveResponse> for LeaseTimeToLiveResponse {
    fn from(r: pb::LeaseTimeToLiveResponse) -> Self {
        let mut keys = r.keys;
        keys.sort();
        LeaseTimeToLiveResponse {
            header: header(r.header),
            id: r.id,
            ttl: r.ttl,
            granted_ttl: r.granted_ttl,
            keys,
        }
    }
}

/// One lease in a [`LeaseLeasesResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct LeaseStatus {
    id: i64,
}

impl LeaseStatus {
    /// The lease ID.
    pub fn id(&self) -> i64 {
        self.id
    }
}

/// The leases of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseLeasesResponse {
    header: ResponseHeader,
    leases: Vec<LeaseStatus>,
}

impl LeaseLeasesResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// Every lease etcd holds, in no particular order.
    pub fn leases(&self) -> &[LeaseStatus] {
        &self.leases
    }

    /// The IDs of [`leases`](Self::leases).
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.leases.iter().map(LeaseStatus::id)
    }
}

impl From<pb::LeaseLeasesResponse> for LeaseLeasesResponse {
    fn from(r: pb::LeaseLeasesResponse) -> Self {
        LeaseLeasesResponse {
            header: header(r.header),
            leases: r
                .leases
                .into_iter()
                .map(|l| LeaseStatus { id: l.id })
                .collect(),
        }
    }
}

/// One renewal of a lease: from [`keep_alive_once`](crate::LeaseClient::keep_alive_once) or a
/// [`LeaseKeepAlive`](crate::LeaseKeepAlive).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseKeepAliveResponse {
    header: ResponseHeader,
    id: i64,
    ttl: i64,
}

impl LeaseKeepAliveResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The renewed lease.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The TTL the lease has again, in seconds (its granted TTL). Always positive: an answer
    /// that the lease is gone is a [`Code::LeaseNotFound`](crate::Code::LeaseNotFound) error.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }
}

impl From<pb::LeaseKeepAliveResponse> for LeaseKeepAliveResponse {
    fn from(r: pb::LeaseKeepAliveResponse) -> Self {
        LeaseKeepAliveResponse {
            header: header(r.header),
            id: r.id,
            ttl: r.ttl,
        }
    }
}
