//! The one error type of the public API.

use std::fmt;
use std::path::PathBuf;

use peernet_proto::ProtoError;

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
    /// The peer exposes no handler of that name.
    NoSuchHandler,
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
    /// A message exceeds the receiver's frame limit; the connection stays up.
    PayloadTooLarge {
        /// Bytes the frame would have.
        len: usize,
        /// The receiver's limit.
        limit: usize,
    },
    /// The thing already exists (a handler name, ...).
    AlreadyExists(String),
    /// The connection or node closed before the operation completed.
    Closed,
    /// A bug inside PeerNet (a contained panic, a broken invariant).
    Internal(String),
    /// Another node (in this process or another) holds the data directory: two
    /// processes writing one identity and trust store would undo each other's changes.
    Busy {
        /// The data directory.
        path: PathBuf,
        /// The process holding it, as written in its lock file (`None` if unreadable).
        pid: Option<u32>,
    },
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
            Error::NoSuchHandler => f.write_str("no such handler"),
            Error::Forbidden => f.write_str("forbidden"),
            Error::HandlerFailed(m) => write!(f, "handler failed: {m}"),
            Error::Overloaded => f.write_str("overloaded"),
            Error::UntrustedPeer(m) => write!(f, "untrusted peer: {m}"),
            Error::HandshakeFailed(m) => write!(f, "handshake failed: {m}"),
            Error::PayloadTooLarge { len, limit } => {
                write!(f, "payload too large: {len} bytes, limit {limit}")
            }
            Error::AlreadyExists(m) => write!(f, "already exists: {m}"),
            Error::Closed => f.write_str("closed"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
            Error::Busy { path, pid } => {
                let who = pid.map_or("another process".to_owned(), |p| format!("process {p}"));
                write!(
                    f,
                    "busy: data directory {} is held by a running PeerNet node ({who}, \
                     see {}); stop that node, or give this one another data directory",
                    path.display(),
                    path.join(crate::datadir::LOCK_FILE).display()
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
            ProtoError::BadKeyHex | ProtoError::BadLabel(_) | ProtoError::LowOrderKey => {
                Error::InvalidArgument(e.to_string())
            }
            ProtoError::Handshake(_) | ProtoError::BadHello(_) => {
                Error::HandshakeFailed(e.to_string())
            }
            ProtoError::FrameTooLarge { len, limit } => Error::PayloadTooLarge { len, limit },
            other => Error::Internal(other.to_string()),
        }
    }
}
