//! The post-handshake channel: ChaCha20-Poly1305, one key and counter per direction
//! (spec 4). Frames may exceed Noise's 64 KiB message limit.
//!
//! The AEAD comes from `ring` by default, or from the pure-Rust RustCrypto
//! `chacha20poly1305` crate with the `rustcrypto` feature ([`BACKEND`] says which);
//! both give the same bytes.

use std::fmt;

use zeroize::Zeroize;

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
    pub fn new(mut key: [u8; 32]) -> SendCipher {
        let cipher = SendCipher {
            key: aead_key(&key),
            counter: 0,
        };
        key.zeroize();
        cipher
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

    /// Appends one whole transport frame to `out` (spec 2 and 4): the 4-byte length
    /// header, then `plaintext` sealed. The one framing-and-sealing routine of the
    /// project: the connection machine, the test peers, the fuzz targets and the
    /// benchmark's same-work ceiling all frame through it. On error `out` is as it was.
    pub fn seal_frame(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), ProtoError> {
        let start = out.len();
        out.extend_from_slice(&[0; crate::frame::HEADER_LEN]);
        out.extend_from_slice(plaintext);
        self.seal_tail(out, start)
    }

    /// Seals one frame laid out as it goes on the wire — 4 bytes of header room, the
    /// plaintext, 16 bytes of tag room — where it lies: the plaintext is encrypted in
    /// place, the tag and the length header written into their room. A buffer shorter
    /// than header + tag is refused with [`ProtoError::Malformed`]; on any error the
    /// counter does not advance.
    pub fn seal_frame_at(&mut self, frame: &mut [u8]) -> Result<(), ProtoError> {
        use crate::frame::HEADER_LEN;
        if frame.len() < HEADER_LEN + TAG_LEN {
            return Err(ProtoError::Malformed("frame shorter than header and tag"));
        }
        if self.counter == u64::MAX {
            return Err(ProtoError::NonceExhausted);
        }
        let body_len = frame.len() - HEADER_LEN;
        let n = u32::try_from(body_len).map_err(|_| ProtoError::FrameTooLarge {
            len: body_len,
            limit: u32::MAX as usize,
        })?;
        let key = self.key.as_ref().ok_or_else(key_error)?;
        let (head, body) = frame.split_at_mut(HEADER_LEN);
        let (plain, tag_room) = body.split_at_mut(body_len - TAG_LEN);
        let tag = key
            .seal(nonce_bytes(self.counter), plain)
            .ok_or(ProtoError::Seal)?;
        tag_room.copy_from_slice(&tag);
        head.copy_from_slice(&n.to_be_bytes());
        self.counter += 1;
        Ok(())
    }

    /// [`SendCipher::seal_frame`] for a frame whose header room and plaintext are
    /// already in `out` from `start` on (so a large body is sealed where it lies).
    pub fn seal_tail(&mut self, out: &mut Vec<u8>, start: usize) -> Result<(), ProtoError> {
        let body = start + crate::frame::HEADER_LEN;
        if let Err(e) = self.seal_in_place(out, body) {
            out.truncate(start);
            return Err(e);
        }
        let n = u32::try_from(out.len() - body).map_err(|_| ProtoError::FrameTooLarge {
            len: out.len() - body,
            limit: u32::MAX as usize,
        });
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        };
        if let Some(h) = out.get_mut(start..body) {
            h.copy_from_slice(&n.to_be_bytes());
        }
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
    pub fn new(mut key: [u8; 32]) -> RecvCipher {
        let cipher = RecvCipher {
            key: aead_key(&key),
            counter: 0,
        };
        key.zeroize();
        cipher
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

/// Builds both halves of a channel from the raw `Split()` keys and wipes the raw keys
/// (volatile writes the optimizer keeps): from then on only the ciphers hold them.
pub(crate) fn ciphers_from_raw(
    send: &mut [u8; 32],
    recv: &mut [u8; 32],
) -> (SendCipher, RecvCipher) {
    let pair = (SendCipher::new(*send), RecvCipher::new(*recv));
    send.zeroize();
    recv.zeroize();
    pair
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14 item 11c: the raw split keys stayed in memory after the channel was
    /// built. The buffers handed over are zero afterwards, and the ciphers still work.
    #[test]
    fn raw_keys_are_wiped_once_the_ciphers_hold_them() {
        let (mut a, mut b) = ([7u8; 32], [7u8; 32]);
        let (mut tx, mut rx) = ciphers_from_raw(&mut a, &mut b);
        assert_eq!((a, b), ([0u8; 32], [0u8; 32]));
        let mut buf = b"still keyed".to_vec();
        tx.seal_in_place(&mut buf, 0).unwrap();
        assert_eq!(rx.open_in_place(&mut buf).unwrap(), b"still keyed");
        assert!(!format!("{tx:?}{rx:?}").contains("7, 7"));
    }
}
