//! The pairing messages that are not plain Noise messages (docs/protocol.md,
//! "Pairing"). Every decoder checks the exact length before it reads.

use super::PairError;

/// The magic that starts the joiner's first message.
pub const OPEN_MAGIC: &[u8; 6] = b"PNPAIR";
/// Pairing protocol version.
pub const VERSION: u8 = 1;
/// Length of a Noise M1 in `XXpsk3`: the ephemeral key and the 16-byte tag of the
/// empty payload (in a psk pattern `e` also keys the cipher, so M1 is encrypted).
pub const NOISE_M1_LEN: usize = 48;
/// Length of a SPAKE2 Ed25519 message (side byte and a point).
pub const PAKE_MSG_LEN: usize = 33;
/// Longest name in a [`PairHello`], in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// How the joiner proves the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ticket: the psk is derived from the ticket's secret.
    Ticket = 1,
    /// Short code: the psk is derived from SPAKE2 over the code.
    Code = 2,
}

/// The joiner's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Open {
    /// `"PNPAIR" ‖ 0x01 ‖ 0x01 ‖ Noise M1 (48)`: 56 bytes.
    Ticket {
        /// The Noise `XXpsk3` first message.
        m1: [u8; NOISE_M1_LEN],
    },
    /// `"PNPAIR" ‖ 0x01 ‖ 0x02 ‖ number u16 BE ‖ SPAKE2 message (33)`: 43 bytes.
    Code {
        /// The code number the joiner targets.
        number: u16,
        /// The joiner's SPAKE2 message (side A).
        pake: [u8; PAKE_MSG_LEN],
    },
}

impl Open {
    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 2 + PAKE_MSG_LEN);
        out.extend_from_slice(OPEN_MAGIC);
        out.push(VERSION);
        match self {
            Open::Ticket { m1 } => {
                out.push(Mode::Ticket as u8);
                out.extend_from_slice(m1);
            }
            Open::Code { number, pake } => {
                out.push(Mode::Code as u8);
                out.extend_from_slice(&number.to_be_bytes());
                out.extend_from_slice(pake);
            }
        }
        out
    }

    /// Decodes exactly one of the two forms.
    pub fn decode(b: &[u8]) -> Result<Open, PairError> {
        let head = b
            .get(..8)
            .ok_or(PairError::Malformed("open message too short"))?;
        if &head[..6] != OPEN_MAGIC {
            return Err(PairError::Malformed("not a pairing message (bad magic)"));
        }
        if head[6] != VERSION {
            return Err(PairError::Malformed("unknown pairing version"));
        }
        let rest = &b[8..];
        match head[7] {
            1 => {
                let m1 = rest
                    .try_into()
                    .map_err(|_| PairError::Malformed("ticket open: wrong length"))?;
                Ok(Open::Ticket { m1 })
            }
            2 => {
                if rest.len() != 2 + PAKE_MSG_LEN {
                    return Err(PairError::Malformed("code open: wrong length"));
                }
                let number = u16::from_be_bytes([rest[0], rest[1]]);
                let mut pake = [0u8; PAKE_MSG_LEN];
                pake.copy_from_slice(&rest[2..]);
                Ok(Open::Code { number, pake })
            }
            _ => Err(PairError::Malformed("unknown pairing mode")),
        }
    }
}

/// Splits `b` into two fixed-size parts, refusing any other length.
pub(super) fn split2<const A: usize, const B: usize>(
    b: &[u8],
    what: &'static str,
) -> Result<([u8; A], [u8; B]), PairError> {
    if b.len() != A + B {
        return Err(PairError::Malformed(what));
    }
    let mut a = [0u8; A];
    let mut c = [0u8; B];
    a.copy_from_slice(&b[..A]);
    c.copy_from_slice(&b[A..]);
    Ok((a, c))
}

/// What each side tells the other inside the encrypted session, after the handshake:
/// `0x01 ‖ listen_port u16 BE ‖ name_len u8 ‖ name (UTF-8, ≤ 64 bytes, no control
/// characters)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairHello {
    /// The TCP port the sender's node accepts connections on (0: none).
    pub listen_port: u16,
    /// The sender's chosen name: the other side's label for it.
    pub name: String,
}

impl PairHello {
    /// A PairHello; a name over 64 bytes or with control characters is refused.
    pub fn new(name: &str, listen_port: u16) -> Result<PairHello, PairError> {
        check_name(name)?;
        Ok(PairHello {
            listen_port,
            name: name.to_owned(),
        })
    }

    /// Encodes it (at most 68 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let name = self.name.as_bytes();
        let name = name.get(..name.len().min(MAX_NAME_LEN)).unwrap_or(&[]);
        let mut out = Vec::with_capacity(4 + name.len());
        out.push(VERSION);
        out.extend_from_slice(&self.listen_port.to_be_bytes());
        // At most 64.
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out
    }

    /// Decodes exactly one PairHello.
    pub fn decode(b: &[u8]) -> Result<PairHello, PairError> {
        if b.len() < 4 || b.len() > 4 + MAX_NAME_LEN {
            return Err(PairError::Malformed("pair hello: wrong length"));
        }
        if b[0] != VERSION {
            return Err(PairError::Malformed("pair hello: unknown version"));
        }
        let listen_port = u16::from_be_bytes([b[1], b[2]]);
        if usize::from(b[3]) != b.len() - 4 {
            return Err(PairError::Malformed(
                "pair hello: name length does not match",
            ));
        }
        let name = std::str::from_utf8(&b[4..])
            .map_err(|_| PairError::Malformed("pair hello: name is not UTF-8"))?;
        check_name(name)?;
        Ok(PairHello {
            listen_port,
            name: name.to_owned(),
        })
    }
}

fn check_name(name: &str) -> Result<(), PairError> {
    if name.len() > MAX_NAME_LEN {
        return Err(PairError::Malformed("name longer than 64 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(PairError::Malformed("name contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_hello_round_trip_and_refuse_garbage() {
        let o = Open::Code {
            number: 7,
            pake: [0x41; PAKE_MSG_LEN],
        };
        assert_eq!(Open::decode(&o.encode()).unwrap(), o);
        let t = Open::Ticket { m1: [9; 48] };
        assert_eq!(Open::decode(&t.encode()).unwrap(), t);
        let mut bad = t.encode();
        bad.push(0);
        assert!(Open::decode(&bad).is_err());
        assert!(Open::decode(b"PNPAIR\x02\x01").is_err());
        let h = PairHello::new("laptop", 7100).unwrap();
        assert_eq!(PairHello::decode(&h.encode()).unwrap(), h);
        assert!(PairHello::new(&"x".repeat(65), 1).is_err());
        assert!(PairHello::new("a\nb", 1).is_err());
        assert!(PairHello::decode(&[1, 0, 0, 5, b'a']).is_err());
    }
}
