//! The short-code rendezvous: the inviter's UDP datagram "pairing available for code
//! number N on TCP port P", sent to the discovery port's broadcast targets.
//!
//! `"PNPR" ‖ 0x01 ‖ number u16 BE ‖ tcp_port u16 BE`: exactly 9 bytes. It carries
//! nothing derived from the code's words (they are the SPAKE2 password). Being 9 bytes
//! with another magic, the 39-byte discovery announcement decoder drops it.

use super::PairError;

/// Exact size of a pairing announcement.
pub const PAIR_ANNOUNCE_LEN: usize = 9;
/// Its magic.
pub const PAIR_ANNOUNCE_MAGIC: &[u8; 4] = b"PNPR";

/// "Pairing for code number `number` is accepted on TCP port `tcp_port` at my source
/// address." Unauthenticated, like discovery: a forged one only makes the joiner dial
/// somewhere that cannot complete SPAKE2 without the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairAnnounce {
    /// The short code's public number.
    pub number: u16,
    /// The inviter's pairing listener port.
    pub tcp_port: u16,
}

impl PairAnnounce {
    /// Encodes the 9 bytes.
    pub fn encode(&self) -> [u8; PAIR_ANNOUNCE_LEN] {
        let mut out = [0u8; PAIR_ANNOUNCE_LEN];
        out[..4].copy_from_slice(PAIR_ANNOUNCE_MAGIC);
        out[4] = super::messages::VERSION;
        out[5..7].copy_from_slice(&self.number.to_be_bytes());
        out[7..9].copy_from_slice(&self.tcp_port.to_be_bytes());
        out
    }

    /// Decodes exactly 9 bytes of the right magic and version; port 0 is refused.
    pub fn decode(b: &[u8]) -> Result<PairAnnounce, PairError> {
        let b: &[u8; PAIR_ANNOUNCE_LEN] = b
            .try_into()
            .map_err(|_| PairError::Malformed("pair announcement: length is not 9"))?;
        if &b[..4] != PAIR_ANNOUNCE_MAGIC || b[4] != super::messages::VERSION {
            return Err(PairError::Malformed(
                "pair announcement: bad magic or version",
            ));
        }
        let tcp_port = u16::from_be_bytes([b[7], b[8]]);
        if tcp_port == 0 {
            return Err(PairError::Malformed("pair announcement: port 0"));
        }
        Ok(PairAnnounce {
            number: u16::from_be_bytes([b[5], b[6]]),
            tcp_port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_others() {
        let a = PairAnnounce {
            number: 7,
            tcp_port: 40000,
        };
        assert_eq!(a.encode(), *b"PNPR\x01\x00\x07\x9c\x40");
        assert_eq!(PairAnnounce::decode(&a.encode()), Ok(a));
        assert!(PairAnnounce::decode(b"PNPR\x01\x00\x07\x00\x00").is_err());
        assert!(PairAnnounce::decode(b"PNET\x01\x00\x07\x9c\x40").is_err());
        assert!(PairAnnounce::decode(&[0; 39]).is_err());
    }
}
