//! What went wrong, in the client's terms: gRPC statuses and transport failures become
//! [`Error`]s that keep their cause, with advice drawn from the typed cause (an
//! [`std::io::ErrorKind`], a rustls error), never from the words of a message.

use std::error::Error as StdError;
use std::io;

use crate::error::{Code, Error, ErrorKind, GrpcCode};

/// The message etcd's gRPC layer sends when a request is over its receive limit, which etcd
/// sets to `--max-request-bytes` + 512 KiB: it refuses the request before etcd's own size check.
const GRPC_TOO_LARGE: &str = "grpc: received message larger than max";

/// Turns a gRPC status (code and message) from the server into an [`Error`].
pub(crate) fn from_status(grpc: GrpcCode, message: &str) -> Error {
    if let Some(code) = Code::from_message(message) {
        return Error::server(Some(code), grpc, message);
    }
    if grpc == GrpcCode::ResourceExhausted && message.starts_with(GRPC_TOO_LARGE) {
        return Error::server(
            Some(Code::RequestTooLarge),
            grpc,
            format!(
                "{message}: the request is over what the server accepts (its \
                 --max-request-bytes plus 512 KiB); nothing was applied"
            ),
        );
    }
    let message = if message.is_empty() {
        format!("etcd returned gRPC status {grpc:?}")
    } else {
        message.to_owned()
    };
    Error::server(None, grpc, message)
}

/// The connection broke after the request was written: it may have been processed.
pub(crate) fn lost(e: h2::Error) -> Error {
    if e.reason() == Some(h2::Reason::REFUSED_STREAM) {
        // The server refused the stream before processing it (RFC 9113 §8.7).
        return Error::new(
            ErrorKind::Connect,
            format!("the server refused the request: {}", describe(&e)),
        )
        .with_source(e);
    }
    Error::new(
        ErrorKind::Unavailable,
        format!("connection lost: {}", describe(&e)),
    )
    .with_source(e)
    .sent()
}

/// A dial step failed: nothing was sent. Keeps `cause` as the error's source.
pub(crate) fn connect_failed<E>(what: &str, cause: E) -> Error
where
    E: StdError + Send + Sync + 'static,
{
    Error::new(ErrorKind::Connect, format!("{what}: {}", describe(&cause))).with_source(cause)
}

/// Joins an error and its causes into one line, dropping repeated parts, and adds advice for
/// causes that have some.
pub(crate) fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(err) {
        let s = e.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) && s != "transport error" {
            parts.push(s);
        }
    }
    let mut text = parts.join(": ");
    if text.is_empty() {
        text = "unknown error".into();
    }
    if let Some(h) = chain(err).find_map(hint) {
        text.push_str(" (");
        text.push_str(h);
        text.push(')');
    }
    text
}

/// Advice for one typed cause.
fn hint(e: &(dyn StdError + 'static)) -> Option<&'static str> {
    if let Some(io) = e.downcast_ref::<io::Error>() {
        return match io.kind() {
            io::ErrorKind::ConnectionRefused => Some("nothing listens there; is etcd running?"),
            io::ErrorKind::NotFound => Some("no such socket; is etcd running?"),
            _ => None,
        };
    }
    super::tls::hint(e)
}

/// `err` and its causes. An `io::Error` wrapping another error hides it from `source()` (it
/// returns the wrapped error's own source), so the wrapped error is visited too.
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next: Option<&'a (dyn StdError + 'static)> = Some(err);
    let mut wrapped: Option<&'a (dyn StdError + 'static)> = None;
    std::iter::from_fn(move || {
        if let Some(w) = wrapped.take() {
            next = w.source();
            return Some(w);
        }
        let e = next?;
        match e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => wrapped = Some(inner as &(dyn StdError + 'static)),
            None => next = e.source(),
        }
        Some(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_errors_decode_by_message() {
        let e = from_status(GrpcCode::OutOfRange, Code::Compacted.message());
        assert!(e.is_compacted());
        assert_eq!(e.kind(), ErrorKind::Server);
        assert!(!e.may_have_been_applied());
    }

    #[test]
    fn the_grpc_size_cap_is_a_request_too_large() {
        let e = from_status(
            GrpcCode::ResourceExhausted,
            "grpc: received message larger than max (2621458 vs. 2097152)",
        );
        assert!(e.is_request_too_large(), "{e:?}");
        assert!(e.to_string().contains("--max-request-bytes"), "{e}");
        assert!(!e.may_have_been_applied());
    }

    #[test]
    fn server_deadlines_are_timeouts() {
        for msg in [
            "context deadline exceeded",
            Code::DeadlineExceeded.message(),
        ] {
            let e = from_status(GrpcCode::DeadlineExceeded, msg);
            assert_eq!(e.kind(), ErrorKind::Timeout, "{msg}");
            assert!(e.is_timeout() && e.may_have_been_applied(), "{msg}");
        }
    }

    #[test]
    fn refused_streams_were_never_processed() {
        let refused = lost(h2::Error::from(h2::Reason::REFUSED_STREAM));
        assert_eq!(refused.kind(), ErrorKind::Connect);
        assert!(!refused.may_have_been_applied());
        let cancelled = lost(h2::Error::from(h2::Reason::CANCEL));
        assert_eq!(cancelled.kind(), ErrorKind::Unavailable);
        assert!(cancelled.may_have_been_applied());
        let source = StdError::source(&cancelled).expect("keeps its cause");
        assert!(source.downcast_ref::<h2::Error>().is_some());
    }

    #[test]
    fn hints_come_from_typed_causes() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let e = connect_failed("tcp connect", refused);
        assert!(e.to_string().contains("is etcd running"), "{e}");
        let io = StdError::source(&e)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .expect("the io::Error is the source");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
        // The same words in a message give no hint: only the type counts.
        let words = io::Error::other("connection refused");
        assert!(!describe(&words).contains("is etcd running"));
    }

    #[test]
    fn wrapped_io_errors_are_walked() {
        #[derive(Debug)]
        struct Inner;
        impl std::fmt::Display for Inner {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("inner cause")
            }
        }
        impl StdError for Inner {}
        let outer = io::Error::new(io::ErrorKind::InvalidData, Inner);
        let seen: Vec<String> = chain(&outer).map(|e| e.to_string()).collect();
        assert_eq!(seen, ["inner cause", "inner cause"]);
        assert!(chain(&outer).any(|e| e.downcast_ref::<Inner>().is_some()));
    }
}
