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

    /// True for a point of small order (1, 2, 4 or 8) on Curve25519, in any encoding
    /// X25519 accepts (the ignored top bit set, or non-canonical values at or above p).
    /// A Diffie-Hellman with such a point gives the same output (all zeros) whatever
    /// the other side's secret: it must never be trusted, nor accepted as a handshake
    /// key. Checked against [`LOW_ORDER_POINTS`], and by computing a DH with a fixed
    /// clamped scalar (zero output exactly for the small-order points), so an encoding
    /// missing from the list is still caught.
    pub fn is_low_order(&self) -> bool {
        let mut masked = self.0;
        masked[31] &= 0x7f;
        if LOW_ORDER_POINTS.contains(&masked) {
            return true;
        }
        // A clamped scalar is a multiple of 8 and not a multiple of the prime order,
        // so the product is the identity (encoded as all zeros) only for points whose
        // order divides 8.
        x25519_dalek::x25519(PROBE_SCALAR, self.0) == [0u8; 32]
    }

    /// Display fingerprint (not for security): the first 8 bytes of SHA-256(key)
    /// as 16 lowercase hex digits.
    pub fn fingerprint(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, &self.0);
        let bytes = d.as_ref();
        hex_lower(bytes.get(..8).unwrap_or(bytes))
    }
}

/// The well-known small-order Curve25519 points (top bit clear): 0 (order 4), 1
/// (order 1), the two points of order 8, p-1 (order 2), and the non-canonical p (= 0)
/// and p+1 (= 1). With the top bit set (X25519 ignores it) they are low order too:
/// [`Key::is_low_order`] masks it before comparing.
pub const LOW_ORDER_POINTS: [[u8; 32]; 7] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// The scalar [`Key::is_low_order`] multiplies by (X25519 clamps it).
const PROBE_SCALAR: [u8; 32] = [0x5a; 32];

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
    fn low_order_points_are_recognised_in_every_encoding() {
        for p in LOW_ORDER_POINTS {
            assert!(Key(p).is_low_order(), "{}", Key(p));
            let mut high = p;
            high[31] |= 0x80;
            assert!(Key(high).is_low_order(), "{}", Key(high));
        }
        // The DH probe alone (an encoding missing from the list) agrees on each.
        for p in LOW_ORDER_POINTS {
            assert_eq!(x25519_dalek::x25519(PROBE_SCALAR, p), [0u8; 32]);
        }
        // A real public key (the base point 9, and a keyfile-derived one) is not.
        let mut nine = [0u8; 32];
        nine[0] = 9;
        assert!(!Key(nine).is_low_order());
        assert!(!crate::keyfile::public_from_private(&[7; 32]).is_low_order());
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
