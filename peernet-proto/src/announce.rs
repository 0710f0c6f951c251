//! The 39-byte LAN discovery announcement (spec 8).

use crate::{Key, ProtoError};

/// Exact size of an announcement datagram.
pub const ANNOUNCE_LEN: usize = 39;
/// Default UDP discovery port.
pub const DEFAULT_DISCOVERY_PORT: u16 = 4040;
/// The four magic bytes that start every announcement.
pub const ANNOUNCE_MAGIC: &[u8; 4] = b"PNET";
/// Announcement format version.
const ANNOUNCE_VERSION: u8 = 0x01;

/// An unauthenticated hint: "the node with this key accepts TCP on this port at my
/// source address".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    /// The sender's TCP listen port.
    pub tcp_port: u16,
    /// The sender's static public key.
    pub key: Key,
}

impl Announcement {
    /// `"PNET" ‖ 0x01 ‖ tcp_port BE ‖ key`.
    pub fn encode(&self) -> [u8; ANNOUNCE_LEN] {
        let mut out = [0u8; ANNOUNCE_LEN];
        out[0..4].copy_from_slice(ANNOUNCE_MAGIC);
        out[4] = ANNOUNCE_VERSION;
        out[5..7].copy_from_slice(&self.tcp_port.to_be_bytes());
        out[7..39].copy_from_slice(self.key.as_bytes());
        out
    }

    /// Reads a datagram; any other length, magic or version is
    /// [`ProtoError::BadAnnouncement`].
    pub fn decode(b: &[u8]) -> Result<Announcement, ProtoError> {
        let b: &[u8; ANNOUNCE_LEN] = b
            .try_into()
            .map_err(|_| ProtoError::BadAnnouncement("length is not 39"))?;
        if &b[0..4] != ANNOUNCE_MAGIC {
            return Err(ProtoError::BadAnnouncement("bad magic"));
        }
        if b[4] != ANNOUNCE_VERSION {
            return Err(ProtoError::BadAnnouncement("unknown version"));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&b[7..39]);
        Ok(Announcement {
            tcp_port: u16::from_be_bytes([b[5], b[6]]),
            key: Key(key),
        })
    }
}
