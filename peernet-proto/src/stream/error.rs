//! What can go wrong with streams: the peer's violations (from
//! [`StreamTable::handle`](super::StreamTable::handle)), each with what the connection
//! must do about it, and this side's misuse of the API.

use std::fmt;

use crate::ProtoError;

/// What the connection does about a [`Violation`] (docs/protocol.md, "Streams").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Only the stream is refused: the table already queued its StreamReset (with the
    /// code [`Violation::reset_code`] names); the connection stays up.
    ResetStream,
    /// The peer broke the stream protocol: the connection sends Goodbye 3 and closes
    /// (as for an envelope that does not decode, spec 5). Every stream of the
    /// connection ends with it ([`StreamTable::abort`](super::StreamTable::abort)).
    CloseConnection,
}

/// A peer's stream message that breaks a rule, named by the rule.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Data past the credit this side granted: `end` is one past its last byte.
    /// Closes the connection (the peer ignores flow control; nothing it says about
    /// offsets can be trusted any more).
    CreditExceeded {
        /// The stream.
        id: u64,
        /// Offset one past the data's last byte.
        end: u64,
        /// The cumulative credit this side granted.
        limit: u64,
    },
    /// A StreamOpen while the peer already has the configured number of streams open
    /// here. Resets that stream only (code [`RESET_TOO_MANY_STREAMS`](super::RESET_TOO_MANY_STREAMS)):
    /// the bound is this side's configuration, never announced, so a correct peer can
    /// hit it.
    TooManyStreams {
        /// The refused stream.
        id: u64,
        /// [`StreamConfig::max_streams`](super::StreamConfig::max_streams).
        limit: usize,
    },
    /// StreamData or a second StreamFin after the peer's StreamFin on that stream.
    /// Closes the connection.
    DataAfterFin {
        /// The stream.
        id: u64,
    },
    /// A message for a stream id that was never opened (0, or at or beyond the next
    /// id its opener may use). Closes the connection. Messages for streams that existed
    /// and are gone (reset, or ended both ways) are dropped without an error: they
    /// raced the reset or the end.
    UnknownStream {
        /// The id given.
        id: u64,
    },
    /// A StreamOpen whose id is not the next one the peer may open (wrong parity, a
    /// gap, a reused id). Closes the connection.
    BadStreamId {
        /// The id given.
        id: u64,
        /// The id the peer had to use next.
        expected: u64,
    },
    /// StreamData whose offset is not the number of bytes received so far on the
    /// stream (the channel is ordered, so this is a broken sender). Closes the
    /// connection.
    BadOffset {
        /// The stream.
        id: u64,
        /// The offset given.
        offset: u64,
        /// The bytes received so far.
        expected: u64,
    },
    /// The peer made this side queue more control messages (resets of refused opens)
    /// than [`MAX_CONTROL_QUEUED`](super::MAX_CONTROL_QUEUED) while the driver kept
    /// reading although [`StreamTable::wants_read`](super::StreamTable::wants_read) was
    /// false. Closes the connection.
    Backlog {
        /// Control messages queued.
        queued: usize,
    },
    /// The bytes do not decode as a stream message (see
    /// [`StreamMessage::decode`](super::StreamMessage::decode)). Closes the connection.
    Malformed(&'static str),
}

impl Violation {
    /// What the connection must do.
    pub fn response(&self) -> Response {
        match self {
            Violation::TooManyStreams { .. } => Response::ResetStream,
            _ => Response::CloseConnection,
        }
    }

    /// The reset code the table sent, when the response is [`Response::ResetStream`].
    pub fn reset_code(&self) -> Option<u32> {
        match self {
            Violation::TooManyStreams { .. } => Some(super::RESET_TOO_MANY_STREAMS),
            _ => None,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::CreditExceeded { id, end, limit } => write!(
                f,
                "stream {id}: data up to offset {end} exceeds the credit granted ({limit})"
            ),
            Violation::TooManyStreams { id, limit } => write!(
                f,
                "stream {id} refused: the peer already has {limit} streams open (the limit)"
            ),
            Violation::DataAfterFin { id } => {
                write!(f, "stream {id}: data or fin after the peer's fin")
            }
            Violation::UnknownStream { id } => {
                write!(f, "stream {id} was never opened on this connection")
            }
            Violation::BadStreamId { id, expected } => write!(
                f,
                "stream open with id {id}: the peer's next stream id is {expected}"
            ),
            Violation::BadOffset {
                id,
                offset,
                expected,
            } => write!(
                f,
                "stream {id}: data at offset {offset}, {expected} bytes were received"
            ),
            Violation::Backlog { queued } => write!(
                f,
                "{queued} stream control messages queued: the driver must stop reading while wants_read() is false"
            ),
            Violation::Malformed(why) => write!(f, "malformed stream message: {why}"),
        }
    }
}

impl std::error::Error for Violation {}

impl From<ProtoError> for Violation {
    fn from(e: ProtoError) -> Violation {
        match e {
            ProtoError::Malformed(why) => Violation::Malformed(why),
            _ => Violation::Malformed("stream message does not decode"),
        }
    }
}

/// Why the table refused a call of this side's (the connection stays up).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// No stream of this id is open on the connection: never opened, reset (by either
    /// side), or ended both ways.
    NoSuchStream {
        /// The id given.
        id: u64,
    },
    /// `write` or `finish` after `finish`: this side's direction is closed.
    Finished {
        /// The stream.
        id: u64,
    },
    /// The peer opened the stream and it was not accepted yet: call
    /// [`StreamTable::accept`](super::StreamTable::accept) (or reset it) first.
    NotAccepted {
        /// The stream.
        id: u64,
    },
    /// `accept` for a stream that does not wait for acceptance (this side opened it,
    /// or it was accepted already).
    NotPending {
        /// The stream.
        id: u64,
    },
    /// This side has [`StreamConfig::max_streams`](super::StreamConfig::max_streams)
    /// streams of its own open; finish or reset one first.
    TooManyStreams {
        /// The limit.
        limit: usize,
    },
    /// [`MAX_CONTROL_QUEUED`](super::MAX_CONTROL_QUEUED) opens and resets wait for the
    /// transmit path: transmit (`poll_transmit`) first, then open.
    Backlog {
        /// Control messages queued.
        queued: usize,
    },
    /// 2^63 streams were opened on this connection; open a new connection.
    IdsExhausted,
    /// The handler name is not 1..=255 bytes.
    BadName(&'static str),
    /// The connection is closed: no stream call can be made on it.
    ConnectionClosed,
    /// The connection is draining as the losing duplicate (spec 5.1): it opens no new
    /// stream; open it on the peer's other connection.
    Draining,
    /// The peer does not speak streams (its Hello lacks the feature bit), or this side
    /// did not enable them.
    NotNegotiated,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::NoSuchStream { id } => write!(
                f,
                "no stream {id} is open on this connection (never opened, reset, or ended)"
            ),
            StreamError::Finished { id } => {
                write!(f, "stream {id}: this side already finished writing")
            }
            StreamError::NotAccepted { id } => {
                write!(f, "stream {id}: accept or reset the peer's stream first")
            }
            StreamError::NotPending { id } => {
                write!(f, "stream {id} does not wait for acceptance")
            }
            StreamError::TooManyStreams { limit } => write!(
                f,
                "{limit} streams of this side are open (the limit): finish or reset one first"
            ),
            StreamError::Backlog { queued } => write!(
                f,
                "{queued} stream opens and resets wait to be transmitted: call poll_transmit, then open"
            ),
            StreamError::IdsExhausted => {
                f.write_str("stream ids exhausted on this connection: open a new connection")
            }
            StreamError::BadName(why) => write!(f, "bad stream handler name: {why}"),
            StreamError::ConnectionClosed => f.write_str("the connection is closed"),
            StreamError::Draining => f.write_str("the connection is draining"),
            StreamError::NotNegotiated => f.write_str("the peer does not speak streams"),
        }
    }
}

impl std::error::Error for StreamError {}
