//! The client handle.

use std::sync::Arc;
use std::time::Duration;

use etcdv3_proto::etcdserverpb as pb;
use futures_util::StreamExt;

use crate::config::ClientBuilder;
use crate::error::{Error, Result};
use crate::kv::KvClient;
use crate::transport::{CallOptions, Transport};

/// How long the client spends looking up the compaction revision for a `Compacted` error.
const COMPACT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection to an etcd cluster.
///
/// `Client` is a cheap handle (an `Arc` and a few flags): clone it freely and share it between
/// tasks. Every clone uses the same connections, so 100 tasks calling through clones of one
/// `Client` run their requests concurrently over HTTP/2.
///
/// ```no_run
/// # async fn demo() -> etcdv3::Result<()> {
/// use etcdv3::Kv;
///
/// let client = etcdv3::Client::connect(["http://127.0.0.1:2379"]).await?;
/// client.kv().put("greeting", "hello").await?;
/// let resp = client.kv().get("greeting").await?;
/// assert_eq!(resp.kvs()[0].value(), b"hello");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
    defaults: CallOptions,
}

#[derive(Debug)]
struct Shared {
    transport: Transport,
}

impl Client {
    /// A builder with every setting at its default.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Connects to `endpoints` with the default settings.
    pub async fn connect<S: Into<String>>(
        endpoints: impl IntoIterator<Item = S>,
    ) -> Result<Client> {
        ClientBuilder::new().endpoints(endpoints).connect().await
    }

    pub(crate) async fn from_builder(b: ClientBuilder) -> Result<Client> {
        let transport = Transport::connect(&b).await?;
        Ok(Client {
            shared: Arc::new(Shared { transport }),
            defaults: CallOptions {
                timeout: None,
                require_leader: b.require_leader,
            },
        })
    }

    /// The KV service: get, put, delete, transactions, compaction.
    pub fn kv(&self) -> KvClient {
        KvClient::new(self.clone())
    }

    /// The endpoints this client uses, as given.
    pub fn endpoints(&self) -> Vec<String> {
        self.shared.transport.endpoint_names()
    }

    /// A copy of this client whose requests fail with [`Code::NoLeader`](crate::Code) instead
    /// of waiting when the member has no leader (Go's `WithRequireLeader`). Shares connections
    /// with `self`.
    pub fn with_require_leader(&self) -> Client {
        let mut c = self.clone();
        c.defaults.require_leader = true;
        c
    }

    /// A copy of this client whose requests use `timeout` as their default deadline. Shares
    /// connections with `self`.
    pub fn with_request_timeout(&self, timeout: Duration) -> Client {
        let mut c = self.clone();
        c.defaults.timeout = Some(timeout);
        c
    }

    /// Closes the client: every clone's later calls fail with
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed). Connections close when the last clone
    /// is dropped.
    pub fn close(&self) {
        self.shared.transport.close();
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.shared.transport
    }

    /// Merges per-call options over this client's defaults.
    pub(crate) fn call_options(&self, per_call: CallOptions) -> CallOptions {
        CallOptions {
            timeout: per_call.timeout.or(self.defaults.timeout),
            require_leader: per_call.require_leader || self.defaults.require_leader,
        }
    }

    /// Adds the store's compaction revision to a `Compacted` error, so callers know where they
    /// can resume. etcd names it only in watch responses, so this asks with a short-lived watch
    /// at `revision`; if that fails the error is returned as it was.
    pub(crate) async fn annotate_compacted(
        &self,
        err: Error,
        key: Vec<u8>,
        revision: i64,
    ) -> Error {
        match self.lookup_compact_revision(key, revision).await {
            Some(rev) => err.with_compact_revision(rev),
            None => err,
        }
    }

    async fn lookup_compact_revision(&self, key: Vec<u8>, revision: i64) -> Option<i64> {
        let create = pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key,
                    start_revision: revision,
                    ..Default::default()
                },
            )),
        };
        let opts = CallOptions::with_timeout(COMPACT_LOOKUP_TIMEOUT);
        let lookup = async {
            let (mut stream, _) = self
                .transport()
                .open_stream(&opts, |conn, md| {
                    let requests = futures_util::stream::iter([create.clone()])
                        .chain(futures_util::stream::pending());
                    let mut req = tonic::Request::new(requests);
                    *req.metadata_mut() = md;
                    async move {
                        conn.watch()
                            .watch(req)
                            .await
                            .map(tonic::Response::into_inner)
                    }
                })
                .await
                .ok()?;
            for _ in 0..4 {
                let resp = stream.message().await.ok()??;
                if resp.compact_revision > 0 {
                    return Some(resp.compact_revision);
                }
            }
            None
        };
        tokio::time::timeout(COMPACT_LOOKUP_TIMEOUT, lookup)
            .await
            .ok()
            .flatten()
    }
}
