//! The key-value API: get, put, delete, transactions and compaction.
//!
//! Every request is an [`Op`] value run by a [`Kv`] implementation's one method,
//! [`Kv::execute`]. The convenience methods ([`Kv::get`], [`Kv::put`] ...) build an `Op` with a
//! per-call builder you can `.await`. Wrappers that change requests (namespaces, ordering checks,
//! caches) implement [`Kv`] over any other `Kv` and so work with every call.

mod op;
mod range;
mod txn;
mod types;

use std::future::IntoFuture;
use std::time::Duration;

use etcdv3_proto::etcdserverpb as pb;
use futures_util::future::{BoxFuture, FutureExt, Map};

pub use self::op::{DeleteOp, GetOp, Op, PutOp, SortOrder, SortTarget, TxnOp};
pub use self::range::{KeyRange, prefix_end};
pub use self::txn::{Compare, CompareOp, CompareTarget};
pub use self::types::{
    CompactResponse, DeleteResponse, GetResponse, KeyValue, OpResponse, PutResponse,
    ResponseHeader, TxnResponse,
};
use crate::client::Client;
use crate::error::Result;
use crate::transport::CallOptions;
use crate::transport::retry::Rpc;

/// gRPC method paths of the KV service.
mod paths {
    pub(super) const RANGE: &str = "/etcdserverpb.KV/Range";
    pub(super) const PUT: &str = "/etcdserverpb.KV/Put";
    pub(super) const DELETE_RANGE: &str = "/etcdserverpb.KV/DeleteRange";
    pub(super) const TXN: &str = "/etcdserverpb.KV/Txn";
    pub(super) const COMPACT: &str = "/etcdserverpb.KV/Compact";
}

/// Runs KV operations. Implemented by [`KvClient`]; wrappers implement it over another `Kv`.
///
/// Only [`execute`](Kv::execute) is required; the other methods build an [`Op`] and call it.
pub trait Kv: Send + Sync {
    /// Runs one operation.
    fn execute(&self, op: Op, options: CallOptions) -> BoxFuture<'_, Result<OpResponse>>;

    /// Reads `keys`: a key, a [`KeyRange`], or a Rust range of keys.
    ///
    /// ```no_run
    /// # async fn demo(kv: etcdv3::KvClient) -> etcdv3::Result<()> {
    /// use etcdv3::Kv;
    /// let resp = kv.get("config/").prefix().limit(10).serializable().await?;
    /// for kv in resp.kvs() {
    ///     println!("{:?} = {:?}", kv.key_str()?, kv.value_str()?);
    /// }
    /// # Ok(()) }
    /// ```
    fn get(&self, keys: impl Into<KeyRange>) -> Get<'_, Self>
    where
        Self: Sized,
    {
        Call::new(self, GetOp::new(keys))
    }

    /// Writes `value` at `key`.
    fn put(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Put<'_, Self>
    where
        Self: Sized,
    {
        Call::new(self, PutOp::new(key, value))
    }

    /// Deletes `keys`.
    fn delete(&self, keys: impl Into<KeyRange>) -> Delete<'_, Self>
    where
        Self: Sized,
    {
        Call::new(self, DeleteOp::new(keys))
    }

    /// Starts a transaction.
    ///
    /// ```no_run
    /// # async fn demo(kv: etcdv3::KvClient) -> etcdv3::Result<()> {
    /// use etcdv3::{Compare, Kv, Op};
    /// let resp = kv
    ///     .txn()
    ///     .when([Compare::value("mode").eq("standby")])
    ///     .and_then([Op::put("mode", "active")])
    ///     .or_else([Op::get("mode")])
    ///     .await?;
    /// println!("switched: {}", resp.succeeded());
    /// # Ok(()) }
    /// ```
    fn txn(&self) -> Txn<'_, Self>
    where
        Self: Sized,
    {
        Call::new(self, TxnOp::default())
    }
}

/// A per-call builder: set options, then `.await` it.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct Call<'k, K: ?Sized, O> {
    kv: &'k K,
    op: O,
    options: CallOptions,
}

/// A get being built; `.await` it for a [`GetResponse`].
pub type Get<'k, K> = Call<'k, K, GetOp>;
/// A put being built; `.await` it for a [`PutResponse`].
pub type Put<'k, K> = Call<'k, K, PutOp>;
/// A delete being built; `.await` it for a [`DeleteResponse`].
pub type Delete<'k, K> = Call<'k, K, DeleteOp>;
/// A transaction being built; `.await` it for a [`TxnResponse`].
pub type Txn<'k, K> = Call<'k, K, TxnOp>;

impl<'k, K: ?Sized, O> Call<'k, K, O> {
    fn new(kv: &'k K, op: O) -> Self {
        Call {
            kv,
            op,
            options: CallOptions::default(),
        }
    }

    /// Sets this call's deadline (retries included), instead of the client's request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Fails with [`Code::NoLeader`](crate::Code) instead of waiting when the member has no
    /// leader.
    pub fn require_leader(mut self) -> Self {
        self.options.require_leader = true;
        self
    }

    /// The operation as built so far.
    pub fn op(&self) -> &O {
        &self.op
    }

    /// Takes the operation out, e.g. to use it in a transaction.
    pub fn into_op(self) -> O {
        self.op
    }
}

macro_rules! forward {
    ($op:ident { $( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*); )* }) => {
        impl<K: ?Sized> Call<'_, K, $op> {
            $(
                $(#[$doc])*
                pub fn $name(mut self $(, $arg: $ty)*) -> Self {
                    self.op = self.op.$name($($arg),*);
                    self
                }
            )*
        }
    };
}

forward!(GetOp {
    /// See [`GetOp::prefix`].
    fn prefix();
    /// See [`GetOp::from_key`].
    fn from_key();
    /// See [`GetOp::range_end`].
    fn range_end(end: impl Into<Vec<u8>>);
    /// See [`GetOp::limit`].
    fn limit(limit: i64);
    /// See [`GetOp::revision`].
    fn revision(revision: i64);
    /// See [`GetOp::sort`].
    fn sort(target: SortTarget, order: SortOrder);
    /// See [`GetOp::serializable`].
    fn serializable();
    /// See [`GetOp::keys_only`].
    fn keys_only();
    /// See [`GetOp::count_only`].
    fn count_only();
    /// See [`GetOp::min_mod_revision`].
    fn min_mod_revision(rev: i64);
    /// See [`GetOp::max_mod_revision`].
    fn max_mod_revision(rev: i64);
    /// See [`GetOp::min_create_revision`].
    fn min_create_revision(rev: i64);
    /// See [`GetOp::max_create_revision`].
    fn max_create_revision(rev: i64);
    /// See [`GetOp::first_create`].
    fn first_create();
    /// See [`GetOp::last_create`].
    fn last_create();
    /// See [`GetOp::first_key`].
    fn first_key();
    /// See [`GetOp::last_key`].
    fn last_key();
    /// See [`GetOp::first_rev`].
    fn first_rev();
    /// See [`GetOp::last_rev`].
    fn last_rev();
});

forward!(PutOp {
    /// See [`PutOp::lease`].
    fn lease(lease: i64);
    /// See [`PutOp::prev_kv`].
    fn prev_kv();
    /// See [`PutOp::ignore_value`].
    fn ignore_value();
    /// See [`PutOp::ignore_lease`].
    fn ignore_lease();
});

forward!(DeleteOp {
    /// See [`DeleteOp::prefix`].
    fn prefix();
    /// See [`DeleteOp::from_key`].
    fn from_key();
    /// See [`DeleteOp::range_end`].
    fn range_end(end: impl Into<Vec<u8>>);
    /// See [`DeleteOp::prev_kv`].
    fn prev_kv();
});

impl<K: ?Sized> Call<'_, K, TxnOp> {
    /// See [`TxnOp::when`].
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.op = self.op.when(compares);
        self
    }

    /// See [`TxnOp::and_then`].
    pub fn and_then<O: Into<Op>>(mut self, ops: impl IntoIterator<Item = O>) -> Self {
        self.op = self.op.and_then(ops);
        self
    }

    /// See [`TxnOp::or_else`].
    pub fn or_else<O: Into<Op>>(mut self, ops: impl IntoIterator<Item = O>) -> Self {
        self.op = self.op.or_else(ops);
        self
    }
}

type Convert<R> = fn(Result<OpResponse>) -> Result<R>;

fn convert<R: TryFrom<OpResponse, Error = crate::Error>>(r: Result<OpResponse>) -> Result<R> {
    r.and_then(R::try_from)
}

macro_rules! into_future {
    ($op:ty => $resp:ty) => {
        impl<'k, K: Kv + ?Sized> IntoFuture for Call<'k, K, $op> {
            type Output = Result<$resp>;
            type IntoFuture = Map<BoxFuture<'k, Result<OpResponse>>, Convert<$resp>>;

            fn into_future(self) -> Self::IntoFuture {
                self.kv
                    .execute(self.op.into(), self.options)
                    .map(convert::<$resp> as Convert<$resp>)
            }
        }
    };
}

into_future!(GetOp => GetResponse);
into_future!(PutOp => PutResponse);
into_future!(DeleteOp => DeleteResponse);
into_future!(TxnOp => TxnResponse);

/// The KV service of a [`Client`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KvClient {
    client: Client,
}

impl KvClient {
    pub(crate) fn new(client: Client) -> Self {
        KvClient { client }
    }

    /// Compacts the key-value history up to `revision`: older revisions can no longer be read
    /// or watched.
    ///
    /// Fails with [`Code::Compacted`](crate::Code) when `revision` is at or below the current
    /// compaction, and [`Code::FutureRev`](crate::Code) when it is above the current revision.
    pub fn compact(&self, revision: i64) -> Compact<'_> {
        Compact {
            kv: self,
            revision,
            physical: false,
            options: CallOptions::default(),
        }
    }

    async fn run(&self, op: Op, options: CallOptions) -> Result<OpResponse> {
        op.validate()?;
        let options = self.client.call_options(options);
        let t = self.client.transport();
        match op {
            Op::Get(get) => {
                let revision = get.read_revision();
                let req = get.into_proto();
                let key = req.key.clone();
                let result = t
                    .unary::<_, pb::RangeResponse>(Rpc::Range, paths::RANGE, req, &options)
                    .await;
                match result {
                    Ok(r) => Ok(OpResponse::Get(r.into())),
                    Err(e) if e.is_compacted() && revision > 0 => {
                        Err(self.client.annotate_compacted(e, key, revision).await)
                    }
                    Err(e) => Err(e),
                }
            }
            Op::Put(put) => {
                let r: pb::PutResponse = t
                    .unary(Rpc::Put, paths::PUT, put.into_proto(), &options)
                    .await?;
                Ok(OpResponse::Put(r.into()))
            }
            Op::Delete(del) => {
                let r: pb::DeleteRangeResponse = t
                    .unary(
                        Rpc::DeleteRange,
                        paths::DELETE_RANGE,
                        del.into_proto(),
                        &options,
                    )
                    .await?;
                Ok(OpResponse::Delete(r.into()))
            }
            Op::Txn(txn) => {
                let rpc = Rpc::Txn {
                    read_only: txn.is_read_only(),
                };
                let r: pb::TxnResponse =
                    t.unary(rpc, paths::TXN, txn.into_proto(), &options).await?;
                Ok(OpResponse::Txn(r.try_into()?))
            }
        }
    }
}

impl Kv for KvClient {
    fn execute(&self, op: Op, options: CallOptions) -> BoxFuture<'_, Result<OpResponse>> {
        Box::pin(self.run(op, options))
    }
}

/// A compaction being built; `.await` it for a [`CompactResponse`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct Compact<'k> {
    kv: &'k KvClient,
    revision: i64,
    physical: bool,
    options: CallOptions,
}

impl Compact<'_> {
    /// Waits until the compaction is applied to the backend database, so the space of the
    /// removed revisions can be reclaimed by a defragmentation.
    pub fn physical(mut self) -> Self {
        self.physical = true;
        self
    }

    /// Sets this call's deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }
}

impl<'k> IntoFuture for Compact<'k> {
    type Output = Result<CompactResponse>;
    type IntoFuture = BoxFuture<'k, Result<CompactResponse>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            if self.revision <= 0 {
                return Err(crate::Error::invalid(format!(
                    "compact: revision must be positive, got {}",
                    self.revision
                )));
            }
            let client = &self.kv.client;
            let options = client.call_options(self.options);
            let req = pb::CompactionRequest {
                revision: self.revision,
                physical: self.physical,
            };
            let result = client
                .transport()
                .unary::<_, pb::CompactionResponse>(Rpc::Compact, paths::COMPACT, req, &options)
                .await;
            match result {
                Ok(r) => Ok(r.into()),
                Err(e) if e.is_compacted() => Err(client
                    .annotate_compacted(e, b"\0".to_vec(), self.revision)
                    .await),
                Err(e) => Err(e),
            }
        })
    }
}
