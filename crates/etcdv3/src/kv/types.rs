//! Response types of the KV API.

use std::fmt;

use etcdv3_proto::{etcdserverpb as pb, mvccpb};

use crate::error::{Error, Result};

/// The header every etcd response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseHeader {
    cluster_id: u64,
    member_id: u64,
    revision: i64,
    raft_term: u64,
}

impl ResponseHeader {
    /// The ID of the cluster that answered.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The ID of the member that answered.
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    /// The key-value store revision when the request was applied (for a write, the revision
    /// it created).
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The raft term when the request was applied.
    pub fn raft_term(&self) -> u64 {
        self.raft_term
    }
}

impl ResponseHeader {
    /// This header with another revision.
    pub(crate) fn with_revision(mut self, revision: i64) -> Self {
        self.revision = revision;
        self
    }
}

impl From<pb::ResponseHeader> for ResponseHeader {
    fn from(h: pb::ResponseHeader) -> Self {
        ResponseHeader {
            cluster_id: h.cluster_id,
            member_id: h.member_id,
            revision: h.revision,
            raft_term: h.raft_term,
        }
    }
}

pub(crate) fn header(h: Option<pb::ResponseHeader>) -> ResponseHeader {
    h.map(ResponseHeader::from).unwrap_or_default()
}

/// A key, its value and its metadata.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct KeyValue {
    key: Vec<u8>,
    value: Vec<u8>,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: i64,
}

impl KeyValue {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The value (empty with `keys_only`).
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The key as UTF-8.
    pub fn key_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.key)
            .map_err(|e| Error::protocol(format!("key is not UTF-8: {e}")))
    }

    /// The value as UTF-8.
    pub fn value_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.value)
            .map_err(|e| Error::protocol(format!("value is not UTF-8: {e}")))
    }

    /// The revision of the last creation of this key.
    pub fn create_revision(&self) -> i64 {
        self.create_revision
    }

    /// The revision of the last modification of this key.
    pub fn mod_revision(&self) -> i64 {
        self.mod_revision
    }

    /// The number of modifications since the key was created (1 after creation).
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The lease attached to the key, 0 for none.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Takes the key and value out.
    pub fn into_key_value(self) -> (Vec<u8>, Vec<u8>) {
        (self.key, self.value)
    }
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value", &String::from_utf8_lossy(&self.value))
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .field("version", &self.version)
            .field("lease", &self.lease)
            .finish()
    }
}

impl From<mvccpb::KeyValue> for KeyValue {
    fn from(kv: mvccpb::KeyValue) -> Self {
        KeyValue {
            key: kv.key,
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

/// The answer to a get (etcd's `Range`).
#[derive(Debug, Clone, Default)]
pub struct GetResponse {
    header: ResponseHeader,
    kvs: Vec<KeyValue>,
    more: bool,
    count: i64,
}

impl GetResponse {
    /// The response header; its revision is the revision the read saw.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The keys found, in the requested order (empty with `count_only`).
    pub fn kvs(&self) -> &[KeyValue] {
        &self.kvs
    }

    /// Takes the keys found.
    pub fn into_kvs(self) -> Vec<KeyValue> {
        self.kvs
    }

    /// Whether more keys matched than `limit` allowed.
    pub fn more(&self) -> bool {
        self.more
    }

    /// How many keys matched in total, regardless of `limit`.
    pub fn count(&self) -> i64 {
        self.count
    }
}

impl GetResponse {
    /// A response with these keys, as if read at `header` (a leader seen by a watch).
    pub(crate) fn from_parts(header: ResponseHeader, kvs: Vec<KeyValue>) -> Self {
        let count = kvs.len() as i64;
        GetResponse {
            header,
            kvs,
            more: false,
            count,
        }
    }
}

impl From<pb::RangeResponse> for GetResponse {
    fn from(r: pb::RangeResponse) -> Self {
        GetResponse {
            header: header(r.header),
            kvs: r.kvs.into_iter().map(KeyValue::from).collect(),
            more: r.more,
            count: r.count,
        }
    }
}

/// The answer to a put.
#[derive(Debug, Clone, Default)]
pub struct PutResponse {
    header: ResponseHeader,
    prev_kv: Option<KeyValue>,
}

impl PutResponse {
    /// The response header; its revision is the revision of the write.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The key-value before the put, when `prev_kv` was requested and the key existed.
    pub fn prev_kv(&self) -> Option<&KeyValue> {
        self.prev_kv.as_ref()
    }

    /// Takes the previous key-value.
    pub fn into_prev_kv(self) -> Option<KeyValue> {
        self.prev_kv
    }
}

impl From<pb::PutResponse> for PutResponse {
    fn from(r: pb::PutResponse) -> Self {
        PutResponse {
            header: header(r.header),
            prev_kv: r.prev_kv.map(KeyValue::from),
        }
    }
}

/// The answer to a delete (etcd's `DeleteRange`).
#[derive(Debug, Clone, Default)]
pub struct DeleteResponse {
    header: ResponseHeader,
    deleted: i64,
    prev_kvs: Vec<KeyValue>,
}

impl DeleteResponse {
    /// The response header; its revision is the revision of the delete.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// How many keys were deleted.
    pub fn deleted(&self) -> i64 {
        self.deleted
    }

    /// The deleted key-values, when `prev_kv` was requested.
    pub fn prev_kvs(&self) -> &[KeyValue] {
        &self.prev_kvs
    }

    /// Takes the deleted key-values.
    pub fn into_prev_kvs(self) -> Vec<KeyValue> {
        self.prev_kvs
    }
}

impl From<pb::DeleteRangeResponse> for DeleteResponse {
    fn from(r: pb::DeleteRangeResponse) -> Self {
        DeleteResponse {
            header: header(r.header),
            deleted: r.deleted,
            prev_kvs: r.prev_kvs.into_iter().map(KeyValue::from).collect(),
        }
    }
}

/// The answer to a transaction.
#[derive(Debug, Clone, Default)]
pub struct TxnResponse {
    header: ResponseHeader,
    succeeded: bool,
    responses: Vec<OpResponse>,
}

impl TxnResponse {
    /// The response header; its revision is the store revision after the transaction.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// Whether every comparison held (so the `then` branch ran, not `else`).
    pub fn succeeded(&self) -> bool {
        self.succeeded
    }

    /// One response per operation of the branch that ran, in order.
    pub fn responses(&self) -> &[OpResponse] {
        &self.responses
    }

    /// Takes the responses.
    pub fn into_responses(self) -> Vec<OpResponse> {
        self.responses
    }
}

impl TryFrom<pb::TxnResponse> for TxnResponse {
    type Error = Error;

    fn try_from(r: pb::TxnResponse) -> Result<Self> {
        let responses = r
            .responses
            .into_iter()
            .map(OpResponse::try_from)
            .collect::<Result<_>>()?;
        Ok(TxnResponse {
            header: header(r.header),
            succeeded: r.succeeded,
            responses,
        })
    }
}

/// The answer to a compaction.
#[derive(Debug, Clone, Default)]
pub struct CompactResponse {
    header: ResponseHeader,
}

impl CompactResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

impl From<pb::CompactionResponse> for CompactResponse {
    fn from(r: pb::CompactionResponse) -> Self {
        CompactResponse {
            header: header(r.header),
        }
    }
}

/// The answer to one [`Op`](crate::Op).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum OpResponse {
    /// The answer to a get.
    Get(GetResponse),
    /// The answer to a put.
    Put(PutResponse),
    /// The answer to a delete.
    Delete(DeleteResponse),
    /// The answer to a nested transaction.
    Txn(TxnResponse),
}

impl OpResponse {
    /// The header of whichever response this is.
    pub fn header(&self) -> &ResponseHeader {
        match self {
            OpResponse::Get(r) => r.header(),
            OpResponse::Put(r) => r.header(),
            OpResponse::Delete(r) => r.header(),
            OpResponse::Txn(r) => r.header(),
        }
    }

    /// The get response, if this is one.
    pub fn as_get(&self) -> Option<&GetResponse> {
        match self {
            OpResponse::Get(r) => Some(r),
            _ => None,
        }
    }

    /// The put response, if this is one.
    pub fn as_put(&self) -> Option<&PutResponse> {
        match self {
            OpResponse::Put(r) => Some(r),
            _ => None,
        }
    }

    /// The delete response, if this is one.
    pub fn as_delete(&self) -> Option<&DeleteResponse> {
        match self {
            OpResponse::Delete(r) => Some(r),
            _ => None,
        }
    }

    /// The nested transaction response, if this is one.
    pub fn as_txn(&self) -> Option<&TxnResponse> {
        match self {
            OpResponse::Txn(r) => Some(r),
            _ => None,
        }
    }
}

impl TryFrom<pb::ResponseOp> for OpResponse {
    type Error = Error;

    fn try_from(r: pb::ResponseOp) -> Result<Self> {
        use pb::response_op::Response;
        Ok(match r.response {
            Some(Response::ResponseRange(r)) => OpResponse::Get(r.into()),
            Some(Response::ResponsePut(r)) => OpResponse::Put(r.into()),
            Some(Response::ResponseDeleteRange(r)) => OpResponse::Delete(r.into()),
            Some(Response::ResponseTxn(r)) => OpResponse::Txn(r.try_into()?),
            None => return Err(Error::protocol("transaction response without a result")),
        })
    }
}

macro_rules! op_response_into {
    ($($variant:ident => $ty:ty, $name:literal;)*) => {$(
        impl TryFrom<OpResponse> for $ty {
            type Error = Error;

            fn try_from(r: OpResponse) -> Result<Self> {
                match r {
                    OpResponse::$variant(r) => Ok(r),
                    other => Err(Error::protocol(format!(
                        concat!("expected a ", $name, " response, got {:?}"),
                        other
                    ))),
                }
            }
        }
    )*};
}

op_response_into! {
    Get => GetResponse, "get";
    Put => PutResponse, "put";
    Delete => DeleteResponse, "delete";
    Txn => TxnResponse, "txn";
}
