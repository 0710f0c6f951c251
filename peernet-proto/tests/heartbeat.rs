//! Heartbeat with fake Instants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use peernet_proto::heartbeat::{Heartbeat, HeartbeatAction, MAX_OUTSTANDING};

const S: Duration = Duration::from_secs(1);

#[test]
fn ping_schedule() {
    let t0 = Instant::now();
    let mut hb = Heartbeat::new(15 * S, 45 * S, t0);
    assert_eq!(hb.next_deadline(), t0 + 15 * S);
    assert_eq!(hb.poll(t0 + 14 * S), HeartbeatAction::Idle);
    let HeartbeatAction::SendPing(n1) = hb.poll(t0 + 15 * S) else {
        panic!()
    };
    assert_eq!(
        hb.poll(t0 + 15 * S),
        HeartbeatAction::Idle,
        "one ping per interval"
    );
    assert_eq!(hb.next_deadline(), t0 + 30 * S);
    hb.on_pong(n1, t0 + 15 * S + Duration::from_millis(20));
    assert_eq!(hb.rtt(), Some(Duration::from_millis(20)));
    assert_eq!(hb.outstanding(), 0);
    let HeartbeatAction::SendPing(n2) = hb.poll(t0 + 30 * S) else {
        panic!()
    };
    assert_ne!(n1, n2);
    // A late poll does not burst: the next ping is an interval after the poll.
    hb.on_pong(n2, t0 + 31 * S);
    assert!(matches!(
        hb.poll(t0 + 100 * S),
        HeartbeatAction::SendPing(_)
    ));
    assert_eq!(hb.next_deadline(), t0 + 115 * S);
}

#[test]
fn late_pong_for_older_ping_counts_as_life() {
    let t0 = Instant::now();
    let mut hb = Heartbeat::new(15 * S, 45 * S, t0);
    let HeartbeatAction::SendPing(p1) = hb.poll(t0 + 15 * S) else {
        panic!()
    };
    let HeartbeatAction::SendPing(p2) = hb.poll(t0 + 30 * S) else {
        panic!()
    };
    assert_eq!(hb.outstanding(), 2);
    // Deadline is the next ping (45 s) or p1's timeout (60 s): the ping.
    assert_eq!(hb.next_deadline(), t0 + 45 * S);
    hb.on_pong(p1, t0 + 44 * S);
    assert_eq!(hb.rtt(), Some(29 * S));
    assert_eq!(hb.outstanding(), 1);
    let _ = hb.poll(t0 + 45 * S);
    hb.on_pong(p2, t0 + 46 * S); // answers p2; the 45 s ping is newer and stays
    assert_eq!(hb.outstanding(), 1);
    // Unanswered pings at 45, 60, 75 s: the 45 s one times out at 90 s.
    assert!(matches!(hb.poll(t0 + 60 * S), HeartbeatAction::SendPing(_)));
    assert!(matches!(hb.poll(t0 + 75 * S), HeartbeatAction::SendPing(_)));
    assert_eq!(hb.next_deadline(), t0 + 90 * S);
    assert_eq!(hb.poll(t0 + 89 * S), HeartbeatAction::Idle);
    assert_eq!(hb.poll(t0 + 90 * S), HeartbeatAction::Dead);
}

#[test]
fn pong_for_newer_ping_clears_older_ones() {
    let t0 = Instant::now();
    let mut hb = Heartbeat::new(S, 100 * S, t0);
    let mut nonces = vec![];
    for k in 1..=5 {
        let HeartbeatAction::SendPing(n) = hb.poll(t0 + k * S) else {
            panic!()
        };
        nonces.push(n);
    }
    hb.on_pong(nonces[3], t0 + 6 * S);
    assert_eq!(hb.outstanding(), 1);
    assert_eq!(hb.rtt(), Some(2 * S));
    hb.on_pong(nonces[0], t0 + 7 * S); // already cleared: ignored
    hb.on_pong(12345, t0 + 7 * S); // unknown: ignored
    assert_eq!(hb.outstanding(), 1);
    assert_eq!(hb.rtt(), Some(2 * S));
}

#[test]
fn dead_after_timeout() {
    let t0 = Instant::now();
    let mut hb = Heartbeat::new(15 * S, 45 * S, t0);
    assert!(matches!(hb.poll(t0 + 15 * S), HeartbeatAction::SendPing(_)));
    assert!(matches!(hb.poll(t0 + 30 * S), HeartbeatAction::SendPing(_)));
    assert!(matches!(hb.poll(t0 + 45 * S), HeartbeatAction::SendPing(_)));
    assert_eq!(hb.next_deadline(), t0 + 60 * S);
    assert_eq!(hb.poll(t0 + 59 * S), HeartbeatAction::Idle);
    assert_eq!(hb.poll(t0 + 60 * S), HeartbeatAction::Dead);
    assert_eq!(hb.rtt(), None);
}

#[test]
fn outstanding_is_bounded() {
    let t0 = Instant::now();
    let mut hb = Heartbeat::new(Duration::ZERO, 1000 * S, t0);
    let mut sent = 0;
    for k in 0..1000u32 {
        if let HeartbeatAction::SendPing(_) = hb.poll(t0 + Duration::from_millis(k.into())) {
            sent += 1;
        }
    }
    assert_eq!(sent, MAX_OUTSTANDING);
    assert_eq!(hb.outstanding(), MAX_OUTSTANDING);
}

#[test]
fn huge_durations_do_not_panic() {
    let t0 = Instant::now();
    let mut hb = Heartbeat::new(Duration::MAX, Duration::MAX, t0);
    assert_eq!(hb.poll(t0), HeartbeatAction::Idle);
    assert!(hb.next_deadline() > t0);
}
