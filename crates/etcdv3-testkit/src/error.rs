//! The testkit's error type.

use std::error::Error as StdError;
use std::fmt;

/// What kind of failure an [`Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The builder's settings are invalid (e.g. zero members).
    InvalidConfig,
    /// The etcd binary could not be found, run, or its `--version` output was not understood.
    Binary,
    /// A filesystem operation (temp dir, log file, certificate file) failed.
    Io,
    /// Generating TLS certificates or building the client TLS configuration failed.
    Tls,
    /// A member process exited on its own (while starting, or while it should be running).
    MemberExited,
    /// A member could not bind its ports because they were taken by someone else.
    PortInUse,
    /// Waiting for a condition (ports listening, members answering) took too long.
    Timeout,
    /// A request the testkit made to a member failed: a gRPC call (auth setup, status) or
    /// the HTTP `GET /metrics` (refused, not 200, or not understood).
    Rpc,
    /// No running member claims to be the leader.
    NoLeader,
    /// The member index is out of range.
    NoSuchMember,
    /// The operation needs a running member, but it is stopped or killed.
    NotRunning,
    /// The operation needs a stopped member, but it is running.
    AlreadyRunning,
    /// Sending a signal to a member failed.
    Signal,
}

/// An error from the testkit: what failed, for which member, and (when a member died or
/// did not become ready) the tail of that member's log.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    member: Option<usize>,
    message: String,
    log_tails: Vec<(String, String)>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                member: None,
                message: message.into(),
                log_tails: Vec::new(),
                source: None,
            }),
        }
    }

    pub(crate) fn member(mut self, i: usize) -> Self {
        self.inner.member = Some(i);
        self
    }

    pub(crate) fn source(
        mut self,
        e: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        self.inner.source = Some(e.into());
        self
    }

    pub(crate) fn log_tail(mut self, name: impl Into<String>, tail: String) -> Self {
        self.inner.log_tails.push((name.into(), tail));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The index of the member the failure is about, when it is about one member.
    pub fn member_index(&self) -> Option<usize> {
        self.inner.member
    }

    /// True when a member process exited on its own.
    pub fn is_member_exited(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::MemberExited | ErrorKind::PortInUse
        )
    }

    /// True when waiting for a condition took too long.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.inner.member {
            write!(f, "etcd member m{i}: ")?;
        } else {
            f.write_str("etcd testkit: ")?;
        }
        f.write_str(&self.inner.message)?;
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        for (name, tail) in &self.inner.log_tails {
            write!(f, "\n----- last lines of {name} -----\n{tail}")?;
            if !tail.ends_with('\n') {
                f.write_str("\n")?;
            }
            write!(f, "----- end of {name} -----")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}): {}", self.inner.kind, self)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
