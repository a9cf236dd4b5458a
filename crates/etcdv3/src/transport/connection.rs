//! One HTTP/2 connection per endpoint, dialled by the client itself.
//!
//! Owning the connection (the `h2` crate under it, no generic channel on top) gives the retry
//! policy certainty and the hot path speed: a request that fails to open a stream on the
//! connection was never sent; TLS is configured here with every etcd option; and a request
//! goes from the caller's task straight into the HTTP/2 connection, with no queue, no extra
//! task and no channel hop in between. One task per connection drives the socket, and one
//! more sends keep-alive pings while requests are in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::client::{Builder, SendRequest};
use http::uri::{Authority, PathAndQuery, Scheme};
use tokio::task::AbortHandle;

use super::endpoint::{Address, Endpoint};
use super::shutdown::Shutdown;
use super::status::connect_failed;
use super::{LoadedTls, TlsConnector};
use crate::error::{Error, ErrorKind, Result};

/// How to dial one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Dialer {
    address: Address,
    tls: Option<TlsConnector>,
    connect_timeout: Duration,
    keep_alive: Option<(Duration, Duration)>,
    scheme: Scheme,
    authority: Authority,
    shutdown: Shutdown,
}

/// How far a dial got, for the message when it runs out of time.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Connect,
    Tls,
    Http2,
}

impl Dialer {
    pub(crate) fn new(
        ep: &Endpoint,
        tls: Option<&LoadedTls>,
        connect_timeout: Duration,
        keep_alive: Option<(Duration, Duration)>,
        shutdown: Shutdown,
    ) -> Result<Dialer> {
        let use_tls = ep.uses_tls(tls.is_some());
        let tls = if use_tls {
            let loaded = match tls {
                Some(t) => t.clone(),
                None => LoadedTls::default_for_endpoint()?,
            };
            Some(loaded.connector(&ep.server_name)?)
        } else {
            None
        };
        let authority = match &ep.address {
            Address::Tcp(hp) => hp.as_str(),
            Address::Unix(_) => "localhost",
        };
        let authority = Authority::try_from(authority)
            .map_err(|e| Error::config(format!("invalid endpoint {}: {e}", ep.original)))?;
        Ok(Dialer {
            address: ep.address.clone(),
            tls,
            connect_timeout,
            keep_alive,
            scheme: if use_tls { Scheme::HTTPS } else { Scheme::HTTP },
            authority,
            shutdown,
        })
    }

    /// Dials: TCP or unix socket, then TLS if configured, then the HTTP/2 handshake, all
    /// within the connect timeout. A timeout says how far the dial got.
    async fn dial(&self) -> Result<Dialed> {
        let mut stage = Stage::Connect;
        let dialed = tokio::select! {
            r = tokio::time::timeout(self.connect_timeout, self.dial_inner(&mut stage)) => r,
            () = self.shutdown.closed() => return Err(Error::closed()),
        };
        dialed.unwrap_or_else(|_| {
            let t = self.connect_timeout;
            Err(Error::new(
                ErrorKind::Connect,
                match stage {
                    Stage::Connect => format!("timed out after {t:?} connecting"),
                    Stage::Tls => {
                        format!("connected, but the TLS handshake got no answer within {t:?}")
                    }
                    Stage::Http2 => format!(
                        "connected, but the HTTP/2 handshake got no answer within {t:?} \
                         (is this an etcd client port, and is etcd responsive?)"
                    ),
                },
            ))
        })
    }

    async fn dial_inner(&self, stage: &mut Stage) -> Result<Dialed> {
        match &self.address {
            Address::Tcp(hp) => {
                let tcp = tokio::net::TcpStream::connect(hp.as_str())
                    .await
                    .map_err(|e| connect_failed("tcp connect", e))?;
                let _ = tcp.set_nodelay(true);
                self.handshake(tcp, stage).await
            }
            Address::Unix(path) => {
                let unix = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| connect_failed("unix socket connect", e))?;
                self.handshake(unix, stage).await
            }
        }
    }

    async fn handshake<S>(&self, io: S, stage: &mut Stage) -> Result<Dialed>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        match &self.tls {
            Some(tls) => {
                *stage = Stage::Tls;
                let stream = tls.connect(io).await?;
                *stage = Stage::Http2;
                self.http2(stream).await
            }
            None => {
                *stage = Stage::Http2;
                self.http2(io).await
            }
        }
    }

    async fn http2<S>(&self, io: S) -> Result<Dialed>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, mut connection) = Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| connect_failed("HTTP/2 handshake", e))?;
        let mut pings = connection.ping_pong();
        let in_flight = Arc::new(AtomicUsize::new(0));
        // Ends when the connection closes (the next request notices and dials again) or the
        // client does (dropping the connection fails every stream on it).
        let driver = self.shutdown.spawn(async move {
            let _ = connection.await;
        });
        // The handshake only sent our preface. A ping answered proves the server speaks HTTP/2
        // and accepted the connection (a TLS server that rejects the client certificate, or a
        // proxy that resets, fails here), so a failure is still "never sent". The caller's
        // connect timeout bounds the wait.
        if let Some(p) = pings.as_mut()
            && let Err(e) = p.ping(h2::Ping::opaque()).await
        {
            driver.abort();
            return Err(connect_failed(
                "the server closed the connection during the HTTP/2 handshake",
                e,
            ));
        }
        if let (Some((interval, timeout)), Some(pings)) = (self.keep_alive, pings) {
            self.shutdown.spawn(keep_alive(
                in_flight.clone(),
                pings,
                driver.clone(),
                interval,
                timeout,
            ));
        }
        Ok(Dialed {
            sender,
            driver,
            in_flight,
        })
    }
}

/// HTTP/2 flow-control windows: large enough that big ranges are not throttled by round trips.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// Pings the server every `interval` while requests are in flight (etcd rejects pings on idle
/// connections) and closes the connection when a ping goes unanswered for `timeout`, so calls
/// on a silently dead connection fail instead of waiting for their deadline.
async fn keep_alive(
    in_flight: Arc<AtomicUsize>,
    mut pings: h2::PingPong,
    driver: AbortHandle,
    interval: Duration,
    timeout: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        if driver.is_finished() {
            return;
        }
        if in_flight.load(Ordering::Relaxed) == 0 {
            continue;
        }
        match tokio::time::timeout(timeout, pings.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                // Dropping the connection fails every stream on it.
                driver.abort();
                return;
            }
        }
    }
}

/// A live HTTP/2 connection: the handle that opens streams, and the task that drives it.
#[derive(Debug)]
struct Dialed {
    sender: SendRequest<Bytes>,
    driver: AbortHandle,
    /// Streams open on the connection, for the keep-alive task.
    in_flight: Arc<AtomicUsize>,
}

/// The connection to one endpoint: dialled on first use, dialled again after it breaks.
#[derive(Debug)]
pub(crate) struct Connection {
    dialer: Dialer,
    current: Mutex<Option<Dialed>>,
    /// Held while dialling, so that concurrent callers share one dial. Holds the last failed
    /// dial: callers that waited for it get its error instead of dialling again at once.
    dialing: tokio::sync::Mutex<Option<FailedDial>>,
}

/// A dial that failed, and when.
#[derive(Debug)]
struct FailedDial {
    at: tokio::time::Instant,
    error: Error,
}

/// How long a failed dial's error is handed to callers instead of dialling again, which bounds
/// the dial rate to a dead endpoint however many calls are waiting for it.
const REDIAL_AFTER: Duration = Duration::from_millis(100);

impl Connection {
    pub(crate) fn new(dialer: Dialer) -> Self {
        Connection {
            dialer,
            current: Mutex::new(None),
            dialing: tokio::sync::Mutex::new(None),
        }
    }

    fn live(&self) -> Option<(SendRequest<Bytes>, Arc<AtomicUsize>)> {
        let guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|d| !d.driver.is_finished())
            .map(|d| (d.sender.clone(), d.in_flight.clone()))
    }

    /// A handle to the live connection, if there is one: no await, no dial.
    pub(crate) fn ready(&self) -> Option<Http2Service> {
        self.live()
            .map(|(sender, in_flight)| self.handle(sender, in_flight))
    }

    fn handle(&self, sender: SendRequest<Bytes>, in_flight: Arc<AtomicUsize>) -> Http2Service {
        Http2Service {
            sender,
            in_flight,
            scheme: self.dialer.scheme.clone(),
            authority: self.dialer.authority.clone(),
        }
    }

    /// A handle to a live connection, dialling if there is none. An error here means nothing
    /// was sent.
    pub(crate) async fn service(&self) -> Result<Http2Service> {
        let (sender, in_flight) = match self.live() {
            Some(s) => s,
            None => {
                let mut last_failure = self.dialing.lock().await;
                match self.live() {
                    Some(s) => s,
                    None => {
                        if let Some(f) = last_failure.as_ref()
                            && f.at.elapsed() < REDIAL_AFTER
                        {
                            return Err(f.error.duplicate());
                        }
                        if self.dialer.shutdown.is_closed() {
                            return Err(Error::closed());
                        }
                        let dialed = match self.dialer.dial().await {
                            Ok(d) => {
                                *last_failure = None;
                                d
                            }
                            Err(e) => {
                                *last_failure = Some(FailedDial {
                                    at: tokio::time::Instant::now(),
                                    error: e.duplicate(),
                                });
                                return Err(e);
                            }
                        };
                        let live = (dialed.sender.clone(), dialed.in_flight.clone());
                        let old = self
                            .current
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .replace(dialed);
                        if let Some(old) = old {
                            old.driver.abort();
                        }
                        live
                    }
                }
            }
        };
        Ok(self.handle(sender, in_flight))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(d) = self
            .current
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            d.driver.abort();
        }
    }
}

/// Opens HTTP/2 streams on one connection, for unary calls and gRPC streams alike.
#[derive(Debug, Clone)]
pub(crate) struct Http2Service {
    sender: SendRequest<Bytes>,
    in_flight: Arc<AtomicUsize>,
    scheme: Scheme,
    authority: Authority,
}

/// An open request stream: the response to wait for, the request body to write, and the
/// in-flight count it holds until dropped.
pub(crate) type Opened = (h2::client::ResponseFuture, h2::SendStream<Bytes>, InFlight);

/// Counts one open stream while it lives.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Http2Service {
    /// Opens a gRPC stream to `path` with `headers` (metadata). Fails without sending
    /// anything when the connection is gone.
    pub(crate) async fn open(
        self,
        path: &'static str,
        headers: http::HeaderMap,
    ) -> std::result::Result<Opened, h2::Error> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(PathAndQuery::from_static(path));
        let mut req = http::Request::new(());
        *req.method_mut() = http::Method::POST;
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        *req.headers_mut() = headers;
        let h = req.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        h.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        h.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("etcdv3-rust/", env!("CARGO_PKG_VERSION"))),
        );
        let mut sender = self.sender.ready().await?;
        let (response, send) = sender.send_request(req, false)?;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok((response, send, InFlight(self.in_flight)))
    }
}
