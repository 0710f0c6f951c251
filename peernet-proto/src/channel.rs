//! The post-handshake channel: ChaCha20-Poly1305, one key and counter per direction
//! (spec 4). Frames may exceed Noise's 64 KiB message limit.
//!
//! The AEAD comes from `ring` by default, or from the pure-Rust RustCrypto
//! `chacha20poly1305` crate with the `rustcrypto` feature ([`BACKEND`] says which);
//! both give the same bytes.

use std::fmt;

use crate::aead::{Aead, Backend};
use crate::ProtoError;

/// Size of the Poly1305 tag appended to every sealed envelope.
pub const TAG_LEN: usize = crate::aead::TAG;

/// The AEAD backend this build uses: `"ring"` or `"rustcrypto"`.
pub const BACKEND: &str = crate::aead::BACKEND_NAME;

/// The 12-byte nonce of counter `counter`: 4 zero bytes ‖ counter as u64 LE (Noise form).
pub fn nonce_bytes(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

/// Builds the AEAD key. The backends only refuse keys of the wrong length, which a
/// `[u8; 32]` cannot be, so `None` never happens in practice; it is still handled.
fn aead_key(key: &[u8; 32]) -> Option<Backend> {
    Backend::new(key)
}

fn key_error() -> ProtoError {
    ProtoError::Handshake("ChaCha20-Poly1305 refused the channel key".into())
}

/// Sending half of a channel: seals envelopes with consecutive nonces.
pub struct SendCipher {
    key: Option<Backend>,
    counter: u64,
}

impl SendCipher {
    /// A fresh sending state with counter 0.
    pub fn new(key: [u8; 32]) -> SendCipher {
        SendCipher {
            key: aead_key(&key),
            counter: 0,
        }
    }

    /// Encrypts `buf[start..]` in place (empty AAD) and appends the 16-byte tag;
    /// the counter then advances by one.
    ///
    /// [`ProtoError::NonceExhausted`] when the counter is 2^64 - 1 (that nonce is
    /// never used; the connection must close); [`ProtoError::Seal`] when the AEAD
    /// refuses the input (longer than ChaCha20 can encrypt under one nonce). `start >
    /// buf.len()` is refused with [`ProtoError::Malformed`] and changes nothing.
    pub fn seal_in_place(&mut self, buf: &mut Vec<u8>, start: usize) -> Result<(), ProtoError> {
        if self.counter == u64::MAX {
            return Err(ProtoError::NonceExhausted);
        }
        let key = self.key.as_ref().ok_or_else(key_error)?;
        let plain = buf.get_mut(start..).ok_or(ProtoError::Malformed(
            "seal start past the end of the buffer",
        ))?;
        let tag = key
            .seal(nonce_bytes(self.counter), plain)
            .ok_or(ProtoError::Seal)?;
        buf.extend_from_slice(&tag);
        self.counter += 1;
        Ok(())
    }

    /// The counter the next seal will use.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Test hook: jump the counter (e.g. to exercise exhaustion).
    #[doc(hidden)]
    pub fn set_counter(&mut self, c: u64) {
        self.counter = c;
    }
}

impl fmt::Debug for SendCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendCipher")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// Receiving half of a channel: opens frames strictly in order.
pub struct RecvCipher {
    key: Option<Backend>,
    counter: u64,
}

impl RecvCipher {
    /// A fresh receiving state with counter 0.
    pub fn new(key: [u8; 32]) -> RecvCipher {
        RecvCipher {
            key: aead_key(&key),
            counter: 0,
        }
    }

    /// Opens a frame body (`ciphertext ‖ tag`) in place with the receive counter and
    /// returns the plaintext prefix of `body`.
    ///
    /// [`ProtoError::Decrypt`] when authentication fails (tampered, replayed,
    /// reordered, wrong key, or shorter than the tag); [`ProtoError::NonceExhausted`]
    /// when the counter is 2^64 - 1. The counter advances only on success; after a
    /// failure the contents of `body` are unspecified.
    pub fn open_in_place<'b>(&mut self, body: &'b mut [u8]) -> Result<&'b mut [u8], ProtoError> {
        if self.counter == u64::MAX {
            return Err(ProtoError::NonceExhausted);
        }
        if body.len() < TAG_LEN {
            return Err(ProtoError::Decrypt);
        }
        let key = self.key.as_ref().ok_or(ProtoError::Decrypt)?;
        let plain = key
            .open(nonce_bytes(self.counter), body)
            .ok_or(ProtoError::Decrypt)?;
        self.counter += 1;
        Ok(plain)
    }

    /// The counter the next open will use.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Test hook: jump the counter (e.g. to exercise exhaustion).
    #[doc(hidden)]
    pub fn set_counter(&mut self, c: u64) {
        self.counter = c;
    }
}

impl fmt::Debug for RecvCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvCipher")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}
