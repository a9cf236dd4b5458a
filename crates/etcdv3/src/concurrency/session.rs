//! Sessions: a lease kept alive in the background, the liveness of mutexes and elections.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{oneshot, watch};

use crate::client::Client;
use crate::error::{Error, Result};

/// The TTL of a session's lease when none is set, in seconds (as in Go).
pub const DEFAULT_SESSION_TTL: i64 = 60;

/// A lease kept alive for as long as the session lives: the liveness of the
/// [`Mutex`](crate::Mutex)es and [`Election`](crate::Election)s built on it (Go's
/// `concurrency.Session`). Cheap to clone; clones share the lease.
///
/// The lease is renewed over the client's shared keep-alive stream, so it survives the
/// failure of the member carrying that stream. [`done`](Self::done) resolves once it is no
/// longer renewed: it expired or was revoked, etcd did not answer within its TTL, the client
/// was closed, or the session was orphaned or closed.
///
/// Dropping the last clone revokes the lease in the background (best effort; its keys go
/// with it), unless the session was [`orphan`](Self::orphan)ed or [`close`](Self::close)d.
///
/// ```no_run
/// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
/// use etcdv3::Session;
///
/// let session = Session::new(&client).ttl(10).await?;
/// println!("lease {:x}", session.lease());
/// tokio::select! {
///     () = session.done() => println!("lost the session"),
///     () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
/// }
/// session.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    lease: i64,
    ttl: i64,
    /// `true` once the lease is no longer renewed.
    done: watch::Receiver<bool>,
    /// Stops the keep-alive task (orphan).
    stop: StdMutex<Option<oneshot::Sender<()>>>,
    /// Set by `orphan` and `close`: dropping the session then leaves the lease alone.
    released: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.released.load(Ordering::Relaxed) || *self.done.borrow() {
            return;
        }
        let id = self.lease;
        let timeout = Duration::from_secs(self.ttl.unsigned_abs());
        super::spawn_cleanup(&self.client, move |client| async move {
            let _ = client.lease().revoke(id).timeout(timeout).await;
        });
    }
}

/// A session being set up: [`Session::new`]. Set its TTL or lease, then `.await` it.
#[derive(Debug, Clone)]
#[must_use = "a session is created when the builder is awaited"]
pub struct SessionBuilder {
    client: Client,
    ttl: i64,
    lease: Option<i64>,
}

impl SessionBuilder {
    /// The TTL of the lease the session grants, in seconds (Go's `WithTTL`). Default:
    /// [`DEFAULT_SESSION_TTL`] (60). A TTL ≤ 0 fails with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) (Go ignores it). With
    /// [`lease`](Self::lease) it is only the timeout of [`Session::close`]'s revoke.
    pub fn ttl(mut self, secs: i64) -> Self {
        self.ttl = secs;
        self
    }

    /// Uses the existing lease `id` instead of granting one (Go's `WithLease`), e.g. to resume
    /// a mutex or a leadership after a restart. It must be positive, else
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest).
    pub fn lease(mut self, id: i64) -> Self {
        self.lease = Some(id);
        self
    }

    fn validate(&self) -> Result<()> {
        if self.ttl <= 0 {
            return Err(Error::invalid(format!(
                "session: the TTL must be positive (got {})",
                self.ttl
            )));
        }
        if let Some(id) = self.lease
            && id <= 0
        {
            return Err(Error::invalid(format!(
                "session: the lease ID must be positive (got {id})"
            )));
        }
        Ok(())
    }

    async fn start(self) -> Result<Session> {
        self.validate()?;
        if self.client.is_closed() {
            return Err(Error::closed());
        }
        let lease = match self.lease {
            Some(id) => id,
            None => self.client.lease().grant(self.ttl).await?.id(),
        };
        let mut alive = self.client.lease().keep_alive(lease);
        let (done_tx, done) = watch::channel(false);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    m = alive.message() => match m {
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    },
                }
            }
            drop(alive);
            let _ = done_tx.send(true);
        };
        self.client.spawn(task);
        Ok(Session {
            inner: Arc::new(Inner {
                client: self.client,
                lease,
                ttl: self.ttl,
                done,
                stop: StdMutex::new(Some(stop)),
                released: AtomicBool::new(false),
            }),
        })
    }
}

impl IntoFuture for SessionBuilder {
    type Output = Result<Session>;
    type IntoFuture = BoxFuture<'static, Result<Session>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.start())
    }
}

impl Session {
    /// Starts building a session of `client` (Go's `NewSession`): `.await` it, after
    /// [`ttl`](SessionBuilder::ttl) or [`lease`](SessionBuilder::lease) if wanted. It grants
    /// a lease (unless given one) and keeps it alive.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client, id: i64) -> etcdv3::Result<()> {
    /// use etcdv3::Session;
    /// let fresh = Session::new(&client).await?; // a 60 s lease
    /// let resumed = Session::new(&client).lease(id).await?;
    /// # Ok(()) }
    /// ```
    // Go's `NewSession`: creating a session needs a request, so `new` gives the awaitable
    // builder.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(client: &Client) -> SessionBuilder {
        SessionBuilder {
            client: client.clone(),
            ttl: DEFAULT_SESSION_TTL,
            lease: None,
        }
    }

    /// The client this session uses.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The ID of the session's lease.
    pub fn lease(&self) -> i64 {
        self.inner.lease
    }

    /// The TTL the session was built with, in seconds.
    pub fn ttl(&self) -> i64 {
        self.inner.ttl
    }

    /// Resolves once the lease is no longer renewed (Go's `Done`): it expired or was revoked,
    /// etcd did not answer within its TTL, the client was closed, or the session was orphaned
    /// or closed. Cancel-safe.
    pub async fn done(&self) {
        let mut done = self.inner.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// Whether [`done`](Self::done) has resolved.
    pub fn is_done(&self) -> bool {
        *self.inner.done.borrow()
    }

    /// Stops renewing the lease and returns once that is done (Go's `Orphan`). The lease is
    /// left to expire after its TTL, with its keys; dropping the session no longer revokes it.
    pub async fn orphan(&self) {
        self.inner.released.store(true, Ordering::Relaxed);
        let stop = self
            .inner
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        self.done().await;
    }

    /// Orphans the session, then revokes its lease, waiting at most the session's TTL (Go's
    /// `Close`). Every key put with the lease (held locks, candidacies) is deleted. Fails
    /// with etcd's error, e.g. [`Code::LeaseNotFound`](crate::Code::LeaseNotFound) when the
    /// lease was already gone.
    pub async fn close(&self) -> Result<()> {
        self.orphan().await;
        let timeout = Duration::from_secs(self.inner.ttl.unsigned_abs());
        self.inner
            .client
            .lease()
            .revoke(self.inner.lease)
            .timeout(timeout)
            .await?;
        Ok(())
    }
}
