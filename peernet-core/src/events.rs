//! Events a node reports to the program.

use std::net::SocketAddr;

use peernet_proto::Key;

use crate::error::CloseReason;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// Discovery heard of a peer (address in `address`).
    Discovered,
    /// Discovery has not heard of a peer for 3 intervals (live connections stay up).
    Lost,
    /// The first authenticated connection to a peer is up.
    Connected,
    /// The last connection to a peer closed (`detail` says why).
    Disconnected,
    /// The set of local addresses changed.
    NetworkChanged,
    /// An inbound handshake completed by a key this node does not trust: the connection
    /// was refused (`key` is the client's, `address` where it came from). Lets a server
    /// tell its operator which key to trust.
    Refused,
    /// A pairing attempt began: on the inviter, a joiner connected to its pairing
    /// listener (`address`); on the joiner, `join` started (`key`: the ticket's key).
    PairingStarted,
    /// A pairing succeeded: `key` is now trusted, `detail` is its chosen name.
    PairingSucceeded,
    /// A pairing attempt failed, or an invite ended unused; `detail` says why (and
    /// whether the short code is burned).
    PairingFailed,
}

impl EventKind {
    /// Lower-case name used by the bindings ("discovered", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Discovered => "discovered",
            EventKind::Lost => "lost",
            EventKind::Connected => "connected",
            EventKind::Disconnected => "disconnected",
            EventKind::NetworkChanged => "network_changed",
            EventKind::Refused => "refused",
            EventKind::PairingStarted => "pairing_started",
            EventKind::PairingSucceeded => "pairing_succeeded",
            EventKind::PairingFailed => "pairing_failed",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The peer concerned, if any.
    pub key: Option<Key>,
    /// The address concerned, if any.
    pub address: Option<SocketAddr>,
    /// A reason or other detail ("" if none).
    pub detail: String,
    /// For [`EventKind::Disconnected`]: why the last connection closed, typed (the
    /// same [`CloseReason`] the `Closed` errors of its calls carry). `None` for the
    /// other kinds.
    pub close_reason: Option<CloseReason>,
}
