//! Errors of the connection machine, by kind (snow's style: one enum of kinds, each
//! with its own problem enum), and the reason a connection ended.

use std::fmt;

use crate::envelope::GoodbyeReason;
use crate::ProtoError;

/// Why the connection machine refused a command, or why it closed the connection.
///
/// The variant is the kind; the problem inside says exactly what. An AEAD failure is
/// always [`ConnectionError::Crypto`], never a frame-size error.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionError {
    /// The command does not fit the connection's state (closed, draining, ...).
    State(StateProblem),
    /// The channel refused a frame (spec 4).
    Crypto(CryptoProblem),
    /// The peer's bytes break the protocol (spec 2, 3.4, 5), or a caller passed a bad
    /// handler name.
    Malformed(MalformedProblem),
    /// A bound was hit: a frame or payload size, the transmit queue, the pending table.
    Limit(LimitProblem),
}

/// [`ConnectionError::State`]: what about the state refused the command.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateProblem {
    /// The connection is closed (the last event was [`Closed`](super::Event::Closed)).
    Closed,
    /// The connection lost a duplicate race and drains (spec 5.1): no new calls here;
    /// the caller routes them to the connection that won.
    Draining,
    /// The dialer has not seen the responder's confirmation yet (spec 3.4).
    NotConfirmed,
    /// `reply` for a call id that is not being served (never arrived, or already
    /// answered).
    UnknownCall {
        /// The id given.
        id: u64,
    },
    /// 2^64 - 1 calls were started on this connection; no id is left.
    CallIdsExhausted,
}

/// [`ConnectionError::Crypto`]: the channel's refusal (spec 4).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoProblem {
    /// A frame failed authentication: tampered, replayed, reordered or wrong key.
    Decrypt,
    /// A direction's counter reached 2^64 - 1; the connection must close.
    NonceExhausted,
    /// The AEAD refused to seal an envelope, or refused the channel key.
    Seal,
}

/// [`ConnectionError::Malformed`]: which rule the bytes (or the caller) broke.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MalformedProblem {
    /// A frame header announced a body of 0 bytes (spec 2).
    EmptyFrame,
    /// An envelope that does not decode (spec 5), or a handler name out of 1..=255
    /// bytes (in an envelope, or given to `call`/`send`).
    Envelope(&'static str),
    /// The responder's first transport frame was not a Ping (spec 3.4).
    ConfirmationNotPing,
    /// A Call with id 0 (ids are non-zero, spec 5).
    ZeroCallId,
    /// A Call whose id is already outstanding on this connection (spec 5: unique).
    DuplicateCallId {
        /// The repeated id.
        id: u64,
    },
    /// Any other codec refusal, as text.
    Codec(String),
    /// A stream message that breaks a rule of the stream protocol (docs/protocol.md,
    /// "Streams"): answered with Goodbye 3 like any malformed envelope.
    Stream(crate::stream::Violation),
}

/// [`ConnectionError::Limit`]: which bound, and its figures.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitProblem {
    /// An incoming frame header announced a body over this side's `max_frame_len`.
    FrameTooLarge {
        /// The announced body length.
        len: usize,
        /// This side's limit.
        limit: usize,
    },
    /// An outgoing call or send would be a frame body over the peer's `max_frame_len`
    /// (from its Hello); nothing was queued, the connection stays up.
    PayloadTooLarge {
        /// The sealed body length it would have.
        len: usize,
        /// The peer's limit.
        limit: usize,
    },
    /// The transmit queue holds its budget of bytes: wait until `poll_transmit` drains
    /// it, then retry (or fail the caller with "overloaded").
    Overloaded {
        /// Bytes queued now.
        queued: usize,
        /// The budget ([`Config::transmit_queue_bytes`](super::Config)).
        limit: usize,
    },
    /// The pending-call table is full.
    TooManyCalls {
        /// [`Config::max_pending_calls`](super::Config).
        limit: usize,
    },
    /// The driver kept feeding bytes while [`wants_read`](super::Connection::wants_read)
    /// was false, and the answers to them (Pongs) grew the queue past twice its budget.
    TransmitQueueFull {
        /// Bytes queued.
        queued: usize,
    },
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::State(p) => match p {
                StateProblem::Closed => f.write_str("connection closed"),
                StateProblem::Draining => f.write_str(
                    "connection draining (a duplicate, spec 5.1): start the call on the other connection",
                ),
                StateProblem::NotConfirmed => {
                    f.write_str("connection not confirmed by the responder yet (spec 3.4)")
                }
                StateProblem::UnknownCall { id } => {
                    write!(f, "no call {id} is being served on this connection")
                }
                StateProblem::CallIdsExhausted => {
                    f.write_str("call ids exhausted: open a new connection")
                }
            },
            ConnectionError::Crypto(p) => match p {
                CryptoProblem::Decrypt => f.write_str(
                    "frame failed authentication (tampered, replayed, reordered or wrong key)",
                ),
                CryptoProblem::NonceExhausted => f.write_str("channel nonce exhausted"),
                CryptoProblem::Seal => f.write_str("the AEAD refused to seal"),
            },
            ConnectionError::Malformed(p) => match p {
                MalformedProblem::EmptyFrame => f.write_str("empty frame (length 0)"),
                MalformedProblem::Envelope(why) => write!(f, "malformed envelope: {why}"),
                MalformedProblem::ConfirmationNotPing => {
                    f.write_str("the responder's first frame was not a Ping (spec 3.4)")
                }
                MalformedProblem::ZeroCallId => f.write_str("call with id 0"),
                MalformedProblem::DuplicateCallId { id } => {
                    write!(f, "call id {id} is already outstanding")
                }
                MalformedProblem::Codec(why) => f.write_str(why),
                MalformedProblem::Stream(v) => write!(f, "stream protocol violation: {v}"),
            },
            ConnectionError::Limit(p) => match p {
                LimitProblem::FrameTooLarge { len, limit } => {
                    write!(f, "incoming frame too large: {len} bytes, limit {limit}")
                }
                LimitProblem::PayloadTooLarge { len, limit } => write!(
                    f,
                    "payload too large: {len} bytes sealed, the peer accepts {limit}"
                ),
                LimitProblem::Overloaded { queued, limit } => write!(
                    f,
                    "overloaded: {queued} bytes queued, budget {limit}; retry after the queue drains"
                ),
                LimitProblem::TooManyCalls { limit } => {
                    write!(f, "too many outstanding calls (limit {limit})")
                }
                LimitProblem::TransmitQueueFull { queued } => write!(
                    f,
                    "transmit queue full ({queued} bytes): the driver must stop reading while wants_read() is false"
                ),
            },
        }
    }
}

impl std::error::Error for ConnectionError {}

impl From<StateProblem> for ConnectionError {
    fn from(p: StateProblem) -> ConnectionError {
        ConnectionError::State(p)
    }
}

impl From<CryptoProblem> for ConnectionError {
    fn from(p: CryptoProblem) -> ConnectionError {
        ConnectionError::Crypto(p)
    }
}

impl From<MalformedProblem> for ConnectionError {
    fn from(p: MalformedProblem) -> ConnectionError {
        ConnectionError::Malformed(p)
    }
}

impl From<LimitProblem> for ConnectionError {
    fn from(p: LimitProblem) -> ConnectionError {
        ConnectionError::Limit(p)
    }
}

impl From<ProtoError> for ConnectionError {
    /// Classifies a codec or channel error by kind.
    fn from(e: ProtoError) -> ConnectionError {
        match e {
            ProtoError::FrameEmpty => ConnectionError::Malformed(MalformedProblem::EmptyFrame),
            ProtoError::FrameTooLarge { len, limit } => {
                ConnectionError::Limit(LimitProblem::FrameTooLarge { len, limit })
            }
            ProtoError::Malformed(why) => {
                ConnectionError::Malformed(MalformedProblem::Envelope(why))
            }
            ProtoError::Decrypt => ConnectionError::Crypto(CryptoProblem::Decrypt),
            ProtoError::NonceExhausted => ConnectionError::Crypto(CryptoProblem::NonceExhausted),
            // The channel reports a refused key as a handshake error.
            ProtoError::Seal | ProtoError::Handshake(_) => {
                ConnectionError::Crypto(CryptoProblem::Seal)
            }
            ProtoError::Connection(c) => c,
            other => ConnectionError::Malformed(MalformedProblem::Codec(other.to_string())),
        }
    }
}

/// Why a connection ended: the reason of [`Event::Closed`](super::Event::Closed), for a
/// driver to surface to users.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// This side closed it with `close`, after a Goodbye with this reason.
    Local(GoodbyeReason),
    /// The peer said Goodbye with this reason (never [`GoodbyeReason::Duplicate`]:
    /// that one starts a drain, see [`Event::PeerDraining`](super::Event::PeerDraining)).
    Peer(GoodbyeReason),
    /// The peer closed the byte stream without a Goodbye (reported by the driver).
    PeerEof,
    /// Dialer only: the stream ended before the responder's confirmation (spec 3.4): the
    /// peer refused the connection, most likely because it does not trust this node.
    Refused,
    /// Dialer only: no confirmation within [`Config::confirm_timeout`](super::Config).
    ConfirmTimeout,
    /// The oldest unanswered Ping is older than the heartbeat timeout (spec 5).
    HeartbeatTimeout,
    /// A duplicate drained completely (spec 5.1): Goodbye 1 both ways, every call
    /// answered.
    Drained,
    /// A duplicate's drain did not complete before its deadline.
    DrainTimeout,
    /// The peer broke the protocol, or the channel failed; a Goodbye 3 was sent when
    /// the error was an envelope that breaks a rule of spec 5.
    Error(ConnectionError),
    /// The driver's transport failed (a socket error), as the driver reported it.
    Transport(String),
}

impl DisconnectReason {
    /// True when the close was not an orderly one (a protocol, crypto, liveness or
    /// transport failure, or a refusal).
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            DisconnectReason::Local(_)
                | DisconnectReason::Peer(_)
                | DisconnectReason::Drained
                | DisconnectReason::PeerEof
        )
    }
}

fn goodbye_text(r: GoodbyeReason) -> &'static str {
    match r {
        GoodbyeReason::Closing => "closing",
        GoodbyeReason::Duplicate => "duplicate connection",
        GoodbyeReason::TrustRevoked => "trust revoked",
        GoodbyeReason::ProtocolError => "protocol error",
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::Local(r) => write!(f, "closed: {}", goodbye_text(*r)),
            DisconnectReason::Peer(r) => write!(f, "peer closed: goodbye ({})", goodbye_text(*r)),
            DisconnectReason::PeerEof => f.write_str("peer closed: connection closed"),
            DisconnectReason::Refused => f.write_str(
                "untrusted peer: it refused the connection (we are not in its trust store)",
            ),
            DisconnectReason::ConfirmTimeout => {
                f.write_str("the responder did not confirm the connection in time")
            }
            DisconnectReason::HeartbeatTimeout => f.write_str("heartbeat timeout"),
            DisconnectReason::Drained => f.write_str("closed: duplicate connection"),
            DisconnectReason::DrainTimeout => {
                f.write_str("closed: duplicate connection (drain timeout)")
            }
            DisconnectReason::Error(e) => write!(f, "protocol error: {e}"),
            DisconnectReason::Transport(m) => write!(f, "i/o error: {m}"),
        }
    }
}
