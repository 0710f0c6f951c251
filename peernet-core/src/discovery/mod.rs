//! Discovery: where hints about peers' addresses come from. A hint is never proof —
//! only a completed handshake confirms an address (spec 8).
//!
//! Sources: [`manual`] (the program injects hints, e.g. from Bonjour or a config file,
//! through `Node::discovered` / `Node::lost`) and [`udp`] (LAN announcements, spec 8,
//! over a pluggable [`transport::UdpTransport`]). Every source reports
//! [`DiscoveryEvent`]s, which `Shared::apply_discovery` (`manager.rs`) folds into the peer table:
//! the address is recorded unconfirmed, the event is reported once, and a trusted peer
//! gets a dial supervisor (`dialer`). The same address heard again (`Alive`, or a
//! repeated manual hint) reports nothing, but wakes the dial supervisor of a trusted
//! peer we are not connected to during its first rounds: that is how a peer restarting
//! on its address is found again without waiting out a reconnect backoff step.

pub(crate) mod ifaces;
pub(crate) mod manual;
pub(crate) mod mdns;
pub(crate) mod service;
pub(crate) mod transport;
pub(crate) mod udp;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use peernet_proto::Key;

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

    /// A peer was just trusted and no address of it is known: ask the network now
    /// (sources that can ask; each paces its own queries). Default: nothing.
    fn peer_wanted(&self) {}
}
