//! What every call shares: its options (deadline, require-leader) and the awaitable per-call
//! builder that every service's methods return.
//!
//! ```no_run
//! # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
//! use std::time::Duration;
//! use etcdv3::Kv;
//!
//! // The same three options on every call of every service.
//! let kv = client.kv();
//! kv.put("job/1", "queued").timeout(Duration::from_millis(500)).await?;
//! kv.get("job/").prefix().require_leader().await?;
//!
//! // Calls own a handle to their service: spawn them.
//! let pending = tokio::spawn(client.kv().put("job/2", "queued").into_future());
//! pending.await.expect("the task ran")?;
//! # Ok(()) }
//! ```

use std::time::Duration;

/// When a call gives up waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Deadline {
    /// The client's default: its request timeout
    /// ([`ClientBuilder::request_timeout`](crate::ClientBuilder::request_timeout) or
    /// [`Client::with_request_timeout`](crate::Client::with_request_timeout)); no deadline for
    /// calls that wait by design (lock, campaign, observe).
    #[default]
    Default,
    /// This long after the call starts, retries included.
    After(Duration),
    /// No deadline: the call waits until it succeeds, fails for good, is cancelled (its future
    /// dropped) or the client is closed. Retries pause with the client's backoff, so a call
    /// waiting for a cluster that is down does not spin.
    Never,
}

/// Options of one call that are not part of the request itself.
///
/// Built like the per-call builders: `CallOptions::new().timeout(d).require_leader()`.
/// [`Kv::execute`](crate::Kv::execute) takes them, so wrappers pass them through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[must_use]
pub struct CallOptions {
    deadline: Deadline,
    require_leader: bool,
}

impl CallOptions {
    /// The defaults: the client's deadline, no leader required.
    pub fn new() -> Self {
        Self::default()
    }

    /// Options with the given timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self::new().timeout(timeout)
    }

    /// Gives up after `timeout` (retries included), instead of the client's request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Deadline::After(timeout);
        self
    }

    /// Waits without a deadline: until the call succeeds, fails for good, is cancelled or the
    /// client is closed.
    pub fn no_deadline(mut self) -> Self {
        self.deadline = Deadline::Never;
        self
    }

    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }

    /// Fails with [`Code::NoLeader`](crate::Code) instead of waiting when the member has no
    /// leader (Go's `WithRequireLeader`).
    pub fn require_leader(mut self) -> Self {
        self.require_leader = true;
        self
    }

    /// The deadline these options set.
    pub fn get_deadline(&self) -> Deadline {
        self.deadline
    }

    /// Whether these options require a leader.
    pub fn requires_leader(&self) -> bool {
        self.require_leader
    }
}

/// A call being built: set its options, then `.await` it (or call `into_future()` to spawn it).
///
/// Every service method returns one: `S` is the service handle (a cheap clone of the client,
/// so the call's future is `Send + 'static`), `R` the request. The options below exist on every
/// call; the request's own options are methods of the `Call<_, R>` for that request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until it is awaited"]
pub struct Call<S, R> {
    pub(crate) service: S,
    pub(crate) request: R,
    pub(crate) options: CallOptions,
}

impl<S, R> Call<S, R> {
    pub(crate) fn new(service: S, request: R) -> Self {
        Call {
            service,
            request,
            options: CallOptions::default(),
        }
    }

    /// Gives up after `timeout` (retries included), instead of the client's request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options = self.options.timeout(timeout);
        self
    }

    /// Waits without a deadline: until the call succeeds, fails for good, is cancelled (the
    /// future dropped) or the client is closed. See [`Deadline::Never`].
    pub fn no_deadline(mut self) -> Self {
        self.options = self.options.no_deadline();
        self
    }

    /// Fails with [`Code::NoLeader`](crate::Code) instead of waiting when the member has no
    /// leader.
    pub fn require_leader(mut self) -> Self {
        self.options = self.options.require_leader();
        self
    }

    /// Replaces all of this call's options.
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// The request as built so far.
    pub fn request(&self) -> &R {
        &self.request
    }

    /// Takes the request out, e.g. to use a KV operation in a transaction.
    pub fn into_request(self) -> R {
        self.request
    }

    /// Changes the request.
    pub(crate) fn map(mut self, f: impl FnOnce(R) -> R) -> Self {
        self.request = f(self.request);
        self
    }
}

/// Makes `Call<Service, Request>` awaitable for each listed request: `.await` runs
/// `service.method(request, options)`, an `async fn(self, Request, CallOptions) -> Result<Response>`
/// of the service handle, boxed so the call's future is `Send + 'static`.
macro_rules! call_futures {
    ($service:ty { $($request:ty => $response:ty: $method:ident),* $(,)? }) => {$(
        impl ::std::future::IntoFuture for $crate::call::Call<$service, $request> {
            type Output = $crate::Result<$response>;
            type IntoFuture =
                ::futures_util::future::BoxFuture<'static, $crate::Result<$response>>;

            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.service.$method(self.request, self.options))
            }
        }
    )*};
}
pub(crate) use call_futures;
