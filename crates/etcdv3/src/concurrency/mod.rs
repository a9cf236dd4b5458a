//! Distributed locks, leader election and software transactional memory over etcd (Go's
//! `clientv3/concurrency`), with Go's key layout and semantics, so they interoperate with Go
//! programs, `etcdctl lock`/`elect` and etcd's own Lock and Election services.
//!
//! ```no_run
//! # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
//! use etcdv3::{Mutex, Session};
//!
//! let session = Session::new(&client).ttl(10).await?;
//! let mutex = Mutex::new(&session, "jobs/lock")?;
//! mutex.lock().await?;
//! // ... only one session in the cluster runs this at a time ...
//! mutex.unlock().await?;
//! session.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Behavior
//!
//! - **Liveness.** A [`Session`] is a lease kept alive in the background; every lock and
//!   candidacy is a key put with it. When the session's process dies, its lease expires after
//!   its TTL and the keys go with it.
//! - **Key layout** (as Go's `concurrency` package): a mutex or election named `pfx` uses the
//!   key `pfx/<lease ID in lowercase hex>`; the owner (leader) is the key under `pfx/` with
//!   the lowest create revision. Waiters watch only the key created just before theirs, so a
//!   release wakes one waiter.
//! - **Deadlines.** [`Mutex::lock`] and [`Election::campaign`] wait without a deadline unless
//!   the call sets one (`.timeout(d)`); their requests are retried like any other.
//! - **Cancellation.** Dropping a `lock()` or `campaign()` future before it resolves deletes
//!   its key in the background, so an abandoned attempt never blocks others or wins unseen.
//!   A failed attempt deletes its key too, except when the key is already gone
//!   ([`ErrorKind::SessionExpired`](crate::ErrorKind::SessionExpired)).
//! - **Services.** [`Client::lock_service`](crate::Client::lock_service) and
//!   [`Client::election_service`](crate::Client::election_service) call etcd's v3lock and
//!   v3election gRPC services instead, which run Go's implementation inside the server; both
//!   sides use the same keys and exclude each other.

mod election;
mod mutex;
mod service;
mod session;
mod stm;

use std::future::Future;

pub use self::election::{CampaignOp, Election, LeaderOp, LeaderStream, ProclaimOp, ResignOp};
pub use self::mutex::{LockOp, Mutex, TryLockOp, UnlockOp};
pub use self::service::{
    CampaignResponse, ElectionServiceClient, LeaderKey, LeaderResponse, LockResponse,
    LockServiceClient, ObserveStream, ProclaimResponse, ResignResponse, RpcCampaignOp, RpcLeaderOp,
    RpcLockOp, RpcObserveOp, RpcProclaimOp, RpcResignOp, RpcUnlockOp, UnlockResponse,
};
pub use self::session::{DEFAULT_SESSION_TTL, Session, SessionBuilder};
pub use self::stm::{Isolation, Stm, StmTxn};
use crate::call::CallOptions;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::kv::{Kv, KvClient, ResponseHeader};
use crate::watch::EventKind;

/// How long a background cleanup (a dropped attempt's delete, a dropped session's revoke)
/// may take.
const CLEANUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The key of `lease` under `prefix` (which ends with `/`): Go's `fmt.Sprintf("%s%x")`.
fn owner_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(format!("{lease:x}").as_bytes());
    key
}

/// `name + "/"`, after checking the name is not empty.
fn prefix_of(what: &str, name: Vec<u8>) -> Result<Vec<u8>> {
    if name.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: the prefix must not be empty"
        )));
    }
    let mut prefix = name;
    prefix.push(b'/');
    Ok(prefix)
}

/// Runs `cleanup` in the background with the client, if there is a runtime and the client
/// is open; it holds the client only while it runs, bounded by [`CLEANUP_TIMEOUT`].
fn spawn_cleanup<F, Fut>(client: &Client, cleanup: F)
where
    F: FnOnce(Client) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if client.is_closed() || tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let weak = client.downgrade();
    client.spawn(async move {
        if let Some(client) = weak.upgrade() {
            let _ = tokio::time::timeout(CLEANUP_TIMEOUT, cleanup(client)).await;
        }
    });
}

/// Deletes `key` in the background when dropped armed: the cleanup of an attempt (lock,
/// campaign) that was dropped or failed before it finished.
struct KeyGuard {
    client: Client,
    key: Option<Vec<u8>>,
}

impl KeyGuard {
    fn new(client: &Client, key: Vec<u8>) -> Self {
        KeyGuard {
            client: client.clone(),
            key: Some(key),
        }
    }

    /// The attempt finished: keep the key.
    fn disarm(mut self) {
        self.key = None;
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            spawn_cleanup(&self.client, move |client| async move {
                let _ = client.kv().delete(key).await;
            });
        }
    }
}

/// Waits until every key under `prefix` created at or before `max_create_rev` is deleted
/// (Go's `waitDeletes`): each round reads the newest such key and watches it until it is
/// deleted. Returns the header of the last read.
async fn wait_deletes(
    client: &Client,
    prefix: &[u8],
    max_create_rev: i64,
    options: CallOptions,
) -> Result<ResponseHeader> {
    let kv: KvClient = client.kv();
    loop {
        let resp = kv
            .get(prefix.to_vec())
            .last_create()
            .max_create_revision(max_create_rev)
            .options(prompt(options))
            .await?;
        let Some(last) = resp.kvs().first() else {
            return Ok(*resp.header());
        };
        wait_delete(client, last.key(), resp.header().revision(), options).await?;
    }
}

/// Watches `key` from `rev` until it is deleted.
async fn wait_delete(client: &Client, key: &[u8], rev: i64, options: CallOptions) -> Result<()> {
    let mut watch = client
        .watch(key.to_vec())
        .start_revision(rev)
        .options(prompt(options))
        .await?;
    while let Some(resp) = watch.message().await? {
        if resp.events().iter().any(|e| e.kind() == EventKind::Delete) {
            return Ok(());
        }
    }
    Err(Error::protocol(
        "the watch waiting for a key's deletion ended without it",
    ))
}

/// The options of a prompt request made on behalf of a waiting call: the waiting call's
/// require-leader, the client's default deadline.
fn prompt(options: CallOptions) -> CallOptions {
    let mut o = CallOptions::new();
    if options.requires_leader() {
        o = o.require_leader();
    }
    o
}

/// Runs `fut` under the deadline of a waiting call (none unless it set one).
async fn with_deadline<T>(options: CallOptions, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match options.get_deadline() {
        crate::call::Deadline::After(d) => tokio::time::timeout(d, fut)
            .await
            .map_err(|_| Error::timeout(d))?,
        _ => fut.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_lowercase_hex_without_padding() {
        assert_eq!(owner_key(b"m/", 0x694d77aa9e38260f), b"m/694d77aa9e38260f");
        assert_eq!(owner_key(b"m/", 0x1a), b"m/1a");
        assert_eq!(prefix_of("mutex", b"m".to_vec()).unwrap(), b"m/");
        assert!(
            prefix_of("mutex", Vec::new())
                .unwrap_err()
                .is_invalid_request()
        );
    }
}
