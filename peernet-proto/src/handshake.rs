//! Noise XX handshake state machine over snow (spec 3), sans-IO.
//!
//! Message flow (each message one frame, at most 1024 bytes):
//!
//! ```text
//! initiator                         responder
//! write_m1  ── M1: e ──────────────▶ read_m1      (payload must be empty)
//! read_m2   ◀─ M2: e,ee,s,es+Hello ─ write_m2
//! write_m3  ── M3: s,se+Hello ─────▶ read_m3
//! split()                            split()
//! ```
//!
//! Every step checks the role and the position; a call out of order is an error,
//! never a panic. Any failure of a step poisons the handshake: every later step fails.

use std::fmt;

use crate::channel::{ciphers_from_raw, RecvCipher, SendCipher};
use crate::frame::HANDSHAKE_FRAME_LIMIT;
use crate::hello::Hello;
use crate::{Key, ProtoError};

/// Which side of the handshake a connection was (the connection machine and the stream
/// table both follow it: the confirmation of spec 3.4, the parity of stream ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Opened the TCP connection; waits for the responder's confirming Ping (spec 3.4).
    Initiator,
    /// Accepted it; sends the confirming Ping as its first frame.
    Responder,
}

/// The Noise prologue; it fixes the major protocol version.
pub const PROLOGUE: &[u8] = b"peernet/1";
/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";

/// Number of messages in the XX pattern.
const MESSAGES: u8 = 3;

/// One side of a handshake in progress.
pub struct Handshake {
    state: snow::HandshakeState,
    initiator: bool,
    hello: Hello,
    /// Messages written or read so far (0..=3).
    done: u8,
    /// Set by the first failed step.
    failed: bool,
}

fn snow_err(e: snow::Error) -> ProtoError {
    ProtoError::Handshake(e.to_string())
}

fn misuse(what: &str) -> ProtoError {
    ProtoError::Handshake(format!("{what} called out of order"))
}

impl Handshake {
    /// The dialing side, with its static private key and the Hello it will send in M3.
    pub fn initiator(local_private: &[u8; 32], hello: &Hello) -> Result<Handshake, ProtoError> {
        Self::with_options(true, local_private, PROLOGUE, None, hello)
    }

    /// The accepting side, with its static private key and the Hello it will send in M2.
    pub fn responder(local_private: &[u8; 32], hello: &Hello) -> Result<Handshake, ProtoError> {
        Self::with_options(false, local_private, PROLOGUE, None, hello)
    }

    /// Lower-level constructor for test vectors: any prologue, and optionally a fixed
    /// ephemeral key. Never use a fixed ephemeral key outside tests.
    #[doc(hidden)]
    pub fn with_options(
        initiator: bool,
        local_private: &[u8; 32],
        prologue: &[u8],
        fixed_ephemeral: Option<&[u8; 32]>,
        hello: &Hello,
    ) -> Result<Handshake, ProtoError> {
        let params: snow::params::NoiseParams = NOISE_PARAMS.parse().map_err(snow_err)?;
        let mut builder = snow::Builder::new(params)
            .local_private_key(local_private)
            .map_err(snow_err)?
            .prologue(prologue)
            .map_err(snow_err)?;
        if let Some(e) = fixed_ephemeral {
            builder = builder.fixed_ephemeral_key_for_testing_only(e);
        }
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(snow_err)?;
        Ok(Handshake {
            state,
            initiator,
            hello: *hello,
            done: 0,
            failed: false,
        })
    }

    /// True for the dialing side.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// The Hello this side sends (its `max_frame_len` is the limit it receives with).
    pub fn local_hello(&self) -> Hello {
        self.hello
    }

    /// True once all three messages have been written or read.
    pub fn is_finished(&self) -> bool {
        !self.failed && self.done == MESSAGES
    }

    /// The peer's static key, once M2 (initiator) or M3 (responder) has been read.
    pub fn remote_static(&self) -> Option<Key> {
        let rs: [u8; 32] = self.state.get_remote_static()?.try_into().ok()?;
        Some(Key(rs))
    }

    /// Checks that it is this side's turn for message `index` (0-based) in direction
    /// `writing`.
    fn check_turn(&self, writing: bool, what: &str) -> Result<(), ProtoError> {
        if self.failed {
            return Err(ProtoError::Handshake("handshake already failed".into()));
        }
        if self.done >= MESSAGES {
            return Err(misuse(what));
        }
        // The initiator writes messages 0 and 2, the responder message 1.
        let initiator_writes = self.done % 2 == 0;
        if writing != (initiator_writes == self.initiator) {
            return Err(misuse(what));
        }
        Ok(())
    }

    fn poison<T>(&mut self, e: ProtoError) -> Result<T, ProtoError> {
        self.failed = true;
        Err(e)
    }

    /// Writes the next handshake message carrying `payload` (generic step, used by the
    /// named steps and by the test-vector test). The message is at most 1024 bytes.
    #[doc(hidden)]
    pub fn write_message(&mut self, payload: &[u8]) -> Result<Vec<u8>, ProtoError> {
        self.check_turn(true, "write_message")?;
        let mut buf = [0u8; HANDSHAKE_FRAME_LIMIT];
        match self.state.write_message(payload, &mut buf) {
            Ok(n) => {
                self.done += 1;
                Ok(buf.get(..n).unwrap_or_default().to_vec())
            }
            Err(e) => self.poison(snow_err(e)),
        }
    }

    /// Reads the next handshake message into `payload`, returning the payload length.
    fn read_into(
        &mut self,
        msg: &[u8],
        payload: &mut [u8; HANDSHAKE_FRAME_LIMIT],
    ) -> Result<usize, ProtoError> {
        self.check_turn(false, "read_message")?;
        if msg.len() > HANDSHAKE_FRAME_LIMIT {
            return self.poison(ProtoError::FrameTooLarge {
                len: msg.len(),
                limit: HANDSHAKE_FRAME_LIMIT,
            });
        }
        // M1 and M2 start with the sender's ephemeral key in clear: a low-order one
        // would make the DH results fixed and public (snow does not refuse them).
        if self.done < 2 {
            let mut e = [0u8; 32];
            if let Some(b) = msg.get(..32) {
                e.copy_from_slice(b);
                if Key(e).is_low_order() {
                    return self.poison(ProtoError::Handshake(
                        "the peer's ephemeral key is a low-order point".into(),
                    ));
                }
            }
        }
        match self.state.read_message(msg, payload) {
            Ok(n) => {
                self.done += 1;
                Ok(n)
            }
            Err(e) => self.poison(snow_err(e)),
        }
    }

    /// Reads the next handshake message and returns its payload (generic step, used by
    /// the test-vector test). Messages over 1024 bytes are refused.
    #[doc(hidden)]
    pub fn read_message(&mut self, msg: &[u8]) -> Result<Vec<u8>, ProtoError> {
        let mut payload = [0u8; HANDSHAKE_FRAME_LIMIT];
        let n = self.read_into(msg, &mut payload)?;
        Ok(payload.get(..n).unwrap_or_default().to_vec())
    }

    /// Reads a payload that must be a Hello and returns it with the remote static key.
    fn read_hello(&mut self, msg: &[u8]) -> Result<(Key, Hello), ProtoError> {
        let mut payload = [0u8; HANDSHAKE_FRAME_LIMIT];
        let n = self.read_into(msg, &mut payload)?;
        let hello = match Hello::decode(payload.get(..n).unwrap_or_default()) {
            Ok(h) => h,
            Err(e) => return self.poison(e),
        };
        match self.remote_static() {
            Some(key) if key.is_low_order() => self.poison(ProtoError::Handshake(
                "the peer's static key is a low-order point".into(),
            )),
            Some(key) => Ok((key, hello)),
            None => self.poison(ProtoError::Handshake("no remote static key".into())),
        }
    }

    /// Initiator: M1 (`e`, empty payload; 32 bytes).
    pub fn write_m1(&mut self) -> Result<Vec<u8>, ProtoError> {
        if !self.initiator || self.done != 0 {
            return Err(misuse("write_m1"));
        }
        self.write_message(&[])
    }

    /// Responder: reads M1; a non-empty payload or a message over 1024 bytes is refused.
    pub fn read_m1(&mut self, msg: &[u8]) -> Result<(), ProtoError> {
        if self.initiator || self.done != 0 {
            return Err(misuse("read_m1"));
        }
        let mut payload = [0u8; HANDSHAKE_FRAME_LIMIT];
        let n = self.read_into(msg, &mut payload)?;
        if n != 0 {
            return self.poison(ProtoError::Handshake("M1 payload is not empty".into()));
        }
        Ok(())
    }

    /// Responder: M2 (`e, ee, s, es`) carrying this side's Hello (112 bytes).
    pub fn write_m2(&mut self) -> Result<Vec<u8>, ProtoError> {
        if self.initiator || self.done != 1 {
            return Err(misuse("write_m2"));
        }
        let hello = self.hello.encode();
        self.write_message(&hello)
    }

    /// Initiator: reads M2; returns the responder's static key and Hello. The caller
    /// checks the key against its trust store before going on.
    pub fn read_m2(&mut self, msg: &[u8]) -> Result<(Key, Hello), ProtoError> {
        if !self.initiator || self.done != 1 {
            return Err(misuse("read_m2"));
        }
        self.read_hello(msg)
    }

    /// Initiator: M3 (`s, se`) carrying this side's Hello (80 bytes).
    pub fn write_m3(&mut self) -> Result<Vec<u8>, ProtoError> {
        if !self.initiator || self.done != 2 {
            return Err(misuse("write_m3"));
        }
        let hello = self.hello.encode();
        self.write_message(&hello)
    }

    /// Responder: reads M3; returns the initiator's static key and Hello. The caller
    /// checks the key against its trust store before going on.
    pub fn read_m3(&mut self, msg: &[u8]) -> Result<(Key, Hello), ProtoError> {
        if self.initiator || self.done != 2 {
            return Err(misuse("read_m3"));
        }
        self.read_hello(msg)
    }

    /// After M3 is written (initiator) or read (responder): Noise `Split()` into the
    /// channel (spec 3.3). The initiator sends with k1 and receives with k2; the
    /// responder the opposite.
    pub fn split(mut self) -> Result<(SendCipher, RecvCipher), ProtoError> {
        if !self.is_finished() {
            return Err(misuse("split"));
        }
        let (mut k1, mut k2) = self.state.dangerously_get_raw_split();
        // The raw keys live on in the ciphers only: these copies are wiped.
        Ok(if self.initiator {
            ciphers_from_raw(&mut k1, &mut k2)
        } else {
            ciphers_from_raw(&mut k2, &mut k1)
        })
    }

    /// The current Noise handshake hash `h` (final after the last message).
    pub fn handshake_hash(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        let h = self.state.get_handshake_hash();
        let n = h.len().min(32);
        out[..n].copy_from_slice(&h[..n]);
        out
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("initiator", &self.initiator)
            .field("messages_done", &self.done)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
