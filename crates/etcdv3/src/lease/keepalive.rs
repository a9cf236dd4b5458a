//! The shared keep-alive: one background task per client renews every kept lease over one
//! `LeaseKeepAlive` stream, and hands each answer to the lease's handles.
//!
//! The task owns all of its state (the leases, the stream); handles reach it through a
//! channel and read answers from a one-answer slot each, so a handle that is not read holds
//! one answer, never a queue. Dropping a handle is noticed by the task (the slot's last other
//! owner is gone); a lease with no handle left is no longer renewed.

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use etcdv3_proto::etcdserverpb as pb;
use futures_util::Stream;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::types::LeaseKeepAliveResponse;
use crate::call::CallOptions;
use crate::client::{Client, WeakClient};
use crate::error::{Error, ErrorKind, Result};
use crate::transport::rpc::Rpc;
use crate::transport::stream::GrpcStream;

/// How often the task looks for leases due for renewal or past their deadline.
const TICK: Duration = Duration::from_millis(500);

/// A stream that delivered no answer for this long while renewals wait counts as stuck (a
/// frozen member); one that answers within it is only busy.
const QUIET: Duration = Duration::from_secs(2);

/// How long the task waits before opening the stream again after an opening failed (the
/// opening itself already tried every member, with backoff, until its deadline).
const REOPEN_PAUSE: Duration = Duration::from_millis(500);

/// Added to the connect timeout for the deadline of a lease's first answer (as in Go).
const FIRST_ANSWER_SLACK: Duration = Duration::from_secs(1);

type KeepAliveStream = GrpcStream<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>;

/// Keeps a lease alive while it exists, and yields etcd's answers: from
/// [`LeaseClient::keep_alive`](crate::LeaseClient::keep_alive).
///
/// Read it with [`message`](Self::message) or as a [`Stream`]. Answers that are not read are
/// not queued: the handle keeps the latest one. It ends with an error (then `None`):
/// [`Code::LeaseNotFound`](crate::Code::LeaseNotFound) when the lease is gone,
/// [`ErrorKind::LeaseExpired`] when no answer came within the lease's TTL, and
/// [`ErrorKind::Closed`] when the client is closed or its last handle dropped.
///
/// Dropping every handle of a lease stops renewing it; the lease then expires on the server
/// after its TTL (it is not revoked: revoke it yourself to end it at once).
pub struct LeaseKeepAlive {
    id: i64,
    slot: Arc<Slot>,
    done: bool,
}

impl std::fmt::Debug for LeaseKeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseKeepAlive")
            .field("id", &self.id)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl LeaseKeepAlive {
    fn ended(id: i64, err: Error) -> Self {
        let slot = Arc::new(Slot::default());
        {
            let mut s = slot.lock();
            s.latest = Some(Update::Ended(err));
            s.closed = true;
        }
        LeaseKeepAlive {
            id,
            slot,
            done: false,
        }
    }

    /// The lease kept alive.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The next answer (the latest one if several came since the last read); an error when
    /// keeping the lease alive ended, then `None`. Cancel-safe: use it in `select!`.
    pub async fn message(&mut self) -> Result<Option<LeaseKeepAliveResponse>> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<LeaseKeepAliveResponse>>> {
        if self.done {
            return Poll::Ready(Ok(None));
        }
        let slot = &self.slot;
        let mut s = slot.lock();
        match s.latest.take() {
            Some(Update::Answer(r)) => Poll::Ready(Ok(Some(r))),
            Some(Update::Ended(err)) => {
                self.done = true;
                Poll::Ready(Err(err))
            }
            None if s.closed => {
                self.done = true;
                Poll::Ready(Err(Error::closed()))
            }
            None => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl Stream for LeaseKeepAlive {
    type Item = Result<LeaseKeepAliveResponse>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx).map(Result::transpose)
    }
}

/// What the task last handed to a handle.
enum Update {
    Answer(LeaseKeepAliveResponse),
    Ended(Error),
}

#[derive(Default)]
struct SlotState {
    latest: Option<Update>,
    /// The task will put nothing more here.
    closed: bool,
    waker: Option<Waker>,
}

/// One handle's mailbox: the latest update, shared by the handle and the task.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, update: Update, last: bool) {
        let waker = {
            let mut s = self.lock();
            if s.closed {
                return;
            }
            s.latest = Some(update);
            s.closed = last;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn close(&self) {
        let waker = {
            let mut s = self.lock();
            s.closed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The task's end of one handle. Dropping it closes the handle (it then reports `Closed`,
/// unless it was ended with an error first).
struct Feed {
    slot: Arc<Slot>,
    /// The handle was made through a client that requires a leader: it ends with `NoLeader`
    /// when the stream's member has none.
    require_leader: bool,
}

impl Feed {
    fn new(slot: Arc<Slot>, require_leader: bool) -> Self {
        Feed {
            slot,
            require_leader,
        }
    }

    /// Whether the handle was dropped.
    fn is_gone(&self) -> bool {
        Arc::strong_count(&self.slot) == 1
    }

    fn deliver(&self, answer: LeaseKeepAliveResponse) {
        self.slot.put(Update::Answer(answer), false);
    }

    fn end(&self, err: Error) {
        self.slot.put(Update::Ended(err), true);
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.slot.close();
    }
}

/// A new handle for the task.
struct Register {
    id: i64,
    feed: Feed,
}

/// How a client's handles reach its keep-alive task, which is started by the first
/// `keep_alive`. Shared by the clones of a client.
#[derive(Debug, Default)]
pub(crate) struct Keepers {
    task: Mutex<Option<mpsc::UnboundedSender<Register>>>,
}

impl Keepers {
    /// A handle keeping lease `id` alive through `client`'s task.
    pub(crate) fn keep_alive(&self, client: &Client, id: i64) -> LeaseKeepAlive {
        if client.is_closed() {
            return LeaseKeepAlive::ended(id, Error::closed());
        }
        let slot = Arc::new(Slot::default());
        let handle = LeaseKeepAlive {
            id,
            slot: slot.clone(),
            done: false,
        };
        let mut register = Register {
            id,
            feed: Feed::new(slot, client.requires_leader()),
        };
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = task.as_ref() {
            match tx.send(register) {
                Ok(()) => return handle,
                // The task ended: the client closed since the check above.
                Err(mpsc::error::SendError(r)) => register = r,
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(register);
        client.spawn(Keeper::new(client, rx).run());
        *task = Some(tx);
        handle
    }
}

/// One kept lease.
struct Lease {
    feeds: Vec<Feed>,
    /// The TTL from etcd's last answer; before the first one, the first-answer deadline.
    window: Duration,
    /// When to send the next renewal.
    next: Instant,
    /// When the lease counts as expired without an answer.
    deadline: Instant,
    /// A renewal is out on the current stream (or the one being opened).
    awaiting: bool,
    /// When the task looks at this lease next: its key in [`Keeper::wake`].
    wake_at: Instant,
    /// No answer yet: `window` is the first-answer guess, not etcd's TTL.
    unanswered: bool,
}

impl Lease {
    fn end(&self, err: &Error) {
        for feed in &self.feeds {
            feed.end(err.duplicate());
        }
    }
}

/// The keep-alive task of one client.
struct Keeper {
    weak: WeakClient,
    commands: mpsc::UnboundedReceiver<Register>,
    leases: HashMap<i64, Lease>,
    /// When each lease is next due for a renewal or its deadline, earliest first: a tick
    /// looks only at the leases whose moment came, not at every lease.
    wake: BTreeSet<(Instant, i64)>,
    connect_timeout: Duration,
    stream: Option<KeepAliveStream>,
    opening: Option<BoxFuture<'static, Result<KeepAliveStream>>>,
    /// No new opening before this instant.
    reopen_at: Instant,
    /// When the current stream last delivered an answer (or opened).
    last_answer: Instant,
}

impl Keeper {
    fn new(client: &Client, commands: mpsc::UnboundedReceiver<Register>) -> Self {
        Keeper {
            weak: client.downgrade(),
            commands,
            leases: HashMap::new(),
            wake: BTreeSet::new(),
            connect_timeout: client.connect_timeout(),
            stream: None,
            opening: None,
            reopen_at: Instant::now(),
            last_answer: Instant::now(),
        }
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // Only ticks and stream changes look at every lease; a new lease or an answer
            // touches its own.
            let ok = tokio::select! {
                command = self.commands.recv() => match command {
                    Some(register) => {
                        let fresh = self.register(register);
                        self.renew(&fresh, Instant::now())
                    }
                    // Every client handle that could add a lease is gone.
                    None => return,
                },
                _ = tick.tick() => self.step(),
                answer = next_answer(&mut self.stream) => match answer {
                    Ok(Some(resp)) => {
                        self.on_answer(resp);
                        true
                    }
                    // Ended by the server or broken: open another one (on another member when
                    // this one is gone) and renew what was waiting.
                    Ok(None) => {
                        self.lost();
                        self.step()
                    }
                    Err(err) => {
                        if err.is_no_leader() {
                            self.no_leader(&err);
                        }
                        self.lost();
                        self.step()
                    }
                },
                opened = opened(&mut self.opening) => {
                    self.on_opened(opened);
                    self.step()
                }
            };
            if !ok {
                return;
            }
        }
    }

    /// Adds a handle; a new lease is returned, to be renewed at once.
    fn register(&mut self, Register { id, feed }: Register) -> Vec<i64> {
        let now = Instant::now();
        let window = self.connect_timeout + FIRST_ANSWER_SLACK;
        let mut fresh = Vec::new();
        let lease = self.leases.entry(id).or_insert_with(|| {
            fresh.push(id);
            Lease {
                feeds: Vec::new(),
                window,
                next: now,
                deadline: later(now, window),
                awaiting: false,
                wake_at: now,
                unanswered: true,
            }
        });
        lease.feeds.push(feed);
        if !fresh.is_empty() {
            self.wake.insert((now, id));
        }
        fresh
    }

    /// Takes one answer from etcd.
    fn on_answer(&mut self, resp: pb::LeaseKeepAliveResponse) {
        self.last_answer = Instant::now();
        let id = resp.id;
        let Some(lease) = self.leases.get_mut(&id) else {
            return;
        };
        if resp.ttl <= 0 {
            lease.end(&super::lease_not_found(id, "keep-alive answered TTL 0"));
            self.forget(id);
            return;
        }
        let now = Instant::now();
        let ttl = Duration::from_secs(resp.ttl.unsigned_abs());
        lease.window = ttl;
        lease.unanswered = false;
        lease.awaiting = false;
        lease.next = later(now, ttl / 3);
        lease.deadline = later(now, ttl);
        lease.feeds.retain(|f| !f.is_gone());
        let answer = LeaseKeepAliveResponse::from(resp);
        for feed in &lease.feeds {
            feed.deliver(answer.clone());
        }
        if lease.feeds.is_empty() {
            self.forget(id);
        } else {
            schedule(&mut self.wake, id, lease, now);
        }
    }

    fn on_opened(&mut self, opened: Result<KeepAliveStream>) {
        self.opening = None;
        match opened {
            Ok(stream) => {
                self.stream = Some(stream);
                self.last_answer = Instant::now();
            }
            Err(err) => {
                if err.is_no_leader() {
                    self.no_leader(&err);
                }
                self.reopen_at = Instant::now() + REOPEN_PAUSE;
                self.lost();
            }
        }
    }

    /// The stream's member has no leader: handles that require one end with `err`; the
    /// others wait for a leader on another stream (until their deadline).
    fn no_leader(&mut self, err: &Error) {
        let wake = &mut self.wake;
        self.leases.retain(|&id, lease| {
            lease.feeds.retain(|f| {
                if f.require_leader {
                    f.end(err.duplicate());
                }
                !f.require_leader
            });
            let keep = !lease.feeds.is_empty();
            if !keep {
                wake.remove(&(lease.wake_at, id));
            }
            keep
        });
    }

    /// The stream is gone: what was waiting for an answer is due again.
    fn lost(&mut self) {
        self.stream = None;
        let now = Instant::now();
        for (&id, lease) in &mut self.leases {
            if lease.awaiting {
                lease.awaiting = false;
                lease.next = now;
                schedule(&mut self.wake, id, lease, now);
            }
        }
    }

    /// Stops keeping lease `id` (its handles are gone or were ended).
    fn forget(&mut self, id: i64) {
        if let Some(lease) = self.leases.remove(&id) {
            self.wake.remove(&(lease.wake_at, id));
        }
    }

    /// Looks at the leases whose moment came: drops those without handles, ends those past
    /// their deadline, and renews those due. `false` when the client is gone.
    fn step(&mut self) -> bool {
        let now = Instant::now();
        // The stream answered lately: renewals that are late are queued behind others, and
        // the stream is not stuck.
        let live = self.stream.is_some() && now.duration_since(self.last_answer) < QUIET;
        let mut stalled = false;
        let mut due = Vec::new();
        let mut waiting = Vec::new();
        while let Some(&(at, id)) = self.wake.first() {
            if at > now {
                break;
            }
            self.wake.pop_first();
            let Some(lease) = self.leases.get_mut(&id) else {
                continue;
            };
            if lease.wake_at != at {
                // Left behind by a lease that ended, for a lease of the same ID since.
                continue;
            }
            lease.feeds.retain(|f| !f.is_gone());
            if lease.feeds.is_empty() {
                self.leases.remove(&id);
                continue;
            }
            if now >= lease.deadline {
                if lease.unanswered && live {
                    // No answer yet, but the stream is answering others: it is working
                    // through a backlog (thousands of leases kept at once), and the first
                    // deadline was only a guess at the TTL. Wait another window.
                    lease.deadline = later(now, lease.window);
                } else {
                    lease.end(&expired(id, lease.window));
                    self.leases.remove(&id);
                    continue;
                }
            }
            if lease.awaiting {
                // Due again while the last renewal is unanswered: the stream is stuck (a
                // frozen member, a renewal waiting for a leader that will not come).
                stalled = true;
                waiting.push(id);
            } else {
                due.push(id);
            }
        }
        if stalled && self.stream.is_some() && !live {
            // Everything that was waiting is due again, on a new stream.
            self.lost();
            due.append(&mut waiting);
        }
        let ok = self.renew(&due, now);
        // Those not renewed (no stream yet) are looked at again next tick; renewals waiting
        // on a live stream, at their deadline.
        for id in due {
            self.revisit(id, now, later(now, TICK));
        }
        for id in waiting {
            let at = self
                .leases
                .get(&id)
                .map_or(now, |l| l.deadline)
                .max(later(now, TICK));
            self.revisit(id, now, at);
        }
        ok
    }

    /// Puts lease `id` back in `wake` at `at` when nothing scheduled it after `now`.
    fn revisit(&mut self, id: i64, now: Instant, at: Instant) {
        if let Some(lease) = self.leases.get_mut(&id)
            && lease.wake_at <= now
        {
            self.wake.remove(&(lease.wake_at, id));
            lease.wake_at = at;
            self.wake.insert((at, id));
        }
    }

    /// Sends renewals of `due` on the stream, or opens a stream with every lease that is due.
    /// `false` when the client is gone.
    fn renew(&mut self, due: &[i64], now: Instant) -> bool {
        if due.is_empty() {
            return true;
        }
        if let Some(stream) = self.stream.as_mut() {
            let failed = due
                .iter()
                .any(|&id| stream.send(&pb::LeaseKeepAliveRequest { id }).is_err());
            if !failed {
                self.sent(due, now);
                return true;
            }
            self.lost();
        }
        if self.opening.is_some() || now < self.reopen_at {
            return true;
        }
        let Some(client) = self.weak.upgrade() else {
            return false;
        };
        // Renewals that were written to a broken stream are due again too.
        let due = self.due(now);
        let first: Vec<_> = due
            .iter()
            .map(|&id| pb::LeaseKeepAliveRequest { id })
            .collect();
        // The stream always requires a leader: a member without one refuses it (or ends it)
        // and the stream moves to another member. Only the opening has a deadline.
        let options = CallOptions::new()
            .timeout(self.connect_timeout)
            .require_leader();
        self.opening = Some(Box::pin(async move {
            client
                .open_stream(Rpc::LeaseKeepAlive, options, &first)
                .await
        }));
        self.sent(&due, now);
        true
    }

    /// The leases to renew now.
    fn due(&self, now: Instant) -> Vec<i64> {
        self.leases
            .iter()
            .filter(|(_, l)| !l.awaiting && now >= l.next)
            .map(|(&id, _)| id)
            .collect()
    }

    fn sent(&mut self, ids: &[i64], now: Instant) {
        for &id in ids {
            if let Some(lease) = self.leases.get_mut(&id) {
                lease.awaiting = true;
                lease.next = later(now, lease.window / 3);
                schedule(&mut self.wake, id, lease, now);
            }
        }
    }
}

async fn next_answer(
    stream: &mut Option<KeepAliveStream>,
) -> Result<Option<pb::LeaseKeepAliveResponse>> {
    match stream {
        Some(s) => s.message().await,
        None => std::future::pending().await,
    }
}

async fn opened(
    opening: &mut Option<BoxFuture<'static, Result<KeepAliveStream>>>,
) -> Result<KeepAliveStream> {
    match opening {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Moves lease `id`'s place in `wake` to its next renewal or its deadline, whichever comes
/// first (not before `now`).
fn schedule(wake: &mut BTreeSet<(Instant, i64)>, id: i64, lease: &mut Lease, now: Instant) {
    let at = lease.next.min(lease.deadline).max(now);
    if at != lease.wake_at {
        wake.remove(&(lease.wake_at, id));
        lease.wake_at = at;
    }
    wake.insert((at, id));
}

/// `now + d`, or far in the future for a TTL too long to add.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

fn expired(id: i64, window: Duration) -> Error {
    Error::new(
        ErrorKind::LeaseExpired,
        format!(
            "lease {id} ({id:x}): no keep-alive answer within {window:?}, so the lease may have \
             expired on the server (ask with time_to_live; grant a new one if it is gone)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;
    use crate::error::Code;

    fn answer(ttl: i64) -> LeaseKeepAliveResponse {
        pb::LeaseKeepAliveResponse {
            header: None,
            id: 7,
            ttl,
        }
        .into()
    }

    fn pair() -> (LeaseKeepAlive, Feed) {
        let slot = Arc::new(Slot::default());
        let handle = LeaseKeepAlive {
            id: 7,
            slot: slot.clone(),
            done: false,
        };
        (handle, Feed::new(slot, false))
    }

    #[test]
    fn an_unread_handle_keeps_only_the_latest_answer() {
        let (mut handle, feed) = pair();
        assert!(handle.message().now_or_never().is_none(), "nothing yet");
        for ttl in [10, 20, 30] {
            feed.deliver(answer(ttl));
        }
        let got = handle.message().now_or_never().unwrap().unwrap().unwrap();
        assert_eq!(got.ttl(), 30);
        assert!(
            handle.message().now_or_never().is_none(),
            "one answer, not three"
        );
        assert!(!feed.is_gone());
        drop(handle);
        assert!(feed.is_gone());
    }

    #[test]
    fn an_end_is_delivered_once_then_nothing() {
        let (mut handle, feed) = pair();
        feed.deliver(answer(10));
        feed.end(super::super::lease_not_found(7, "test"));
        // A later answer cannot overwrite the end.
        feed.deliver(answer(10));
        drop(feed);
        let err = handle.message().now_or_never().unwrap().unwrap_err();
        assert_eq!(err.code(), Some(Code::LeaseNotFound));
        assert!(err.is_lease_not_found());
        assert!(handle.message().now_or_never().unwrap().unwrap().is_none());
    }

    #[test]
    fn a_vanished_task_reads_as_closed() {
        let (mut handle, feed) = pair();
        let reader = handle.message();
        drop(feed);
        let err = reader.now_or_never().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
        assert!(handle.message().now_or_never().unwrap().unwrap().is_none());
        let closed = LeaseKeepAlive::ended(3, Error::closed());
        assert_eq!(closed.id(), 3);
    }

    #[test]
    fn long_ttls_do_not_overflow() {
        let now = Instant::now();
        assert!(later(now, Duration::from_secs(u64::MAX)) > now);
        let err = expired(0x10, Duration::from_secs(5));
        assert_eq!(err.kind(), ErrorKind::LeaseExpired);
        assert!(err.is_lease_expired());
    }
}
