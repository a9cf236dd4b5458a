//! Connections to etcd members, endpoint selection, deadlines, metadata and retries.
//!
//! Every request the client sends goes through [`Transport::unary`] (one request, one answer) or
//! [`Transport::open_stream`] (watch, keep-alive, snapshot ...). Both pick a live endpoint, add
//! the per-request metadata, bound the call by its deadline and apply the retry policy of
//! [`retry`], so those concerns live here and nowhere else.

mod connection;
pub(crate) mod endpoint;
mod grpc;
pub(crate) mod retry;
#[cfg(test)]
mod tests;
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
mod tls;
#[cfg(feature = "tls")]
mod tls;

use std::error::Error as StdError;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use etcdv3_proto::etcdserverpb::watch_client::WatchClient;
use tokio::time::Instant;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use self::connection::{Connection, Dialer, Http2Service};
use self::endpoint::Endpoint;
use self::retry::{Backoff, Decision, Rpc};
pub(crate) use self::tls::{LoadedTls, TlsConnector, TlsMaterial};
use crate::config::ClientBuilder;
use crate::error::{Code, Error, ErrorKind, GrpcCode, Result};

/// The API version this client speaks, sent as `client-api-version` metadata.
const CLIENT_API_VERSION: &str = "3.7";
/// How long an endpoint that failed is skipped when others are available.
const ENDPOINT_DOWN_FOR: Duration = Duration::from_secs(1);

/// Options of one call that are not part of the request itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallOptions {
    /// The call's deadline, measured from when it starts; `None` uses the client's
    /// [`request_timeout`](crate::ClientBuilder::request_timeout).
    pub timeout: Option<Duration>,
    /// Fail with [`Code::NoLeader`] instead of waiting when the member has no leader.
    pub require_leader: bool,
}

impl CallOptions {
    /// Options with the given timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        CallOptions {
            timeout: Some(timeout),
            ..Self::default()
        }
    }
}

/// A connection handle to one endpoint, from which gRPC service clients are made.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    service: Http2Service,
    max_recv: usize,
}

macro_rules! service_clients {
    ($($name:ident => $client:ident),*) => {
        impl Conn {
            $(
                pub(crate) fn $name(self) -> $client<Http2Service> {
                    $client::new(self.service)
                        .max_decoding_message_size(self.max_recv)
                        .max_encoding_message_size(usize::MAX)
                }
            )*
        }
    };
}

service_clients!(watch => WatchClient);

struct EndpointState {
    /// The endpoint as given, shared with every error that names it.
    name: Arc<str>,
    connection: Connection,
    /// Milliseconds since the transport started until which the endpoint is avoided.
    down_until: AtomicU64,
    /// Added to availability errors of this endpoint.
    hint: Option<&'static str>,
}

/// A picked endpoint: its name and connection.
#[derive(Debug, Clone)]
pub(crate) struct Picked {
    pub(crate) endpoint: Arc<str>,
    state: Arc<EndpointState>,
    max_recv: usize,
}

impl std::fmt::Debug for EndpointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointState")
            .field("endpoint", &self.name)
            .finish_non_exhaustive()
    }
}

impl Picked {
    /// A live connection to this endpoint, dialled if needed. An error means nothing was sent.
    pub(crate) async fn conn(&self) -> Result<Conn> {
        match self.state.connection.service().await {
            Ok(service) => Ok(Conn {
                service,
                max_recv: self.max_recv,
            }),
            Err(e) => Err(self.finish(e)),
        }
    }

    /// Names this endpoint in the error, with advice where there is some.
    fn finish(&self, err: Error) -> Error {
        let err = err.with_endpoint(&*self.endpoint);
        match self.state.hint {
            Some(h) if err.is_unavailable() => err.with_hint(h),
            _ => err,
        }
    }

    /// Turns a status from this endpoint into an error naming the endpoint.
    fn error(&self, status: &tonic::Status) -> Error {
        self.finish(from_status(status))
    }
}

const CLIENT_CERT_HINT: &str =
    "if the server requires client certificates, set one with TlsConfig::client_cert_files";

fn hint_for(ep: &Endpoint, tls: Option<&LoadedTls>) -> Option<&'static str> {
    let has_identity = tls.is_some_and(LoadedTls::has_identity);
    (ep.uses_tls(tls.is_some()) && !has_identity).then_some(CLIENT_CERT_HINT)
}

pub(crate) struct Transport {
    endpoints: RwLock<Arc<Vec<Arc<EndpointState>>>>,
    max_recv: usize,
    next: AtomicUsize,
    started: Instant,
    closed: AtomicBool,
    request_timeout: Duration,
    max_send: usize,
    backoff: Backoff,
    max_attempts: u32,
    api_version: AsciiMetadataValue,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoints", &self.endpoint_names())
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Connects to every endpoint at once; succeeds when at least one answers within the
    /// connect timeout. Endpoints that fail are kept and connected lazily later.
    pub(crate) async fn connect(b: &ClientBuilder) -> Result<Transport> {
        if b.endpoints.is_empty() {
            return Err(Error::config(
                "no endpoints given (add at least one, e.g. \"http://127.0.0.1:2379\")",
            ));
        }
        if b.max_recv_message_size < b.max_send_message_size {
            return Err(Error::config(format!(
                "max_recv_message_size ({}) must not be smaller than max_send_message_size ({})",
                b.max_recv_message_size, b.max_send_message_size
            )));
        }
        let parsed = b
            .endpoints
            .iter()
            .map(|s| Endpoint::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let tls = match &b.tls {
            Some(t) => Some(t.load()?),
            None => None,
        };
        let keep_alive = b.keep_alive_interval.map(|i| (i, b.keep_alive_timeout));
        let mut states = Vec::with_capacity(parsed.len());
        for ep in parsed {
            let dialer = Dialer::new(&ep, tls.as_ref(), b.connect_timeout, keep_alive)?;
            states.push(Arc::new(EndpointState {
                name: Arc::from(ep.original.as_str()),
                hint: hint_for(&ep, tls.as_ref()),
                connection: Connection::new(dialer),
                down_until: AtomicU64::new(0),
            }));
        }
        let dials = states.iter().map(|s| s.connection.service());
        let results = futures_util::future::join_all(dials).await;
        let mut failures = Vec::new();
        for (state, result) in states.iter().zip(results) {
            if let Err(e) = result {
                let hint = state.hint.map(|h| format!(" ({h})")).unwrap_or_default();
                failures.push(format!("{}: {}{hint}", state.name, e.message()));
                state
                    .down_until
                    .store(ENDPOINT_DOWN_FOR.as_millis() as u64, Ordering::Relaxed);
            }
        }
        if failures.len() == states.len() {
            return Err(Error::new(
                ErrorKind::Connect,
                format!("could not connect to any endpoint: {}", failures.join("; ")),
            ));
        }
        Ok(Transport {
            endpoints: RwLock::new(Arc::new(states)),
            max_recv: b.max_recv_message_size,
            next: AtomicUsize::new(0),
            started: Instant::now(),
            closed: AtomicBool::new(false),
            request_timeout: b.request_timeout,
            max_send: b.max_send_message_size,
            backoff: b.backoff,
            max_attempts: b.max_attempts.max(1),
            api_version: AsciiMetadataValue::from_static(CLIENT_API_VERSION),
        })
    }

    fn snapshot(&self) -> Arc<Vec<Arc<EndpointState>>> {
        self.endpoints
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn endpoint_names(&self) -> Vec<String> {
        self.snapshot().iter().map(|s| s.name.to_string()).collect()
    }

    pub(crate) fn endpoint_count(&self) -> usize {
        self.snapshot().len()
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Picks the next endpoint round-robin, skipping endpoints that failed recently unless
    /// every endpoint did.
    pub(crate) fn pick(&self) -> Picked {
        let eps = self.snapshot();
        let n = eps.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        let index = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| eps[i].down_until.load(Ordering::Relaxed) <= now)
            .unwrap_or_else(|| {
                (0..n)
                    .min_by_key(|&i| eps[i].down_until.load(Ordering::Relaxed))
                    .unwrap_or(0)
            });
        let state = eps[index].clone();
        Picked {
            endpoint: state.name.clone(),
            state,
            max_recv: self.max_recv,
        }
    }

    pub(crate) fn mark_down(&self, picked: &Picked) {
        let until = self.now_ms() + ENDPOINT_DOWN_FOR.as_millis() as u64;
        picked.state.down_until.store(until, Ordering::Relaxed);
    }

    fn mark_up(&self, picked: &Picked) {
        let down = &picked.state.down_until;
        if down.load(Ordering::Relaxed) != 0 {
            down.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The deadline of a call that starts now.
    pub(crate) fn deadline(&self, opts: &CallOptions) -> (Instant, Duration) {
        let t = opts.timeout.unwrap_or(self.request_timeout);
        (Instant::now() + t, t)
    }

    /// The metadata every call carries; `grpc-timeout` tells the server the call's deadline
    /// when the caller chose one.
    fn metadata(&self, opts: &CallOptions, deadline: Instant) -> MetadataMap {
        let mut md = MetadataMap::new();
        self.add_metadata(&mut md, opts);
        if opts.timeout.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(v) = AsciiMetadataValue::try_from(grpc_timeout(left)) {
                md.insert("grpc-timeout", v);
            }
        }
        md
    }

    fn add_metadata(&self, md: &mut MetadataMap, opts: &CallOptions) {
        md.insert("client-api-version", self.api_version.clone());
        if opts.require_leader {
            md.insert("hasleader", AsciiMetadataValue::from_static("true"));
        }
    }

    /// Sends one unary request to `path` with deadline, endpoint failover and the retry
    /// policy of `rpc`.
    pub(crate) async fn unary<Req, Resp>(
        &self,
        rpc: Rpc,
        path: &'static str,
        msg: Req,
        opts: &CallOptions,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        if self.is_closed() {
            return Err(Error::closed());
        }
        let body = grpc::encode(&msg, self.max_send)?;
        let (deadline, total) = self.deadline(opts);
        let class = rpc.class();
        let mut attempt: u32 = 0;
        loop {
            let picked = self.pick();
            let md = self.metadata(opts, deadline);
            let attempt_result = tokio::time::timeout_at(deadline, async {
                let conn = picked.conn().await?;
                grpc::unary(conn.service, path, body.clone(), md, conn.max_recv)
                    .await
                    .map_err(|e| picked.finish(e))
            })
            .await;
            let err = match attempt_result {
                Err(_) => Error::timeout(total).with_endpoint(&*picked.endpoint),
                Ok(Ok(resp)) => {
                    self.mark_up(&picked);
                    return Ok(resp);
                }
                Ok(Err(err)) => err,
            };
            attempt += 1;
            self.after_failure(class, &picked, err, attempt, deadline)
                .await?;
        }
    }

    /// Decides, after attempt number `attempt` failed with `err`, whether to try again: marks
    /// the endpoint down when it is at fault, waits the backoff pause, and returns `Ok` to
    /// retry or the error to give up.
    async fn after_failure(
        &self,
        class: retry::RetryClass,
        picked: &Picked,
        err: Error,
        attempt: u32,
        deadline: Instant,
    ) -> Result<()> {
        if err.kind() == ErrorKind::Timeout {
            // A hung endpoint (stalled member, partition) should not take the next call
            // too: prefer the others for a while.
            self.mark_down(picked);
            return Err(err);
        }
        match retry::decide(class, &err, self.endpoint_count(), false) {
            Decision::Fail | Decision::RefreshToken => return Err(err),
            Decision::Retry { endpoint_down } => {
                if endpoint_down {
                    self.mark_down(picked);
                }
            }
        }
        if attempt >= self.max_attempts || self.is_closed() {
            return Err(err);
        }
        let pause = self.backoff.delay(attempt, self.endpoint_count());
        if Instant::now() + pause >= deadline {
            return Err(err);
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        Ok(())
    }

    /// Opens a stream on a live endpoint, moving to the next endpoint while opening fails with
    /// an error that proves nothing was processed (or any availability error, since opening a
    /// stream changes nothing on the server). Returns the stream and the endpoint it is on.
    pub(crate) async fn open_stream<T, F, Fut>(
        &self,
        opts: &CallOptions,
        open: F,
    ) -> Result<(T, Picked)>
    where
        F: Fn(Conn, MetadataMap) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        if self.is_closed() {
            return Err(Error::closed());
        }
        let (deadline, total) = self.deadline(opts);
        let mut attempt: u32 = 0;
        loop {
            let picked = self.pick();
            let mut md = MetadataMap::new();
            self.add_metadata(&mut md, opts);
            let attempt_result = tokio::time::timeout_at(deadline, async {
                let conn = picked.conn().await?;
                open(conn, md).await.map_err(|status| picked.error(&status))
            })
            .await;
            let err = match attempt_result {
                Err(_) => Error::timeout(total).with_endpoint(&*picked.endpoint),
                Ok(Ok(stream)) => {
                    self.mark_up(&picked);
                    return Ok((stream, picked));
                }
                Ok(Err(err)) => err,
            };
            attempt += 1;
            self.after_failure(
                retry::RetryClass::Repeatable,
                &picked,
                err,
                attempt,
                deadline,
            )
            .await?;
        }
    }
}

/// A `grpc-timeout` header value: at most 8 digits and a unit.
fn grpc_timeout(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 100_000_000 {
        format!("{}m", ms.max(1))
    } else {
        format!("{}S", d.as_secs().min(99_999_999))
    }
}

/// Joins an error and its sources into one line, dropping repeated parts, and adds a hint for
/// common causes.
pub(crate) fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) && s != "transport error" {
            parts.push(s);
        }
        cur = e.source();
    }
    let mut text = parts.join(": ");
    let lower = text.to_lowercase();
    let hint = if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
        Some("the server certificate is not signed by a trusted CA (set the CA certificate)")
    } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
        Some("the server certificate does not name this host")
    } else if lower.contains("certificaterequired") || lower.contains("certificate required") {
        Some("the server requires a client certificate")
    } else if lower.contains("invalidcontenttype")
        || lower.contains("corrupt message")
        || lower.contains("received corrupt")
    {
        Some("the server does not speak TLS on this port (use http:// or drop the TLS config)")
    } else if lower.contains("connection refused") {
        Some("nothing listens there; is etcd running?")
    } else {
        None
    };
    if let Some(h) = hint {
        text.push_str(" (");
        text.push_str(h);
        text.push(')');
    }
    if text.is_empty() {
        text = "unknown error".into();
    }
    text
}

/// Turns a gRPC status into an [`Error`]: etcd's own errors by their message, a broken
/// connection by the error chain.
pub(crate) fn from_status(status: &tonic::Status) -> Error {
    let grpc = GrpcCode::from(status.code());
    if let Some(code) = Code::from_message(status.message()) {
        return Error::server(Some(code), grpc, status.message());
    }
    if let Some(rest) = status
        .message()
        .strip_prefix("Error, decoded message length too large: found ")
    {
        let (found, limit) = rest.split_once(", the limit is: ").unwrap_or((rest, "?"));
        return Error::response_too_large(found, limit).with_grpc(grpc);
    }
    // A stream that broke carries the transport error (h2, I/O) as its source.
    match std::error::Error::source(status).map(describe) {
        Some(text)
            if matches!(
                grpc,
                GrpcCode::Unavailable | GrpcCode::Unknown | GrpcCode::Internal | GrpcCode::Canceled
            ) =>
        {
            Error::new(ErrorKind::Unavailable, format!("connection lost: {text}")).with_grpc(grpc)
        }
        _ => {
            let msg = if status.message().is_empty() {
                format!("etcd returned gRPC status {:?}", status.code())
            } else {
                status.message().to_owned()
            };
            Error::server(None, grpc, msg)
        }
    }
}
