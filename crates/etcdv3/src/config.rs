//! Client configuration: one builder, with every default written down.

use std::path::PathBuf;
use std::time::Duration;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::transport::auth::{Credentials, Secret};
use crate::transport::endpoint::Endpoint;
use crate::transport::{LoadedTls, Settings, TlsMaterial};

/// Configures and connects a [`Client`].
///
/// Invalid settings are kept and reported by [`connect`](ClientBuilder::connect), so a builder
/// chain never panics.
///
/// ```no_run
/// # async fn demo() -> etcdv3::Result<()> {
/// use std::time::Duration;
///
/// let client = etcdv3::Client::builder()
///     .endpoints(["http://127.0.0.1:2379", "http://127.0.0.1:22379"])
///     .connect_timeout(Duration::from_secs(2))
///     .request_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    endpoints: Vec<String>,
    connect_timeout: Duration,
    request_timeout: Duration,
    keep_alive: KeepAlive,
    max_send_message_size: usize,
    max_recv_message_size: usize,
    tls: Option<TlsConfig>,
    pub(crate) require_leader: bool,
    pub(crate) reject_old_cluster: bool,
    max_attempts: u32,
    backoff: Backoff,
    propagate_deadlines: bool,
    user: Option<(String, Secret)>,
    token: Option<Secret>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            endpoints: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            keep_alive: KeepAlive::default(),
            max_send_message_size: 2 * 1024 * 1024,
            max_recv_message_size: i32::MAX as usize,
            tls: None,
            require_leader: false,
            reject_old_cluster: false,
            max_attempts: 100,
            backoff: Backoff::default(),
            propagate_deadlines: false,
            user: None,
            token: None,
        }
    }
}

impl ClientBuilder {
    /// A builder with every setting at its default and no endpoints.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the endpoints (replacing earlier ones). Accepted forms: `host:port`,
    /// `http://host:port`, `https://host:port`, `unix:///path/to/socket`, `unixs:///path`.
    /// `http://` is plaintext even when TLS is configured; `https://` always uses TLS; a bare
    /// `host:port` uses TLS when [`tls`](Self::tls) is set.
    pub fn endpoints<S: Into<String>>(mut self, endpoints: impl IntoIterator<Item = S>) -> Self {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// How long connecting to one endpoint may take. Default: 5 s.
    ///
    /// [`connect`](Self::connect) returns within this time, with an error naming each
    /// endpoint's failure when none could be reached.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The deadline of every request that does not set its own. Default: 10 s.
    ///
    /// It bounds the whole call, retries included. Calls that wait by design (lock, campaign,
    /// observe, and the opening of streams) have no deadline unless they set one. The same as
    /// [`Client::with_request_timeout`], which sets it for a copy of the client.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// HTTP/2 keep-alive pings on busy connections, to notice a dead member. Default:
    /// [`KeepAlive::default`], a ping every 10 s answered within 10 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use etcdv3::KeepAlive;
    ///
    /// let b = etcdv3::Client::builder()
    ///     .keep_alive(KeepAlive::every(Duration::from_secs(30)).timeout(Duration::from_secs(5)));
    /// let quiet = etcdv3::Client::builder().keep_alive(KeepAlive::off());
    /// # let _ = (b, quiet);
    /// ```
    pub fn keep_alive(mut self, keep_alive: KeepAlive) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Sends each call's deadline to the server (`grpc-timeout`), so etcd abandons the request
    /// when it passes even if it never hears from the client again. Default: off.
    ///
    /// Off, the deadline is enforced by the client alone: when it passes, the client resets
    /// the request's HTTP/2 stream, and etcd cancels the request as soon as that reset
    /// arrives (or the connection closes). The header costs etcd a timer per request; see
    /// `bench/results/` for the measured cost. Either way, a call whose deadline passed fails
    /// with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), whichever side noticed first.
    pub fn propagate_deadlines(mut self, on: bool) -> Self {
        self.propagate_deadlines = on;
        self
    }

    /// The largest request the client sends, in bytes. Default: 2 MiB, as the Go client.
    /// Larger requests fail with [`ErrorKind::RequestTooLarge`](crate::ErrorKind) before being
    /// sent. The server has its own limit (`--max-request-bytes`, 1.5 MiB by default).
    pub fn max_send_message_size(mut self, bytes: usize) -> Self {
        self.max_send_message_size = bytes;
        self
    }

    /// The largest response the client accepts, in bytes. Default: 2^31-1 (unlimited in
    /// practice), as the Go client. Must not be smaller than the send limit.
    pub fn max_recv_message_size(mut self, bytes: usize) -> Self {
        self.max_recv_message_size = bytes;
        self
    }

    /// Uses TLS for `https://`, `unixs://` and bare `host:port` endpoints. Default: none.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Makes every request fail with [`Code::NoLeader`](crate::Code) instead of waiting when
    /// the member has no leader. Default: off. See also [`Client::with_require_leader`].
    pub fn require_leader(mut self, on: bool) -> Self {
        self.require_leader = on;
        self
    }

    /// Makes [`connect`](Self::connect) ask every endpoint's status and fail with
    /// [`ErrorKind::OldCluster`](crate::ErrorKind::OldCluster) when a member runs an etcd
    /// older than 3.4, the oldest this client supports (Go's `RejectOldCluster`). Default: off.
    ///
    /// The statuses are asked within the connect timeout. Endpoints that cannot be reached
    /// are skipped, as [`connect`](Self::connect) succeeds while any endpoint answers; when
    /// none answers, its failure is returned. Any other failure (e.g. a refused permission)
    /// fails `connect`, as in Go. Go's own floor is the minor version before its own (3.5 for
    /// a 3.6 client); this client supports 3.4, so that is its floor.
    pub fn reject_old_cluster(mut self, on: bool) -> Self {
        self.reject_old_cluster = on;
        self
    }

    /// The most attempts one request may make, the first included. Default: 100. The request
    /// deadline bounds retries too.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The pause after each round of retries over the endpoints. Default:
    /// [`Backoff::default`] (25 ms doubling to 500 ms, ±10 %).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Authenticates as `user` with `password` (etcd's user/password auth). `connect` gets the
    /// first token, and fails with [`Code::AuthFailed`](crate::Code::AuthFailed)
    /// ([`Error::is_auth_failed`](crate::Error::is_auth_failed)) for a wrong user or
    /// password; a cluster without auth enabled is fine (calls go without a token, as in Go).
    /// The token goes on every call and stream. When etcd no longer accepts it (expired,
    /// invalidated by an auth change), the client fetches a new one (once, for every call that
    /// had the old one) and sends the call again: callers never see it. The password is kept
    /// out of `Debug` output and error messages.
    ///
    /// With TLS client certificates and etcd's `--client-cert-auth`, the certificate's common
    /// name is the user and no password is needed.
    ///
    /// ```no_run
    /// # async fn demo() -> etcdv3::Result<()> {
    /// let client = etcdv3::Client::builder()
    ///     .endpoints(["http://127.0.0.1:2379"])
    ///     .user("alice", "s3cret")
    ///     .connect()
    ///     .await?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), Secret::new(password)));
        self
    }

    /// Sends `token` as the auth token of every call (a token from elsewhere, e.g. etcd 3.7's
    /// static tokens). It is never refreshed: once etcd stops accepting it, calls fail with
    /// [`Code::InvalidAuthToken`](crate::Code::InvalidAuthToken). Cannot be combined with
    /// [`user`](Self::user) (`connect` fails with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config)). Kept out of `Debug` output.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token));
        self
    }

    fn credentials(&self) -> Result<Option<Credentials>> {
        match (&self.user, &self.token) {
            (Some(_), Some(_)) => Err(Error::config(
                "set either user(name, password) or token(t), not both: a user's token is \
                 fetched and refreshed by the client",
            )),
            (Some((user, _)), None) if user.is_empty() => Err(Error::config(
                "user(name, password): the user name is empty",
            )),
            (Some((user, password)), None) => Ok(Some(Credentials::Password {
                user: user.clone(),
                password: password.clone(),
            })),
            (None, Some(token)) if token.expose().is_empty() => {
                Err(Error::config("token(t): the token is empty"))
            }
            (None, Some(token)) => Ok(Some(Credentials::Token(token.clone()))),
            (None, None) => Ok(None),
        }
    }

    /// Connects. Succeeds when at least one endpoint answers within the connect timeout;
    /// otherwise the error names every endpoint and why it failed (refused, timed out, TLS
    /// handshake). Endpoints that were down are retried when requests need them.
    pub async fn connect(self) -> Result<Client> {
        Client::from_builder(self).await
    }

    /// Checks the settings and turns them into what the transport runs on: parsed endpoints,
    /// TLS files read.
    pub(crate) fn settings(&self) -> Result<Settings> {
        if self.endpoints.is_empty() {
            return Err(Error::config(
                "no endpoints given (add at least one, e.g. \"http://127.0.0.1:2379\")",
            ));
        }
        if self.max_recv_message_size < self.max_send_message_size {
            return Err(Error::config(format!(
                "max_recv_message_size ({}) must not be smaller than max_send_message_size ({})",
                self.max_recv_message_size, self.max_send_message_size
            )));
        }
        let endpoints = self
            .endpoints
            .iter()
            .map(|s| Endpoint::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let tls = self.tls.as_ref().map(TlsConfig::load).transpose()?;
        Ok(Settings {
            endpoints,
            tls,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            keep_alive: self.keep_alive,
            max_send: self.max_send_message_size,
            max_recv: self.max_recv_message_size,
            backoff: self.backoff,
            max_attempts: self.max_attempts.max(1),
            propagate_deadlines: self.propagate_deadlines,
            credentials: self.credentials()?,
        })
    }
}

/// HTTP/2 keep-alive pings, which notice a member that went silent (a partition, a paused
/// process) while calls or streams are open.
///
/// Pings are sent only while the connection has open requests or streams, as etcd's ping
/// policy requires (it closes connections that ping when idle, or more often than every
/// 5 s). A ping not answered in time closes the connection: its calls fail with
/// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) and streams move to another
/// member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use]
pub struct KeepAlive {
    interval: Option<Duration>,
    timeout: Duration,
}

/// etcd's ping policy: a client may not ping more often than this.
const MIN_PING_INTERVAL: Duration = Duration::from_secs(5);

impl Default for KeepAlive {
    /// A ping every 10 s, answered within 10 s.
    fn default() -> Self {
        KeepAlive {
            interval: Some(Duration::from_secs(10)),
            timeout: Duration::from_secs(10),
        }
    }
}

impl KeepAlive {
    /// A ping every `interval` (at least 5 s: shorter intervals are raised to 5 s, since etcd
    /// closes connections that ping more often), answered within 10 s unless
    /// [`timeout`](Self::timeout) says otherwise.
    pub fn every(interval: Duration) -> Self {
        KeepAlive {
            interval: Some(interval.max(MIN_PING_INTERVAL)),
            ..Self::default()
        }
    }

    /// How long a ping may go unanswered before the connection is dropped.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// No pings: a silent member is noticed only by call deadlines.
    pub fn off() -> Self {
        KeepAlive {
            interval: None,
            ..Self::default()
        }
    }

    /// The interval and timeout, when pings are on.
    pub(crate) fn pings(&self) -> Option<(Duration, Duration)> {
        self.interval.map(|i| (i, self.timeout))
    }
}

/// The pause between attempts of a retried call.
///
/// Retries first walk the other endpoints without pausing; after each full round over a quorum
/// of endpoints the client waits `base`, doubling each round up to `max`, with ±`jitter` random
/// spread so that many clients do not retry in step.
///
/// ```
/// use std::time::Duration;
/// use etcdv3::Backoff;
///
/// let patient = Backoff::new(Duration::from_millis(100), Duration::from_secs(2)).jitter(0.2);
/// let b = etcdv3::Client::builder().backoff(patient);
/// # let _ = b;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[must_use]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: f64,
}

impl Default for Backoff {
    /// 25 ms, doubling to 500 ms, ±10 %.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(25),
            max: Duration::from_millis(500),
            jitter: 0.1,
        }
    }
}

impl Backoff {
    /// Starts at `base` and doubles each round up to `max`, with the default ±10 % jitter.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            ..Self::default()
        }
    }

    /// Spreads each pause by ±`fraction` at random (clamped to 0..=1).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// The pause before attempt `attempt` (1-based: the first retry is attempt 1), given
    /// `endpoints` endpoints, and a random number `r` in `[0, 1)`.
    pub(crate) fn delay_with(&self, attempt: u32, endpoints: usize, r: f64) -> Duration {
        let quorum = (endpoints / 2 + 1) as u32;
        if attempt == 0 || !attempt.is_multiple_of(quorum) {
            return Duration::ZERO;
        }
        let round = attempt / quorum;
        let factor = 2f64.powi(round.saturating_sub(1).min(30) as i32);
        let base = self.base.as_secs_f64() * factor;
        let capped = base.min(self.max.as_secs_f64());
        let spread = 1.0 + self.jitter * (2.0 * r - 1.0);
        Duration::from_secs_f64((capped * spread).max(0.0))
    }

    /// As [`delay_with`](Self::delay_with) with a random `r`.
    pub(crate) fn delay(&self, attempt: u32, endpoints: usize) -> Duration {
        self.delay_with(attempt, endpoints, rand::random::<f64>())
    }
}

/// TLS settings: which CA to trust and, for mutual TLS, the client's certificate.
///
/// Files are read by [`ClientBuilder::connect`], which reports a missing or unreadable file.
///
/// ```no_run
/// # async fn demo() -> etcdv3::Result<()> {
/// let tls = etcdv3::TlsConfig::new()
///     .ca_cert_file("/etc/etcd/ca.crt")
///     .client_cert_files("/etc/etcd/client.crt", "/etc/etcd/client.key");
/// let client = etcdv3::Client::builder()
///     .endpoints(["https://127.0.0.1:2379"])
///     .tls(tls)
///     .connect()
///     .await?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct TlsConfig {
    ca: Option<Pem>,
    identity: Option<(Pem, Pem)>,
    server_name: Option<String>,
    skip_verify: bool,
}

#[derive(Debug, Clone)]
enum Pem {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl Pem {
    fn read(&self, what: &str) -> Result<Vec<u8>> {
        match self {
            Pem::Bytes(b) => Ok(b.clone()),
            Pem::File(p) => std::fs::read(p)
                .map_err(|e| Error::config(format!("cannot read {what} {}: {e}", p.display()))),
        }
    }
}

impl TlsConfig {
    /// TLS with no CA set (the server certificate must then chain to a CA given later) and no
    /// client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA certificate(s) in this PEM file.
    pub fn ca_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(Pem::File(path.into()));
        self
    }

    /// Trusts the CA certificate(s) in this PEM text.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(Pem::Bytes(pem.into()));
        self
    }

    /// Presents this client certificate and key (PEM files) for mutual TLS.
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some((Pem::File(cert.into()), Pem::File(key.into())));
        self
    }

    /// Presents this client certificate and key (PEM text) for mutual TLS.
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((Pem::Bytes(cert.into()), Pem::Bytes(key.into())));
        self
    }

    /// Expects this name in the server certificate instead of the endpoint's host.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Accepts any server certificate, like etcdctl's `--insecure-skip-tls-verify`. The
    /// connection is encrypted but the server is not authenticated: for tests only.
    pub fn insecure_skip_verify(mut self) -> Self {
        self.skip_verify = true;
        self
    }

    /// Reads the files and builds the TLS settings.
    pub(crate) fn load(&self) -> Result<LoadedTls> {
        let ca = self
            .ca
            .as_ref()
            .map(|p| p.read("CA certificate"))
            .transpose()?;
        let identity = match &self.identity {
            Some((cert, key)) => Some((cert.read("client certificate")?, key.read("client key")?)),
            None => None,
        };
        LoadedTls::build(TlsMaterial {
            ca,
            identity,
            server_name: self.server_name.clone(),
            skip_verify: self.skip_verify,
        })
    }
}
