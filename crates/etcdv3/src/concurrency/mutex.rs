//! A distributed mutex with Go's key layout: `etcdctl lock` and etcd's Lock service exclude it.

use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use super::{KeyGuard, Session, owner_key, prefix_of, spawn_cleanup, wait_deletes, with_deadline};
use crate::call::{Call, CallOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::kv::{Compare, Kv, Op, ResponseHeader, TxnResponse};

/// A distributed mutex over a [`Session`] (Go's `concurrency.Mutex`). Cheap to clone; clones
/// share the lock.
///
/// The mutex named `pfx` is held by the key `pfx/<session lease in lowercase hex>` with the
/// lowest create revision under `pfx/`; the key has an empty value and the session's lease.
/// That is Go's layout, so this mutex, Go programs, `etcdctl lock pfx` and etcd's Lock
/// service ([`Client::lock_service`](crate::Client::lock_service)) exclude each other.
///
/// Locking is re-entrant per session: a second [`lock`](Self::lock) with the same session
/// and name (from this or another `Mutex`) returns at once. When the session ends, its lease
/// expires and the lock is released by etcd.
///
/// Dropping the last clone of a held mutex releases it in the background (best effort);
/// [`unlock`](Self::unlock) releases it and returns the error.
///
/// ```no_run
/// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
/// use std::time::Duration;
/// use etcdv3::{Compare, Kv, Mutex, Op, Session};
///
/// let session = Session::new(&client).await?;
/// let mutex = Mutex::new(&session, "config/lock")?;
/// mutex.lock().timeout(Duration::from_secs(30)).await?;
/// // Write only while still holding the lock.
/// let txn = client
///     .kv()
///     .txn()
///     .when([mutex.is_owner()])
///     .and_then([Op::put("config/mode", "active")])
///     .await?;
/// assert!(txn.succeeded());
/// mutex.unlock().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Mutex {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    session: Session,
    prefix: Vec<u8>,
    key: Vec<u8>,
    state: StdMutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The create revision of the held key; 0 when not held.
    rev: i64,
    header: Option<ResponseHeader>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let held = self
            .state
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .rev
            > 0;
        if held {
            let key = std::mem::take(&mut self.key);
            spawn_cleanup(self.session.client(), move |client| async move {
                let _ = client.kv().delete(key).await;
            });
        }
    }
}

/// A [`Mutex::lock`] being built; `.await` it.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct LockOp {}

/// A [`Mutex::try_lock`] being built; `.await` it.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct TryLockOp {}

/// A [`Mutex::unlock`] being built; `.await` it.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct UnlockOp {}

impl Mutex {
    /// The mutex named `name` (Go's `NewMutex`): its keys are under `name + "/"`. Nothing is
    /// sent. An empty name fails with [`ErrorKind::InvalidRequest`].
    pub fn new(session: &Session, name: impl Into<Vec<u8>>) -> Result<Mutex> {
        let prefix = prefix_of("mutex", name.into())?;
        let key = owner_key(&prefix, session.lease());
        Ok(Mutex {
            inner: Arc::new(Inner {
                session: session.clone(),
                prefix,
                key,
                state: StdMutex::default(),
            }),
        })
    }

    /// Acquires the lock, waiting for as long as it takes unless the call sets a
    /// `.timeout(d)` (Go's `Lock`).
    ///
    /// One transaction creates this session's key (if absent) and reads the owner; when that
    /// is not this key, it waits until every key created before it is deleted, watching only
    /// the one created just before, then checks its key still exists. Uncontended, that is
    /// one `Txn`.
    ///
    /// Fails with [`ErrorKind::SessionExpired`] when the key was deleted while waiting (the
    /// session's lease expired or was revoked), and with the error of any request. On
    /// failure, a timeout, or when the future is dropped, the key is deleted (in the
    /// background) so the attempt never blocks others.
    pub fn lock(&self) -> Call<Mutex, LockOp> {
        Call::new(self.clone(), LockOp {})
    }

    /// Acquires the lock if no other session holds it (Go's `TryLock`); otherwise deletes
    /// this session's key and fails with [`ErrorKind::Locked`]. Like Go, that also deletes a
    /// key this session held from an earlier `lock` of the same name through another
    /// `Mutex`.
    pub fn try_lock(&self) -> Call<Mutex, TryLockOp> {
        Call::new(self.clone(), TryLockOp {})
    }

    /// Releases the lock: deletes this session's key (Go's `Unlock`). Fails with
    /// [`ErrorKind::LockReleased`] when this mutex does not hold it (never locked, or
    /// already unlocked).
    pub fn unlock(&self) -> Call<Mutex, UnlockOp> {
        Call::new(self.clone(), UnlockOp {})
    }

    /// A comparison that holds while this mutex owns the lock (Go's `IsOwner`): guard
    /// transactions with it. While the lock is not held it never holds.
    pub fn is_owner(&self) -> Compare {
        let rev = match self.state().rev {
            r if r > 0 => r,
            _ => -1,
        };
        Compare::create_revision(self.inner.key.clone()).eq(rev)
    }

    /// The key that holds the lock for this session: `name/<lease in hex>`.
    pub fn key(&self) -> &[u8] {
        &self.inner.key
    }

    /// The create revision of the key while the lock is held (0 when not held).
    pub fn revision(&self) -> i64 {
        self.state().rev
    }

    /// The header of the response that acquired the lock, if it is held.
    pub fn header(&self) -> Option<ResponseHeader> {
        self.state().header
    }

    /// The session of this mutex.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_held(&self, rev: i64, header: ResponseHeader) {
        let mut s = self.state();
        s.rev = rev;
        s.header = Some(header);
    }

    fn clear(&self) {
        *self.state() = State::default();
    }

    /// Go's `tryAcquire`: creates the key if absent and reads the owner. Returns this key's
    /// create revision, whether it owns the lock, and the transaction's answer.
    async fn acquire(&self, options: CallOptions) -> Result<(i64, bool, TxnResponse)> {
        let i = &self.inner;
        let kv = i.session.client().kv();
        let resp = kv
            .txn()
            .when([Compare::create_revision(i.key.clone()).eq(0)])
            .and_then([
                Op::from(Op::put(i.key.clone(), "").lease(i.session.lease())),
                Op::from(Op::get(i.prefix.clone()).first_create()),
            ])
            .or_else([
                Op::from(Op::get(i.key.clone())),
                Op::from(Op::get(i.prefix.clone()).first_create()),
            ])
            .options(options)
            .await?;
        let get = |n: usize| {
            resp.responses()
                .get(n)
                .and_then(|r| r.as_get())
                .ok_or_else(|| Error::protocol("the lock transaction's answer lacks a read"))
        };
        let rev = match resp.succeeded() {
            true => resp.header().revision(),
            false => get(0)?
                .kvs()
                .first()
                .map(|kv| kv.create_revision())
                .ok_or_else(|| Error::protocol("the lock key vanished within a transaction"))?,
        };
        let owner = get(1)?
            .kvs()
            .first()
            .is_none_or(|kv| kv.create_revision() == rev);
        Ok((rev, owner, resp))
    }

    async fn lock_now(self, _op: LockOp, options: CallOptions) -> Result<()> {
        let client = self.inner.session.client().clone();
        let guard = KeyGuard::new(&client, self.inner.key.clone());
        let attempt = async {
            let (rev, owner, resp) = self.acquire(super::prompt(options)).await?;
            if owner {
                return Ok((rev, *resp.header()));
            }
            wait_deletes(&client, &self.inner.prefix, rev - 1, options).await?;
            let mine = client
                .kv()
                .get(self.inner.key.clone())
                .options(super::prompt(options))
                .await?;
            if mine.kvs().is_empty() {
                return Err(Error::new(
                    ErrorKind::SessionExpired,
                    "mutex: session is expired (the lock key was deleted while waiting)",
                ));
            }
            Ok((rev, *mine.header()))
        };
        match with_deadline(options, attempt).await {
            Ok((rev, header)) => {
                guard.disarm();
                self.set_held(rev, header);
                Ok(())
            }
            Err(e) => {
                if e.is_session_expired() {
                    guard.disarm();
                }
                self.clear();
                Err(e)
            }
        }
    }

    async fn try_lock_now(self, _op: TryLockOp, options: CallOptions) -> Result<()> {
        let (rev, owner, resp) = self.acquire(options).await?;
        if owner {
            self.set_held(rev, *resp.header());
            return Ok(());
        }
        let kv = self.inner.session.client().kv();
        kv.delete(self.inner.key.clone()).options(options).await?;
        self.clear();
        Err(Error::new(
            ErrorKind::Locked,
            "mutex: locked by another session",
        ))
    }

    async fn unlock_now(self, _op: UnlockOp, options: CallOptions) -> Result<()> {
        if self.state().rev <= 0 {
            return Err(Error::new(
                ErrorKind::LockReleased,
                "mutex: lock has already been released",
            ));
        }
        let kv = self.inner.session.client().kv();
        kv.delete(self.inner.key.clone()).options(options).await?;
        self.clear();
        Ok(())
    }
}

crate::call::call_futures!(Mutex {
    LockOp => (): lock_now,
    TryLockOp => (): try_lock_now,
    UnlockOp => (): unlock_now,
});
