//! The 71-byte identity keyfile (spec 7) and X25519 key helpers.
//!
//! Private keys are plain `[u8; 32]` arrays here: no type of this module has a
//! `Debug` that could print them, and errors never contain key bytes.

use ring::rand::SecureRandom;

use crate::{Key, ProtoError};

/// Exact keyfile size.
pub const KEYFILE_LEN: usize = 71;
const MAGIC: &[u8; 4] = b"PNID";
const VERSION: u8 = 0x02;
const KEY_LEN_BYTE: u8 = 0x20;

/// The X25519 public key of a private key (clamped as X25519 does).
pub fn public_from_private(private: &[u8; 32]) -> Key {
    let secret = x25519_dalek::StaticSecret::from(*private);
    Key(x25519_dalek::PublicKey::from(&secret).to_bytes())
}

/// 32 random bytes from the operating system, stored as generated (unclamped).
pub fn generate_private() -> Result<[u8; 32], ProtoError> {
    let mut private = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut private)
        .map_err(|_| ProtoError::KeyFile("the system random generator failed".into()))?;
    Ok(private)
}

/// `"PNID" ‖ 0x02 ‖ 0x20 ‖ public [32] ‖ 0x20 ‖ private [32]`.
pub fn encode(private: &[u8; 32]) -> [u8; KEYFILE_LEN] {
    let mut out = [0u8; KEYFILE_LEN];
    out[0..4].copy_from_slice(MAGIC);
    out[4] = VERSION;
    out[5] = KEY_LEN_BYTE;
    out[6..38].copy_from_slice(public_from_private(private).as_bytes());
    out[38] = KEY_LEN_BYTE;
    out[39..71].copy_from_slice(private);
    out
}

/// Reads a keyfile into `(private, public)`, checking length, magic, version, both
/// length bytes and that the stored public key is X25519(private).
pub fn decode(bytes: &[u8]) -> Result<([u8; 32], Key), ProtoError> {
    let b: &[u8; KEYFILE_LEN] = bytes.try_into().map_err(|_| {
        ProtoError::KeyFile(format!(
            "length is {} bytes, expected {KEYFILE_LEN}",
            bytes.len()
        ))
    })?;
    if &b[0..4] != MAGIC {
        return Err(ProtoError::KeyFile("bad magic (expected \"PNID\")".into()));
    }
    if b[4] != VERSION {
        return Err(ProtoError::KeyFile(format!(
            "unsupported format version {:#04x} (expected 0x02)",
            b[4]
        )));
    }
    if b[5] != KEY_LEN_BYTE || b[38] != KEY_LEN_BYTE {
        return Err(ProtoError::KeyFile(
            "bad key length byte (expected 0x20)".into(),
        ));
    }
    let mut public = [0u8; 32];
    public.copy_from_slice(&b[6..38]);
    let mut private = [0u8; 32];
    private.copy_from_slice(&b[39..71]);
    if public_from_private(&private) != Key(public) {
        return Err(ProtoError::KeyFile(
            "public key does not match the private key".into(),
        ));
    }
    Ok((private, Key(public)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip() {
        let a = generate_private().unwrap();
        let b = generate_private().unwrap();
        assert_ne!(a, b);
        let (p, k) = decode(&encode(&a)).unwrap();
        assert_eq!(p, a);
        assert_eq!(k, public_from_private(&a));
    }
}
