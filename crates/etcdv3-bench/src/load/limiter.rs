//! `--rate`: a token bucket with a burst of one, shared by all workers.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces requests `1 / rate` seconds apart over all workers; a rate of 0 means no limit.
///
/// Slots are handed out on an absolute schedule, so timer granularity only adds jitter, never
/// a lower average rate. A worker that comes late gets the current time as its slot, so idle
/// periods do not build up credit (burst 1, as Go's `rate.NewLimiter(r, 1)`).
#[derive(Debug)]
pub(crate) struct Limiter {
    interval: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl Limiter {
    /// A limiter for `rate` requests per second (0 or less: unlimited).
    pub(crate) fn new(rate: f64) -> Limiter {
        let interval = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
        Limiter {
            interval,
            next: Mutex::new(None),
        }
    }

    /// Waits for this worker's next slot.
    pub(crate) async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            reserve(&mut next, Instant::now(), interval)
        };
        tokio::time::sleep_until(at).await;
    }
}

/// Takes the next slot: the later of `now` and the scheduled one; the one after it is
/// `interval` later.
fn reserve(next: &mut Option<Instant>, now: Instant, interval: Duration) -> Instant {
    let at = match *next {
        Some(n) if n > now => n,
        _ => now,
    };
    *next = Some(at + interval);
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_interval() {
        let t0 = Instant::now();
        let iv = Duration::from_millis(10);
        let mut next = None;
        assert_eq!(reserve(&mut next, t0, iv), t0);
        // Three callers at the same instant get consecutive slots.
        assert_eq!(reserve(&mut next, t0, iv), t0 + iv);
        assert_eq!(reserve(&mut next, t0, iv), t0 + 2 * iv);
        // After an idle second no credit has built up: one slot now, the next one later.
        let late = t0 + Duration::from_secs(1);
        assert_eq!(reserve(&mut next, late, iv), late);
        assert_eq!(reserve(&mut next, late, iv), late + iv);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limits_throughput() {
        let lim = Limiter::new(100.0);
        let start = Instant::now();
        for _ in 0..51 {
            lim.wait().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(500), "{took:?}");
        assert!(took < Duration::from_millis(520), "{took:?}");
        // Unlimited returns at once.
        let free = Limiter::new(0.0);
        let start = Instant::now();
        free.wait().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
