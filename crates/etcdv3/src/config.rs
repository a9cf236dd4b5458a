//! Client configuration: one builder, with every default written down.

use std::path::PathBuf;
use std::time::Duration;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::transport::retry::Backoff;
use crate::transport::{LoadedTls, TlsMaterial};

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
    pub(crate) endpoints: Vec<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) keep_alive_interval: Option<Duration>,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) max_send_message_size: usize,
    pub(crate) max_recv_message_size: usize,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) require_leader: bool,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            endpoints: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            keep_alive_interval: Some(Duration::from_secs(10)),
            keep_alive_timeout: Duration::from_secs(10),
            max_send_message_size: 2 * 1024 * 1024,
            max_recv_message_size: i32::MAX as usize,
            tls: None,
            require_leader: false,
            max_attempts: 100,
            backoff: Backoff::default(),
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
    /// It bounds the whole call, retries included.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// HTTP/2 keep-alive pings on busy connections, to notice a dead member. Default: every
    /// 10 s, with a 10 s timeout; `None` turns them off. etcd closes connections that ping more
    /// often than every 5 s, so shorter intervals are raised to 5 s. No pings are sent on idle
    /// connections, as etcd's ping policy requires.
    pub fn keep_alive(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.keep_alive_interval = interval.map(|i| i.max(Duration::from_secs(5)));
        self.keep_alive_timeout = timeout;
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

    /// The most attempts one request may make, the first included. Default: 100. The request
    /// deadline bounds retries too.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The pause after each round of retries over the endpoints: starts at `base` (default
    /// 25 ms), doubles each round up to `max` (default 500 ms), spread by ±`jitter` (default
    /// 0.1).
    pub fn backoff(mut self, base: Duration, max: Duration, jitter: f64) -> Self {
        self.backoff = Backoff {
            base,
            max,
            jitter: jitter.clamp(0.0, 1.0),
        };
        self
    }

    /// Connects. Succeeds when at least one endpoint answers within the connect timeout;
    /// otherwise the error names every endpoint and why it failed (refused, timed out, TLS
    /// handshake). Endpoints that were down are retried when requests need them.
    pub async fn connect(self) -> Result<Client> {
        Client::from_builder(self).await
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
