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

use etcdv3_proto::etcdserverpb as pb;
use futures_util::future::{BoxFuture, FutureExt, Map};

pub use self::op::{CompactOp, DeleteOp, GetOp, Op, PutOp, SortOrder, SortTarget, TxnOp};
pub use self::range::{KeyRange, prefix_end};
pub use self::txn::{Compare, CompareOp, CompareTarget};
pub(crate) use self::types::header;
pub use self::types::{
    CompactResponse, DeleteResponse, GetResponse, KeyValue, OpResponse, PutResponse,
    ResponseHeader, TxnResponse,
};
use crate::call::{Call, CallOptions};
use crate::client::Client;
use crate::error::Result;
use crate::transport::rpc::Rpc;

/// Runs KV operations. Implemented by [`KvClient`]; wrappers implement it over another `Kv`.
///
/// Two methods are required: [`execute`](Kv::execute) runs an [`Op`] (get, put, delete,
/// transaction) and [`execute_compact`](Kv::execute_compact) a compaction. The others build a
/// request and call them. Both return `'static` futures, so an implementation clones what it
/// needs (a handle, an `Arc`) into the future.
pub trait Kv: Send + Sync {
    /// Runs one operation.
    fn execute(&self, op: Op, options: CallOptions) -> BoxFuture<'static, Result<OpResponse>>;

    /// Runs one compaction.
    fn execute_compact(
        &self,
        op: CompactOp,
        options: CallOptions,
    ) -> BoxFuture<'static, Result<CompactResponse>>;

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
    fn get(&self, keys: impl Into<KeyRange>) -> Get<Self>
    where
        Self: Sized + Clone,
    {
        Call::new(self.clone(), GetOp::new(keys))
    }

    /// Writes `value` at `key`.
    fn put(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Put<Self>
    where
        Self: Sized + Clone,
    {
        Call::new(self.clone(), PutOp::new(key, value))
    }

    /// Deletes `keys`.
    ///
    /// As in Go, `delete("").prefix()` (or [`KeyRange::all`]) deletes **every key** in the
    /// store.
    fn delete(&self, keys: impl Into<KeyRange>) -> Delete<Self>
    where
        Self: Sized + Clone,
    {
        Call::new(self.clone(), DeleteOp::new(keys))
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
    fn txn(&self) -> Txn<Self>
    where
        Self: Sized + Clone,
    {
        Call::new(self.clone(), TxnOp::default())
    }

    /// Compacts the key-value history up to `revision`: older revisions can no longer be read
    /// or watched.
    ///
    /// Fails with [`Code::Compacted`](crate::Code) when `revision` is at or below the current
    /// compaction (the error's [`compact_revision`](crate::Error::compact_revision) says where
    /// it is), and [`Code::FutureRev`](crate::Code) when it is above the current revision.
    ///
    /// ```no_run
    /// # async fn demo(kv: etcdv3::KvClient) -> etcdv3::Result<()> {
    /// use etcdv3::Kv;
    /// let rev = kv.get("any").await?.header().revision();
    /// kv.compact(rev).physical().await?;
    /// # Ok(()) }
    /// ```
    fn compact(&self, revision: i64) -> Compact<Self>
    where
        Self: Sized + Clone,
    {
        Call::new(self.clone(), CompactOp::new(revision))
    }
}

/// A get being built; `.await` it for a [`GetResponse`].
pub type Get<K> = Call<K, GetOp>;
/// A put being built; `.await` it for a [`PutResponse`].
pub type Put<K> = Call<K, PutOp>;
/// A delete being built; `.await` it for a [`DeleteResponse`].
pub type Delete<K> = Call<K, DeleteOp>;
/// A transaction being built; `.await` it for a [`TxnResponse`].
pub type Txn<K> = Call<K, TxnOp>;
/// A compaction being built; `.await` it for a [`CompactResponse`].
pub type Compact<K> = Call<K, CompactOp>;

macro_rules! forward {
    ($op:ident { $( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*); )* }) => {
        impl<K> Call<K, $op> {
            $(
                $(#[$doc])*
                pub fn $name(self $(, $arg: $ty)*) -> Self {
                    self.map(|op| op.$name($($arg),*))
                }
            )*
        }
    };
}
pub(crate) use forward;

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

forward!(CompactOp {
    /// See [`CompactOp::physical`].
    fn physical();
});

impl<K> Call<K, TxnOp> {
    /// See [`TxnOp::when`].
    pub fn when(self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.map(|t| t.when(compares))
    }

    /// See [`TxnOp::and_then`].
    pub fn and_then<O: Into<Op>>(self, ops: impl IntoIterator<Item = O>) -> Self {
        self.map(|t| t.and_then(ops))
    }

    /// See [`TxnOp::or_else`].
    pub fn or_else<O: Into<Op>>(self, ops: impl IntoIterator<Item = O>) -> Self {
        self.map(|t| t.or_else(ops))
    }
}

type Convert<R> = fn(Result<OpResponse>) -> Result<R>;

fn convert<R: TryFrom<OpResponse, Error = crate::Error>>(r: Result<OpResponse>) -> Result<R> {
    r.and_then(R::try_from)
}

macro_rules! into_future {
    ($op:ty => $resp:ty) => {
        impl<K: Kv> IntoFuture for Call<K, $op> {
            type Output = Result<$resp>;
            type IntoFuture = Map<BoxFuture<'static, Result<OpResponse>>, Convert<$resp>>;

            fn into_future(self) -> Self::IntoFuture {
                self.service
                    .execute(self.request.into(), self.options)
                    .map(convert::<$resp> as Convert<$resp>)
            }
        }
    };
}

into_future!(GetOp => GetResponse);
into_future!(PutOp => PutResponse);
into_future!(DeleteOp => DeleteResponse);
into_future!(TxnOp => TxnResponse);

impl<K: Kv> IntoFuture for Call<K, CompactOp> {
    type Output = Result<CompactResponse>;
    type IntoFuture = BoxFuture<'static, Result<CompactResponse>>;

    fn into_future(self) -> Self::IntoFuture {
        self.service.execute_compact(self.request, self.options)
    }
}

/// The KV service of a [`Client`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KvClient {
    client: Client,
}

impl KvClient {
    pub(crate) fn new(client: Client) -> Self {
        KvClient { client }
    }

    async fn run(self, op: Op, options: CallOptions) -> Result<OpResponse> {
        op.validate()?;
        let c = &self.client;
        match op {
            Op::Get(get) => {
                let revision = get.read_revision();
                let req = get.into_proto();
                let key = req.key.clone();
                match c
                    .unary::<_, pb::RangeResponse>(Rpc::Range, req, options)
                    .await
                {
                    Ok(r) => Ok(OpResponse::Get(r.into())),
                    // Boxed: the lookup opens a stream, a large future for a rare path.
                    Err(e) if e.is_compacted() && revision > 0 => {
                        Err(Box::pin(c.annotate_compacted(e, key, revision)).await)
                    }
                    Err(e) => Err(e),
                }
            }
            Op::Put(put) => {
                let r: pb::PutResponse = c.unary(Rpc::Put, put.into_proto(), options).await?;
                Ok(OpResponse::Put(r.into()))
            }
            Op::Delete(del) => {
                let r: pb::DeleteRangeResponse =
                    c.unary(Rpc::DeleteRange, del.into_proto(), options).await?;
                Ok(OpResponse::Delete(r.into()))
            }
            Op::Txn(txn) => {
                let rpc = match txn.is_read_only() {
                    true => Rpc::TxnReadOnly,
                    false => Rpc::Txn,
                };
                let r: pb::TxnResponse = c.unary(rpc, txn.into_proto(), options).await?;
                Ok(OpResponse::Txn(r.try_into()?))
            }
        }
    }

    async fn compact(self, op: CompactOp, options: CallOptions) -> Result<CompactResponse> {
        op.validate()?;
        let revision = op.revision();
        let c = &self.client;
        match c
            .unary::<_, pb::CompactionResponse>(Rpc::Compact, op.into_proto(), options)
            .await
        {
            Ok(r) => Ok(r.into()),
            Err(e) if e.is_compacted() => {
                Err(Box::pin(c.annotate_compacted(e, b"\0".to_vec(), revision)).await)
            }
            Err(e) => Err(e),
        }
    }
}

impl Kv for KvClient {
    fn execute(&self, op: Op, options: CallOptions) -> BoxFuture<'static, Result<OpResponse>> {
        Box::pin(self.clone().run(op, options))
    }

    fn execute_compact(
        &self,
        op: CompactOp,
        options: CallOptions,
    ) -> BoxFuture<'static, Result<CompactResponse>> {
        Box::pin(self.clone().compact(op, options))
    }
}
