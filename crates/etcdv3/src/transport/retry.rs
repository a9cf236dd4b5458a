//! The retry policy: which failures may be retried for which RPCs, and how long to wait.
//!
//! The rule that matters most: a request that may have reached the server is retried only if
//! running it twice is harmless (a read). Writes are retried only when the failure proves they
//! were never sent (the connection could not be made) or never applied (the server rejected
//! them before processing: learner rejections, stale auth tokens).

use super::rpc::RetryClass;
use crate::error::{Code, Error, ErrorKind, GrpcCode};

/// What the retry loop does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Give the error to the caller.
    Fail,
    /// Try again; `endpoint_down` says the endpoint should be avoided for a while.
    Retry { endpoint_down: bool },
    /// Fetch a new auth token, then try again.
    RefreshToken,
}

/// Decides what to do after attempt `attempt` (0-based) failed with `err`.
pub(crate) fn decide(
    class: RetryClass,
    err: &Error,
    endpoints: usize,
    has_credentials: bool,
) -> Decision {
    match err.kind() {
        ErrorKind::Connect => {
            return Decision::Retry {
                endpoint_down: true,
            };
        }
        ErrorKind::Unavailable => {
            return match class {
                RetryClass::Repeatable => Decision::Retry {
                    endpoint_down: true,
                },
                RetryClass::AtMostOnce => Decision::Fail,
            };
        }
        // The server's own deadline passed (not the caller's: the loop checks that first).
        ErrorKind::Timeout if err.grpc_code().is_some() => {
            return match class {
                RetryClass::Repeatable => Decision::Retry {
                    endpoint_down: false,
                },
                RetryClass::AtMostOnce => Decision::Fail,
            };
        }
        ErrorKind::Server => {}
        _ => return Decision::Fail,
    }
    match err.code() {
        Some(Code::NotSupportedForLearner) if endpoints > 1 => {
            return Decision::Retry {
                endpoint_down: true,
            };
        }
        Some(Code::InvalidAuthToken | Code::AuthOldRevision) if has_credentials => {
            return Decision::RefreshToken;
        }
        Some(Code::UserEmpty) if has_credentials => return Decision::RefreshToken,
        _ => {}
    }
    if class == RetryClass::AtMostOnce {
        return Decision::Fail;
    }
    match err.grpc_code() {
        // Known etcd errors that are not about availability (compacted, not found ...) are final.
        Some(GrpcCode::Unavailable) => Decision::Retry {
            endpoint_down: true,
        },
        Some(GrpcCode::DeadlineExceeded | GrpcCode::Canceled)
            if err
                .code()
                .is_none_or(|c| matches!(c, Code::Canceled | Code::DeadlineExceeded)) =>
        {
            Decision::Retry {
                endpoint_down: false,
            }
        }
        _ => Decision::Fail,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Backoff;
    use crate::transport::rpc::Rpc;

    fn server(code: Code) -> Error {
        Error::server(Some(code), code.grpc_code(), code.message())
    }

    fn raw(grpc: GrpcCode) -> Error {
        Error::server(None, grpc, "raw status")
    }

    const WRITES: [Rpc; 5] = [
        Rpc::Put,
        Rpc::DeleteRange,
        Rpc::Txn,
        Rpc::Compact,
        Rpc::Defragment,
    ];

    #[test]
    fn connect_failures_retry_everything() {
        let e = Error::new(ErrorKind::Connect, "connection refused");
        for rpc in WRITES.into_iter().chain([Rpc::Range]) {
            assert_eq!(
                decide(rpc.class(), &e, 3, false),
                Decision::Retry {
                    endpoint_down: true
                }
            );
        }
    }

    #[test]
    fn lost_connections_retry_only_reads() {
        let e = Error::new(ErrorKind::Unavailable, "connection reset");
        assert_eq!(
            decide(RetryClass::Repeatable, &e, 1, false),
            Decision::Retry {
                endpoint_down: true
            }
        );
        for w in WRITES {
            assert_eq!(decide(w.class(), &e, 3, false), Decision::Fail, "{w:?}");
        }
    }

    #[test]
    fn server_unavailable_codes_retry_only_reads() {
        for code in [
            Code::NoLeader,
            Code::Timeout,
            Code::Stopped,
            Code::LeaderChanged,
            Code::Unhealthy,
        ] {
            let e = server(code);
            assert_eq!(
                decide(RetryClass::Repeatable, &e, 3, false),
                Decision::Retry {
                    endpoint_down: true
                },
                "{code:?}"
            );
            assert_eq!(
                decide(RetryClass::AtMostOnce, &e, 3, false),
                Decision::Fail,
                "{code:?}"
            );
        }
        assert_eq!(
            decide(
                RetryClass::Repeatable,
                &raw(GrpcCode::Unavailable),
                1,
                false
            ),
            Decision::Retry {
                endpoint_down: true
            }
        );
    }

    #[test]
    fn final_errors_are_never_retried() {
        for code in [
            Code::Compacted,
            Code::FutureRev,
            Code::EmptyKey,
            Code::KeyNotFound,
            Code::PermissionDenied,
            Code::RequestTooLarge,
            Code::NoSpace,
            Code::DuplicateKey,
            Code::TooManyOps,
        ] {
            for class in [RetryClass::Repeatable, RetryClass::AtMostOnce] {
                assert_eq!(
                    decide(class, &server(code), 3, true),
                    Decision::Fail,
                    "{code:?}"
                );
            }
        }
        for e in [
            Error::invalid("bad"),
            Error::timeout(Duration::from_secs(1)),
            Error::closed(),
            Error::request_too_large(10, 5),
        ] {
            assert_eq!(decide(RetryClass::Repeatable, &e, 3, true), Decision::Fail);
        }
    }

    #[test]
    fn learner_rejection_moves_to_another_endpoint() {
        let e = server(Code::NotSupportedForLearner);
        assert_eq!(
            decide(RetryClass::AtMostOnce, &e, 2, false),
            Decision::Retry {
                endpoint_down: true
            }
        );
        assert_eq!(decide(RetryClass::AtMostOnce, &e, 1, false), Decision::Fail);
    }

    #[test]
    fn stale_tokens_refresh_when_credentials_exist() {
        for code in [
            Code::InvalidAuthToken,
            Code::AuthOldRevision,
            Code::UserEmpty,
        ] {
            assert_eq!(
                decide(RetryClass::AtMostOnce, &server(code), 1, true),
                Decision::RefreshToken
            );
            assert_eq!(
                decide(RetryClass::AtMostOnce, &server(code), 1, false),
                Decision::Fail
            );
        }
    }

    #[test]
    fn server_side_deadlines_retry_reads_only() {
        let e = server(Code::DeadlineExceeded);
        assert_eq!(
            decide(RetryClass::Repeatable, &e, 1, false),
            Decision::Retry {
                endpoint_down: false
            }
        );
        assert_eq!(decide(RetryClass::AtMostOnce, &e, 1, false), Decision::Fail);
    }

    #[test]
    fn backoff_pauses_once_per_quorum_round_and_grows() {
        let b = Backoff::default();
        // 3 endpoints: quorum 2, so attempts 1, 3, 5 go straight to the next endpoint.
        assert_eq!(b.delay_with(1, 3, 0.5), Duration::ZERO);
        assert_eq!(b.delay_with(2, 3, 0.5), Duration::from_millis(25));
        assert_eq!(b.delay_with(3, 3, 0.5), Duration::ZERO);
        assert_eq!(b.delay_with(4, 3, 0.5), Duration::from_millis(50));
        assert_eq!(b.delay_with(6, 3, 0.5), Duration::from_millis(100));
        assert_eq!(b.delay_with(200, 3, 0.5), Duration::from_millis(500));
        // 1 endpoint: every retry pauses.
        assert_eq!(b.delay_with(1, 1, 0.5), Duration::from_millis(25));
        assert_eq!(b.delay_with(2, 1, 0.5), Duration::from_millis(50));
    }

    #[test]
    fn backoff_jitter_stays_within_bounds() {
        let b = Backoff::default();
        let lo = b.delay_with(1, 1, 0.0);
        let hi = b.delay_with(1, 1, 0.999_999);
        assert!((lo.as_secs_f64() - 0.0225).abs() < 1e-9, "{lo:?}");
        assert!(
            hi < Duration::from_micros(27_501) && hi > Duration::from_micros(27_499),
            "{hi:?}"
        );
        for _ in 0..1000 {
            let d = b.delay(1, 1);
            assert!(d >= lo && d <= hi, "{d:?}");
        }
    }
}
