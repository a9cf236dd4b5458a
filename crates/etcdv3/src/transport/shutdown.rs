//! The close signal and the set of background tasks: every task the client spawns (connection
//! drivers, keep-alive pings, watch and lease loops) is tracked here and ends when the client
//! is closed or its last handle is dropped.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long [`Shutdown::close`] waits for background tasks to end.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The close signal and the tasks that obey it.
///
/// The hot paths only read an atomic flag: the token's own check takes a lock, and a task
/// that polled it on every wake-up (a connection driver wakes for every frame) would pay that
/// lock per request. So tasks are not raced against the token; a watcher per task, woken only
/// when the client closes or the task ends, aborts it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shutdown {
    closed: Arc<AtomicBool>,
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    /// Spawns `task`, which ends at the latest when the client closes.
    pub(crate) fn spawn<F>(&self, task: F) -> AbortHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = self.tasks.spawn(task);
        let abort = handle.abort_handle();
        let token = self.token.clone();
        let on_close = handle.abort_handle();
        self.tasks.spawn(async move {
            tokio::select! {
                () = token.cancelled() => on_close.abort(),
                _ = handle => {}
            }
        });
        abort
    }

    /// Whether the client was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves when the client closes.
    pub(crate) async fn closed(&self) {
        self.token.cancelled().await;
    }

    /// Signals every task to end, without waiting (for `Drop`).
    pub(crate) fn signal(&self) {
        self.closed.store(true, Ordering::Release);
        self.token.cancel();
        self.tasks.close();
    }

    /// Signals every task to end and waits until they have (at most one second: a task stuck
    /// in a synchronous section is left to finish on its own).
    pub(crate) async fn close(&self) {
        self.signal();
        let _ = tokio::time::timeout(CLOSE_WAIT, self.tasks.wait()).await;
    }

    /// How many tasks are running, for tests.
    #[cfg(test)]
    pub(crate) fn task_count(&self) -> usize {
        self.tasks.len()
    }
}
