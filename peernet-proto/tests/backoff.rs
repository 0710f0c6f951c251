//! Reconnect backoff: sequence, cap, jitter, reset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use peernet_proto::backoff::Backoff;

const MS: Duration = Duration::from_millis(1);

#[test]
fn doubling_sequence_and_cap() {
    let mut b = Backoff::default_reconnect();
    let seq: Vec<u128> = (0..10).map(|_| b.next_delay(1.0).as_millis()).collect();
    assert_eq!(
        seq,
        [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]
    );
    assert_eq!(b.attempts(), 10);
    for _ in 0..100 {
        assert_eq!(b.next_delay(1.0), Duration::from_secs(30));
    }
    b.reset();
    assert_eq!(b.attempts(), 0);
    assert_eq!(b.next_delay(1.0), 500 * MS);
}

#[test]
fn jitter_stays_in_half_to_full() {
    let mut b = Backoff::default_reconnect();
    assert_eq!(b.next_delay(0.0), 250 * MS);
    assert_eq!(b.next_delay(0.5), 750 * MS);
    for j in [-5.0, f64::NAN, f64::NEG_INFINITY] {
        let mut b = Backoff::default_reconnect();
        assert_eq!(b.next_delay(j), 250 * MS, "{j}");
    }
    for j in [7.0, f64::INFINITY] {
        let mut b = Backoff::default_reconnect();
        assert_eq!(b.next_delay(j), 500 * MS, "{j}");
    }
    let mut b = Backoff::default_reconnect();
    for k in 0..40 {
        let d = b.next_delay((k as f64 * 0.37) % 1.0);
        assert!(d <= Duration::from_secs(30));
        assert!(d >= 250 * MS);
    }
}

#[test]
fn no_overflow() {
    let mut b = Backoff::new(Duration::MAX, Duration::MAX);
    for _ in 0..100 {
        assert!(b.next_delay(1.0) <= Duration::MAX);
    }
    let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(u64::MAX));
    let mut last = Duration::ZERO;
    for _ in 0..200 {
        let d = b.next_delay(1.0);
        assert!(d >= last);
        last = d;
    }
    assert_eq!(last, Duration::from_secs(u64::MAX));
    let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(30));
    assert_eq!(b.next_delay(1.0), Duration::from_secs(30), "base above cap");
}
