//! The endpoint set and the choice of endpoint for each attempt: round-robin over endpoints
//! that are up, skipping those that failed recently.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::connection::{Connection, Dialer, Http2Service};
use super::endpoint::Endpoint;
use super::{LoadedTls, Settings, Shutdown};
use crate::error::{Error, Result};

/// How long an endpoint that failed is skipped when others are available.
pub(crate) const ENDPOINT_DOWN_FOR: Duration = Duration::from_secs(1);

const CLIENT_CERT_HINT: &str =
    "if the server requires client certificates, set one with TlsConfig::client_cert_files";

/// One endpoint: its connection and its health.
pub(crate) struct EndpointState {
    /// The endpoint as given, shared with every error that names it.
    pub(crate) name: Arc<str>,
    pub(crate) parsed: Endpoint,
    connection: Connection,
    /// Milliseconds since the balancer started until which the endpoint is avoided.
    down_until: AtomicU64,
    /// Added to availability errors of this endpoint.
    hint: Option<&'static str>,
}

impl std::fmt::Debug for EndpointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointState")
            .field("endpoint", &self.name)
            .finish_non_exhaustive()
    }
}

impl EndpointState {
    /// The state of `ep`, not yet dialled.
    pub(crate) fn new(
        ep: Endpoint,
        settings: &Settings,
        shutdown: &Shutdown,
    ) -> Result<Arc<EndpointState>> {
        let tls = settings.tls.as_ref();
        let dialer = Dialer::new(
            &ep,
            tls,
            settings.connect_timeout,
            settings.keep_alive.pings(),
            shutdown.clone(),
        )?;
        Ok(Arc::new(EndpointState {
            name: Arc::from(ep.original.as_str()),
            hint: hint_for(&ep, tls),
            parsed: ep,
            connection: Connection::new(dialer),
            down_until: AtomicU64::new(0),
        }))
    }

    /// The live connection to this endpoint, if there is one (no dial).
    pub(crate) fn ready(&self) -> Option<Http2Service> {
        self.connection.ready()
    }

    /// A live connection to this endpoint, dialled if needed. An error means nothing was sent.
    pub(crate) async fn service(&self) -> Result<Http2Service> {
        self.connection.service().await.map_err(|e| self.finish(e))
    }

    /// Names this endpoint in the error, with advice where there is some.
    pub(crate) fn finish(&self, err: Error) -> Error {
        let err = err.with_endpoint(&*self.name);
        match self.hint {
            Some(h) if err.is_unavailable() => err.with_hint(h),
            _ => err,
        }
    }
}

fn hint_for(ep: &Endpoint, tls: Option<&LoadedTls>) -> Option<&'static str> {
    let has_identity = tls.is_some_and(LoadedTls::has_identity);
    (ep.uses_tls(tls.is_some()) && !has_identity).then_some(CLIENT_CERT_HINT)
}

/// The endpoint set and the round-robin position.
#[derive(Debug)]
pub(crate) struct Balancer {
    /// Read only to clone the `Arc`, never held across an `.await`; a change swaps it.
    endpoints: RwLock<Arc<Vec<Arc<EndpointState>>>>,
    next: AtomicUsize,
    started: Instant,
}

impl Balancer {
    pub(crate) fn new(endpoints: Vec<Arc<EndpointState>>) -> Balancer {
        Balancer {
            endpoints: RwLock::new(Arc::new(endpoints)),
            next: AtomicUsize::new(0),
            started: Instant::now(),
        }
    }

    /// The current endpoint set.
    pub(crate) fn snapshot(&self) -> Arc<Vec<Arc<EndpointState>>> {
        self.endpoints
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.endpoints
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The next endpoint round-robin, skipping endpoints that failed recently unless every
    /// endpoint did (then the one that comes back first).
    pub(crate) fn pick(&self) -> Arc<EndpointState> {
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
        eps[index].clone()
    }

    /// Avoids `ep` for a while.
    pub(crate) fn mark_down(&self, ep: &EndpointState) {
        let until = self.now_ms() + ENDPOINT_DOWN_FOR.as_millis() as u64;
        ep.down_until.store(until, Ordering::Relaxed);
    }

    /// Whether `ep` is being avoided.
    #[cfg(test)]
    pub(crate) fn is_down(&self, ep: &EndpointState) -> bool {
        ep.down_until.load(Ordering::Relaxed) > self.now_ms()
    }

    /// `ep` answered: it is up.
    pub(crate) fn mark_up(&self, ep: &EndpointState) {
        let down = &ep.down_until;
        if down.load(Ordering::Relaxed) != 0 {
            down.store(0, Ordering::Relaxed);
        }
    }
}
