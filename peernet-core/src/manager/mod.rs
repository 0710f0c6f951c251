//! Where discovery meets the peer table: hints folded in (an address recorded
//! unconfirmed, reported once, a trusted peer's dial supervisor started or woken), and
//! the discovery sources started with the node as their sink (`udp.rs`: IPv4 broadcast
//! and IPv6 multicast; `mdns.rs`). The sources themselves (`discovery/`) know nothing
//! of the node.

mod mdns;
mod udp;
mod unicast;

pub(crate) use mdns::start_mdns;
pub(crate) use udp::start_udp_discovery;

use std::sync::Arc;

use peernet_proto::Key;

use crate::conn::lock;
use crate::dialer::ALIVE_ROUNDS;
use crate::discovery::DiscoveryEvent;
use crate::events::EventKind;
use crate::peers::AddressSource;
use crate::shared::Shared;

impl Shared {
    /// A peer announced (or was hinted at) the address already reported: if we trust it,
    /// are not connected and its dial supervisor is still in its first
    /// [`ALIVE_ROUNDS`] rounds, the supervisor dials now instead of at the end of its
    /// backoff step (it still keeps `MIN_GAP` after its last round). No supervisor is
    /// started: after a drop one always runs, and one that gave up stays given up (the
    /// restarted peer dials us when it hears our announcement).
    fn peer_alive(&self, key: Key) {
        if !self.is_trusted(&key) {
            return;
        }
        let mut peers = lock(&self.peers);
        // The announced address stays a candidate (refreshed; back if it was evicted).
        if let Some(addr) = peers.get(&key).and_then(|e| e.discovered) {
            peers.note_address(key, addr, AddressSource::Discovery, false);
        }
        if peers.route(&key).is_some() {
            return;
        }
        if let Some(e) = peers.get(&key) {
            if let Some(w) = e.dialer.as_ref().filter(|_| e.dial_rounds < ALIVE_ROUNDS) {
                w.notify_one();
            }
        }
    }

    /// `key` was just trusted: when no address of it is known (none discovered,
    /// remembered or manual), the discovery sources are asked to look for it now
    /// (`Discovery::peer_wanted`; mDNS queries, paced). Returns whether they were.
    pub(crate) fn want_address(&self, key: &Key) -> bool {
        let manual = self.has_manual(key);
        if manual || !lock(&self.peers).candidates(key).is_empty() {
            return false;
        }
        for d in lock(&self.discovery).iter() {
            d.peer_wanted();
        }
        true
    }

    /// Folds a discovery event into the peer table (see the module docs).
    pub(crate) fn apply_discovery(self: &Arc<Self>, ev: DiscoveryEvent) {
        match ev {
            DiscoveryEvent::Discovered { key, addr } => {
                if key == self.identity.public() {
                    return;
                }
                let new = {
                    let mut peers = lock(&self.peers);
                    peers.note_address(key, addr, AddressSource::Discovery, false);
                    let e = peers.entry(key);
                    let new = e.discovered != Some(addr);
                    e.discovered = Some(addr);
                    if new {
                        e.hold = false;
                    }
                    new
                };
                if new {
                    self.emit(EventKind::Discovered, Some(key), Some(addr), String::new());
                    self.ensure_dialer(key, true);
                } else {
                    self.peer_alive(key);
                }
            }
            DiscoveryEvent::Alive { key } => {
                if key != self.identity.public() {
                    self.peer_alive(key);
                }
            }
            DiscoveryEvent::Lost { key } => {
                let was = {
                    let mut peers = lock(&self.peers);
                    let was = peers.get(&key).and_then(|e| e.discovered);
                    if was.is_some() {
                        peers.entry(key).discovered = None;
                    }
                    was
                };
                if let Some(addr) = was {
                    self.emit(EventKind::Lost, Some(key), Some(addr), String::new());
                }
                if !self.is_trusted(&key) {
                    lock(&self.peers).forget_idle(&key);
                }
            }
        }
    }
}
