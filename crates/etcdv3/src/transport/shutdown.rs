//! The close signal and the set of background tasks: every task the client spawns (connection
//! drivers, keep-alive pings, watch and lease loops) is tracked here and ends when the client
//! is closed or its last handle is dropped.

use std::future::Future;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long [`Shutdown::close`] waits for background tasks to end.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The close signal and the tasks that obey it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shutdown {
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    /// Spawns `task`, which ends at the latest when the client closes.
    pub(crate) fn spawn<F>(&self, task: F) -> AbortHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let token = self.token.clone();
        self.tasks
            .spawn(async move {
                tokio::select! {
                    biased;
                    () = token.cancelled() => {}
                    () = task => {}
                }
            })
            .abort_handle()
    }

    /// Whether the client was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when the client closes.
    pub(crate) async fn closed(&self) {
        self.token.cancelled().await;
    }

    /// Signals every task to end, without waiting (for `Drop`).
    pub(crate) fn signal(&self) {
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
