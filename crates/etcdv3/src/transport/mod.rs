//! Connections to etcd members, endpoint selection, deadlines, metadata and retries.
//!
//! Every request the client sends goes through [`Transport::unary`] (one request, one answer)
//! or [`Transport::open_stream`] (watch, keep-alive, snapshot ...). Both run the same attempt
//! loop: pick an endpoint ([`balancer`]), add the metadata, bound the attempt by the call's
//! deadline, and on failure apply the retry policy of [`retry`] to the error [`status`] made.
//! Those concerns live here and nowhere else.

pub(crate) mod auth;
pub(crate) mod balancer;
mod connection;
pub(crate) mod endpoint;
mod grpc;
pub(crate) mod retry;
pub(crate) mod rpc;
mod shutdown;
pub(crate) mod status;
pub(crate) mod stream;
#[cfg(test)]
mod tests;
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
mod tls;
#[cfg(feature = "tls")]
mod tls;

use std::future::Future;
use std::sync::Arc;
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use self::auth::{Auth, Credentials, TokenGeneration};
use self::balancer::{Balancer, EndpointState};
use self::connection::Http2Service;
use self::endpoint::Endpoint;
use self::retry::Decision;
use self::rpc::{Rpc, Wait};
pub(crate) use self::shutdown::Shutdown;
use self::status::{connect_failed, lost};
use self::stream::GrpcStream;
pub(crate) use self::tls::{LoadedTls, TlsConnector, TlsMaterial};
use crate::call::{CallOptions, Deadline};
use crate::config::{Backoff, KeepAlive};
use crate::error::{Code, Error, ErrorKind, Result};

/// The API version this client speaks, sent as `client-api-version` metadata.
const CLIENT_API_VERSION: &str = "3.7";

/// An error that arrives this close to the deadline, or after it, is the deadline's doing
/// (etcd cancels a request at the `grpc-timeout` it was sent, racing the client's own timer).
const DEADLINE_SLACK: Duration = Duration::from_millis(2);

/// What the transport runs on: the client's settings, checked, with endpoints parsed and TLS
/// files read. Built by [`ClientBuilder`](crate::ClientBuilder).
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) tls: Option<LoadedTls>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) keep_alive: KeepAlive,
    pub(crate) max_send: usize,
    pub(crate) max_recv: usize,
    pub(crate) backoff: Backoff,
    pub(crate) max_attempts: u32,
    pub(crate) propagate_deadlines: bool,
    pub(crate) credentials: Option<Credentials>,
}

/// Where one call goes and under which options: the call's own, the defaults of the client
/// handle it was made through, and the endpoint it is pinned to, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route<'a> {
    pub(crate) call: CallOptions,
    pub(crate) defaults: CallOptions,
    pub(crate) pinned: Option<&'a Arc<EndpointState>>,
}

/// A call's deadline: when, and how long that was from its start.
type Bound = Option<(Instant, Duration)>;

pub(crate) struct Transport {
    balancer: Balancer,
    settings: Settings,
    shutdown: Shutdown,
    api_version: HeaderValue,
    auth: Auth,
    /// Attempts made by every call, for tests that check a call does not spin.
    #[cfg(test)]
    attempts: AtomicU64,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoints", &self.endpoint_names())
            .field("request_timeout", &self.settings.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // The last client handle is gone: end the connections and background tasks.
        self.shutdown.signal();
    }
}

impl Transport {
    /// Connects to every endpoint at once; succeeds when at least one answers within the
    /// connect timeout. Endpoints that fail are kept and connected lazily later.
    pub(crate) async fn connect(settings: Settings) -> Result<Transport> {
        let shutdown = Shutdown::default();
        let states = settings
            .endpoints
            .iter()
            .map(|ep| EndpointState::new(ep.clone(), &settings, &shutdown))
            .collect::<Result<Vec<_>>>()?;
        let balancer = Balancer::new(states.clone());
        let dials = states.iter().map(|s| s.service());
        let results = futures_util::future::join_all(dials).await;
        let mut failures = Vec::new();
        for (state, result) in states.iter().zip(results) {
            if let Err(e) = result {
                failures.push(e.to_string());
                balancer.mark_down(state);
            }
        }
        if failures.len() == states.len() {
            shutdown.signal();
            return Err(Error::new(
                ErrorKind::Connect,
                format!("could not connect to any endpoint: {}", failures.join("; ")),
            ));
        }
        let auth = Auth::new(settings.credentials.clone())?;
        let transport = Transport {
            balancer,
            settings,
            shutdown,
            api_version: HeaderValue::from_static(CLIENT_API_VERSION),
            auth,
            #[cfg(test)]
            attempts: AtomicU64::new(0),
        };
        // With a user and password, the first token now: a wrong password fails `connect`.
        if transport.auth.can_refresh() {
            let token = transport.authenticate().await?;
            transport.auth.store(token.as_deref())?;
        }
        Ok(transport)
    }

    /// Asks etcd for a token with the client's user and password; `None` when etcd does not
    /// have auth enabled (calls then go without a token, as in Go).
    async fn authenticate(&self) -> Result<Option<String>> {
        let Some(request) = self.auth.request() else {
            return Ok(None);
        };
        let route = Route {
            call: CallOptions::new(),
            defaults: CallOptions::new(),
            pinned: None,
        };
        let answer: Result<etcdv3_proto::etcdserverpb::AuthenticateResponse> =
            self.unary(Rpc::Authenticate, request, &route).await;
        match answer {
            Ok(resp) => Ok(Some(resp.token)),
            Err(e) if e.code() == Some(Code::AuthNotEnabled) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Fetches a new token, unless the one of generation `seen` was already replaced.
    /// (Boxed behind its signature: authenticating is itself a call, whose retry loop may
    /// come back here.)
    pub(crate) fn refresh_token(
        &self,
        seen: TokenGeneration,
    ) -> futures_util::future::BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.refresh(seen, || self.authenticate()).await })
    }

    /// The generation of the current token (0 without one).
    pub(crate) fn token_generation(&self) -> TokenGeneration {
        self.auth.token().map_or(0, |(_, g)| g)
    }

    /// Whether the client can fetch a new token (it has a user and password).
    pub(crate) fn can_refresh_token(&self) -> bool {
        self.auth.can_refresh()
    }

    pub(crate) fn endpoint_names(&self) -> Vec<String> {
        self.balancer
            .snapshot()
            .iter()
            .map(|s| s.name.to_string())
            .collect()
    }

    /// The endpoint `ep` for pinned calls: the client's own when it is in the list (sharing
    /// its connection), else a new one with the same settings, dialled on first use.
    pub(crate) fn endpoint(&self, ep: &str) -> Result<Arc<EndpointState>> {
        let parsed = Endpoint::parse(ep)?;
        let known = self
            .balancer
            .snapshot()
            .iter()
            .find(|s| {
                *s.name == *ep
                    || (s.parsed.address == parsed.address && s.parsed.security == parsed.security)
            })
            .cloned();
        match known {
            Some(state) => Ok(state),
            None => EndpointState::new(parsed, &self.settings, &self.shutdown),
        }
    }

    /// Avoids the endpoint named `name` for a while (a stream on it broke).
    pub(crate) fn mark_down(&self, name: &str) {
        if let Some(ep) = self.balancer.snapshot().iter().find(|s| *s.name == *name) {
            self.balancer.mark_down(ep);
        }
    }

    /// The deadline a prompt call with these options gets (`None`: it waits without one).
    pub(crate) fn prompt_timeout(
        &self,
        call: CallOptions,
        defaults: CallOptions,
    ) -> Option<Duration> {
        resolve_timeout(
            call.get_deadline(),
            defaults.get_deadline(),
            Wait::Prompt,
            self.settings.request_timeout,
        )
    }

    /// How long a dial may take.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.settings.connect_timeout
    }

    /// The close signal and background tasks.
    pub(crate) fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shutdown.is_closed()
    }

    /// Closes every connection and ends every background task (waiting at most a second).
    pub(crate) async fn close(&self) {
        self.shutdown.close().await;
    }

    /// How many attempts calls have made so far.
    #[cfg(test)]
    pub(crate) fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// The call's deadline. Calls that wait by design have none unless they set one; the
    /// client's default applies to the others.
    fn timeout(&self, rpc: Rpc, route: &Route<'_>) -> Option<Duration> {
        resolve_timeout(
            route.call.get_deadline(),
            route.defaults.get_deadline(),
            rpc.wait(),
            self.settings.request_timeout,
        )
    }

    /// The metadata of one attempt. `grpc-timeout` carries what is left of the deadline, when
    /// deadlines are propagated.
    fn metadata(
        &self,
        rpc: Rpc,
        route: &Route<'_>,
        deadline: Bound,
    ) -> (HeaderMap, TokenGeneration) {
        let mut md = HeaderMap::new();
        md.insert("client-api-version", self.api_version.clone());
        let mut generation = 0;
        if rpc != Rpc::Authenticate
            && let Some((token, g)) = self.auth.token()
        {
            md.insert("token", token);
            generation = g;
        }
        if route.call.requires_leader() || route.defaults.requires_leader() {
            md.insert("hasleader", HeaderValue::from_static("true"));
        }
        if let (true, Some((at, _))) = (self.settings.propagate_deadlines, deadline) {
            let left = at.saturating_duration_since(Instant::now());
            if let Ok(v) = HeaderValue::try_from(grpc_timeout(left)) {
                md.insert("grpc-timeout", v);
            }
        }
        (md, generation)
    }

    /// Sends one unary request with the deadline, endpoint choice and retry policy of `rpc`.
    pub(crate) async fn unary<Req, Resp>(
        &self,
        rpc: Rpc,
        msg: Req,
        route: &Route<'_>,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        if self.is_closed() {
            return Err(Error::closed());
        }
        let body = grpc::encode(&msg, self.settings.max_send)?;
        let max_recv = self.settings.max_recv;
        self.call(rpc, route, |service, headers, _| {
            grpc::unary(service, rpc.path(), body.clone(), headers, max_recv)
        })
        .await
    }

    /// Opens a stream for `rpc` on a live endpoint and writes `first` on it (for an RPC whose
    /// client does not stream, `first` is the whole request and ends it). Resolves when
    /// etcd answers (its first message), moving to the next endpoint while opening fails
    /// (opening changes nothing on the server). The call's deadline covers only the opening;
    /// calls that wait by design (watch, keep-alive, observe) have none unless they set one.
    pub(crate) async fn open_stream<Req, Resp>(
        &self,
        rpc: Rpc,
        route: &Route<'_>,
        first: &[Req],
    ) -> Result<GrpcStream<Req, Resp>>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        if self.is_closed() {
            return Err(Error::closed());
        }
        let max_send = self.settings.max_send;
        let frames = first
            .iter()
            .map(|m| grpc::encode(m, max_send))
            .collect::<Result<Vec<Bytes>>>()?;
        let max_recv = self.settings.max_recv;
        let shutdown = &self.shutdown;
        self.call(rpc, route, |service, headers, ep| {
            let frames = frames.clone();
            let endpoint = ep.name.clone();
            let shutdown = shutdown.clone();
            async move {
                let (response, mut send, in_flight) =
                    service.open(rpc.path(), headers).await.map_err(|e| {
                        connect_failed("the connection closed before the stream opened", e)
                    })?;
                let last = frames.len();
                for (i, frame) in frames.into_iter().enumerate() {
                    let end = !rpc.client_streams() && i + 1 == last;
                    send.send_data(frame, end).map_err(lost)?;
                }
                let (parts, recv) = response.await.map_err(lost)?.into_parts();
                grpc::check_response(&parts)?;
                Ok(GrpcStream::new(stream::Parts {
                    send: rpc.client_streams().then_some(send),
                    recv,
                    in_flight,
                    endpoint,
                    max_send,
                    max_recv,
                    shutdown,
                }))
            }
        })
        .await
    }

    /// The attempt loop of every call. A call without a deadline ends at the latest when the
    /// client closes.
    async fn call<T, F, Fut>(&self, rpc: Rpc, route: &Route<'_>, attempt: F) -> Result<T>
    where
        F: FnMut(Http2Service, HeaderMap, &Arc<EndpointState>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match self.timeout(rpc, route) {
            Some(t) => {
                self.attempts_until(rpc, route, Some((Instant::now() + t, t)), attempt)
                    .await
            }
            None => {
                Box::pin(async {
                    tokio::select! {
                        r = self.attempts_until(rpc, route, None, attempt) => r,
                        () = self.shutdown.closed() => Err(Error::closed()),
                    }
                })
                .await
            }
        }
    }

    async fn attempts_until<T, F, Fut>(
        &self,
        rpc: Rpc,
        route: &Route<'_>,
        deadline: Bound,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut(Http2Service, HeaderMap, &Arc<EndpointState>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut failed: u32 = 0;
        loop {
            let ep = match route.pinned {
                Some(p) => p.clone(),
                None => self.balancer.pick(),
            };
            #[cfg(test)]
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let (headers, token) = self.metadata(rpc, route, deadline);
            // Two stages, so that a timeout knows whether the request was sent. The first
            // needs no timer when the connection is up.
            // Dialling (TCP, TLS and HTTP/2 handshakes) is boxed: inline, its large future
            // would make every call's future large, and moving it costs on every call.
            let connected = match ep.ready() {
                Some(service) => Some(Ok(service)),
                None => within(deadline, Box::pin(ep.service())).await,
            };
            let result = match connected {
                None => Err(Error::timeout(deadline_len(deadline)).with_endpoint(&*ep.name)),
                Some(Err(e)) => Err(e),
                Some(Ok(service)) => match within(deadline, attempt(service, headers, &ep)).await {
                    None => Err(Error::timeout(deadline_len(deadline))
                        .sent()
                        .with_endpoint(&*ep.name)),
                    Some(r) => r.map_err(|e| ep.finish(e)),
                },
            };
            match result {
                Ok(v) => {
                    self.balancer.mark_up(&ep);
                    return Ok(v);
                }
                Err(err) => {
                    failed += 1;
                    let failure = Failure { err, failed, token };
                    Box::pin(self.after_failure(rpc, route, &ep, failure, deadline)).await?;
                }
            }
        }
    }

    /// Decides, after attempt number `failed` failed with `err`, whether to try again: marks
    /// the endpoint down when it is at fault, waits the backoff pause, and returns `Ok` to
    /// retry or the error to give up.
    async fn after_failure(
        &self,
        rpc: Rpc,
        route: &Route<'_>,
        ep: &EndpointState,
        failure: Failure,
        deadline: Bound,
    ) -> Result<()> {
        let Failure { err, failed, token } = failure;
        if self.is_closed() {
            let closed = Error::closed();
            return Err(if err.was_sent() {
                closed.sent()
            } else {
                closed
            });
        }
        let err = match deadline {
            Some((at, total)) if past(at) && deadline_shaped(&err) => err.into_timeout(total),
            _ => err,
        };
        if err.kind() == ErrorKind::Timeout && err.grpc_code().is_none() {
            // The caller's deadline. A hung endpoint (stalled member, partition) should not
            // take the next call too, unless the call waits by design.
            if rpc.wait() == Wait::Prompt {
                self.balancer.mark_down(ep);
            }
            return Err(err);
        }
        let endpoints = match route.pinned {
            Some(_) => 1,
            None => self.balancer.len(),
        };
        match retry::decide(rpc.class(), &err, endpoints, self.auth.can_refresh()) {
            // etcd refused the token before doing anything: fetch a new one (once for every
            // call that had the same token) and try again at once, writes too.
            Decision::RefreshToken if rpc != Rpc::Authenticate => {
                self.refresh_token(token).await?;
                if deadline.is_some() && failed >= self.settings.max_attempts {
                    return Err(err);
                }
                return Ok(());
            }
            Decision::Fail | Decision::RefreshToken => {
                // A write that broke in flight says as much about the endpoint as a timeout.
                if err.kind() == ErrorKind::Unavailable {
                    self.balancer.mark_down(ep);
                }
                return Err(err);
            }
            Decision::Retry { endpoint_down } => {
                if endpoint_down {
                    self.balancer.mark_down(ep);
                }
            }
        }
        // Without a deadline the call waits as long as it must; the backoff keeps it calm.
        if deadline.is_some() && failed >= self.settings.max_attempts {
            return Err(err);
        }
        let pause = self.settings.backoff.delay(failed, endpoints);
        if let Some((at, _)) = deadline
            && Instant::now() + pause >= at
        {
            return Err(err);
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        Ok(())
    }
}

/// One failed attempt: its error, how many attempts failed so far, and the token it was sent
/// with.
struct Failure {
    err: Error,
    failed: u32,
    token: TokenGeneration,
}

/// A call's timeout: its own deadline, else none for calls that wait by design, else the
/// client handle's default, else the client's request timeout.
fn resolve_timeout(
    call: Deadline,
    defaults: Deadline,
    wait: Wait,
    request_timeout: Duration,
) -> Option<Duration> {
    let deadline = match (call, wait) {
        (Deadline::Default, Wait::MayBlock) => Deadline::Never,
        (Deadline::Default, Wait::Prompt) => defaults,
        (d, _) => d,
    };
    match deadline {
        Deadline::After(d) => Some(d),
        Deadline::Never => None,
        _ => Some(request_timeout),
    }
}

/// Runs `f` until the deadline, if there is one; `None` when it ran out.
async fn within<F: Future>(deadline: Bound, f: F) -> Option<F::Output> {
    match deadline {
        Some((at, _)) => tokio::time::timeout_at(at, f).await.ok(),
        None => Some(f.await),
    }
}

fn deadline_len(deadline: Bound) -> Duration {
    deadline.map(|(_, d)| d).unwrap_or_default()
}

/// Whether the deadline has passed (within [`DEADLINE_SLACK`]).
fn past(at: Instant) -> bool {
    Instant::now() + DEADLINE_SLACK >= at
}

/// Failures that a deadline passing produces: a cancelled or broken stream, a refused dial, a
/// bare gRPC status, or etcd giving up on a request whose context ended (its commit wait timed
/// out or was cancelled). etcd's refusals (compacted, no leader ...) are not.
fn deadline_shaped(err: &Error) -> bool {
    match err.kind() {
        ErrorKind::Unavailable | ErrorKind::Connect => true,
        ErrorKind::Server => err.code().is_none_or(Code::may_have_been_applied),
        _ => false,
    }
}

/// A `grpc-timeout` header value: at most 8 digits and a unit, rounded up so that the
/// server's deadline never comes before the client's.
fn grpc_timeout(d: Duration) -> String {
    let ms = d.as_nanos().div_ceil(1_000_000);
    if ms < 100_000_000 {
        format!("{}m", ms.max(1))
    } else {
        format!("{}S", d.as_secs().min(99_999_999))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn deadlines_resolve_from_the_call_outwards() {
        let ten = Duration::from_secs(10);
        let three = Duration::from_secs(3);
        let one = Duration::from_secs(1);
        use Deadline::{After, Default as D, Never};
        // The client's request timeout, unless a handle or the call says otherwise.
        assert_eq!(resolve_timeout(D, D, Wait::Prompt, ten), Some(ten));
        assert_eq!(
            resolve_timeout(D, After(three), Wait::Prompt, ten),
            Some(three)
        );
        assert_eq!(
            resolve_timeout(After(one), After(three), Wait::Prompt, ten),
            Some(one)
        );
        assert_eq!(
            resolve_timeout(Never, After(three), Wait::Prompt, ten),
            None
        );
        // Calls that wait by design take only their own deadline.
        assert_eq!(resolve_timeout(D, After(three), Wait::MayBlock, ten), None);
        assert_eq!(resolve_timeout(D, D, Wait::MayBlock, ten), None);
        assert_eq!(
            resolve_timeout(After(one), D, Wait::MayBlock, ten),
            Some(one)
        );
    }

    #[test]
    fn grpc_timeouts_round_up() {
        assert_eq!(grpc_timeout(Duration::from_micros(1500)), "2m");
        assert_eq!(grpc_timeout(Duration::from_millis(250)), "250m");
        assert_eq!(grpc_timeout(Duration::ZERO), "1m");
        assert_eq!(grpc_timeout(Duration::from_secs(200_000)), "200000S");
    }
}
