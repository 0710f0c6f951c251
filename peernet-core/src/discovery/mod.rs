//! Discovery: where hints about peers' addresses come from. A hint is never proof —
//! only a completed handshake confirms an address (spec 8).
//!
//! Sources: [`manual`] (the program injects hints, e.g. from Bonjour or a config file,
//! through `Node::discovered` / `Node::lost`) and [`udp`] (LAN announcements, spec 8,
//! over a pluggable [`transport::UdpTransport`]). Every source reports
//! [`DiscoveryEvent`]s, which `Shared::apply_discovery` folds into the peer table:
//! the address is recorded unconfirmed, the event is reported once, and a trusted peer
//! gets a dial supervisor (`dialer`). The same address heard again (`Alive`, or a
//! repeated manual hint) reports nothing, but wakes the dial supervisor of a trusted
//! peer we are not connected to during its first rounds: that is how a peer restarting
//! on its address is found again without waiting out a reconnect backoff step.

pub(crate) mod ifaces;
pub(crate) mod manual;
pub(crate) mod mdns;
pub(crate) mod service;
pub(crate) mod start;
pub(crate) mod transport;
pub(crate) mod udp;
pub(crate) mod unicast;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use peernet_proto::Key;

use crate::conn::lock;
use crate::dialer::ALIVE_ROUNDS;
use crate::events::EventKind;
use crate::node::Shared;
use crate::peers::AddressSource;

/// What a discovery source reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiscoveryEvent {
    /// `key` may be reached at `addr` (unconfirmed).
    Discovered {
        /// The peer's key.
        key: Key,
        /// Where it says it listens.
        addr: SocketAddr,
    },
    /// `key` announced itself again at the address already reported: it is up. No
    /// event for the program; a trusted peer we are not connected to is dialed now
    /// rather than after the rest of a backoff step (see `Shared::peer_alive`): this is
    /// how a peer that restarted on the same address is found at once.
    Alive {
        /// The peer's key.
        key: Key,
    },
    /// `key` has not been heard of for a while (live connections stay up).
    Lost {
        /// The peer's key.
        key: Key,
    },
}

/// A running discovery source, as the node sees it.
pub(crate) trait Discovery: Send + Sync {
    /// The local network changed: announce again now (sources that announce).
    fn network_changed(&self);
}

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
