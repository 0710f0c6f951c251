//! Key derivation for pairing: HKDF-SHA256 and HMAC-SHA256 from `ring` (already a
//! dependency). Labels are part of protocol version 1 (docs/protocol.md, "Pairing").

use ring::{hkdf, hmac};

use super::PROLOGUE;

/// Length of a key-confirmation tag.
pub const CONFIRM_LEN: usize = 32;

/// HKDF label of the ticket mode's Noise psk.
const LABEL_TICKET_PSK: &[u8] = b"peernet-pair-v1 ticket psk";
/// HKDF label of the code mode's Noise psk.
const LABEL_CODE_PSK: &[u8] = b"peernet-pair-v1 code psk";
/// HKDF label of the joiner's confirmation key.
const LABEL_CONFIRM_JOINER: &[u8] = b"peernet-pair-v1 confirm joiner";
/// HKDF label of the inviter's confirmation key.
const LABEL_CONFIRM_INVITER: &[u8] = b"peernet-pair-v1 confirm inviter";
/// HKDF label of the verification words.
pub(super) const LABEL_SAS: &[u8] = b"peernet-pair-v1 sas";

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// `HKDF-SHA256(salt = "peernet-pair-v1", ikm, info = label)`, `N` bytes (N ≤ 8160).
pub(super) fn derive<const N: usize>(ikm: &[u8], label: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, PROLOGUE).extract(ikm);
    let info = [label];
    // N is a compile-time constant far below HKDF's 255 * 32 limit: expand and fill
    // cannot fail; should they, the output stays all zeros and every later check of
    // the two sides' agreement fails, never succeeds.
    if let Ok(okm) = prk.expand(&info, Len(N)) {
        let _ = okm.fill(&mut out);
    }
    out
}

/// The ticket mode's Noise psk: HKDF of the ticket's 128-bit secret.
pub fn ticket_psk(secret: &[u8; 16]) -> [u8; 32] {
    derive(secret, LABEL_TICKET_PSK)
}

/// The code mode's Noise psk: HKDF of the SPAKE2 output.
pub fn code_psk(spake_key: &[u8]) -> [u8; 32] {
    derive(spake_key, LABEL_CODE_PSK)
}

/// The (joiner, inviter) key-confirmation keys from the SPAKE2 output.
pub fn code_confirm_keys(spake_key: &[u8]) -> ([u8; 32], [u8; 32]) {
    (
        derive(spake_key, LABEL_CONFIRM_JOINER),
        derive(spake_key, LABEL_CONFIRM_INVITER),
    )
}

/// A confirmation tag: `HMAC-SHA256(key, joiner_pake_msg ‖ inviter_pake_msg)`.
pub fn confirm_tag(key: &[u8; 32], joiner_msg: &[u8], inviter_msg: &[u8]) -> [u8; 32] {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&k);
    ctx.update(joiner_msg);
    ctx.update(inviter_msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// Checks a confirmation tag in constant time.
pub(super) fn confirm_ok(
    key: &[u8; 32],
    joiner_msg: &[u8],
    inviter_msg: &[u8],
    tag: &[u8],
) -> bool {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut msg = Vec::with_capacity(joiner_msg.len() + inviter_msg.len());
    msg.extend_from_slice(joiner_msg);
    msg.extend_from_slice(inviter_msg);
    hmac::verify(&k, &msg, tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // HKDF/HMAC are ring's, whose SHA-256 is assembly Miri cannot run (miri.sh runs the
    // crate's unit tests); the vectors test covers them natively.
    #[cfg_attr(miri, ignore)]
    fn labels_separate_the_keys() {
        let k = [7u8; 32];
        let (j, i) = code_confirm_keys(&k);
        assert_ne!(j, i);
        assert_ne!(code_psk(&k), j);
        assert_ne!(ticket_psk(&[7u8; 16]), code_psk(&[7u8; 16]));
        let tag = confirm_tag(&j, b"a", b"b");
        assert!(confirm_ok(&j, b"a", b"b", &tag));
        assert!(!confirm_ok(&i, b"a", b"b", &tag));
        assert!(!confirm_ok(&j, b"b", b"a", &tag));
    }
}
