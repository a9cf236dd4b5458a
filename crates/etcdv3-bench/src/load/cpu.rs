//! CPU time used by this process (all threads), from `getrusage(RUSAGE_SELF)`.

use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike;

/// User and system CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CpuTimes {
    /// Time spent in user mode.
    pub(crate) user: Duration,
    /// Time spent in the kernel on the process's behalf.
    pub(crate) sys: Duration,
}

impl CpuTimes {
    /// The process's CPU time so far; zero if the kernel does not say.
    pub(crate) fn now() -> CpuTimes {
        match getrusage(UsageWho::RUSAGE_SELF) {
            Ok(u) => CpuTimes {
                user: micros(u.user_time().num_microseconds()),
                sys: micros(u.system_time().num_microseconds()),
            },
            Err(_) => CpuTimes::default(),
        }
    }

    /// The CPU time spent since `earlier`.
    pub(crate) fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }

    /// User plus system time.
    pub(crate) fn total(self) -> Duration {
        self.user + self.sys
    }
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = CpuTimes::now();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = CpuTimes::now().since(before);
        assert!(used.total() >= Duration::from_millis(20), "{used:?}");
        assert!(used.total() < Duration::from_secs(5), "{used:?}");
    }
}
