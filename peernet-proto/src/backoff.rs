//! Reconnect backoff: exponential (doubling from `base`, capped at `cap`) with
//! "equal jitter".
//!
//! Attempt `n` (0-based) has the nominal delay `d = min(base * 2^n, cap)`; the delay
//! returned is `d * (0.5 + jitter / 2)` — between half of `d` and `d` — so peers that
//! lost a connection at the same moment do not redial in lockstep, yet the delay still
//! grows. `jitter` is a random number in `[0, 1)` supplied by the caller (values
//! outside `[0, 1]` are clamped; NaN counts as 0). `jitter = 1.0` gives `d` exactly.

use std::time::Duration;

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
        // d <= cap and the factor is in [0.5, 1], so this cannot overflow.
        d.mul_f64(0.5 + j / 2.0)
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
