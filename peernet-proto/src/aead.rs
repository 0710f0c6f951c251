//! The ChaCha20-Poly1305 backends of the channel (spec 4), behind one interface:
//! `ring` (the default, fastest on small messages) and, with the `rustcrypto` feature,
//! the pure-Rust RustCrypto `chacha20poly1305` crate (which Miri can execute). Both
//! produce the same bytes: 32-byte key, 12-byte nonce, empty AAD, 16-byte tag.

/// Size of the Poly1305 tag.
pub(crate) const TAG: usize = 16;

/// One direction's AEAD key.
pub(crate) trait Aead: Sized {
    /// The key, or `None` if the backend refuses it (never for 32 bytes in practice).
    fn new(key: &[u8; 32]) -> Option<Self>;
    /// Encrypts `in_out` in place (empty AAD) and returns the tag; `None` when the
    /// backend refuses the input (longer than ChaCha20 can encrypt under one nonce).
    fn seal(&self, nonce: [u8; 12], in_out: &mut [u8]) -> Option<[u8; TAG]>;
    /// Opens `ciphertext ‖ tag` in place; the plaintext is the returned prefix.
    /// `None` when authentication fails or `in_out` is shorter than the tag.
    fn open<'b>(&self, nonce: [u8; 12], in_out: &'b mut [u8]) -> Option<&'b mut [u8]>;
}

/// The `ring` backend.
#[cfg_attr(feature = "rustcrypto", allow(dead_code))]
pub(crate) struct Ring(ring::aead::LessSafeKey);

impl Aead for Ring {
    fn new(key: &[u8; 32]) -> Option<Ring> {
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key)
            .ok()
            .map(|k| Ring(ring::aead::LessSafeKey::new(k)))
    }

    fn seal(&self, nonce: [u8; 12], in_out: &mut [u8]) -> Option<[u8; TAG]> {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), in_out)
            .ok()?;
        tag.as_ref().try_into().ok()
    }

    fn open<'b>(&self, nonce: [u8; 12], in_out: &'b mut [u8]) -> Option<&'b mut [u8]> {
        if in_out.len() < TAG {
            return None;
        }
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
        self.0
            .open_in_place(nonce, ring::aead::Aad::empty(), in_out)
            .ok()
    }
}

/// The RustCrypto `chacha20poly1305` backend (pure Rust).
#[cfg(feature = "rustcrypto")]
pub(crate) struct RustCrypto(chacha20poly1305::ChaCha20Poly1305);

#[cfg(feature = "rustcrypto")]
impl Aead for RustCrypto {
    fn new(key: &[u8; 32]) -> Option<RustCrypto> {
        use chacha20poly1305::KeyInit;
        Some(RustCrypto(chacha20poly1305::ChaCha20Poly1305::new(
            key.into(),
        )))
    }

    fn seal(&self, nonce: [u8; 12], in_out: &mut [u8]) -> Option<[u8; TAG]> {
        use chacha20poly1305::AeadInPlace;
        let tag = self
            .0
            .encrypt_in_place_detached(&nonce.into(), &[], in_out)
            .ok()?;
        Some(tag.into())
    }

    fn open<'b>(&self, nonce: [u8; 12], in_out: &'b mut [u8]) -> Option<&'b mut [u8]> {
        use chacha20poly1305::AeadInPlace;
        let split = in_out.len().checked_sub(TAG)?;
        let (plain, tag) = in_out.split_at_mut(split);
        let tag: [u8; TAG] = (&*tag).try_into().ok()?;
        self.0
            .decrypt_in_place_detached(&nonce.into(), &[], plain, &tag.into())
            .ok()?;
        Some(plain)
    }
}

/// The backend the channel uses: RustCrypto with the `rustcrypto` feature, else ring.
#[cfg(not(feature = "rustcrypto"))]
pub(crate) type Backend = Ring;
/// The backend the channel uses: RustCrypto with the `rustcrypto` feature, else ring.
#[cfg(feature = "rustcrypto")]
pub(crate) type Backend = RustCrypto;

/// Name of the backend in use (`"ring"` or `"rustcrypto"`).
#[cfg(not(feature = "rustcrypto"))]
pub(crate) const BACKEND_NAME: &str = "ring";
/// Name of the backend in use (`"ring"` or `"rustcrypto"`).
#[cfg(feature = "rustcrypto")]
pub(crate) const BACKEND_NAME: &str = "rustcrypto";

#[cfg(all(test, feature = "rustcrypto", not(miri)))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Each backend opens what the other sealed, byte for byte the same.
    #[test]
    fn ring_and_rustcrypto_agree() {
        let key = [0x42; 32];
        let (r, c) = (Ring::new(&key).unwrap(), RustCrypto::new(&key).unwrap());
        for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 1000, 70_000] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            // Any nonce will do: both backends get the same one.
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&(len as u64).to_le_bytes());
            let mut a = msg.clone();
            let ta = r.seal(nonce, &mut a).unwrap();
            let mut b = msg.clone();
            let tb = c.seal(nonce, &mut b).unwrap();
            assert_eq!((&a, ta), (&b, tb), "len {len}");
            a.extend_from_slice(&ta);
            b.extend_from_slice(&tb);
            assert_eq!(c.open(nonce, &mut a).unwrap(), &msg[..]);
            assert_eq!(r.open(nonce, &mut b).unwrap(), &msg[..]);
        }
        assert!(c.open([0; 12], &mut [0; 15]).is_none());
        assert!(r.open([0; 12], &mut [0; 15]).is_none());
    }
}
