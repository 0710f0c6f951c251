//! Time: the earliest deadline the driver must wake the machine at, and what happens
//! when it does (confirmation, call deadlines, the drain deadline, the heartbeat).

use std::time::{Duration, Instant};

use super::{CallId, Connection, DisconnectReason, Event};
use crate::envelope::Envelope;
use crate::heartbeat::HeartbeatAction;

/// `t + d`, or the latest representable instant not after it (never panics).
pub(super) fn add(t: Instant, mut d: Duration) -> Instant {
    loop {
        if let Some(x) = t.checked_add(d) {
            return x;
        }
        d /= 2;
    }
}

impl Connection {
    /// When [`Connection::handle_timeout`] must next run: the earliest of the
    /// confirmation deadline (dialer), the next heartbeat Ping or timeout, the earliest
    /// call deadline and the drain deadline. `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let mut next = self.pending.next_deadline();
        let mut consider = |t: Instant| {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        };
        if !self.confirmed {
            consider(self.confirm_deadline);
        }
        if let Some(hb) = &self.heartbeat {
            consider(hb.next_deadline());
        }
        if let Some(d) = &self.drain {
            consider(d.deadline);
        }
        next
    }

    /// Runs every timer due at `now` (calling it early or twice is harmless): an
    /// unconfirmed dialer past its deadline closes ([`DisconnectReason::ConfirmTimeout`]);
    /// calls past their deadline expire ([`Event::CallExpired`]); a drain past its
    /// deadline closes ([`DisconnectReason::DrainTimeout`]); the heartbeat queues a Ping
    /// or, when the oldest unanswered one is `heartbeat_timeout` old, closes
    /// ([`DisconnectReason::HeartbeatTimeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        if !self.confirmed && now >= self.confirm_deadline {
            return self.finish(DisconnectReason::ConfirmTimeout, None);
        }
        for id in self.pending.expire(now) {
            self.events.push_back(Event::CallExpired { id: CallId(id) });
        }
        self.progress_drain();
        if self.closed.is_some() {
            return;
        }
        if self.drain.is_some_and(|d| now >= d.deadline) {
            return self.finish(DisconnectReason::DrainTimeout, None);
        }
        let action = match self.heartbeat.as_mut() {
            Some(hb) => hb.poll(now),
            None => HeartbeatAction::Idle,
        };
        match action {
            HeartbeatAction::Dead => self.finish(DisconnectReason::HeartbeatTimeout, None),
            HeartbeatAction::SendPing(nonce) => {
                self.rx.shrink_if_idle();
                self.tx.shrink_if_idle();
                self.push_control(&Envelope::Ping { nonce });
            }
            HeartbeatAction::Idle => {}
        }
    }
}
