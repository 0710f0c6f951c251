//! [`Key`]: an X25519 public key, the identity of a node (spec 7).

use std::fmt;
use std::str::FromStr;

use crate::ProtoError;

/// An X25519 public key: a node's identity.
///
/// `Ord` is bytewise, as used by the duplicate-connection rule (spec 5.1).
/// `Display` prints the 64-digit lowercase hex form, `Debug` the short fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// Wraps 32 raw key bytes.
    pub const fn from_bytes(b: [u8; 32]) -> Key {
        Key(b)
    }

    /// The 32 raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The text form: 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex_lower(&self.0)
    }

    /// Parses exactly 64 hex digits (either case); anything else is [`ProtoError::BadKeyHex`].
    pub fn from_hex(s: &str) -> Result<Key, ProtoError> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(ProtoError::BadKeyHex);
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            let hi = hex_digit(pair[0]).ok_or(ProtoError::BadKeyHex)?;
            let lo = hex_digit(pair[1]).ok_or(ProtoError::BadKeyHex)?;
            *o = (hi << 4) | lo;
        }
        Ok(Key(out))
    }

    /// Display fingerprint (not for security): the first 8 bytes of SHA-256(key)
    /// as 16 lowercase hex digits.
    pub fn fingerprint(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, &self.0);
        let bytes = d.as_ref();
        hex_lower(bytes.get(..8).unwrap_or(bytes))
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.fingerprint())
    }
}

impl FromStr for Key {
    type Err = ProtoError;
    fn from_str(s: &str) -> Result<Key, ProtoError> {
        Key::from_hex(s)
    }
}

impl From<[u8; 32]> for Key {
    fn from(b: [u8; 32]) -> Key {
        Key(b)
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        let k = Key([0xab; 32]);
        assert_eq!(k.to_hex(), "ab".repeat(32));
        assert_eq!(Key::from_hex(&"AB".repeat(32)).unwrap(), k);
        assert_eq!("aB".repeat(32).parse::<Key>().unwrap(), k);
    }

    #[test]
    fn hex_rejects() {
        for s in [
            "",
            "ab",
            &"ab".repeat(33),
            &"zz".repeat(32),
            &format!("{}é", "a".repeat(62)),
        ] {
            assert_eq!(Key::from_hex(s), Err(ProtoError::BadKeyHex), "{s}");
        }
        // 63 digits plus a multi-byte char is 64+ bytes: still rejected
        assert!(Key::from_hex(&format!("{}+", "a".repeat(63))).is_err());
    }

    #[test]
    fn ord_is_bytewise() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        a[0] = 1;
        b[31] = 0xff;
        assert!(Key(b) < Key(a));
    }
}
