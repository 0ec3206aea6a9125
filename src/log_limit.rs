//! Rate-limited logging for warnings that an outside event can repeat at
//! will: a refused client, a failed `accept`, a WAL commit that fails for
//! every write while the disk is full.
//!
//! The first event is logged at once; later ones within the interval are
//! only counted, and the next line that gets through carries that count as
//! `suppressed=N`. A flood of 100 000 refused connections therefore costs a
//! line every few seconds instead of 100 000 lines, and nothing is hidden:
//! every event is still counted (here and in `INFO`/`STATS` counters).
//!
//! A limiter is two atomics, so it can be a `static` next to the log line it
//! guards and be shared by every thread without a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often a repeated warning may be logged by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Lets one event through per interval and counts the rest.
#[derive(Debug)]
pub struct LogLimiter {
    interval_ms: u64,
    /// Monotonic milliseconds (see [`monotonic_ms`]) before which events are
    /// only counted. Zero lets the very first event through.
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    /// A limiter letting one line through per `interval`.
    pub const fn new(interval: Duration) -> LogLimiter {
        LogLimiter {
            interval_ms: interval.as_millis() as u64,
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Call once per event. `Some(n)` means log it now, mentioning the `n`
    /// events suppressed since the last line; `None` means stay quiet (the
    /// event is counted for the next line).
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(monotonic_ms())
    }

    fn allow_at(&self, now_ms: u64) -> Option<u64> {
        let next = self.next_ms.load(Ordering::Relaxed);
        if now_ms >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now_ms + self.interval_ms,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// Milliseconds since the first call, never zero (so a limiter's initial
/// `next_ms = 0` always lets the first event through).
fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// `tracing::warn!` through a [`LogLimiter`]: logs with a `suppressed` field
/// counting the events hidden since the previous line.
#[macro_export]
macro_rules! warn_limited {
    ($limiter:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limiter.allow() {
            tracing::warn!(suppressed, $($arg)+);
        }
    };
}

/// `tracing::error!` through a [`LogLimiter`], as [`warn_limited!`].
#[macro_export]
macro_rules! error_limited {
    ($limiter:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limiter.allow() {
            tracing::error!(suppressed, $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_is_logged_and_the_next_line_counts_the_ones_in_between() {
        let limiter = LogLimiter::new(Duration::from_secs(5));
        assert_eq!(limiter.allow_at(1), Some(0));
        for ms in 2..1000 {
            assert_eq!(limiter.allow_at(ms), None);
        }
        assert_eq!(limiter.allow_at(5_000), None);
        assert_eq!(limiter.allow_at(5_001), Some(999));
        assert_eq!(limiter.allow_at(5_002), None);
        assert_eq!(limiter.allow_at(20_000), Some(1));
    }

    #[test]
    fn a_flood_from_many_threads_lets_one_line_through_per_interval() {
        let limiter = std::sync::Arc::new(LogLimiter::new(Duration::from_secs(3600)));
        let logged: u64 = (0..4)
            .map(|_| {
                let limiter = std::sync::Arc::clone(&limiter);
                std::thread::spawn(move || (0..10_000).filter(|_| limiter.allow().is_some()).count() as u64)
            })
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(logged, 1);
        assert_eq!(limiter.suppressed.load(Ordering::Relaxed), 39_999);
    }
}
