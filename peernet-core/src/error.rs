//! The one error type of the public API.

use std::fmt;
use std::path::PathBuf;

use peernet_proto::ProtoError;

/// File name of the lock inside the data directory (it holds the holder's pid; see
/// `datadir.rs`). Defined here because the `Busy` message names it.
pub const LOCK_FILE: &str = "node.lock";

/// Everything that can go wrong in a PeerNet operation.
///
/// Each variant maps to one status code of the C API and one exception class of the
/// Python package, so the bindings stay thin.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A caller passed a value outside its domain (bad name, size, address, ...).
    InvalidArgument(String),
    /// An operating-system I/O error, with what was being done.
    Io {
        /// What PeerNet was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A persistent file exists but does not parse; it is never replaced silently.
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (with a line number where that applies).
        detail: String,
    },
    /// No live connection to that peer.
    NotConnected,
    /// The deadline passed before the operation completed.
    Timeout,
    /// The peer exposes no handler of that name (the name asked for).
    NoSuchHandler(String),
    /// The peer's handler refused this caller.
    Forbidden,
    /// The peer's handler failed; its message.
    HandlerFailed(String),
    /// A queue was full; nothing ran.
    Overloaded,
    /// The peer's key is not trusted (here or there).
    UntrustedPeer(String),
    /// The Noise handshake failed (bad message, timeout, closed).
    HandshakeFailed(String),
    /// A message exceeds the receiver's frame limit; nothing was sent and the
    /// connection stays up. A call or send is checked against the peer's `max_frame`
    /// (from its Hello) before it is sent.
    PayloadTooLarge {
        /// Bytes of the payload the caller passed (the body of the call or send).
        len: usize,
        /// The receiver's frame limit (its `max_frame`), in bytes.
        limit: usize,
        /// Bytes of each frame that go to the envelope and the tag (the name, the call
        /// id, ...), so at most `limit - overhead` payload bytes fit; 0 when unknown.
        overhead: usize,
    },
    /// The thing already exists (a handler name, ...).
    AlreadyExists(String),
    /// The connection or node closed before the operation completed; who closed it
    /// and why.
    Closed(CloseReason),
    /// A bug inside PeerNet (a contained panic, a broken invariant).
    Internal(String),
    /// The peer reset the stream, or refused to open it: its code (0 cancelled, 1
    /// refused — no stream handler of that name, not authorized, or a peer without
    /// streams —, 2 too many streams; 16 and up the application's) and reason.
    StreamReset {
        /// The reset code.
        code: u32,
        /// The peer's reason (may be empty).
        reason: String,
    },
    /// Another node (in this process or another) holds the data directory: two
    /// processes writing one identity and trust store would undo each other's changes.
    Busy {
        /// The data directory.
        path: PathBuf,
        /// The process holding it, as written in its lock file (`None` if unreadable).
        pid: Option<u32>,
    },
}

/// Who closed a connection (or the node), and why: the cause carried by
/// [`Error::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer said Goodbye; its reason (`closing`, `trust revoked`, ...).
    PeerGoodbye(String),
    /// The peer closed the socket without a Goodbye (it exited or crashed).
    PeerEof,
    /// The connection failed (reset by the peer, a socket error); the error.
    Io(String),
    /// This node stopped or is stopping (`shutdown`, dropped, `peernet_node_free`).
    LocalShutdown,
    /// This program closed it (`disconnect`).
    LocalDisconnect,
    /// This node no longer trusts the peer (`untrust`).
    TrustRevoked,
    /// The peer answered no heartbeat within the heartbeat timeout.
    HeartbeatTimeout,
    /// The connection lost to a newer duplicate between the same two nodes.
    Duplicate,
    /// A frame failed to open or an envelope failed to decode; the detail.
    Protocol(String),
    /// This node closed it for another reason; the reason.
    Local(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerGoodbye(r) => {
                write!(f, "the peer closed the connection (Goodbye: {r})")
            }
            CloseReason::PeerEof => {
                f.write_str("the peer closed the connection without a Goodbye (did it exit?)")
            }
            CloseReason::Io(m) => write!(f, "the connection failed: {m}"),
            CloseReason::LocalShutdown => f.write_str("this node is shutting down or stopped"),
            CloseReason::LocalDisconnect => {
                f.write_str("this program disconnected the peer (disconnect)")
            }
            CloseReason::TrustRevoked => {
                f.write_str("this node revoked its trust in the peer (untrust)")
            }
            CloseReason::HeartbeatTimeout => f.write_str(
                "the peer stopped answering heartbeats (heartbeat timeout; is the network up?)",
            ),
            CloseReason::Duplicate => {
                f.write_str("the connection lost to a newer duplicate connection")
            }
            CloseReason::Protocol(m) => write!(f, "protocol error: {m}"),
            CloseReason::Local(m) => write!(f, "this node closed it: {m}"),
        }
    }
}

impl CloseReason {
    /// A stable lower-case name of the kind ("peer_goodbye", "peer_eof", "io",
    /// "local_shutdown", "local_disconnect", "trust_revoked", "heartbeat_timeout",
    /// "duplicate", "protocol", "local"): what the Python package reports and what the
    /// C enum `peernet_close_reason` is named after.
    pub fn code(&self) -> &'static str {
        match self {
            CloseReason::PeerGoodbye(_) => "peer_goodbye",
            CloseReason::PeerEof => "peer_eof",
            CloseReason::Io(_) => "io",
            CloseReason::LocalShutdown => "local_shutdown",
            CloseReason::LocalDisconnect => "local_disconnect",
            CloseReason::TrustRevoked => "trust_revoked",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::Duplicate => "duplicate",
            CloseReason::Protocol(_) => "protocol",
            CloseReason::Local(_) => "local",
        }
    }
}

/// Result alias of the public API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A `NoSuchHandler` from the peer names the handler asked for (the Reply does not).
    pub(crate) fn for_handler(self, name: &str) -> Error {
        match self {
            Error::NoSuchHandler(_) => Error::NoSuchHandler(name.to_owned()),
            other => other,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::CorruptFile { path, detail } => {
                write!(f, "corrupt file {}: {detail}", path.display())
            }
            Error::NotConnected => f.write_str("not connected"),
            Error::Timeout => f.write_str("timed out"),
            Error::NoSuchHandler(name) => write!(
                f,
                "no such handler: the peer exposes no handler {name:?} (check the name, \
                 or expose it on the peer)"
            ),
            Error::Forbidden => f.write_str("forbidden"),
            Error::HandlerFailed(m) => write!(f, "handler failed: {m}"),
            Error::Overloaded => f.write_str("overloaded"),
            Error::UntrustedPeer(m) => write!(f, "untrusted peer: {m}"),
            Error::HandshakeFailed(m) => write!(f, "handshake failed: {m}"),
            Error::PayloadTooLarge {
                len,
                limit,
                overhead: 0,
            } => write!(
                f,
                "payload too large: {len} bytes, over the receiver's max_frame of {limit} bytes"
            ),
            Error::PayloadTooLarge {
                len,
                limit,
                overhead,
            } => write!(
                f,
                "payload too large: {len} bytes sent, but the peer's max_frame is {limit} \
                 bytes ({overhead} of them envelope), so at most {} payload bytes fit; \
                 send less, or raise max_frame on the peer",
                limit.saturating_sub(*overhead)
            ),
            Error::AlreadyExists(m) => write!(f, "already exists: {m}"),
            Error::Closed(why) => write!(f, "closed: {why}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
            Error::StreamReset { code, reason } if reason.is_empty() => {
                write!(f, "stream reset by the peer (code {code})")
            }
            Error::StreamReset { code, reason } => {
                write!(f, "stream reset by the peer (code {code}): {reason}")
            }
            Error::Busy { path, pid } => {
                let who = pid.map_or("another process".to_owned(), |p| format!("process {p}"));
                write!(
                    f,
                    "busy: data directory {} is held by a running PeerNet node ({who}, \
                     see {}); stop that node, or give this one another data directory",
                    path.display(),
                    path.join(LOCK_FILE).display()
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ProtoError> for Error {
    fn from(e: ProtoError) -> Error {
        match e {
            ProtoError::BadKeyHex
            | ProtoError::BadLabel(_)
            | ProtoError::BadAddress(_)
            | ProtoError::LowOrderKey => Error::InvalidArgument(e.to_string()),
            ProtoError::Handshake(_) | ProtoError::BadHello(_) => {
                Error::HandshakeFailed(e.to_string())
            }
            ProtoError::FrameTooLarge { len, limit } => Error::PayloadTooLarge {
                len,
                limit,
                overhead: 0,
            },
            other => Error::Internal(other.to_string()),
        }
    }
}
