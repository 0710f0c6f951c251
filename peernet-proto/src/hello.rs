//! The Hello payload carried by handshake messages M2 and M3 (spec 3.2).

use crate::frame::MIN_MAX_FRAME_LEN;
use crate::ProtoError;

/// Encoded size of a Hello.
pub const HELLO_LEN: usize = 16;
/// The protocol revision this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// What each side tells the other during the handshake (16 bytes, LE, bincode layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Revision of protocol 1 the sender speaks (>= 1); both sides use the lower one.
    pub protocol_version: u16,
    /// Largest transport frame body the sender accepts (>= 65,536).
    pub max_frame_len: u32,
    /// TCP port the sender accepts connections on; 0 = none.
    pub listen_port: u16,
    /// Optional feature bits; 0 in v1; unknown bits are ignored.
    pub features: u64,
}

impl Hello {
    /// A v1 Hello with no features.
    pub fn new(max_frame_len: u32, listen_port: u16) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            max_frame_len,
            listen_port,
            features: 0,
        }
    }

    /// The 16-byte wire form.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        out[0..2].copy_from_slice(&self.protocol_version.to_le_bytes());
        out[2..6].copy_from_slice(&self.max_frame_len.to_le_bytes());
        out[6..8].copy_from_slice(&self.listen_port.to_le_bytes());
        out[8..16].copy_from_slice(&self.features.to_le_bytes());
        out
    }

    /// Reads a Hello; bytes after the 16th are ignored.
    ///
    /// [`ProtoError::BadHello`] when shorter than 16 bytes, protocol_version is 0 or
    /// max_frame_len is below 65,536. Higher versions are accepted.
    pub fn decode(bytes: &[u8]) -> Result<Hello, ProtoError> {
        let Some(b) = bytes.first_chunk::<HELLO_LEN>() else {
            return Err(ProtoError::BadHello("shorter than 16 bytes"));
        };
        let hello = Hello {
            protocol_version: u16::from_le_bytes([b[0], b[1]]),
            max_frame_len: u32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            listen_port: u16::from_le_bytes([b[6], b[7]]),
            features: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
        };
        if hello.protocol_version == 0 {
            return Err(ProtoError::BadHello("protocol_version 0"));
        }
        if hello.max_frame_len < MIN_MAX_FRAME_LEN {
            return Err(ProtoError::BadHello("max_frame_len below 65536"));
        }
        Ok(hello)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use bincode::Options;

    #[derive(serde::Serialize)]
    struct BincodeHello {
        protocol_version: u16,
        max_frame_len: u32,
        listen_port: u16,
        features: u64,
    }

    #[test]
    fn matches_bincode_layout() {
        let h = Hello {
            protocol_version: 0x0102,
            max_frame_len: 0x0304_0506,
            listen_port: 0x0708,
            features: 0x090a_0b0c_0d0e_0f10,
        };
        let reference = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_little_endian()
            .serialize(&BincodeHello {
                protocol_version: h.protocol_version,
                max_frame_len: h.max_frame_len,
                listen_port: h.listen_port,
                features: h.features,
            })
            .unwrap();
        assert_eq!(h.encode().as_slice(), reference.as_slice());
        assert_eq!(Hello::decode(&reference).unwrap(), h);
    }
}
