//! What the two pairing state machines share: their output, the result, and the
//! Noise and SPAKE2 set-up.
//!
//! ```text
//! joiner (Noise initiator)                      inviter (Noise responder)
//! ticket:  Open{Ticket, M1} ──────────────────▶ check expiry/used, read M1
//! code:    Open{Code, N, pake_A} ─────────────▶ check N, expiry; code burned now
//!          ◀──────────── pake_B ‖ confirm_I ─── (SPAKE2 key K)
//!          confirm_J ‖ M1 ────────────────────▶ check confirm_J, read M1
//!          ◀──────────────────────────── M2 ─── e, ee, s, es
//! check s (ticket: = ticket key)
//!          M3 (s, se, psk) ───────────────────▶ psk wrong: fails here
//!          enc(PairHello_J) ──────────────────▶ read, reply
//!          ◀────────────────── enc(PairHello_I)
//! ```

use super::messages::PAKE_MSG_LEN;
use super::{sas, Mode, PairError, PairHello, NOISE_PARAMS, PROLOGUE};
use crate::Key;

/// SPAKE2 identity of the joiner (side A).
pub const SPAKE_ID_JOINER: &[u8] = b"peernet-pair-v1 joiner";
/// SPAKE2 identity of the inviter (side B).
pub const SPAKE_ID_INVITER: &[u8] = b"peernet-pair-v1 inviter";

/// What one step produced: frames to send (in order), and the result once the pairing
/// has succeeded on this side.
#[derive(Debug, Default)]
pub struct Output {
    /// Frame bodies to send, in order.
    pub send: Vec<Vec<u8>>,
    /// Set by the last step: whom to trust.
    pub paired: Option<Paired>,
}

/// A finished pairing: the static key the handshake authenticated and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    /// The other side's static key, authenticated by the `XXpsk3` handshake. The only
    /// key the pairing lets this side trust.
    pub remote_key: Key,
    /// The other side's name and listen port.
    pub remote_hello: PairHello,
    /// The final Noise handshake hash (both sides have the same one).
    pub handshake_hash: [u8; 32],
    /// Ticket or code.
    pub mode: Mode,
}

impl Paired {
    /// The verification words both screens show (see [`sas`]).
    pub fn sas(&self) -> String {
        sas::words(&self.handshake_hash)
    }
}

pub(super) fn noise_err(e: snow::Error) -> PairError {
    PairError::Noise(e.to_string())
}

/// A Noise `XXpsk3` state with the pairing prologue and `psk` at position 3.
pub(super) fn noise(
    initiator: bool,
    local_private: &[u8; 32],
    psk: &[u8; 32],
) -> Result<snow::HandshakeState, PairError> {
    let params: snow::params::NoiseParams = NOISE_PARAMS.parse().map_err(noise_err)?;
    let b = snow::Builder::new(params)
        .local_private_key(local_private)
        .map_err(noise_err)?
        .prologue(PROLOGUE)
        .map_err(noise_err)?
        .psk(3, psk)
        .map_err(noise_err)?;
    if initiator {
        b.build_initiator()
    } else {
        b.build_responder()
    }
    .map_err(noise_err)
}

/// Refuses a message whose leading ephemeral key is a low-order point (snow does not).
pub(super) fn check_ephemeral(msg: &[u8]) -> Result<(), PairError> {
    let mut e = [0u8; 32];
    let b = msg
        .get(..32)
        .ok_or(PairError::Malformed("Noise message too short"))?;
    e.copy_from_slice(b);
    if Key(e).is_low_order() {
        return Err(PairError::Noise(
            "ephemeral key is a low-order point".into(),
        ));
    }
    Ok(())
}

/// The remote static key of a handshake state, refusing low-order points.
pub(super) fn remote_static(state: &snow::HandshakeState) -> Result<Key, PairError> {
    let rs: [u8; 32] = state
        .get_remote_static()
        .and_then(|s| s.try_into().ok())
        .ok_or(PairError::Noise("no remote static key".into()))?;
    let key = Key(rs);
    if key.is_low_order() {
        return Err(PairError::Noise("static key is a low-order point".into()));
    }
    Ok(key)
}

/// The handshake hash as an array.
pub(super) fn hash_of(state: &snow::HandshakeState) -> [u8; 32] {
    let mut out = [0u8; 32];
    let h = state.get_handshake_hash();
    let n = h.len().min(32);
    out[..n].copy_from_slice(&h[..n]);
    out
}

/// Encrypts a PairHello as a transport message.
pub(super) fn seal_hello(
    t: &mut snow::TransportState,
    hello: &PairHello,
) -> Result<Vec<u8>, PairError> {
    let mut buf = [0u8; 128];
    let n = t
        .write_message(&hello.encode(), &mut buf)
        .map_err(noise_err)?;
    Ok(buf.get(..n).unwrap_or_default().to_vec())
}

/// Decrypts and decodes the peer's PairHello; a failure to decrypt means the two
/// sides do not share the psk.
pub(super) fn open_hello(t: &mut snow::TransportState, msg: &[u8]) -> Result<PairHello, PairError> {
    if msg.len() > 128 {
        return Err(PairError::Malformed("pair hello too long"));
    }
    let mut buf = [0u8; 128];
    let n = t
        .read_message(msg, &mut buf)
        .map_err(|_| PairError::WrongSecret)?;
    PairHello::decode(buf.get(..n).unwrap_or_default())
}

/// A fixed-size SPAKE2 message from the crate's `Vec`.
pub(super) fn pake_array(v: &[u8]) -> Result<[u8; PAKE_MSG_LEN], PairError> {
    v.try_into()
        .map_err(|_| PairError::Malformed("SPAKE2 message of the wrong length"))
}
