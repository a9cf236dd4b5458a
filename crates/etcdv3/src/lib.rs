//! An etcd v3 client: KV, transactions and compaction over a resilient transport, with
//! typed errors.
//!
//! ```no_run
//! use etcdv3::{Client, Compare, Kv, Op};
//!
//! # async fn demo() -> etcdv3::Result<()> {
//! let client = Client::connect(["http://127.0.0.1:2379"]).await?;
//! let kv = client.kv();
//!
//! kv.put("config/mode", "standby").await?;
//! let resp = kv.get("config/").prefix().await?;
//! assert_eq!(resp.count(), 1);
//!
//! // Switch atomically, only if nobody else did.
//! let txn = kv
//!     .txn()
//!     .when([Compare::value("config/mode").eq("standby")])
//!     .and_then([Op::put("config/mode", "active")])
//!     .await?;
//! assert!(txn.succeeded());
//!
//! // Old revisions can be compacted away; reading them is then a typed error.
//! let rev = txn.header().revision();
//! kv.compact(rev).await?;
//! let err = kv.get("config/mode").revision(rev - 1).await.unwrap_err();
//! assert!(err.is_compacted());
//! # Ok(()) }
//! ```
//!
//! # Behavior
//!
//! - **Connections.** [`Client::connect`] connects to every endpoint at once and succeeds when
//!   any one answers within the connect timeout; the error otherwise names each endpoint's
//!   failure. Each endpoint has one HTTP/2 connection that concurrent requests share.
//! - **Deadlines.** Every request has a deadline: the client's request timeout (10 s by
//!   default), or the call's own `.timeout(..)`. It bounds retries too.
//! - **Failover and retries.** Requests go round-robin to endpoints that are up. A request
//!   whose connection could not be made moves to the next endpoint, whatever it is. Reads
//!   (gets and read-only transactions) are also retried on other endpoints after a lost
//!   connection or an `Unavailable` answer. Writes that may have reached the server are never
//!   retried: you get [`ErrorKind::Unavailable`] and decide.
//! - **Errors.** One [`Error`] type. etcd's own errors decode into [`Code`]; predicates such as
//!   [`Error::is_compacted`] or [`Error::is_unavailable`] answer the usual questions. Reads at a
//!   compacted revision report the compaction revision ([`Error::compact_revision`]).
//! - **Validation.** Empty keys, negative revisions or limits, contradictory put options and
//!   requests over the send limit fail before anything is sent.
//! - **Cancellation.** Dropping a request future cancels the request; a write may still have
//!   been applied if it had already been sent.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | yes | TLS and mutual TLS with rustls ([`TlsConfig`]) |

mod client;
mod config;
mod error;
mod kv;
mod transport;

pub use crate::client::Client;
pub use crate::config::{ClientBuilder, TlsConfig};
pub use crate::error::{Code, Error, ErrorKind, GrpcCode, Result};
pub use crate::kv::{
    Call, Compact, CompactResponse, Compare, CompareOp, CompareTarget, Delete, DeleteOp,
    DeleteResponse, Get, GetOp, GetResponse, KeyRange, KeyValue, Kv, KvClient, Op, OpResponse, Put,
    PutOp, PutResponse, ResponseHeader, SortOrder, SortTarget, Txn, TxnOp, TxnResponse, prefix_end,
};
pub use crate::transport::CallOptions;
