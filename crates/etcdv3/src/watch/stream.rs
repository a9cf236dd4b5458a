//! The reader's side of a watch: a bounded queue filled by the client's watch task, and the
//! handles that read and control it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};

use super::mux::Command;
use super::types::WatchResponse;
use crate::error::{Error, Result};

/// What [`Queue::push`] did.
pub(crate) enum Pushed {
    Queued,
    /// The queue was full; the response was not queued.
    Full,
    /// The watch has ended; nothing more is queued.
    Ended,
}

struct QueueState {
    items: VecDeque<WatchResponse>,
    /// The watch ended: after the items, the reader gets this error (or the end of the
    /// stream, for `None`).
    ended: Option<Option<Error>>,
    waker: Option<Waker>,
}

/// One watch's responses on their way to the reader, at most `capacity` of them.
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    capacity: usize,
    /// The ID etcd gave the watch on its current stream.
    watch_id: AtomicI64,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                ended: None,
                waker: None,
            }),
            capacity,
            watch_id: AtomicI64::new(-1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn set_watch_id(&self, id: i64) {
        self.watch_id.store(id, Ordering::Relaxed);
    }

    /// Queues `resp` for the reader, unless the queue is full or the watch ended.
    pub(crate) fn push(&self, resp: WatchResponse) -> Pushed {
        let waker = {
            let mut s = self.lock();
            if s.ended.is_some() {
                return Pushed::Ended;
            }
            if s.items.len() >= self.capacity {
                return Pushed::Full;
            }
            s.items.push_back(resp);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Pushed::Queued
    }

    /// Ends the watch: the reader gets what is queued, then `err` (or the end of the stream).
    /// Only the first end counts.
    pub(crate) fn end(&self, err: Option<Error>) {
        let waker = {
            let mut s = self.lock();
            if s.ended.is_some() {
                return;
            }
            s.ended = Some(err);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<WatchResponse>>> {
        let mut s = self.lock();
        if let Some(resp) = s.items.pop_front() {
            return Poll::Ready(Some(Ok(resp)));
        }
        match &mut s.ended {
            Some(end) => Poll::Ready(end.take().map(Err)),
            None => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }
}

/// The watch task's end of a queue. Dropped without an end (the task stopped because the
/// client closed or was dropped), it ends the watch with
/// [`ErrorKind::Closed`](crate::ErrorKind::Closed).
pub(crate) struct Feed(pub(crate) Arc<Queue>);

impl Drop for Feed {
    fn drop(&mut self) {
        self.0.end(Some(Error::closed()));
    }
}

impl std::ops::Deref for Feed {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        &self.0
    }
}

/// A cloneable handle to a watch: cancel it or ask for progress from anywhere, while the
/// [`WatchStream`] is being read elsewhere.
#[derive(Debug, Clone)]
pub struct WatchHandle {
    key: u64,
    commands: mpsc::UnboundedSender<Command>,
}

impl WatchHandle {
    pub(crate) fn new(key: u64, commands: mpsc::UnboundedSender<Command>) -> Self {
        WatchHandle { key, commands }
    }

    /// Cancels the watch on the server. Its stream yields what it holds, then ends (`None`,
    /// no error). Other watches on the same gRPC stream are not disturbed. Harmless when the
    /// watch has already ended.
    pub fn cancel(&self) {
        let _ = self.commands.send(Command::Cancel(self.key));
    }

    /// Asks etcd for a progress notification on this watch's gRPC stream (Go's
    /// `RequestProgress`): every watch on it then gets a response with
    /// [`is_progress_notify`](WatchResponse::is_progress_notify) and the store's current
    /// revision, up to which it has had every event. etcd answers only once every watch on the
    /// stream has caught up with the store. Returns once the request is sent.
    pub async fn request_progress(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Progress(tx))
            .map_err(|_| Error::closed())?;
        rx.await.map_err(|_| Error::closed())?
    }
}

/// A running watch: a [`Stream`] of [`WatchResponse`]s, from
/// [`Client::watch`](crate::Client::watch).
///
/// It yields responses in revision order, each revision once, across reconnections. It ends
/// with an error: [`Code::Compacted`](crate::Code::Compacted) (with
/// [`Error::compact_revision`]) when revisions it had not delivered were compacted away,
/// [`ErrorKind::Lagged`](crate::ErrorKind::Lagged) when its reader fell behind,
/// [`Code::NoLeader`](crate::Code::NoLeader) for a require-leader watch when no member has a
/// leader, [`ErrorKind::Closed`](crate::ErrorKind::Closed) when the client closed; then `None`.
/// After [`cancel`](Self::cancel) it ends with `None` alone.
///
/// Dropping it cancels the watch on the server.
pub struct WatchStream {
    queue: Arc<Queue>,
    handle: WatchHandle,
    done: bool,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("watch_id", &self.watch_id())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl WatchStream {
    pub(crate) fn new(queue: Arc<Queue>, handle: WatchHandle) -> Self {
        WatchStream {
            queue,
            handle,
            done: false,
        }
    }

    /// The ID etcd gave this watch on its current gRPC stream (it changes when the watch
    /// resumes on a new stream).
    pub fn watch_id(&self) -> i64 {
        self.queue.watch_id.load(Ordering::Relaxed)
    }

    /// A cloneable handle to cancel this watch or request progress from elsewhere.
    pub fn handle(&self) -> WatchHandle {
        self.handle.clone()
    }

    /// Cancels the watch: see [`WatchHandle::cancel`].
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Asks for a progress notification: see [`WatchHandle::request_progress`].
    pub async fn request_progress(&self) -> Result<()> {
        self.handle.request_progress().await
    }

    /// The next response; the error that ended the watch, then `None`. Cancel-safe: use it in
    /// `select!`.
    pub async fn message(&mut self) -> Result<Option<WatchResponse>> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<WatchResponse>>> {
        if self.done {
            return Poll::Ready(Ok(None));
        }
        match self.queue.poll_next(cx) {
            Poll::Ready(Some(Ok(resp))) => Poll::Ready(Ok(Some(resp))),
            Poll::Ready(Some(Err(err))) => {
                self.done = true;
                Poll::Ready(Err(err))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Ok(None))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx).map(Result::transpose)
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.handle.cancel();
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;
    use crate::error::ErrorKind;

    fn stream(capacity: usize) -> (WatchStream, Feed, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Arc::new(Queue::new(capacity));
        let s = WatchStream::new(queue.clone(), WatchHandle::new(1, tx));
        (s, Feed(queue), rx)
    }

    #[test]
    fn a_full_queue_refuses_and_the_end_follows_what_it_holds() {
        let (mut s, feed, _rx) = stream(2);
        assert!(matches!(
            feed.push(WatchResponse::default()),
            Pushed::Queued
        ));
        assert!(matches!(
            feed.push(WatchResponse::default()),
            Pushed::Queued
        ));
        assert!(matches!(feed.push(WatchResponse::default()), Pushed::Full));
        feed.end(Some(Error::lagged(7, 2)));
        assert!(matches!(feed.push(WatchResponse::default()), Pushed::Ended));
        assert_eq!(feed.len(), 2);
        for _ in 0..2 {
            assert!(s.message().now_or_never().unwrap().unwrap().is_some());
        }
        let err = s.message().now_or_never().unwrap().unwrap_err();
        assert!(err.is_lagged());
        assert_eq!(err.resume_revision(), Some(7));
        assert!(s.message().now_or_never().unwrap().unwrap().is_none());
    }

    #[test]
    fn a_vanished_task_reads_as_closed_and_a_cancel_as_the_end() {
        let (mut s, feed, mut rx) = stream(4);
        assert!(s.message().now_or_never().is_none(), "nothing yet");
        drop(feed);
        assert_eq!(
            s.message().now_or_never().unwrap().unwrap_err().kind(),
            ErrorKind::Closed
        );
        drop(s);
        assert!(
            matches!(rx.try_recv(), Ok(Command::Cancel(1))),
            "dropping cancels"
        );

        let (mut s, feed, _rx) = stream(4);
        feed.end(None);
        assert!(s.message().now_or_never().unwrap().unwrap().is_none());
    }
}
