//! Self-healing registration: a lease and the keys put with it, granted and put again when
//! the lease is lost.
//!
//! One task per registration watches the lease's keep-alive handle. When the handle ends (the
//! lease was revoked or expired, or etcd stopped answering for its TTL), the task reports
//! `Lost`, grants a new lease and puts every key again in one transaction, retrying with
//! backoff, then reports `Restored`. The task holds a `WeakClient`: it ends when the client
//! closes or its last handle drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};

use super::op::Keys;
use super::{LeaseClient, LeaseKeepAlive};
use crate::call::CallOptions;
use crate::client::{Client, WeakClient};
use crate::error::{Error, Result};
use crate::kv::{Kv, Op};

/// How many events a registration keeps for its reader; when it is full, the oldest goes.
const EVENTS: usize = 16;

/// The first pause between two failed attempts to restore a lost registration.
const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// The longest pause between two attempts to restore a lost registration.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// What happened to a [`Registration`], from [`Registration::next_event`].
///
/// A loss is followed by a restoration once etcd grants a new lease and takes the keys again:
/// `Lost`, then `Restored` (however many attempts that took).
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// The lease is gone, or may be: its keep-alive ended with `error`
    /// ([`Code::LeaseNotFound`](crate::Code::LeaseNotFound) when it was revoked or expired,
    /// [`ErrorKind::LeaseExpired`](crate::ErrorKind::LeaseExpired) when etcd did not answer
    /// within its TTL, [`Code::NoLeader`](crate::Code::NoLeader) for a client that requires a
    /// leader). The keys went (or will go) with it; the registration is being restored.
    Lost {
        /// The lease that was lost.
        lease: i64,
        /// Why its keep-alive ended.
        error: Error,
    },
    /// An attempt to restore the registration failed; the next one follows after a pause
    /// (100 ms doubling up to 5 s). Nothing to do but to know: a cluster that is down,
    /// out of space or refusing the keys shows up here, attempt after attempt.
    RestoreFailed {
        /// Which attempt failed (1 for the first).
        attempt: u32,
        /// Why it failed.
        error: Error,
    },
    /// A new lease was granted and every key was put again with it; it is kept alive.
    Restored {
        /// The new lease, now [`Registration::lease_id`].
        lease: i64,
    },
    /// Restoring gave up: etcd refused the keys in a way waiting cannot change (they are over
    /// its request size limit). No lease is kept; [`next_event`](Registration::next_event)
    /// returns `None` after this.
    Ended {
        /// Why restoring stopped.
        error: Error,
    },
}

impl Clone for RegistrationEvent {
    fn clone(&self) -> Self {
        match self {
            RegistrationEvent::Lost { lease, error } => RegistrationEvent::Lost {
                lease: *lease,
                error: error.duplicate(),
            },
            RegistrationEvent::RestoreFailed { attempt, error } => {
                RegistrationEvent::RestoreFailed {
                    attempt: *attempt,
                    error: error.duplicate(),
                }
            }
            RegistrationEvent::Restored { lease } => RegistrationEvent::Restored { lease: *lease },
            RegistrationEvent::Ended { error } => RegistrationEvent::Ended {
                error: error.duplicate(),
            },
        }
    }
}

/// A lease that owns a set of keys and comes back when it is lost: from
/// [`LeaseClient::register`].
///
/// While it exists, its lease is kept alive. When the lease is lost (revoked by someone else,
/// expired while the client was cut off), a background task reports
/// [`RegistrationEvent::Lost`], grants a new lease with the same TTL, puts every key again
/// with it (one transaction: all keys or none), and reports [`RegistrationEvent::Restored`].
/// Failed attempts are reported ([`RegistrationEvent::RestoreFailed`]) and retried after
/// 100 ms, doubling up to 5 s, until one succeeds; only keys over etcd's size limit end it
/// ([`RegistrationEvent::Ended`]). Keys are put unconditionally, over whatever another client
/// wrote meanwhile.
///
/// **Ending it.** [`close`](Self::close) stops the task and revokes the lease, which deletes
/// the keys, and returns the revoke's error. Dropping the registration does the same in the
/// background, best effort (without a client left, the lease expires after its TTL). Closing
/// the client, or dropping its last handle, ends the registration: the task stops,
/// [`next_event`](Self::next_event) returns `None`, and the lease expires after its TTL.
///
/// ```no_run
/// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
/// use etcdv3::RegistrationEvent;
///
/// let mut reg = client
///     .lease()
///     .register(10, [("services/api/1", "10.0.0.1:8080")])
///     .await?;
/// println!("registered under lease {:x}", reg.lease_id());
/// while let Some(event) = reg.next_event().await {
///     match event {
///         RegistrationEvent::Lost { lease, error } => eprintln!("lost {lease:x}: {error}"),
///         RegistrationEvent::Restored { lease } => eprintln!("back under {lease:x}"),
///         _ => {}
///     }
/// #   break;
/// }
/// reg.close().await?;
/// # Ok(()) }
/// ```
#[must_use = "dropping a Registration revokes its lease"]
pub struct Registration {
    lease: Arc<AtomicI64>,
    events: broadcast::Receiver<RegistrationEvent>,
    stop: oneshot::Sender<Reply>,
}

/// How the task answers [`Registration::close`]: the revoke's outcome.
type Reply = oneshot::Sender<Result<()>>;

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("lease", &self.lease_id())
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// Starts the task that keeps lease `id` (whose keys are in place) and restores it.
    pub(super) fn start(
        client: &Client,
        id: i64,
        ttl: i64,
        keys: Keys,
        alive: LeaseKeepAlive,
    ) -> Self {
        let lease = Arc::new(AtomicI64::new(id));
        let (events_tx, events) = broadcast::channel(EVENTS);
        let (stop, stop_rx) = oneshot::channel();
        let healer = Healer {
            weak: client.downgrade(),
            ttl,
            keys,
            lease: lease.clone(),
            events: events_tx,
            stop: stop_rx,
        };
        client.spawn(healer.run(alive));
        Registration {
            lease,
            events,
            stop,
        }
    }

    /// The current lease: the one granted last. After a
    /// [`Lost`](RegistrationEvent::Lost) it is the lost lease until the
    /// [`Restored`](RegistrationEvent::Restored) event.
    ///
    /// ```no_run
    /// # async fn demo(reg: etcdv3::Registration, client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let ttl = client.lease().time_to_live(reg.lease_id()).with_keys().await?;
    /// println!("{} keys, {} s left", ttl.keys().len(), ttl.ttl());
    /// # Ok(()) }
    /// ```
    pub fn lease_id(&self) -> i64 {
        self.lease.load(Ordering::Acquire)
    }

    /// The next event, or `None` once the registration has ended (its client was closed or
    /// dropped, or after [`RegistrationEvent::Ended`]). Cancel-safe: use it in `select!`.
    ///
    /// Events wait for the reader, up to 16: a registration that is never read keeps the
    /// latest 16 and drops older ones; restoring never waits for the reader.
    ///
    /// ```no_run
    /// # async fn demo(mut reg: etcdv3::Registration) {
    /// use etcdv3::RegistrationEvent;
    ///
    /// while let Some(event) = reg.next_event().await {
    ///     if let RegistrationEvent::Restored { lease } = event {
    ///         println!("registered again under {lease:x}");
    ///     }
    /// }
    /// println!("the client was closed");
    /// # }
    /// ```
    pub async fn next_event(&mut self) -> Option<RegistrationEvent> {
        loop {
            match self.events.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Stops restoring and revokes the current lease, which deletes its keys; returns when
    /// that is done. A lease that is already gone counts as revoked. Fails with the revoke's
    /// error, or [`ErrorKind::Closed`](crate::ErrorKind::Closed) when the client was closed
    /// (the lease then expires after its TTL). Closing during a restoration also revokes a
    /// lease it just granted.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let reg = client.lease().register(10, [("workers/7", "busy")]).await?;
    /// // ... work ...
    /// reg.close().await?; // workers/7 is gone
    /// # Ok(()) }
    /// ```
    pub async fn close(self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        if self.stop.send(reply).is_err() {
            return Err(Error::closed());
        }
        answer.await.unwrap_or_else(|_| Err(Error::closed()))
    }
}

/// How restoring ended.
enum Restore {
    /// The keys are in place under this lease.
    Done(i64),
    /// The registration was closed (with a reply to send) or dropped; `granted` is a lease the
    /// interrupted attempt may have granted (0 if none).
    Stopped { reply: Option<Reply>, granted: i64 },
    /// The client is gone.
    Closed,
    /// Restoring cannot succeed.
    GaveUp(Error),
}

/// The task of one registration.
struct Healer {
    weak: WeakClient,
    ttl: i64,
    keys: Keys,
    lease: Arc<AtomicI64>,
    events: broadcast::Sender<RegistrationEvent>,
    /// Resolves with a reply on `close`, with an error when the registration was dropped.
    stop: oneshot::Receiver<Reply>,
}

impl Healer {
    async fn run(mut self, mut alive: LeaseKeepAlive) {
        let (reply, granted) = loop {
            let error = tokio::select! {
                stop = &mut self.stop => break (stop.ok(), 0),
                error = ended(&mut alive) => error,
            };
            if error.is_closed() {
                return;
            }
            let lost = self.lease.load(Ordering::Acquire);
            // Nobody reading is not a failure: the event is kept for a later reader.
            let _ = self
                .events
                .send(RegistrationEvent::Lost { lease: lost, error });
            match self.restore().await {
                Restore::Done(id) => {
                    let Some(client) = self.weak.upgrade() else {
                        return;
                    };
                    alive = client.lease().keep_alive(id);
                    self.lease.store(id, Ordering::Release);
                    let _ = self.events.send(RegistrationEvent::Restored { lease: id });
                }
                Restore::Stopped { reply, granted } => break (reply, granted),
                Restore::Closed => return,
                Restore::GaveUp(error) => {
                    let _ = self.events.send(RegistrationEvent::Ended { error });
                    // The reader gets `None` after this event.
                    self.events = broadcast::channel(1).0;
                    // Wait for `close` (answered: nothing left to revoke) or the drop.
                    if let Ok(reply) = (&mut self.stop).await {
                        let _ = reply.send(Ok(()));
                    }
                    return;
                }
            }
        };
        drop(alive);
        let result = self.revoke(granted).await;
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }

    /// Grants a new lease and puts the keys with it, until that works.
    async fn restore(&mut self) -> Restore {
        let mut attempt: u32 = 0;
        loop {
            let wait = pause(attempt, rand::random::<f64>());
            attempt = attempt.saturating_add(1);
            tokio::select! {
                stop = &mut self.stop => return Restore::Stopped { reply: stop.ok(), granted: 0 },
                () = tokio::time::sleep(wait) => {}
            }
            let Some(client) = self.weak.upgrade() else {
                return Restore::Closed;
            };
            let lease = client.lease();
            let granted = AtomicI64::new(0);
            let once = grant_and_put(&lease, self.ttl, &self.keys, CallOptions::new(), &granted);
            tokio::select! {
                stop = &mut self.stop => {
                    return Restore::Stopped {
                        reply: stop.ok(),
                        granted: granted.load(Ordering::Acquire),
                    };
                }
                done = once => match done {
                    Ok(id) => return Restore::Done(id),
                    Err(e) if e.is_closed() => return Restore::Closed,
                    Err(e) if gives_up(&e) => return Restore::GaveUp(e),
                    // Retried after a pause: the registration exists to come back once etcd
                    // lets it. The reader sees every failure.
                    Err(error) => {
                        let _ = self.events.send(RegistrationEvent::RestoreFailed { attempt, error });
                    }
                },
            }
        }
    }

    /// Revokes the current lease and `granted` (a lease an interrupted restoration may have
    /// granted). A lease already gone counts as revoked.
    async fn revoke(&self, granted: i64) -> Result<()> {
        let Some(client) = self.weak.upgrade() else {
            return Err(Error::closed());
        };
        let current = self.lease.load(Ordering::Acquire);
        let mut result = Ok(());
        let extra = (granted != 0 && granted != current).then_some(granted);
        for id in std::iter::once(current).chain(extra) {
            if let Err(e) = client.lease().revoke(id).await
                && !e.is_lease_not_found()
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }
}

/// Whether restoring can never succeed after `err`: the keys are over a size limit, or the
/// request is malformed (checked when registering, so only a changed server limit gets here).
fn gives_up(err: &Error) -> bool {
    err.is_request_too_large() || err.is_invalid_request()
}

/// Waits until the keep-alive handle ends, and returns why.
async fn ended(alive: &mut LeaseKeepAlive) -> Error {
    loop {
        match alive.message().await {
            Ok(Some(_)) => {}
            Ok(None) => return Error::closed(),
            Err(e) => return e,
        }
    }
}

/// Grants a lease of `ttl` seconds and puts `keys` with it in one transaction; the lease's ID
/// once the keys are in place. `granted` holds the lease from the moment it exists, for a
/// caller that gives up half-way. When the transaction fails the lease is revoked (best
/// effort), so it does not linger unused.
pub(super) async fn grant_and_put(
    lease: &LeaseClient,
    ttl: i64,
    keys: &[(Vec<u8>, Vec<u8>)],
    options: CallOptions,
    granted: &AtomicI64,
) -> Result<i64> {
    let id = lease.grant(ttl).options(options).await?.id();
    granted.store(id, Ordering::Release);
    let puts = keys
        .iter()
        .map(|(k, v)| Op::put(k.clone(), v.clone()).lease(id));
    let put = lease
        .client
        .kv()
        .txn()
        .and_then(puts)
        .options(options)
        .await;
    if let Err(e) = put {
        let _ = lease.revoke(id).options(options).await;
        granted.store(0, Ordering::Release);
        return Err(e);
    }
    Ok(id)
}

/// The pause before restoring attempt `attempt` (0: the first, at once): 100 ms doubling up to
/// 5 s, spread by ±10 % with `r` in `[0, 1)`.
fn pause(attempt: u32, r: f64) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let doubled = FIRST_PAUSE.saturating_mul(1 << (attempt - 1).min(16));
    let capped = doubled.min(MAX_PAUSE);
    capped.mul_f64(0.9 + 0.2 * r.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restoring_pauses_double_from_100_ms_to_5_s() {
        assert_eq!(
            pause(0, 0.5),
            Duration::ZERO,
            "the first attempt is at once"
        );
        let middle: Vec<_> = (1..=8).map(|a| pause(a, 0.5)).collect();
        let ms: Vec<u128> = middle.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(pause(u32::MAX, 0.5).as_millis(), 5000, "no overflow");
        // ±10 % jitter.
        let low = pause(1, 0.0).as_micros();
        assert!((89_999..=90_001).contains(&low), "{low}");
        let high = pause(1, 0.999_999).as_micros();
        assert!((109_000..=110_001).contains(&high), "{high}");
        let top = pause(40, 1.0).as_millis();
        assert!((5499..=5501).contains(&top), "{top}");
    }

    #[test]
    fn only_oversize_or_malformed_keys_end_restoring() {
        assert!(gives_up(&Error::request_too_large(3 << 20, 2 << 20)));
        assert!(gives_up(&Error::invalid("bad")));
        assert!(!gives_up(&Error::closed()));
        assert!(!gives_up(&super::super::lease_not_found(1, "test")));
        let ended = RegistrationEvent::Ended {
            error: Error::invalid("bad"),
        };
        let copy = ended.clone();
        assert!(matches!(&ended, RegistrationEvent::Ended { error } if error.is_invalid_request()));
        assert!(matches!(copy, RegistrationEvent::Ended { error } if error.is_invalid_request()));
    }

    #[test]
    fn events_clone_with_their_error() {
        let events = [
            RegistrationEvent::Lost {
                lease: 7,
                error: super::super::lease_not_found(7, "test"),
            },
            RegistrationEvent::Restored { lease: 8 },
        ];
        let copies = events.clone();
        for (event, copy) in events.iter().zip(&copies) {
            match (event, copy) {
                (
                    RegistrationEvent::Lost { lease, error },
                    RegistrationEvent::Lost {
                        lease: l2,
                        error: e2,
                    },
                ) => {
                    assert_eq!((*lease, *l2), (7, 7));
                    assert_eq!(error.code(), e2.code());
                    assert!(e2.is_lease_not_found());
                    assert_eq!(error.to_string(), e2.to_string());
                }
                (
                    RegistrationEvent::Restored { lease },
                    RegistrationEvent::Restored { lease: l2 },
                ) => assert_eq!((*lease, *l2), (8, 8)),
                other => panic!("{other:?}"),
            }
        }
    }
}
