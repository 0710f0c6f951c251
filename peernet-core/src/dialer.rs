//! Auto-connect and reconnect: one dial supervisor task per peer, started when a trusted
//! peer with a known address has no connection (discovered, dropped, newly trusted,
//! network changed), ended when the peer is connected, untrusted, held by the program,
//! out of addresses, after a bounded number of rounds, or at shutdown.
//!
//! A round tries the peer's addresses best first: the manual addresses of its trust
//! entry (host names resolved now, see `resolve_manual`), then confirmed before
//! unconfirmed ones (`PeerTable::candidates`), staggered like happy eyeballs: the next dial starts
//! `STAGGER` after the previous one (at once when one fails), several run at a time,
//! and the first to authenticate wins (the others are cancelled; only one at a time may
//! send the last handshake message, so the peer never holds a connection a cancelled
//! dial abandoned: see `net::Gate`). A dead address (one
//! that accepts TCP and never answers) so costs the real one at most `STAGGER` per
//! address ranked before it, not a whole handshake timeout. A round lasts at most
//! `STAGGER × (MAX_PER_ROUND - 1)` plus one dial timeout. Between rounds the supervisor waits an
//! exponential backoff (0.5 s doubling to 30 s, jittered, `peernet_proto::backoff`); a
//! new hint wakes it early, but never sooner than `MIN_GAP` after the last round, so a
//! flood of announcements cannot become a flood of dials.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peernet_proto::backoff::Backoff;
use peernet_proto::Key;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::conn::lock;
use crate::net::dial;
use crate::peers::AddressSource;
use crate::shared::Shared;

/// Rounds a supervisor makes before giving up until the next hint (about ten minutes
/// at the backoff cap).
pub(crate) const MAX_ROUNDS: u32 = 24;
/// Addresses tried per round.
const MAX_PER_ROUND: usize = 8;
/// Delay between the starts of two dials of one round.
pub(crate) const STAGGER: Duration = Duration::from_millis(250);
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

/// Longest wait for one host name of a manual address to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// Addresses one resolved host name contributes to a round.
const PER_NAME: usize = 2;

/// Resolves the manual addresses of a trust entry, in order: IP literals as they are,
/// host names through the system resolver (bounded in time and results; a failure is
/// logged and skipped).
async fn resolve_manual(manual: &[String]) -> Vec<SocketAddr> {
    use peernet_proto::peer_addr::{ManualAddress, MAX_MANUAL_ADDRESSES};
    let mut out = Vec::new();
    for m in manual.iter().take(MAX_MANUAL_ADDRESSES) {
        match ManualAddress::parse(m) {
            Ok(ManualAddress::Ip(a)) => out.push(a),
            Ok(ManualAddress::LinkLocal { ip, scope, port }) => {
                let index = scope
                    .parse::<u32>()
                    .ok()
                    .or_else(|| crate::sys::if_index(&scope));
                match index {
                    Some(i) => {
                        out.push(SocketAddr::V6(std::net::SocketAddrV6::new(ip, port, 0, i)))
                    }
                    None => tracing::debug!(%m, "manual address: no such interface"),
                }
            }
            Ok(ManualAddress::Name { host, port }) => {
                let found = tokio::time::timeout(
                    RESOLVE_TIMEOUT,
                    tokio::net::lookup_host((host.as_str(), port)),
                )
                .await;
                match found {
                    Ok(Ok(addrs)) => out.extend(
                        addrs
                            .filter(peernet_proto::trustfile::is_storable_address)
                            .take(PER_NAME),
                    ),
                    Ok(Err(e)) => tracing::debug!(%m, error = %e, "manual address not resolved"),
                    Err(_) => tracing::debug!(%m, "manual address: resolver timed out"),
                }
            }
            Err(e) => tracing::debug!(%m, error = %e, "manual address skipped"),
        }
    }
    out
}

/// Manual (resolved) addresses first, then the peer table's candidates, no duplicates.
fn manual_first(manual: Vec<SocketAddr>, candidates: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(manual.len() + candidates.len());
    for a in manual.into_iter().chain(candidates) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// What a supervisor should do now.
enum Decision {
    /// Dial these addresses, after the manual ones (unresolved).
    Dial(Vec<SocketAddr>, Vec<String>),
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
        // Trust alone first: the lock order is peers, then trust.
        let manual = lock(&self.trust).manual(key);
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
        if c.is_empty() && manual.is_empty() {
            Decision::Stop
        } else {
            Decision::Dial(c, manual)
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
        let has_manual = self.has_manual(&key);
        let mut peers = lock(&self.peers);
        let routed = peers.route(&key).is_some();
        let has_addr = has_manual || !peers.candidates(&key).is_empty();
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

    /// Whether the trust entry of `key` has manual addresses (takes the trust lock: not
    /// to be called with the peer table locked).
    pub(crate) fn has_manual(&self, key: &Key) -> bool {
        lock(&self.trust)
            .get(key)
            .is_some_and(|e| !e.manual.is_empty())
    }

    /// Persists the peer table's confirmed addresses of a trusted `key` with its trust
    /// entry (no write when unchanged; a failed write is logged, the connection stays).
    pub(crate) fn remember_confirmed(&self, key: &Key) {
        let addrs = lock(&self.peers).confirmed(key);
        if let Err(e) = lock(&self.trust).remember_addresses(key, &addrs) {
            tracing::warn!(peer = %key.fingerprint(), error = %e, "confirmed addresses not saved");
        }
    }

    /// At start: the confirmed addresses remembered in the trust file become the peers'
    /// first candidates, and each trusted peer with one, or with a manual address, is
    /// dialed (discovery or not).
    pub(crate) fn dial_remembered(self: &Arc<Self>) {
        let mut keys = Vec::new();
        let entries = lock(&self.trust).list();
        {
            let mut peers = lock(&self.peers);
            for e in entries {
                // Oldest first, so the newest ends up most recently seen.
                for a in e.addresses.iter().rev() {
                    peers.note_address(e.key, *a, AddressSource::Remembered, true);
                }
                if !e.addresses.is_empty() || !e.manual.is_empty() {
                    keys.push(e.key);
                }
            }
        }
        for k in keys {
            self.ensure_dialer(k, true);
        }
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
        let has_manual = self.has_manual(key);
        let mut peers = lock(&self.peers);
        let again = !force
            && trusted
            && !self.is_shutting_down()
            && peers.route(key).is_none()
            && peers.get(key).is_some_and(|e| !e.hold)
            && (has_manual || !peers.candidates(key).is_empty());
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
            crate::metrics_peer::note_next_dial(&shared, &key, Some(delay));
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = wake.notified() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            crate::metrics_peer::note_next_dial(&shared, &key, None);
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
            Decision::Dial(candidates, manual) => {
                manual_first(resolve_manual(&manual).await, candidates)
            }
        };
        last_round = Some(Instant::now());
        rounds += 1;
        lock(&shared.peers).entry(key).dial_rounds = rounds;
        match dial_round(&shared, key, addrs, timeout, &mut stop).await {
            Round::Stopped => return,
            Round::Connected { addr, failed } => {
                lock(&shared.peers).demote(&key, &failed);
                if !failed.is_empty() {
                    shared.remember_confirmed(&key);
                }
                tracing::debug!(peer = %key.fingerprint(), %addr, rounds, "auto-connected");
            }
            Round::Failed => {}
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

/// How a dial round ended.
enum Round {
    /// A dial to `addr` authenticated; `failed` had failed before it.
    Connected {
        addr: SocketAddr,
        failed: Vec<SocketAddr>,
    },
    /// Every dial failed, or the peer got connected some other way.
    Failed,
    /// The node is shutting down.
    Stopped,
}

/// One round: dials `addrs` (best first, at most `MAX_PER_ROUND`) staggered by
/// `STAGGER`, the next at once when one fails; the first to authenticate ends the
/// round and the others are cancelled (their tasks aborted when the set drops). They
/// share a gate: only one at a time gets past M2 (see `net::Gate`), so the others
/// are cancelled before the peer could have registered them.
async fn dial_round(
    shared: &Arc<Shared>,
    key: Key,
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Round {
    let mut queue: VecDeque<SocketAddr> = addrs.into_iter().take(MAX_PER_ROUND).collect();
    let mut running: JoinSet<(SocketAddr, bool)> = JoinSet::new();
    let mut failed = Vec::new();
    let mut next_start = Instant::now();
    let gate = crate::net::gate();
    loop {
        if shared.is_shutting_down() {
            return Round::Stopped;
        }
        if lock(&shared.peers).route(&key).is_some() || (queue.is_empty() && running.is_empty()) {
            return Round::Failed;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_start), if !queue.is_empty() => {
                if let Some(addr) = queue.pop_front() {
                    let s = Arc::clone(shared);
                    let gate = Arc::clone(&gate);
                    running.spawn(async move {
                        match dial(&s, key, addr, timeout, Some(&gate)).await {
                            Ok(_) => (addr, true),
                            Err(e) => {
                                tracing::debug!(peer = %key.fingerprint(), %addr, error = %e, "dial failed");
                                (addr, false)
                            }
                        }
                    });
                }
                next_start = Instant::now() + STAGGER;
            }
            Some(done) = running.join_next(), if !running.is_empty() => match done {
                Ok((addr, true)) => return Round::Connected { addr, failed },
                Ok((addr, false)) => {
                    failed.push(addr);
                    next_start = Instant::now();
                }
                Err(e) => tracing::debug!(error = %e, "dial task ended abnormally"),
            },
            _ = stop.wait_for(|s| *s) => return Round::Stopped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_addresses_resolve_and_come_first() {
        let manual = vec![
            "10.0.0.9:7100".to_string(),
            "localhost:7101".to_string(),
            "bad_entry".to_string(),
            "[fe80::1%no-such-if0]:1".to_string(),
        ];
        let r = resolve_manual(&manual).await;
        assert_eq!(r[0], "10.0.0.9:7100".parse().unwrap());
        assert!(
            r[1..]
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 7101),
            "{r:?}"
        );
        assert!(r.len() >= 2 && r.len() <= 1 + PER_NAME, "{r:?}");
        let c = vec![
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.9:7100".parse().unwrap(),
        ];
        let all = manual_first(r.clone(), c);
        assert_eq!(all[0], r[0]);
        assert_eq!(all.last(), Some(&"10.0.0.1:1".parse().unwrap()));
        assert_eq!(all.len(), r.len() + 1);
        // A link-local literal gets its interface's index as the scope id.
        let lo = crate::sys::interfaces()
            .unwrap()
            .into_iter()
            .find(|i| i.loopback)
            .unwrap();
        let r = resolve_manual(&[format!("[fe80::1%{}]:7", lo.name), "[fe80::2%9]:7".into()]).await;
        assert_eq!(
            r,
            vec![
                SocketAddr::V6(std::net::SocketAddrV6::new(
                    "fe80::1".parse().unwrap(),
                    7,
                    0,
                    lo.index
                )),
                SocketAddr::V6(std::net::SocketAddrV6::new(
                    "fe80::2".parse().unwrap(),
                    7,
                    0,
                    9
                )),
            ]
        );
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let v: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(v.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(v.iter().any(|&j| (j - v[0]).abs() > 1e-9));
    }
}
