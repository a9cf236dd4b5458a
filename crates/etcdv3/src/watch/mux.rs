//! The watch task: one per client and kind of stream (with or without require-leader). It
//! owns one gRPC `Watch` stream that all of its watches share, matches creations to etcd's
//! answers, routes events, joins fragments, and re-creates every watch on a working member
//! from the right revision when the stream breaks.
//!
//! Revision bookkeeping: each watch keeps `next`, the first revision it has not delivered.
//! A watch from "now" learns it from etcd's creation answer (etcd starts it at the header
//! revision + 1); after that, each event moves it past the event, and each progress
//! notification past the notified revision. A resumed watch starts at `next`, and anything
//! below it that still arrives is dropped, so no revision is delivered twice.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use etcdv3_proto::{etcdserverpb as pb, mvccpb};
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};

use super::op::WatchOp;
use super::stream::{Feed, Pushed, Queue};
use super::types::WatchResponse;
use crate::call::CallOptions;
use crate::client::{Client, WeakClient};
use crate::error::{Code, Error, ErrorKind, GrpcCode, Result};
use crate::kv::{GetResponse, Kv};
use crate::transport::auth::TokenGeneration;
use crate::transport::rpc::Rpc;
use crate::transport::status::from_status;
use crate::transport::stream::GrpcStream;

type WatchGrpc = GrpcStream<pb::WatchRequest, pb::WatchResponse>;

/// How many times in a row a new token is fetched for refused creations before they fail.
const MAX_TOKEN_REFRESHES: u32 = 3;

/// The longest pause between two attempts to open a stream again.
const MAX_REOPEN_PAUSE: Duration = Duration::from_secs(2);

/// What handles ask of the task.
pub(crate) enum Command {
    /// A new watch.
    Create(Box<NewWatch>),
    /// Cancel the watch with this key.
    Cancel(u64),
    /// Request progress on the stream; answered once sent.
    Progress(oneshot::Sender<Result<()>>),
}

/// A watch to create, and where to say it was created.
pub(crate) struct NewWatch {
    pub(crate) key: u64,
    pub(crate) op: WatchOp,
    pub(crate) queue: Arc<Queue>,
    pub(crate) reply: oneshot::Sender<Result<()>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not asked for on the current stream (no stream, or waiting to be sent).
    Unsent,
    /// Asked for; etcd's answer has not come.
    Pending,
    /// Created on the current stream with this ID.
    Active(i64),
    /// Ended by a compaction; its range is being read again.
    Resyncing,
}

struct Watcher {
    op: WatchOp,
    feed: Feed,
    /// Set until the first creation is answered.
    reply: Option<oneshot::Sender<Result<()>>>,
    /// The first revision not delivered yet; 0 for a watch from now that etcd has not
    /// created yet.
    next: i64,
    state: State,
    /// Events of a revision etcd is sending in fragments.
    fragments: Vec<mvccpb::Event>,
}

impl Watcher {
    fn create_request(&self) -> pb::WatchRequest {
        self.op.create_request(self.next)
    }

    /// Ends the watch with `err` (`None`: quietly). A creation still awaited fails with it.
    fn end(mut self, err: Option<Error>) {
        match (self.reply.take(), err) {
            (Some(reply), Some(err)) => {
                let _ = reply.send(Err(err));
                self.feed.end(None);
            }
            (_, err) => self.feed.end(err),
        }
    }
}

type Resync = BoxFuture<'static, (u64, i64, Result<GetResponse>)>;

/// The task.
pub(crate) struct Mux {
    weak: WeakClient,
    require_leader: bool,
    commands: mpsc::UnboundedReceiver<Command>,
    watchers: HashMap<u64, Watcher>,
    /// etcd's watch IDs on the current stream.
    ids: HashMap<i64, u64>,
    /// The watches in state `Unsent`, oldest first (creations are answered in the order they
    /// were asked for).
    unsent: BTreeSet<u64>,
    /// The creations sent on the current stream, in order; `None` for one cancelled since.
    pending: VecDeque<Option<u64>>,
    stream: Option<WatchGrpc>,
    opening: Option<BoxFuture<'static, Result<WatchGrpc>>>,
    /// Opening failures in a row.
    failures: u32,
    /// No new opening before this.
    reopen_at: Option<Instant>,
    /// Why the stream broke or an opening failed, when it was `NoLeader`.
    no_leader: Option<Error>,
    /// The auth token the current stream was opened with.
    stream_token: TokenGeneration,
    /// Fetch a new token before the next opening: etcd refused this one.
    refresh_token: Option<TokenGeneration>,
    /// Token refreshes since a watch was last created, to give up on a token etcd keeps
    /// refusing.
    refreshes: u32,
    open_timeout: Duration,
    /// Progress requests waiting for a stream.
    progress_waiting: Vec<oneshot::Sender<Result<()>>>,
    /// Progress answers owed to users, and to the stall check.
    user_progress: usize,
    probe_progress: usize,
    /// IDs of unknown watches cancelled on this stream.
    strays: HashSet<i64>,
    resyncs: FuturesUnordered<Resync>,
    stall: Option<Duration>,
    last_message: Instant,
    /// When the stall check sent its progress request.
    probe: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl Mux {
    pub(crate) fn new(
        client: &Client,
        require_leader: bool,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        let now = Instant::now();
        Mux {
            weak: client.downgrade(),
            require_leader,
            commands,
            watchers: HashMap::new(),
            ids: HashMap::new(),
            unsent: BTreeSet::new(),
            pending: VecDeque::new(),
            stream: None,
            opening: None,
            failures: 0,
            reopen_at: None,
            no_leader: None,
            stream_token: 0,
            refresh_token: None,
            refreshes: 0,
            open_timeout: client
                .prompt_timeout(CallOptions::new())
                .unwrap_or(client.connect_timeout()),
            progress_waiting: Vec::new(),
            user_progress: 0,
            probe_progress: 0,
            strays: HashSet::new(),
            resyncs: FuturesUnordered::new(),
            stall: None,
            last_message: now,
            probe: None,
            timer: Box::pin(tokio::time::sleep_until(now)),
            armed: None,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            self.arm();
            let armed = self.armed.is_some();
            let resyncing = !self.resyncs.is_empty();
            let ok = tokio::select! {
                command = self.commands.recv() => match command {
                    Some(c) => self.command(c),
                    None => return,
                },
                message = next_message(&mut self.stream) => {
                    match message {
                        Ok(Some(resp)) => self.on_message(resp),
                        Ok(None) => self.broken(&Error::new(
                            ErrorKind::Unavailable,
                            "etcd ended the watch stream",
                        )),
                        Err(err) => self.broken(&err),
                    }
                    true
                },
                opened = opened(&mut self.opening) => self.on_opened(opened),
                () = self.timer.as_mut(), if armed => {
                    self.armed = None;
                    self.on_timer()
                },
                Some((key, compact, read)) = self.resyncs.next(), if resyncing => {
                    self.on_resync(key, compact, read)
                },
            };
            if !ok {
                return;
            }
            if self.watchers.is_empty() && self.resyncs.is_empty() {
                // The stream closes with its last watch; the next watch opens a new one.
                self.stream = None;
                self.opening = None;
                self.forget_stream();
                self.unsent.clear();
                self.stall = None;
                self.failures = 0;
                self.reopen_at = None;
                for waiting in self.progress_waiting.drain(..) {
                    let _ = waiting.send(Ok(()));
                }
            }
        }
    }

    /// Sets the timer to the next moment something is due: an opening after a pause, or a
    /// stall check.
    fn arm(&mut self) {
        let stall = match (self.stall, &self.stream) {
            (Some(stall), Some(_)) => Some(match self.probe {
                Some(at) => at + stall,
                None => self.last_message + stall,
            }),
            _ => None,
        };
        let reopen = match (&self.stream, &self.opening) {
            (None, None) => self.reopen_at,
            _ => None,
        };
        let due = match (stall, reopen) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Re-arming costs a timer update: only when the moment moves earlier, or the timer
        // is idle. A timer that fires early just re-arms.
        if let Some(due) = due
            && self.armed.is_none_or(|armed| due < armed)
        {
            self.timer.as_mut().reset(due);
            self.armed = Some(due);
        }
    }

    /// `false` when the client is gone.
    fn command(&mut self, command: Command) -> bool {
        match command {
            Command::Create(new) => {
                let NewWatch {
                    key,
                    op,
                    queue,
                    reply,
                } = *new;
                if let Some(stall) = op.stall_timeout {
                    self.stall = Some(self.stall.map_or(stall, |s| s.min(stall)));
                }
                let watcher = Watcher {
                    next: op.start_revision,
                    op,
                    feed: Feed(queue),
                    reply: Some(reply),
                    state: State::Unsent,
                    fragments: Vec::new(),
                };
                self.watchers.insert(key, watcher);
                self.unsent.insert(key);
                self.send_unsent()
            }
            Command::Cancel(key) => {
                self.cancel(key);
                true
            }
            Command::Progress(reply) => {
                if self.watchers.is_empty() {
                    // No watch to notify: nothing to ask.
                    let _ = reply.send(Ok(()));
                } else if self.stream.is_some() {
                    let sent = self.send(&progress_request());
                    if sent.is_ok() {
                        self.user_progress += 1;
                    }
                    let _ = reply.send(sent);
                } else {
                    self.progress_waiting.push(reply);
                }
                true
            }
        }
    }

    fn cancel(&mut self, key: u64) {
        let Some(watcher) = self.watchers.remove(&key) else {
            return;
        };
        match watcher.state {
            State::Pending => {
                if let Some(slot) = self.pending.iter_mut().find(|k| **k == Some(key)) {
                    *slot = None;
                }
            }
            State::Active(id) => {
                self.ids.remove(&id);
                let _ = self.send(&cancel_request(id));
            }
            State::Unsent => {
                self.unsent.remove(&key);
            }
            State::Resyncing => {}
        }
        watcher.end(None);
    }

    /// Writes `req` on the stream; a failure counts as a broken stream (noticed on the next
    /// read).
    fn send(&mut self, req: &pb::WatchRequest) -> Result<()> {
        match self.stream.as_mut() {
            Some(s) => s.send(req),
            None => Err(Error::new(ErrorKind::Unavailable, "no watch stream")),
        }
    }

    /// Asks etcd for every watch not asked for on the current stream; opens a stream when
    /// there is none. `false` when the client is gone.
    fn send_unsent(&mut self) -> bool {
        if self.stream.is_none() {
            return self.open();
        }
        while let Some(key) = self.unsent.pop_first() {
            let Some(w) = self.watchers.get_mut(&key) else {
                continue;
            };
            let req = w.create_request();
            w.state = State::Pending;
            if let Err(_broken) = self.send(&req) {
                // The read side reports the break; this one is asked for again then.
                if let Some(w) = self.watchers.get_mut(&key) {
                    w.state = State::Unsent;
                }
                self.unsent.insert(key);
                return true;
            }
            self.pending.push_back(Some(key));
        }
        true
    }

    /// Opens a stream that carries the creation of every unsent watch. `false` when the
    /// client is gone.
    fn open(&mut self) -> bool {
        if self.opening.is_some() || self.stream.is_some() {
            return true;
        }
        if self.reopen_at.is_some_and(|at| at > Instant::now()) {
            return true;
        }
        let mut first = Vec::with_capacity(self.unsent.len());
        while let Some(key) = self.unsent.pop_first() {
            if let Some(w) = self.watchers.get_mut(&key) {
                first.push(w.create_request());
                w.state = State::Pending;
                self.pending.push_back(Some(key));
            }
        }
        if first.is_empty() {
            return true;
        }
        let Some(client) = self.weak.upgrade() else {
            return false;
        };
        let mut options = CallOptions::new().timeout(self.open_timeout);
        if self.require_leader {
            options = options.require_leader();
        }
        let refresh = self.refresh_token.take();
        self.opening = Some(Box::pin(async move {
            if let Some(seen) = refresh {
                client.refresh_token(seen).await?;
            }
            client.open_stream(Rpc::Watch, options, &first).await
        }));
        true
    }

    /// `false` when the client is gone.
    fn on_opened(&mut self, opened: Result<WatchGrpc>) -> bool {
        self.opening = None;
        match opened {
            Ok(stream) => {
                self.stream = Some(stream);
                if let Some(client) = self.weak.upgrade() {
                    self.stream_token = client.token_generation();
                }
                self.failures = 0;
                self.reopen_at = None;
                self.no_leader = None;
                self.last_message = Instant::now();
                self.probe = None;
                for waiting in std::mem::take(&mut self.progress_waiting) {
                    let sent = self.send(&progress_request());
                    if sent.is_ok() {
                        self.user_progress += 1;
                    }
                    let _ = waiting.send(sent);
                }
                self.send_unsent()
            }
            Err(err) => {
                self.forget_stream();
                if err.is_no_leader() {
                    self.no_leader = Some(err.duplicate());
                }
                if self.require_leader
                    && let Some(no_leader) = self.no_leader.take()
                {
                    // No member with a leader was found: a require-leader watch ends.
                    self.end_all(&no_leader);
                    return true;
                }
                if self.halts(&err) {
                    self.end_all(&err);
                    return true;
                }
                self.failures += 1;
                let pause = Duration::from_millis(50)
                    .saturating_mul(1 << self.failures.min(6))
                    .min(MAX_REOPEN_PAUSE);
                self.reopen_at = Some(Instant::now() + pause);
                true
            }
        }
    }

    /// Whether `err` ends every watch of the stream instead of a resume.
    fn halts(&self, err: &Error) -> bool {
        if self.require_leader && err.is_no_leader() {
            return true;
        }
        match err.kind() {
            ErrorKind::Connect
            | ErrorKind::Unavailable
            | ErrorKind::Timeout
            | ErrorKind::Canceled => false,
            ErrorKind::Server => !matches!(
                err.grpc_code(),
                Some(GrpcCode::Unavailable | GrpcCode::Internal | GrpcCode::Canceled)
            ),
            _ => true,
        }
    }

    /// The stream broke: every watch is asked for again, on another stream.
    fn broken(&mut self, err: &Error) {
        if let (Some(stream), Some(client)) = (self.stream.take(), self.weak.upgrade()) {
            client.mark_down(stream.endpoint());
        }
        self.forget_stream();
        if self.require_leader && err.is_no_leader() {
            // The member lost its leader: look for a member that has one; when the opening
            // fails too, the watches end with this error.
            self.no_leader = Some(err.duplicate());
        } else if self.halts(err) {
            self.end_all(err);
            return;
        }
        // Open again at once (on another member: this one is marked down).
        self.reopen_at = None;
        let _ = self.open();
    }

    /// Forgets what belonged to the stream that is gone.
    fn forget_stream(&mut self) {
        self.ids.clear();
        self.pending.clear();
        self.strays.clear();
        self.user_progress = 0;
        self.probe_progress = 0;
        self.probe = None;
        for (&key, w) in &mut self.watchers {
            if matches!(w.state, State::Pending | State::Active(_)) {
                w.state = State::Unsent;
                self.unsent.insert(key);
            }
            w.fragments.clear();
        }
    }

    /// Ends every watch with `err`.
    fn end_all(&mut self, err: &Error) {
        for (_, w) in self.watchers.drain() {
            w.end(Some(err.duplicate()));
        }
        self.unsent.clear();
        for waiting in self.progress_waiting.drain(..) {
            let _ = waiting.send(Err(err.duplicate()));
        }
        self.stream = None;
        self.opening = None;
        self.forget_stream();
    }

    /// `false` when the client is gone.
    fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        if self.stream.is_none() && self.opening.is_none() {
            if self.reopen_at.is_some_and(|at| at <= now) {
                self.reopen_at = None;
                return self.open();
            }
            return true;
        }
        let Some(stall) = self.stall else {
            return true;
        };
        if self.stream.is_none() {
            return true;
        }
        let probe = self.probe;
        match probe {
            // Silent for too long: ask for progress, which etcd answers at once.
            None if now >= self.last_message + stall && self.send(&progress_request()).is_ok() => {
                self.probe_progress += 1;
                self.probe = Some(now);
            }
            Some(at) if now >= at + stall => {
                self.broken(
                    &Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "the watch stream stalled: nothing arrived for {:?}, and a progress \
                             request was not answered within {stall:?}",
                            now - self.last_message
                        ),
                    )
                    .with_endpoint(
                        self.stream
                            .as_ref()
                            .map(|s| s.endpoint().to_string())
                            .unwrap_or_default(),
                    ),
                );
            }
            _ => {}
        }
        true
    }

    fn on_message(&mut self, resp: pb::WatchResponse) {
        self.last_message = Instant::now();
        self.probe = None;
        if resp.created {
            self.on_created(resp);
            return;
        }
        if resp.watch_id == -1 {
            self.on_progress_all(&resp);
            return;
        }
        let id = resp.watch_id;
        let Some(&key) = self.ids.get(&id) else {
            // A watch this client no longer knows (cancelled while its events were on the
            // way): cancel it once.
            if !resp.canceled && self.strays.insert(id) {
                let _ = self.send(&cancel_request(id));
            }
            return;
        };
        if resp.canceled {
            self.ids.remove(&id);
            if resp.compact_revision != 0 {
                self.on_compacted(key, resp.compact_revision);
            } else if let Some(w) = self.watchers.remove(&key) {
                w.end(Some(cancelled(&resp.cancel_reason)));
            }
            return;
        }
        let Some(w) = self.watchers.get_mut(&key) else {
            return;
        };
        if resp.fragment {
            w.fragments.extend(resp.events);
            return;
        }
        let mut resp = resp;
        if !w.fragments.is_empty() {
            let mut events = std::mem::take(&mut w.fragments);
            events.append(&mut resp.events);
            resp.events = events;
        }
        self.deliver(key, WatchResponse::from_pb(resp));
    }

    fn on_created(&mut self, resp: pb::WatchResponse) {
        let Some(entry) = self.pending.pop_front() else {
            return;
        };
        let refused = resp.canceled || resp.watch_id < 0;
        let Some(key) = entry else {
            // Cancelled while being created.
            if !refused {
                let _ = self.send(&cancel_request(resp.watch_id));
            }
            return;
        };
        if refused {
            let err = refusal(&resp.cancel_reason);
            if self.refreshes < MAX_TOKEN_REFRESHES
                && (err.is_invalid_auth_token() || err.code() == Some(Code::AuthOldRevision))
                && self.weak.upgrade().is_some_and(|c| c.can_refresh_token())
            {
                // The stream's token is no longer good: open a new stream with a new token
                // and ask for every watch again there.
                self.refreshes += 1;
                self.refresh_token = Some(self.stream_token);
                self.stream = None;
                self.forget_stream();
                let _ = self.open();
                return;
            }
            if let Some(w) = self.watchers.remove(&key) {
                w.end(Some(err));
            }
            return;
        }
        self.refreshes = 0;
        let Some(w) = self.watchers.get_mut(&key) else {
            return;
        };
        let id = resp.watch_id;
        w.state = State::Active(id);
        w.feed.set_watch_id(id);
        let revision = resp.header.as_ref().map_or(0, |h| h.revision);
        if w.next == 0 {
            // etcd starts a watch from now at the revision after the header's.
            w.next = revision + 1;
        }
        self.ids.insert(id, key);
        if let Some(reply) = w.reply.take() {
            if w.op.created_notify {
                let _ = w.feed.push(WatchResponse::from_pb(resp));
            }
            if reply.send(Ok(())).is_err() {
                // Nobody waits for it any more.
                self.cancel(key);
            }
        }
    }

    /// A progress answer for the whole stream: everything up to its revision was delivered
    /// to every watch created on it.
    fn on_progress_all(&mut self, resp: &pb::WatchResponse) {
        let revision = resp.header.as_ref().map_or(0, |h| h.revision);
        let notify = if self.user_progress > 0 {
            self.user_progress -= 1;
            true
        } else if self.probe_progress > 0 {
            self.probe_progress -= 1;
            false
        } else {
            true
        };
        let active: Vec<u64> = self
            .watchers
            .iter()
            .filter(|(_, w)| matches!(w.state, State::Active(_)))
            .map(|(&k, _)| k)
            .collect();
        for key in active {
            if let Some(w) = self.watchers.get_mut(&key) {
                w.next = w.next.max(revision + 1);
            }
            if notify {
                self.deliver(key, WatchResponse::from_pb(resp.clone()));
            }
        }
    }

    /// Hands a response to its watch, moving its revision on; a full buffer ends it.
    fn deliver(&mut self, key: u64, mut resp: WatchResponse) {
        let Some(w) = self.watchers.get_mut(&key) else {
            return;
        };
        if resp.events().is_empty() {
            // A progress notification.
            w.next = w.next.max(resp.header().revision() + 1);
            if w.op.progress_notify || resp.watch_id() == -1 {
                // Informational: dropped, not fatal, when the reader is behind.
                let _ = w.feed.push(resp);
            }
            return;
        }
        resp.skip_below(w.next);
        let Some(last) = resp.last_revision() else {
            return;
        };
        let first = resp.events()[0].revision();
        w.next = last + 1;
        if let Pushed::Full = w.feed.push(resp) {
            let capacity = w.feed.capacity();
            self.end_watch(key, Error::lagged(first, capacity));
        }
    }

    /// Ends one watch with `err` and cancels it on the server.
    fn end_watch(&mut self, key: u64, err: Error) {
        let Some(w) = self.watchers.remove(&key) else {
            return;
        };
        if let State::Active(id) = w.state {
            self.ids.remove(&id);
            let _ = self.send(&cancel_request(id));
        }
        w.end(Some(err));
    }

    fn on_compacted(&mut self, key: u64, compact: i64) {
        let Some(w) = self.watchers.get_mut(&key) else {
            return;
        };
        w.fragments.clear();
        if !w.op.resync_on_compaction {
            let err = Error::server(
                Some(Code::Compacted),
                Code::Compacted.grpc_code(),
                format!(
                    "{}: the watch's next revision {} was compacted away (the store is \
                     compacted up to {compact}); read the range again and watch from there, \
                     or use resync_on_compaction",
                    Code::Compacted.message(),
                    w.next
                ),
            )
            .with_compact_revision(compact);
            if let Some(w) = self.watchers.remove(&key) {
                w.end(Some(err));
            }
            return;
        }
        w.state = State::Resyncing;
        let Some(client) = self.weak.upgrade() else {
            return;
        };
        let keys = w.op.keys.clone();
        self.resyncs.push(Box::pin(async move {
            let read = client.kv().get(keys).await;
            (key, compact, read)
        }));
    }

    /// The range was read again after a compaction: deliver it, then go on after it.
    fn on_resync(&mut self, key: u64, compact: i64, read: Result<GetResponse>) -> bool {
        let Some(w) = self.watchers.get_mut(&key) else {
            return true;
        };
        let read = match read {
            Ok(read) => read,
            Err(err) => {
                if let Some(w) = self.watchers.remove(&key) {
                    w.end(Some(err));
                }
                return true;
            }
        };
        let revision = read.header().revision();
        let header = *read.header();
        let resp = WatchResponse::resync(header, -1, read.into_kvs(), compact);
        w.next = revision + 1;
        w.state = State::Unsent;
        self.unsent.insert(key);
        if let Pushed::Full = w.feed.push(resp) {
            let capacity = w.feed.capacity();
            if let Some(w) = self.watchers.remove(&key) {
                w.end(Some(Error::lagged(revision + 1, capacity)));
            }
            return true;
        }
        self.send_unsent()
    }
}

async fn next_message(stream: &mut Option<WatchGrpc>) -> Result<Option<pb::WatchResponse>> {
    match stream {
        Some(s) => s.message().await,
        None => std::future::pending().await,
    }
}

async fn opened(opening: &mut Option<BoxFuture<'static, Result<WatchGrpc>>>) -> Result<WatchGrpc> {
    match opening {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

fn progress_request() -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::ProgressRequest(
            pb::WatchProgressRequest {},
        )),
    }
}

fn cancel_request(watch_id: i64) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CancelRequest(
            pb::WatchCancelRequest { watch_id },
        )),
    }
}

/// The error for a creation etcd refused.
fn refusal(reason: &str) -> Error {
    if reason.is_empty() {
        return Error::server(
            None,
            GrpcCode::InvalidArgument,
            "etcd refused to create the watch without saying why",
        );
    }
    from_reason(reason)
}

/// The error for a watch etcd cancelled on its own.
fn cancelled(reason: &str) -> Error {
    if reason.is_empty() {
        return Error::new(ErrorKind::Canceled, "etcd cancelled the watch");
    }
    from_reason(reason)
}

/// A cancel reason as an error. etcd writes either its error message
/// (`etcdserver: permission denied`) or a whole gRPC status
/// (`rpc error: code = Unauthenticated desc = etcdserver: invalid auth token`).
fn from_reason(reason: &str) -> Error {
    if let Some(rest) = reason.strip_prefix("rpc error: code = ")
        && let Some((code, desc)) = rest.split_once(" desc = ")
    {
        return from_status(grpc_code_named(code), desc);
    }
    from_status(GrpcCode::FailedPrecondition, reason)
}

/// The gRPC code with this name, as Go prints it (the same names as ours).
fn grpc_code_named(name: &str) -> GrpcCode {
    (1..=16)
        .map(GrpcCode::from_i32)
        .find(|c| format!("{c:?}") == name)
        .unwrap_or(GrpcCode::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_codes() {
        assert_eq!(
            refusal("etcdserver: permission denied").code(),
            Some(Code::PermissionDenied)
        );
        assert_eq!(
            refusal("").grpc_code(),
            Some(GrpcCode::InvalidArgument),
            "no reason still fails"
        );
        assert_eq!(cancelled("").kind(), ErrorKind::Canceled);
        let token =
            refusal("rpc error: code = Unauthenticated desc = etcdserver: invalid auth token");
        assert!(token.is_invalid_auth_token(), "{token:?}");
        assert_eq!(token.grpc_code(), Some(GrpcCode::Unauthenticated));
        assert_eq!(token.message(), "etcdserver: invalid auth token");
    }
}
