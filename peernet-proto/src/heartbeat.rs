//! Application-level heartbeat (spec 5), sans-IO: time comes in as arguments.
//!
//! Every `interval` a Ping is due; if the oldest unanswered Ping is `timeout` old the
//! connection is dead. A Pong answers its Ping and every older one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most this many unanswered pings are tracked; while the window is full no new
/// ping is sent (the oldest one decides liveness anyway).
pub const MAX_OUTSTANDING: usize = 64;

/// What the connection should do after [`Heartbeat::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatAction {
    /// Nothing to do until [`Heartbeat::next_deadline`].
    Idle,
    /// Send a Ping with this nonce.
    SendPing(u64),
    /// No Pong within the timeout: close the connection.
    Dead,
}

/// Ping schedule and liveness of one connection.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    /// Unanswered pings, oldest first: (nonce, sent at).
    outstanding: VecDeque<(u64, Instant)>,
    next_nonce: u64,
    rtt: Option<Duration>,
}

/// `t + d`, or the latest representable instant not after it (never panics).
fn add(t: Instant, mut d: Duration) -> Instant {
    loop {
        if let Some(x) = t.checked_add(d) {
            return x;
        }
        d /= 2;
    }
}

impl Heartbeat {
    /// A heartbeat whose first ping is due at `now + interval`.
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Heartbeat {
        Heartbeat {
            interval,
            timeout,
            next_ping: add(now, interval),
            outstanding: VecDeque::new(),
            next_nonce: 1,
            rtt: None,
        }
    }

    /// Call whenever `now >= next_deadline()`: [`HeartbeatAction::Dead`] if the oldest
    /// unanswered ping is `timeout` old, else [`HeartbeatAction::SendPing`] when a ping
    /// is due (it is recorded as outstanding and the next one scheduled `interval`
    /// after `now`), else [`HeartbeatAction::Idle`].
    pub fn poll(&mut self, now: Instant) -> HeartbeatAction {
        if let Some(&(_, sent)) = self.outstanding.front() {
            if now.saturating_duration_since(sent) >= self.timeout {
                return HeartbeatAction::Dead;
            }
        }
        if now < self.next_ping {
            return HeartbeatAction::Idle;
        }
        self.next_ping = add(now, self.interval);
        match self.ping_now(now) {
            Some(nonce) => HeartbeatAction::SendPing(nonce),
            None => HeartbeatAction::Idle,
        }
    }

    /// A ping asked for now, outside the schedule (the schedule is unchanged): its
    /// nonce, recorded as outstanding, or `None` while [`MAX_OUTSTANDING`] pings are
    /// unanswered.
    pub fn ping_now(&mut self, now: Instant) -> Option<u64> {
        if self.outstanding.len() >= MAX_OUTSTANDING {
            return None;
        }
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        self.outstanding.push_back((nonce, now));
        Some(nonce)
    }

    /// When [`Heartbeat::poll`] next has something to do: the next ping, or the
    /// timeout of the oldest unanswered one, whichever is first.
    pub fn next_deadline(&self) -> Instant {
        match self.outstanding.front() {
            Some(&(_, sent)) => self.next_ping.min(add(sent, self.timeout)),
            None => self.next_ping,
        }
    }

    /// A Pong arrived: removes that ping and every older one (a late Pong still counts
    /// as life) and records the round-trip time. Unknown nonces are ignored.
    pub fn on_pong(&mut self, nonce: u64, now: Instant) {
        if let Some(pos) = self.outstanding.iter().position(|&(n, _)| n == nonce) {
            if let Some(&(_, sent)) = self.outstanding.get(pos) {
                self.rtt = Some(now.saturating_duration_since(sent));
            }
            self.outstanding.drain(..=pos);
        }
    }

    /// The round-trip time of the last answered ping.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Number of unanswered pings.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }
}
