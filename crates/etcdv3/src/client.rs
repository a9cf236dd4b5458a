//! The client handle.

use std::sync::{Arc, Weak};
use std::time::Duration;

use etcdv3_proto::etcdserverpb as pb;

use crate::auth::AuthClient;
use crate::call::CallOptions;
use crate::cluster::ClusterClient;
use crate::concurrency::{ElectionServiceClient, LockServiceClient};
use crate::config::ClientBuilder;
use crate::error::{Error, Result};
use crate::kv::KeyRange;
use crate::kv::KvClient;
use crate::lease::{Keepers, LeaseClient};
use crate::maintenance::{self, MaintenanceClient};
use crate::transport::auth::TokenGeneration;
use crate::transport::balancer::EndpointState;
use crate::transport::rpc::Rpc;
use crate::transport::stream::GrpcStream;
use crate::transport::{Route, Transport};
use crate::watch::{Watch, WatchClient, Watches};

/// How long the client spends looking up the compaction revision for a `Compacted` error.
const COMPACT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection to an etcd cluster.
///
/// `Client` is a cheap handle (an `Arc` and a few options): clone it freely and share it
/// between tasks. Every clone uses the same connections, so 100 tasks calling through clones
/// of one `Client` run their requests concurrently over HTTP/2.
///
/// ```no_run
/// # async fn demo() -> etcdv3::Result<()> {
/// use etcdv3::Kv;
///
/// let client = etcdv3::Client::connect(["http://127.0.0.1:2379"]).await?;
/// client.kv().put("greeting", "hello").await?;
///
/// // Share it: each task gets a clone (one Arc increment).
/// let mut tasks = Vec::new();
/// for i in 0..10 {
///     let kv = client.kv();
///     tasks.push(tokio::spawn(async move { kv.put(format!("task/{i}"), "done").await }));
/// }
/// for t in tasks {
///     t.await.expect("task ran")?;
/// }
///
/// // Ask one member directly (no failover), e.g. to check it.
/// let member = client.for_endpoint("http://127.0.0.1:2379")?;
/// let local = member.kv().get("greeting").serializable().await?;
/// assert_eq!(local.kvs()[0].value(), b"hello");
///
/// client.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    transport: Arc<Transport>,
    defaults: CallOptions,
    pinned: Option<Arc<EndpointState>>,
    services: Arc<Services>,
}

/// The state that services keep per client (shared by its clones and `with_*` copies; a
/// [`Client::for_endpoint`] copy has its own, since its streams go elsewhere).
#[derive(Debug, Default)]
pub(crate) struct Services {
    /// The lease keep-alive task.
    keepers: Keepers,
    /// The watch tasks.
    watches: Arc<Watches>,
}

/// A handle that does not keep the client alive, for background tasks: they end when the last
/// [`Client`] is dropped or the client is closed.
#[derive(Debug, Clone)]
pub(crate) struct WeakClient {
    transport: Weak<Transport>,
    defaults: CallOptions,
    pinned: Option<Arc<EndpointState>>,
    services: Weak<Services>,
}

impl WeakClient {
    /// The client, while a `Client` handle of it exists and it is not closed.
    pub(crate) fn upgrade(&self) -> Option<Client> {
        let transport = self.transport.upgrade()?;
        let services = self.services.upgrade()?;
        (!transport.is_closed()).then(|| Client {
            transport,
            defaults: self.defaults,
            pinned: self.pinned.clone(),
            services,
        })
    }
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
        let transport = Transport::connect(b.settings()?).await?;
        let mut defaults = CallOptions::new();
        if b.require_leader {
            defaults = defaults.require_leader();
        }
        let client = Client {
            transport: Arc::new(transport),
            defaults,
            pinned: None,
            services: Arc::default(),
        };
        if b.reject_old_cluster {
            let timeout = client.connect_timeout();
            if let Err(e) = maintenance::check_cluster_version(&client, timeout).await {
                client.close().await;
                return Err(e);
            }
        }
        Ok(client)
    }

    /// The KV service: get, put, delete, transactions, compaction.
    pub fn kv(&self) -> KvClient {
        KvClient::new(self.clone())
    }

    /// The Lease service: grant, revoke, time-to-live, list, and keep-alive over one shared
    /// stream.
    pub fn lease(&self) -> LeaseClient {
        LeaseClient::new(self.clone())
    }

    /// The Auth service's administration: turn auth on and off, manage users, roles and
    /// their permissions on key ranges.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let auth = client.auth();
    /// auth.user_add("alice", "s3cret").await?;
    /// println!("users: {:?}", auth.user_list().await?.users());
    /// # Ok(()) }
    /// ```
    pub fn auth(&self) -> AuthClient {
        AuthClient::new(self.clone())
    }

    /// The Cluster service: list, add, remove, update and promote members.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// for m in client.cluster().member_list().await?.members() {
    ///     println!("{:x} {} learner={}", m.id(), m.name(), m.is_learner());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn cluster(&self) -> ClusterClient {
        ClusterClient::new(self.clone())
    }

    /// etcd's Lock service (v3lock): locks held by the server for a lease, sharing their keys
    /// with [`Mutex`](crate::Mutex).
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, lease: i64) -> etcdv3::Result<()> {
    /// let locked = client.lock_service().lock("jobs/lock", lease).await?;
    /// client.lock_service().unlock(locked.key()).await?;
    /// # Ok(()) }
    /// ```
    pub fn lock_service(&self) -> LockServiceClient {
        LockServiceClient::new(self.clone())
    }

    /// etcd's Election service (v3election): elections run by the server for a lease,
    /// sharing their keys with [`Election`](crate::Election).
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, lease: i64) -> etcdv3::Result<()> {
    /// let won = client.election_service().campaign("leader", lease, "me").await?;
    /// println!("leading with {:?}", won.leader());
    /// # Ok(()) }
    /// ```
    pub fn election_service(&self) -> ElectionServiceClient {
        ElectionServiceClient::new(self.clone())
    }

    /// The Maintenance service: alarms, member status, defragmentation, hashes, leader
    /// transfer, downgrades and snapshots.
    pub fn maintenance(&self) -> MaintenanceClient {
        MaintenanceClient::new(self.clone())
    }

    /// Watches `keys` for changes: set options on the returned call (`.prefix()`,
    /// `.start_revision(r)`, `.prev_kv()` ...), then `.await` it for a
    /// [`WatchStream`](crate::WatchStream). Short for `client.watch_client().watch(keys)`.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let mut watch = client.watch("config/").prefix().await?;
    /// // Read it in its own task; cancel it from here with a handle.
    /// let handle = watch.handle();
    /// let reader = tokio::spawn(async move {
    ///     while let Some(resp) = watch.message().await? {
    ///         println!("{} events at revision {}", resp.events().len(), resp.header().revision());
    ///     }
    ///     Ok::<_, etcdv3::Error>(())
    /// });
    /// handle.cancel();
    /// reader.await.expect("the reader ran")?;
    /// # Ok(()) }
    /// ```
    pub fn watch(&self, keys: impl Into<KeyRange>) -> Watch {
        self.watch_client().watch(keys)
    }

    /// The Watch service: watches and progress requests. Its watches share the client's
    /// watch streams.
    pub fn watch_client(&self) -> WatchClient {
        WatchClient::new(self.clone(), self.services.watches.clone())
    }

    /// A Watch service with gRPC streams of its own (Go's `NewWatcher`): its watches do not
    /// share a stream with the client's other watches, though they share its connections.
    /// For spreading very many watches over several HTTP/2 streams; clones of the returned
    /// `WatchClient` share its streams.
    pub fn new_watcher(&self) -> WatchClient {
        WatchClient::new(self.clone(), Arc::default())
    }

    /// Asks etcd for a progress notification on every watch stream of this client (Go's
    /// `RequestProgress`): each watch gets a response with
    /// [`is_progress_notify`](crate::WatchResponse::is_progress_notify) once all watches of
    /// its stream have caught up. Does nothing when there is no watch.
    pub async fn request_progress(&self) -> Result<()> {
        self.watch_client().request_progress().await
    }

    /// The endpoints this client uses, as given. A client from
    /// [`for_endpoint`](Self::for_endpoint) reports its one endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        match &self.pinned {
            Some(ep) => vec![ep.name.to_string()],
            None => self.transport.endpoint_names(),
        }
    }

    /// A copy of this client whose requests fail with [`Code::NoLeader`](crate::Code) instead
    /// of waiting when the member has no leader (Go's `WithRequireLeader`). Shares connections
    /// with `self`.
    pub fn with_require_leader(&self) -> Client {
        let mut c = self.clone();
        c.defaults = c.defaults.require_leader();
        c
    }

    /// A copy of this client whose requests use `timeout` as their default deadline, the same
    /// as [`ClientBuilder::request_timeout`] for this copy. Shares connections with `self`.
    pub fn with_request_timeout(&self, timeout: Duration) -> Client {
        let mut c = self.clone();
        c.defaults = c.defaults.timeout(timeout);
        c
    }

    /// A copy of this client whose calls all go to `endpoint` and never fail over (Go's
    /// `Dial(endpoint)` with this client's settings, or the `endpoint` argument of
    /// `Maintenance.Status`). For asking one member: its status, a serializable read of its
    /// own data, a defragmentation.
    ///
    /// `endpoint` may be outside this client's endpoint list; it is dialled on first use with
    /// this client's TLS, timeouts and limits. When it is in the list, its connection is
    /// shared. Reads are still retried on the same endpoint after a failure that allows it.
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) when `endpoint` is not a
    /// valid endpoint; nothing is dialled then.
    pub fn for_endpoint(&self, endpoint: &str) -> Result<Client> {
        if self.transport.is_closed() {
            return Err(Error::closed());
        }
        Ok(Client {
            transport: self.transport.clone(),
            defaults: self.defaults,
            pinned: Some(self.transport.endpoint(endpoint)?),
            services: Arc::default(),
        })
    }

    /// Closes the client: ends every open stream and background task, closes the
    /// connections, and returns when that is done (within about a second). Every clone's
    /// later calls fail at once with [`ErrorKind::Closed`](crate::ErrorKind::Closed), and calls
    /// in flight end with it. Closing twice is harmless.
    ///
    /// Dropping the last clone closes the client too, without waiting.
    pub async fn close(&self) {
        self.transport.close().await;
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.transport.is_closed()
    }

    /// A handle for background tasks that does not keep the client alive.
    pub(crate) fn downgrade(&self) -> WeakClient {
        WeakClient {
            transport: Arc::downgrade(&self.transport),
            defaults: self.defaults,
            pinned: self.pinned.clone(),
            services: Arc::downgrade(&self.services),
        }
    }

    /// The lease keep-alive task of this client.
    pub(crate) fn keepers(&self) -> &Keepers {
        &self.services.keepers
    }

    /// The deadline of a prompt call with `options` on this handle.
    pub(crate) fn prompt_timeout(&self, options: CallOptions) -> Option<Duration> {
        self.transport.prompt_timeout(options, self.defaults)
    }

    /// Fetches a new auth token, unless the one of generation `seen` was already replaced.
    pub(crate) async fn refresh_token(&self, seen: TokenGeneration) -> Result<()> {
        self.transport.refresh_token(seen).await
    }

    /// The generation of the current auth token (0 without one).
    pub(crate) fn token_generation(&self) -> TokenGeneration {
        self.transport.token_generation()
    }

    /// Whether the client can fetch a new auth token (it has a user and password).
    pub(crate) fn can_refresh_token(&self) -> bool {
        self.transport.can_refresh_token()
    }

    /// Avoids `endpoint` for a while (a stream on it broke).
    pub(crate) fn mark_down(&self, endpoint: &str) {
        self.transport.mark_down(endpoint);
    }

    /// Whether this handle's calls all go to one endpoint ([`for_endpoint`](Self::for_endpoint)).
    pub(crate) fn is_pinned(&self) -> bool {
        self.pinned.is_some()
    }

    /// Whether this handle's calls require a leader by default.
    pub(crate) fn requires_leader(&self) -> bool {
        self.defaults.requires_leader()
    }

    /// The client's connect timeout.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.transport.connect_timeout()
    }

    /// Spawns a background task that ends at the latest when the client closes or its last
    /// handle is dropped. The task must hold a [`WeakClient`], never a `Client`.
    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.transport.shutdown().spawn(task);
    }

    #[cfg(test)]
    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    fn route(&self, call: CallOptions) -> Route<'_> {
        Route {
            call,
            defaults: self.defaults,
            pinned: self.pinned.as_ref(),
        }
    }

    /// Sends one unary request under this client's defaults and pin.
    pub(crate) async fn unary<Req, Resp>(
        &self,
        rpc: Rpc,
        msg: Req,
        options: CallOptions,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        self.transport.unary(rpc, msg, &self.route(options)).await
    }

    /// Opens a stream under this client's defaults and pin, writing `first` on it.
    pub(crate) async fn open_stream<Req, Resp>(
        &self,
        rpc: Rpc,
        options: CallOptions,
        first: &[Req],
    ) -> Result<GrpcStream<Req, Resp>>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        self.transport
            .open_stream(rpc, &self.route(options), first)
            .await
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
            let mut stream: GrpcStream<pb::WatchRequest, pb::WatchResponse> =
                self.open_stream(Rpc::Watch, opts, &[create]).await.ok()?;
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
