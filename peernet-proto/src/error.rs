//! The single error type of the protocol crate.

use std::fmt;

use crate::connection::ConnectionError;

/// Everything that can go wrong while encoding, decoding or running the protocol.
///
/// Every variant is a refusal of some input (network bytes, a file, or a caller's
/// misuse); none of them is a bug in this crate.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// A frame header announced a body length of 0 (spec 2).
    FrameEmpty,
    /// A frame header announced a body longer than the receiver's limit (spec 2).
    FrameTooLarge {
        /// The announced body length.
        len: usize,
        /// The limit it was checked against.
        limit: usize,
    },
    /// An envelope or RPC body that does not decode (spec 5, 6).
    Malformed(&'static str),
    /// A Hello payload that is rejected (spec 3.2).
    BadHello(&'static str),
    /// A Noise error, or handshake misuse (wrong step, non-empty M1 payload, ...).
    Handshake(String),
    /// A transport frame failed authentication (spec 4).
    Decrypt,
    /// The AEAD refused to seal an envelope (ChaCha20's per-message length limit,
    /// about 256 GiB). Never reported as a frame-size error: nothing was framed yet.
    Seal,
    /// The channel counter reached 2^64 - 1; the connection must be closed (spec 4).
    NonceExhausted,
    /// A public key's text form is not 64 hex digits.
    BadKeyHex,
    /// A discovery datagram of the wrong length, magic or version (spec 8).
    BadAnnouncement(&'static str),
    /// An identity keyfile that fails a check (spec 7); the caller adds the file name.
    KeyFile(String),
    /// A trust file that fails to parse, at a 1-based line number.
    TrustFile {
        /// 1-based line number of the offending line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A public key of small order (see `Key::is_low_order`): refused for trust and in
    /// handshakes, since a Diffie-Hellman with it has a fixed, public result.
    LowOrderKey,
    /// A trust-entry label that is too long or contains control characters.
    BadLabel(&'static str),
    /// A manual peer address that is not `host:port` (see `peer_addr`).
    BadAddress(String),
    /// The connection machine refused a command or closed the connection (see
    /// [`ConnectionError`] for its kinds: state, crypto, malformed, limit).
    Connection(ConnectionError),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::FrameEmpty => f.write_str("empty frame (length 0)"),
            ProtoError::FrameTooLarge { len, limit } => {
                write!(f, "frame too large: {len} bytes, limit {limit}")
            }
            ProtoError::Malformed(why) => write!(f, "malformed message: {why}"),
            ProtoError::BadHello(why) => write!(f, "bad hello: {why}"),
            ProtoError::Handshake(why) => write!(f, "handshake failed: {why}"),
            ProtoError::Decrypt => f.write_str("frame failed authentication"),
            ProtoError::Seal => f.write_str("the AEAD refused to seal the envelope"),
            ProtoError::NonceExhausted => f.write_str("channel nonce exhausted"),
            ProtoError::BadKeyHex => f.write_str("a public key must be 64 hex digits"),
            ProtoError::BadAnnouncement(why) => write!(f, "bad announcement: {why}"),
            ProtoError::KeyFile(why) => write!(f, "bad identity keyfile: {why}"),
            ProtoError::TrustFile { line, reason } => {
                write!(f, "bad trust file, line {line}: {reason}")
            }
            ProtoError::BadLabel(why) => write!(f, "bad label: {why}"),
            ProtoError::BadAddress(why) => write!(f, "bad peer address: {why}"),
            ProtoError::LowOrderKey => f.write_str(
                "a low-order (small-subgroup) X25519 point is not a usable public key; \
                 check that the key was copied from the peer's identity",
            ),
            ProtoError::Connection(e) => write!(f, "connection: {e}"),
        }
    }
}

impl std::error::Error for ProtoError {}

impl From<ConnectionError> for ProtoError {
    fn from(e: ConnectionError) -> ProtoError {
        ProtoError::Connection(e)
    }
}
