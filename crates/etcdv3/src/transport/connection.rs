//! One HTTP/2 connection per endpoint, dialled by the client itself.
//!
//! Owning the connection (instead of going through a generic channel) gives two things the
//! retry policy needs and one the benchmarks want: the client knows for certain whether a
//! request was handed to a live connection (a failed dial means it was never sent), TLS is
//! configured here with every etcd option, and a request goes from the caller's task straight
//! to the HTTP/2 connection without a queue or an extra task in between.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use hyper::body::Incoming;
use hyper::client::conn::http2::{Builder, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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
    async fn dial(&self) -> Result<SendRequest<Body>> {
        match tokio::time::timeout(self.connect_timeout, self.dial_inner()).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Connect,
                format!("timed out after {:?}", self.connect_timeout),
            )),
        }
    }

    async fn dial_inner(&self) -> Result<SendRequest<Body>> {
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

    async fn handshake<S>(&self, io: S) -> Result<SendRequest<Body>>
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

    async fn http2<S>(&self, io: S) -> Result<SendRequest<Body>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let mut builder = Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        if let Some((interval, timeout)) = self.keep_alive {
            builder
                .keep_alive_interval(interval)
                .keep_alive_timeout(timeout)
                .keep_alive_while_idle(false);
        }
        let (sender, connection) = builder.handshake(TokioIo::new(io)).await.map_err(|e| {
            Error::new(
                ErrorKind::Connect,
                format!("HTTP/2 handshake: {}", super::describe(&e)),
            )
        })?;
        tokio::spawn(async move {
            // Ends when the connection closes; the next request notices and dials again.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// The connection to one endpoint: dialled on first use, dialled again after it breaks.
#[derive(Debug)]
pub(crate) struct Connection {
    dialer: Dialer,
    current: Mutex<Option<SendRequest<Body>>>,
    dialing: tokio::sync::Mutex<()>,
}

impl Connection {
    pub(crate) fn new(dialer: Dialer) -> Self {
        Connection {
            dialer,
            current: Mutex::new(None),
            dialing: tokio::sync::Mutex::new(()),
        }
    }

    fn live(&self) -> Option<SendRequest<Body>> {
        let guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    /// A handle to a live connection, dialling if there is none. An error here means nothing
    /// was sent.
    pub(crate) async fn service(&self) -> Result<Http2Service> {
        let sender = match self.live() {
            Some(s) => s,
            None => {
                let _one_dial_at_a_time = self.dialing.lock().await;
                match self.live() {
                    Some(s) => s,
                    None => {
                        let s = self.dialer.dial().await?;
                        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(s.clone());
                        s
                    }
                }
            }
        };
        Ok(Http2Service {
            sender,
            scheme: self.dialer.scheme.clone(),
            authority: self.dialer.authority.clone(),
        })
    }
}

/// Sends gRPC requests on one HTTP/2 connection; what tonic's generated clients run on.
#[derive(Debug, Clone)]
pub(crate) struct Http2Service {
    sender: SendRequest<Body>,
    scheme: Scheme,
    authority: Authority,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Incoming>, hyper::Error>> + Send>>;

impl Http2Service {
    /// Sends a request whose URI holds only the path.
    pub(crate) fn send(
        &mut self,
        mut req: http::Request<Body>,
    ) -> impl Future<Output = Result<http::Response<Incoming>, hyper::Error>> + use<> {
        self.complete(&mut req);
        self.sender.send_request(req)
    }

    /// Adds the scheme, authority and user agent.
    fn complete(&self, req: &mut http::Request<Body>) {
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
    }
}

impl Service<http::Request<Body>> for Http2Service {
    type Response = http::Response<Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(self.send(req))
    }
}
