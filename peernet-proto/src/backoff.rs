//! Reconnect backoff: exponential (doubling from `base`, capped at `cap`) with
//! "equal jitter".
//!
//! Attempt `n` (0-based) has the nominal delay `d = min(base * 2^n, cap)`; the delay
//! returned is `d * (0.5 + jitter / 2)` — between half of `d` and `d` — so peers that
//! lost a connection at the same moment do not redial in lockstep, yet the delay still
//! grows. `jitter` is a random number in `[0, 1)` supplied by the caller (values
//! outside `[0, 1]` are clamped; NaN counts as 0). `jitter = 1.0` gives `d` exactly.

use std::time::Duration;

/// `d * (0.5 + j / 2)` for `j` in `[0, 1]`, in integer nanoseconds (no float
/// `Duration` arithmetic, which panics near `Duration::MAX`). The result is in `[d/2, d]`.
fn scale(d: Duration, j: f64) -> Duration {
    let nanos = d.as_nanos();
    let upper = nanos - nanos / 2;
    // `as` from f64 saturates and maps NaN to 0; j is already in [0, 1].
    let extra = ((upper as f64) * j) as u128;
    let total = nanos / 2 + extra.min(upper);
    let secs = u64::try_from(total / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

/// Exponential reconnect delays.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempts: u32,
}

impl Backoff {
    /// Delays doubling from `base` up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            attempts: 0,
        }
    }

    /// The reconnect default: 0.5 s doubling to a 30 s cap.
    pub fn default_reconnect() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }

    /// The nominal (un-jittered) delay of the next attempt.
    fn nominal(&self) -> Duration {
        let factor = 2u32.checked_pow(self.attempts);
        let d = factor
            .and_then(|f| self.base.checked_mul(f))
            .unwrap_or(self.cap);
        d.min(self.cap)
    }

    /// The delay before the next attempt (see the module docs for the formula); counts
    /// the attempt. Never overflows or panics.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let j = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        let d = self.nominal();
        self.attempts = self.attempts.saturating_add(1);
        scale(d, j)
    }

    /// Back to the first delay (after a successful connection).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// Attempts counted since creation or the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}
