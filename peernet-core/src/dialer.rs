//! Auto-connect and reconnect: one dial supervisor task per peer, started when a trusted
//! peer with a known address has no connection (discovered, dropped, newly trusted,
//! network changed), ended when the peer is connected, untrusted, held by the program,
//! out of addresses, after a bounded number of rounds, or at shutdown.
//!
//! A round tries the peer's addresses best first (confirmed before unconfirmed, see
//! `PeerTable::candidates`), one dial at a time. Between rounds the supervisor waits an
//! exponential backoff (0.5 s doubling to 30 s, jittered, `peernet_proto::backoff`); a
//! new hint wakes it early, but never sooner than `MIN_GAP` after the last round, so a
//! flood of announcements cannot become a flood of dials.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peernet_proto::backoff::Backoff;
use peernet_proto::Key;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::conn::lock;
use crate::net::dial;
use crate::node::Shared;

/// Rounds a supervisor makes before giving up until the next hint (about ten minutes
/// at the backoff cap).
pub(crate) const MAX_ROUNDS: u32 = 24;
/// Addresses tried per round.
const MAX_PER_ROUND: usize = 8;
/// Shortest time between the starts of two rounds, even when woken by hints.
const MIN_GAP: Duration = Duration::from_millis(200);
/// A peer heard again at its known address (`DiscoveryEvent::Alive`) wakes its
/// supervisor only during this many first rounds (about 30 s of backoff): long enough
/// to find a restarting peer at once, while a peer that is up but refuses us is not
/// dialed at every announcement for ever (the backoff and the give-up still apply).
pub(crate) const ALIVE_ROUNDS: u32 = 6;

/// A jitter value in [0, 1) (randomly keyed SipHash of the time; no crate needed for
/// something this unimportant).
fn jitter() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// What a supervisor should do now.
enum Decision {
    /// Dial these addresses.
    Dial(Vec<SocketAddr>),
    /// Someone else (`connect`) is dialing: wait a round.
    Wait,
    /// Stop (connected, untrusted, held, no address, shutdown, auto-connect off).
    Stop,
}

impl Shared {
    fn dial_decision(&self, key: &Key) -> Decision {
        if self.is_shutting_down() || !self.config.auto_connect || !self.is_trusted(key) {
            return Decision::Stop;
        }
        let peers = lock(&self.peers);
        let Some(e) = peers.get(key) else {
            return Decision::Stop;
        };
        if e.hold || peers.route(key).is_some() {
            return Decision::Stop;
        }
        if e.dialing > 0 {
            return Decision::Wait;
        }
        let c = peers.candidates(key);
        if c.is_empty() {
            Decision::Stop
        } else {
            Decision::Dial(c)
        }
    }

    /// Starts `key`'s dial supervisor if the peer should be dialed and none runs; wakes
    /// the running one otherwise (it re-checks, and dials early or stops).
    /// `immediate`: dial at once (a new hint) rather than after the first backoff delay
    /// (a dropped connection).
    pub(crate) fn ensure_dialer(self: &Arc<Self>, key: Key, immediate: bool) {
        if self.is_shutting_down() || !self.config.auto_connect {
            return;
        }
        let trusted = self.is_trusted(&key);
        let mut peers = lock(&self.peers);
        let routed = peers.route(&key).is_some();
        let has_addr = !peers.candidates(&key).is_empty();
        let e = peers.entry(key);
        if let Some(w) = &e.dialer {
            w.notify_one();
            return;
        }
        if !trusted || routed || e.hold || !has_addr {
            return;
        }
        let wake = Arc::new(Notify::new());
        e.dialer = Some(Arc::clone(&wake));
        e.dial_rounds = 0;
        drop(peers);
        let stop = self.shutdown_rx();
        self.rt
            .spawn(supervise(Arc::clone(self), key, wake, immediate, stop));
    }

    /// Wakes every running supervisor and starts one for every disconnected trusted
    /// peer with an address (after a network change).
    pub(crate) fn redial_all(self: &Arc<Self>) {
        let keys = lock(&self.peers).keys();
        for k in keys {
            self.ensure_dialer(k, true);
        }
    }

    /// Called by a supervisor about to end: clears its slot unless there is work
    /// again (checked under the same lock `ensure_dialer` uses, so no wake-up is lost).
    fn supervisor_may_exit(&self, key: &Key, force: bool) -> bool {
        let trusted = self.is_trusted(key);
        let mut peers = lock(&self.peers);
        let again = !force
            && trusted
            && !self.is_shutting_down()
            && peers.route(key).is_none()
            && peers.get(key).is_some_and(|e| !e.hold)
            && !peers.candidates(key).is_empty();
        if again {
            return false;
        }
        peers.entry(*key).dialer = None;
        true
    }
}

async fn supervise(
    shared: Arc<Shared>,
    key: Key,
    wake: Arc<Notify>,
    immediate: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default_reconnect();
    let mut rounds = 0u32;
    let mut delay = if immediate {
        Duration::ZERO
    } else {
        backoff.next_delay(jitter())
    };
    let mut last_round: Option<Instant> = None;
    let timeout = shared.config.handshake_timeout;
    loop {
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = wake.notified() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
        if let Some(t) = last_round {
            tokio::time::sleep_until(t + MIN_GAP).await;
        }
        let addrs = match shared.dial_decision(&key) {
            Decision::Stop => {
                if shared.supervisor_may_exit(&key, false) {
                    return;
                }
                delay = Duration::ZERO;
                continue;
            }
            Decision::Wait => {
                delay = backoff.next_delay(jitter());
                continue;
            }
            Decision::Dial(a) => a,
        };
        last_round = Some(Instant::now());
        rounds += 1;
        lock(&shared.peers).entry(key).dial_rounds = rounds;
        let mut failed = Vec::new();
        for addr in addrs.into_iter().take(MAX_PER_ROUND) {
            if shared.is_shutting_down() || lock(&shared.peers).route(&key).is_some() {
                break;
            }
            let attempt = tokio::select! {
                r = dial(&shared, key, addr, timeout) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match attempt {
                Ok(_) => {
                    lock(&shared.peers).demote(&key, &failed);
                    tracing::debug!(peer = %key.fingerprint(), %addr, rounds, "auto-connected");
                    break;
                }
                Err(e) => {
                    tracing::debug!(peer = %key.fingerprint(), %addr, error = %e, "dial failed");
                    failed.push(addr);
                }
            }
        }
        if lock(&shared.peers).route(&key).is_some() && shared.supervisor_may_exit(&key, false) {
            return;
        }
        if rounds >= MAX_ROUNDS {
            // Give up until a new hint; one that arrived meanwhile is not lost.
            let woken = tokio::time::timeout(Duration::ZERO, wake.notified())
                .await
                .is_ok();
            if !woken && shared.supervisor_may_exit(&key, true) {
                tracing::info!(peer = %key.fingerprint(), rounds, "giving up dialing until the next hint");
                return;
            }
            rounds = 0;
            lock(&shared.peers).entry(key).dial_rounds = 0;
            backoff.reset();
        }
        delay = backoff.next_delay(jitter());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_in_range_and_varies() {
        let v: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(v.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(v.iter().any(|&j| (j - v[0]).abs() > 1e-9));
    }
}
