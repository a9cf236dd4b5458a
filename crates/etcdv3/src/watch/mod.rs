//! The Watch API: streams of changes to keys, shared, resumed and bounded.
//!
//! ```no_run
//! # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
//! use etcdv3::{EventKind, Kv};
//!
//! let mut watch = client.watch("config/").prefix().prev_kv().await?;
//! client.kv().put("config/mode", "active").await?;
//! while let Some(resp) = watch.message().await? {
//!     for event in resp.events() {
//!         match event.kind() {
//!             EventKind::Put => println!("{:?} is now {:?}", event.kv().key_str()?, event.kv().value_str()?),
//!             EventKind::Delete => println!("{:?} is gone", event.kv().key_str()?),
//!         }
//!     }
//! #   break;
//! }
//! # Ok(()) }
//! ```
//!
//! # What a watch guarantees
//!
//! - **Every revision once, in order.** When the stream's member fails (killed, frozen,
//!   cut off), the watch is created again on a working member from the first revision it had
//!   not delivered, and anything it already delivered is dropped if it comes again.
//!   [`WatchResponse::is_created`] is delivered once, never on resumes.
//! - **One stream for many watches.** All watches of a client share one gRPC stream (one
//!   more for [`require_leader`](crate::Call::require_leader) watches). Creations are
//!   pipelined; one watch's cancellation, refusal or slow reader never disturbs the others.
//! - **Bounded memory.** Each watch holds at most [`WatchOp::buffer`] responses for its
//!   reader. A reader that falls further behind ends its watch with
//!   [`ErrorKind::Lagged`](crate::ErrorKind::Lagged) and the revision to resume from; the
//!   stream keeps being read, so other watches and calls on the connection are not slowed.
//! - **Typed ends.** Compaction: [`Code::Compacted`](crate::Code::Compacted) with
//!   [`Error::compact_revision`](crate::Error::compact_revision), or a resync
//!   ([`WatchOp::resync_on_compaction`]). No leader anywhere, for a require-leader watch:
//!   [`Code::NoLeader`](crate::Code::NoLeader) (a plain watch waits for one). Client closed:
//!   [`ErrorKind::Closed`](crate::ErrorKind::Closed). A watch that fails or is dropped is
//!   cancelled on the server.
//! - **Creation has a deadline**: the client's request timeout, or the call's
//!   [`timeout`](crate::Call::timeout). After that the watch runs until it ends.
//!
//! Differences from Go: a negative start revision, an empty key and a range end before the
//! key fail before anything is sent ([`ErrorKind::InvalidRequest`](crate::ErrorKind)); Go's
//! unbounded buffers are bounded; a watch from "now" resumes exactly after the creation
//! revision, where Go may deliver one revision twice.

mod mux;
mod op;
mod stream;
mod types;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use self::mux::{Command, Mux, NewWatch};
pub use self::op::{DEFAULT_WATCH_BUFFER, WatchOp};
use self::stream::Queue;
pub use self::stream::{WatchHandle, WatchStream};
pub use self::types::{Event, EventKind, WatchResponse};
use crate::call::{Call, CallOptions};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::kv::{KeyRange, forward};

/// A watch being built; `.await` it for a [`WatchStream`].
pub type Watch = Call<WatchClient, WatchOp>;

/// The Watch service of a [`Client`]: [`Client::watch_client`] (sharing the client's watch
/// streams) or [`Client::new_watcher`] (streams of its own). Cheap to clone.
#[derive(Debug, Clone)]
pub struct WatchClient {
    client: Client,
    watches: Arc<Watches>,
}

impl WatchClient {
    pub(crate) fn new(client: Client, watches: Arc<Watches>) -> Self {
        WatchClient { client, watches }
    }

    /// Watches `keys` (one key, or a [`KeyRange`]); set options on the returned call, then
    /// `.await` it. It resolves once etcd has created the watch.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// use futures_util::StreamExt;
    ///
    /// let mut watch = client.watch_client().watch("jobs/").prefix().start_revision(1).await?;
    /// while let Some(resp) = watch.next().await {
    ///     for event in resp?.events() {
    ///         println!("{:?} at {}", event.kind(), event.revision());
    ///     }
    /// #   break;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn watch(&self, keys: impl Into<KeyRange>) -> Watch {
        Call::new(self.clone(), WatchOp::new(keys))
    }

    /// Asks etcd for a progress notification on every watch stream of this watch client
    /// (Go's `RequestProgress`); see [`WatchHandle::request_progress`]. Does nothing when
    /// there is no watch.
    pub async fn request_progress(&self) -> Result<()> {
        for sender in self.watches.senders() {
            let (tx, rx) = oneshot::channel();
            if sender.send(Command::Progress(tx)).is_ok() {
                rx.await.map_err(|_| Error::closed())??;
            }
        }
        Ok(())
    }

    async fn watch_now(self, op: WatchOp, options: CallOptions) -> Result<WatchStream> {
        op.validate()?;
        let client = &self.client;
        if client.is_closed() {
            return Err(Error::closed());
        }
        let require_leader = options.requires_leader() || client.requires_leader();
        let timeout = client.prompt_timeout(options);
        let queue = Arc::new(Queue::new(op.buffer));
        let (reply, created) = oneshot::channel();
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let sender = self.watches.sender(client, require_leader);
        let stream = WatchStream::new(queue.clone(), WatchHandle::new(key, sender.clone()));
        let new = NewWatch {
            key,
            op,
            queue,
            reply,
        };
        sender
            .send(Command::Create(Box::new(new)))
            .map_err(|_| Error::closed())?;
        // Dropping `stream` on the way out cancels what was started.
        let answer = match timeout {
            Some(t) => tokio::time::timeout(t, created)
                .await
                .map_err(|_| Error::timeout(t))?,
            None => created.await,
        };
        answer.map_err(|_| Error::closed())??;
        Ok(stream)
    }
}

crate::call::call_futures!(WatchClient {
    WatchOp => WatchStream: watch_now,
});

forward!(WatchOp {
    /// See [`WatchOp::prefix`].
    fn prefix();
    /// See [`WatchOp::from_key`].
    fn from_key();
    /// See [`WatchOp::range_end`].
    fn range_end(end: impl Into<Vec<u8>>);
    /// See [`WatchOp::start_revision`].
    fn start_revision(revision: i64);
    /// See [`WatchOp::prev_kv`].
    fn prev_kv();
    /// See [`WatchOp::no_put`].
    fn no_put();
    /// See [`WatchOp::no_delete`].
    fn no_delete();
    /// See [`WatchOp::progress_notify`].
    fn progress_notify();
    /// See [`WatchOp::fragment`].
    fn fragment();
    /// See [`WatchOp::created_notify`].
    fn created_notify();
    /// See [`WatchOp::buffer`].
    fn buffer(responses: usize);
    /// See [`WatchOp::resync_on_compaction`].
    fn resync_on_compaction();
    /// See [`WatchOp::stall_timeout`].
    fn stall_timeout(timeout: std::time::Duration);
});

/// Keys of watches, unique in the process (they order creations, oldest first).
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A client's watch tasks, started by its first watch of each kind: index 0 for plain
/// streams, 1 for require-leader ones. Shared by the clones of a client.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    tasks: Mutex<[Option<mpsc::UnboundedSender<Command>>; 2]>,
}

impl Watches {
    /// The task for this kind of stream, started if there is none (or it ended).
    fn sender(&self, client: &Client, require_leader: bool) -> mpsc::UnboundedSender<Command> {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut tasks[usize::from(require_leader)];
        if let Some(tx) = slot.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        client.spawn(Mux::new(client, require_leader, rx).run());
        *slot = Some(tx.clone());
        tx
    }

    fn senders(&self) -> Vec<mpsc::UnboundedSender<Command>> {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.iter().flatten().cloned().collect()
    }
}
