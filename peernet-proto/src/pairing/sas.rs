//! Verification words (a short authentication string): five words from the list,
//! derived from a Noise handshake hash. Two screens that show the same words saw the
//! same handshake, so no one relayed it with their own keys. Works for the pairing
//! handshake and for an ordinary connection's (`Handshake::handshake_hash`).
//!
//! `words(h)` = the words indexed by the first 5 bytes of
//! `HKDF-SHA256(salt = "peernet-pair-v1", ikm = h, info = "peernet-pair-v1 sas")`,
//! joined by single spaces. 40 bits: a man in the middle must make two handshakes
//! agree on them while both people wait, which grinding keys cannot do in time.

use super::kdf::{derive, LABEL_SAS};
use super::WORDS;

/// Number of verification words.
pub const SAS_WORDS: usize = 5;

/// The verification words for handshake hash `h`.
pub fn words(h: &[u8; 32]) -> String {
    let idx: [u8; SAS_WORDS] = derive(h, LABEL_SAS);
    idx.iter()
        .map(|&i| WORDS[usize::from(i)])
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    // HKDF/HMAC are ring's, whose SHA-256 is assembly Miri cannot run (miri.sh runs the
    // crate's unit tests); the vectors test covers them natively.
    #[cfg_attr(miri, ignore)]
    fn different_hashes_give_different_words() {
        let a = super::words(&[0u8; 32]);
        let b = super::words(&[1u8; 32]);
        assert_ne!(a, b);
        assert_eq!(a.split(' ').count(), 5);
    }
}
