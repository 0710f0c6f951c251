//! Why a connection ended: the internal cause (the `detail` of the disconnected event)
//! and the public [`CloseReason`] that the `Closed` errors of its calls carry.

use peernet_proto::connection::DisconnectReason;
use peernet_proto::envelope::GoodbyeReason;

use crate::error::CloseReason;

/// Why a connection ended (the `detail` of the disconnected event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CloseCause {
    /// The peer closed the socket (EOF).
    PeerClosed(String),
    /// The peer said Goodbye with this reason.
    Goodbye(GoodbyeReason),
    /// We closed it on purpose (disconnect, untrust, duplicate, shutdown).
    Local(String),
    /// No Pong within the heartbeat timeout.
    HeartbeatTimeout,
    /// A frame failed to open or an envelope failed to decode.
    Protocol(String),
    /// A socket error.
    Io(String),
}

impl std::fmt::Display for CloseCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseCause::PeerClosed(m) => write!(f, "peer closed: {m}"),
            CloseCause::Goodbye(r) => write!(f, "peer closed: goodbye ({r:?})"),
            CloseCause::Local(m) => write!(f, "closed: {m}"),
            CloseCause::HeartbeatTimeout => f.write_str("heartbeat timeout"),
            CloseCause::Protocol(m) => write!(f, "protocol error: {m}"),
            CloseCause::Io(m) => write!(f, "i/o error: {m}"),
        }
    }
}

impl CloseCause {
    /// The public reason, for the `Closed` error of the calls this close fails.
    pub(crate) fn reason(&self) -> CloseReason {
        match self {
            CloseCause::PeerClosed(_) => CloseReason::PeerEof,
            CloseCause::Goodbye(r) => CloseReason::PeerGoodbye(
                match r {
                    GoodbyeReason::Closing => "closing",
                    GoodbyeReason::Duplicate => "duplicate connection",
                    GoodbyeReason::TrustRevoked => "it no longer trusts this node",
                    GoodbyeReason::ProtocolError => "we sent something it could not decode",
                }
                .to_owned(),
            ),
            CloseCause::Local(m) => match m.as_str() {
                "trust revoked" => CloseReason::TrustRevoked,
                "disconnected" => CloseReason::LocalDisconnect,
                "node shutting down" | "node dropped" => CloseReason::LocalShutdown,
                "duplicate connection" => CloseReason::Duplicate,
                other => CloseReason::Local(other.to_owned()),
            },
            CloseCause::HeartbeatTimeout => CloseReason::HeartbeatTimeout,
            CloseCause::Protocol(m) => CloseReason::Protocol(m.clone()),
            CloseCause::Io(m) => CloseReason::Io(m.clone()),
        }
    }
}

impl CloseCause {
    /// The cause of a close the connection machine reported. A close this node asked
    /// for (`intent`, recorded before its Goodbye was queued) wins, even when the
    /// peer's reaction to the Goodbye reached the machine first.
    pub(crate) fn from_machine(
        reason: &DisconnectReason,
        intent: Option<CloseCause>,
    ) -> CloseCause {
        if let Some(cause) = intent {
            return cause;
        }
        match reason {
            DisconnectReason::Local(GoodbyeReason::TrustRevoked) => {
                CloseCause::Local("trust revoked".into())
            }
            DisconnectReason::Local(_) => CloseCause::Local("closed".into()),
            DisconnectReason::Peer(r) => CloseCause::Goodbye(*r),
            DisconnectReason::PeerEof | DisconnectReason::Refused => {
                CloseCause::PeerClosed("connection closed".into())
            }
            DisconnectReason::HeartbeatTimeout => CloseCause::HeartbeatTimeout,
            DisconnectReason::Drained | DisconnectReason::DrainTimeout => {
                CloseCause::Local("duplicate connection".into())
            }
            DisconnectReason::Transport(m) => CloseCause::Io(m.clone()),
            other => CloseCause::Protocol(match other {
                DisconnectReason::Error(e) => e.to_string(),
                o => o.to_string(),
            }),
        }
    }
}
