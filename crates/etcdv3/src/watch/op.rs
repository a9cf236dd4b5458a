//! The watch request and its options.

use std::time::Duration;

use etcdv3_proto::etcdserverpb as pb;

use crate::error::{Error, Result};
use crate::kv::KeyRange;

/// How many responses a watch holds for its reader by default.
pub const DEFAULT_WATCH_BUFFER: usize = 1024;

/// A watch request: which keys, from which revision, and how. Built through
/// [`Client::watch`](crate::Client::watch); every setter is also a method of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOp {
    pub(crate) keys: KeyRange,
    pub(crate) start_revision: i64,
    pub(crate) prev_kv: bool,
    pub(crate) no_put: bool,
    pub(crate) no_delete: bool,
    pub(crate) progress_notify: bool,
    pub(crate) fragment: bool,
    pub(crate) created_notify: bool,
    pub(crate) buffer: usize,
    pub(crate) resync_on_compaction: bool,
    pub(crate) stall_timeout: Option<Duration>,
}

impl WatchOp {
    /// A watch of `keys` from now on, with every option off.
    pub fn new(keys: impl Into<KeyRange>) -> Self {
        WatchOp {
            keys: keys.into(),
            start_revision: 0,
            prev_kv: false,
            no_put: false,
            no_delete: false,
            progress_notify: false,
            fragment: false,
            created_notify: false,
            buffer: DEFAULT_WATCH_BUFFER,
            resync_on_compaction: false,
            stall_timeout: None,
        }
    }

    /// The keys watched.
    pub fn keys(&self) -> &KeyRange {
        &self.keys
    }

    /// Watches every key that starts with the given key.
    pub fn prefix(mut self) -> Self {
        self.keys = self.keys.into_prefix();
        self
    }

    /// Watches every key from the given key to the end of the keyspace.
    pub fn from_key(mut self) -> Self {
        self.keys = self.keys.into_from_key();
        self
    }

    /// Watches the keys in `[key, end)`.
    pub fn range_end(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.keys = self.keys.with_end(end);
        self
    }

    /// Delivers every change from `revision` on (inclusive), the past ones first. `0` (the
    /// default) means from now on. A revision in the future is valid: the watch waits for
    /// it. One already compacted ends the watch with
    /// [`Code::Compacted`](crate::Code::Compacted).
    pub fn start_revision(mut self, revision: i64) -> Self {
        self.start_revision = revision;
        self
    }

    /// Fills [`Event::prev_kv`](crate::Event::prev_kv) with the key before each change.
    pub fn prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }

    /// Leaves out put events (etcd filters them).
    pub fn no_put(mut self) -> Self {
        self.no_put = true;
        self
    }

    /// Leaves out delete events (etcd filters them).
    pub fn no_delete(mut self) -> Self {
        self.no_delete = true;
        self
    }

    /// Asks etcd for a progress notification ([`WatchResponse::is_progress_notify`]) whenever
    /// the watch has had no event for etcd's `--watch-progress-notify-interval` (10 min by
    /// default).
    ///
    /// [`WatchResponse::is_progress_notify`]: crate::WatchResponse::is_progress_notify
    pub fn progress_notify(mut self) -> Self {
        self.progress_notify = true;
        self
    }

    /// Lets etcd split a revision whose events are larger than its request limit into several
    /// messages; the client joins them, so you still get one response per revision. Needed
    /// when huge transactions would exceed the client's receive limit.
    pub fn fragment(mut self) -> Self {
        self.fragment = true;
        self
    }

    /// Delivers etcd's creation notice ([`WatchResponse::is_created`]) as the first response.
    ///
    /// [`WatchResponse::is_created`]: crate::WatchResponse::is_created
    pub fn created_notify(mut self) -> Self {
        self.created_notify = true;
        self
    }

    /// How many responses the watch holds while you do not read them (default 1,024, at least
    /// 1). When a response arrives and the buffer is full, the watch ends with
    /// [`ErrorKind::Lagged`](crate::ErrorKind::Lagged) after the responses it holds; the
    /// error's [`resume_revision`](crate::Error::resume_revision) is where to start a new
    /// watch without missing anything. Other watches and calls are not slowed down.
    pub fn buffer(mut self, responses: usize) -> Self {
        self.buffer = responses;
        self
    }

    /// When a compaction took away revisions the watch had not delivered, reads the current
    /// state of the range instead of ending: it is delivered as one response with
    /// [`is_resync`](crate::WatchResponse::is_resync) set, and the watch goes on from the
    /// revision of that read. Without it the watch ends with
    /// [`Code::Compacted`](crate::Code::Compacted).
    pub fn resync_on_compaction(mut self) -> Self {
        self.resync_on_compaction = true;
        self
    }

    /// Detects a stream that went silent (a frozen member, a half-open connection): when
    /// nothing arrived for `timeout`, the client asks etcd for progress; when that is not
    /// answered within `timeout` either, the stream counts as broken and every watch on it
    /// resumes on another member. Off by default (the connection's keep-alive pings are the
    /// slower net). Watches sharing a stream share the shortest timeout.
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = Some(timeout);
        self
    }

    /// Checks the request before anything is sent.
    pub(crate) fn validate(&self) -> Result<()> {
        let key = self.keys.start();
        if key.is_empty() {
            return Err(Error::invalid(
                "watch: key must not be empty (use KeyRange::all() to watch every key)",
            ));
        }
        let end = self.keys.range_end();
        if !end.is_empty() && end != b"\0" && end <= key {
            return Err(Error::invalid(format!(
                "watch: range end {:?} must be after the key {:?}",
                String::from_utf8_lossy(end),
                String::from_utf8_lossy(key)
            )));
        }
        if self.start_revision < 0 {
            return Err(Error::invalid(format!(
                "watch: start revision must not be negative (got {})",
                self.start_revision
            )));
        }
        if self.buffer == 0 {
            return Err(Error::invalid(
                "watch: the buffer must hold at least 1 response",
            ));
        }
        if self.stall_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::invalid(
                "watch: the stall timeout must be above zero",
            ));
        }
        Ok(())
    }

    /// The create request, starting at `start_revision`.
    pub(crate) fn create_request(&self, start_revision: i64) -> pb::WatchRequest {
        let mut filters = Vec::new();
        if self.no_put {
            filters.push(pb::watch_create_request::FilterType::Noput as i32);
        }
        if self.no_delete {
            filters.push(pb::watch_create_request::FilterType::Nodelete as i32);
        }
        pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key: self.keys.start().to_vec(),
                    range_end: self.keys.range_end().to_vec(),
                    start_revision,
                    progress_notify: self.progress_notify,
                    filters,
                    prev_kv: self.prev_kv,
                    watch_id: 0,
                    fragment: self.fragment,
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn invalid(op: &WatchOp) -> String {
        let err = op.validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        err.to_string()
    }

    #[test]
    fn bad_requests_are_refused_before_sending() {
        assert!(invalid(&WatchOp::new("")).contains("KeyRange::all"));
        assert!(invalid(&WatchOp::new("b").range_end("a")).contains("after the key"));
        assert!(invalid(&WatchOp::new("b").range_end("b")).contains("after the key"));
        assert!(invalid(&WatchOp::new("k").start_revision(-1)).contains("negative"));
        assert!(invalid(&WatchOp::new("k").buffer(0)).contains("at least 1"));
        assert!(invalid(&WatchOp::new("k").stall_timeout(Duration::ZERO)).contains("above zero"));
    }

    #[test]
    fn good_requests_pass() {
        for op in [
            WatchOp::new("k"),
            WatchOp::new(KeyRange::all()),
            WatchOp::new("a").range_end("b"),
            WatchOp::new("a").from_key(),
            WatchOp::new("a").prefix(),
            WatchOp::new("k").start_revision(1 << 40),
        ] {
            op.validate().unwrap();
        }
    }

    #[test]
    fn the_create_request_carries_every_option() {
        let op = WatchOp::new("a")
            .prefix()
            .prev_kv()
            .no_put()
            .no_delete()
            .progress_notify()
            .fragment();
        let pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(c)),
        } = op.create_request(9)
        else {
            panic!("a create request")
        };
        assert_eq!(c.key, b"a");
        assert_eq!(c.range_end, b"b");
        assert_eq!(c.start_revision, 9);
        assert!(c.prev_kv && c.progress_notify && c.fragment);
        assert_eq!(c.filters, [0, 1]);
        assert_eq!(c.watch_id, 0);
    }
}
