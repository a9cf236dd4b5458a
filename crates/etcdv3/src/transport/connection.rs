//! One HTTP/2 connection per endpoint, dialled by the client itself.
//!
//! Owning the connection (the `h2` crate under it, no generic channel on top) gives the retry
//! policy certainty and the hot path speed: a request that fails to open a stream on the
//! connection was never sent; TLS is configured here with every etcd option; and a request
//! goes from the caller's task straight into the HTTP/2 connection, with no queue, no extra
//! task and no channel hop in between. One task per connection drives the socket, and one
//! more sends keep-alive pings while requests are in flight.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::task::{Context, Poll};
use std::time::Duration;
use tokio::task::AbortHandle;

use bytes::Bytes;
use h2::client::{Builder, SendRequest};
use http::uri::{Authority, PathAndQuery, Scheme};
use http_body::Frame;
use http_body_util::BodyExt;
use tonic::body::Body;
use tonic::codegen::Service;

use super::endpoint::{Address, Endpoint};
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
}

impl Dialer {
    pub(crate) fn new(
        ep: &Endpoint,
        tls: Option<&LoadedTls>,
        connect_timeout: Duration,
        keep_alive: Option<(Duration, Duration)>,
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
        })
    }

    /// Dials: TCP or unix socket, then TLS if configured, then the HTTP/2 handshake, all
    /// within the connect timeout.
    async fn dial(&self) -> Result<Dialed> {
        match tokio::time::timeout(self.connect_timeout, self.dial_inner()).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Connect,
                format!("timed out after {:?}", self.connect_timeout),
            )),
        }
    }

    async fn dial_inner(&self) -> Result<Dialed> {
        let connect_err = |what: &str, e: std::io::Error| {
            Error::new(
                ErrorKind::Connect,
                format!("{what}: {}", super::describe(&e)),
            )
        };
        match &self.address {
            Address::Tcp(hp) => {
                let tcp = tokio::net::TcpStream::connect(hp.as_str())
                    .await
                    .map_err(|e| connect_err("tcp connect", e))?;
                let _ = tcp.set_nodelay(true);
                self.handshake(tcp).await
            }
            Address::Unix(path) => {
                let unix = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| connect_err("unix socket connect", e))?;
                self.handshake(unix).await
            }
        }
    }

    async fn handshake<S>(&self, io: S) -> Result<Dialed>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        match &self.tls {
            Some(tls) => {
                let stream = tls.connect(io).await?;
                self.http2(stream).await
            }
            None => self.http2(io).await,
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
            .map_err(|e| {
                Error::new(
                    ErrorKind::Connect,
                    format!("HTTP/2 handshake: {}", super::describe(&e)),
                )
            })?;
        let mut pings = connection.ping_pong();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let driver = tokio::spawn(async move {
            // Ends when the connection closes; the next request notices and dials again.
            let _ = connection.await;
        })
        .abort_handle();
        // The handshake only sent our preface. A ping answered proves the server speaks HTTP/2
        // and accepted the connection (a TLS server that rejects the client certificate, or a
        // proxy that resets, fails here), so a failure is still "never sent". The caller's
        // connect timeout bounds the wait.
        if let Some(p) = pings.as_mut()
            && let Err(e) = p.ping(h2::Ping::opaque()).await
        {
            driver.abort();
            return Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "the server closed the connection during the HTTP/2 handshake: {}",
                    super::describe(&e)
                ),
            ));
        }
        if let (Some((interval, timeout)), Some(pings)) = (self.keep_alive, pings) {
            tokio::spawn(keep_alive(
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
    message: String,
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
                            return Err(Error::new(ErrorKind::Connect, f.message.clone()));
                        }
                        let dialed = match self.dialer.dial().await {
                            Ok(d) => {
                                *last_failure = None;
                                d
                            }
                            Err(e) => {
                                *last_failure = Some(FailedDial {
                                    at: tokio::time::Instant::now(),
                                    message: e.message().to_owned(),
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
        Ok(Http2Service {
            sender,
            in_flight,
            scheme: self.dialer.scheme.clone(),
            authority: self.dialer.authority.clone(),
        })
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

/// Opens gRPC streams on one HTTP/2 connection: for the unary fast path, and as the service
/// tonic's generated clients run on for streaming calls.
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
    /// Opens a stream with `req`'s headers (its URI holds only the path). Fails without
    /// sending anything when the connection is gone.
    pub(crate) async fn open(
        self,
        mut req: http::Request<()>,
        end_of_stream: bool,
    ) -> std::result::Result<Opened, h2::Error> {
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(path);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        req.headers_mut().insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("etcdv3-rust/", env!("CARGO_PKG_VERSION"))),
        );
        let mut sender = self.sender.ready().await?;
        let (response, send) = sender.send_request(req, end_of_stream)?;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok((response, send, InFlight(self.in_flight)))
    }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = std::result::Result<http::Response<RecvBody>, h2::Error>> + Send>>;

impl Service<http::Request<Body>> for Http2Service {
    type Response = http::Response<RecvBody>;
    type Error = h2::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        // Readiness is awaited inside `call`, on a clone of the handle.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let end_of_stream = http_body::Body::is_end_stream(&body);
            let (response, send, in_flight) = service
                .open(http::Request::from_parts(parts, ()), end_of_stream)
                .await?;
            if !end_of_stream {
                tokio::spawn(pipe(body, send));
            }
            let response = response.await?;
            Ok(response.map(|stream| RecvBody(stream, in_flight)))
        })
    }
}

/// Copies a streaming request body (watch requests, keep-alives ...) onto its HTTP/2 stream.
async fn pipe(mut body: Body, mut send: h2::SendStream<Bytes>) {
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            send.send_reset(h2::Reason::CANCEL);
            return;
        };
        let sent = match frame.into_data() {
            Ok(data) => send.send_data(data, false),
            Err(frame) => match frame.into_trailers() {
                Ok(trailers) => return drop(send.send_trailers(trailers)),
                Err(_) => Ok(()),
            },
        };
        if sent.is_err() {
            return;
        }
    }
    let _ = send.send_data(Bytes::new(), true);
}

/// A response body read from an HTTP/2 stream, releasing flow-control capacity as it goes;
/// the stream counts as in flight until the body is dropped.
#[derive(Debug)]
pub(crate) struct RecvBody(h2::RecvStream, #[allow(dead_code)] InFlight);

impl http_body::Body for RecvBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, h2::Error>>> {
        let stream = &mut self.0;
        match stream.poll_data(cx) {
            Poll::Ready(Some(Ok(data))) => {
                let _ = stream.flow_control().release_capacity(data.len());
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => match stream.poll_trailers(cx) {
                Poll::Ready(Ok(Some(t))) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
                Poll::Ready(Ok(None)) => Poll::Ready(None),
                Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                Poll::Pending => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}
