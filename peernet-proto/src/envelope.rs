//! Envelopes: the plaintext of every transport frame (spec 5).
//!
//! Decoding goes through bincode 1.3 (fixed-int LE, limited to the input length,
//! trailing bytes rejected) into borrowed slices: it allocates nothing. Encoding is
//! hand-written for the hot path; a test proves it byte-identical to bincode.

use serde::{Deserialize, Serialize};

use crate::codec::{decode_options, put_bytes, put_u32, put_u64, var_len};
use crate::ProtoError;
use bincode::Options;

/// Longest handler name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why a peer closes a connection (carried by [`Envelope::Goodbye`]; a u32 on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoodbyeReason {
    /// Ordinary close; also what unknown values decode as.
    Closing = 0,
    /// The losing one of two connections between the same peers (spec 5.1).
    Duplicate = 1,
    /// The sender no longer trusts the receiver.
    TrustRevoked = 2,
    /// The receiver sent something that did not decode.
    ProtocolError = 3,
}

impl GoodbyeReason {
    /// Reads the wire value; unknown values are [`GoodbyeReason::Closing`].
    pub fn from_u32(v: u32) -> Self {
        match v {
            1 => GoodbyeReason::Duplicate,
            2 => GoodbyeReason::TrustRevoked,
            3 => GoodbyeReason::ProtocolError,
            _ => GoodbyeReason::Closing,
        }
    }

    /// The wire value.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// The result of a Call, carried by [`Envelope::Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The handler's result.
    Ok(&'a [u8]),
    /// No handler of that name is registered (or visible to the caller).
    NoSuchHandler,
    /// The caller is not allowed to call it.
    Forbidden,
    /// The handler failed, with a message for the caller.
    HandlerFailed(&'a str),
    /// The receiver's queue was full; nothing ran.
    Overloaded,
}

/// One envelope (spec 5), borrowing its strings and bytes from the decoded buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// A request that expects a [`Envelope::Reply`] with the same id.
    Call {
        /// Caller-chosen, non-zero, unique among the caller's outstanding calls.
        id: u64,
        /// Handler name, 1..=255 bytes.
        name: &'a str,
        /// Opaque request body.
        body: &'a [u8],
    },
    /// The answer to a Call.
    Reply {
        /// The id of the Call answered.
        id: u64,
        /// What happened.
        outcome: Outcome<'a>,
    },
    /// Fire-and-forget message; never answered.
    Send {
        /// Handler name, 1..=255 bytes.
        name: &'a str,
        /// Opaque body.
        body: &'a [u8],
    },
    /// Heartbeat request; answered with a Pong carrying the same nonce.
    Ping {
        /// Echoed in the Pong.
        nonce: u64,
    },
    /// Heartbeat answer.
    Pong {
        /// The nonce of the Ping answered.
        nonce: u64,
    },
    /// Courtesy message before closing.
    Goodbye {
        /// Why the connection is closed.
        reason: GoodbyeReason,
    },
}

/// Serde mirror of the wire layout; its derive is what bincode decodes with.
#[derive(Serialize, Deserialize)]
enum WireEnvelope<'a> {
    Call {
        id: u64,
        #[serde(borrow)]
        name: &'a str,
        #[serde(borrow)]
        body: &'a [u8],
    },
    Reply {
        id: u64,
        #[serde(borrow)]
        outcome: WireOutcome<'a>,
    },
    Send {
        #[serde(borrow)]
        name: &'a str,
        #[serde(borrow)]
        body: &'a [u8],
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    Goodbye {
        reason: u32,
    },
}

#[derive(Serialize, Deserialize)]
enum WireOutcome<'a> {
    Ok(#[serde(borrow)] &'a [u8]),
    NoSuchHandler,
    Forbidden,
    HandlerFailed(#[serde(borrow)] &'a str),
    Overloaded,
}

const TAG_CALL: u32 = 0;
const TAG_REPLY: u32 = 1;
const TAG_SEND: u32 = 2;
const TAG_PING: u32 = 3;
const TAG_PONG: u32 = 4;
const TAG_GOODBYE: u32 = 5;

/// Checks a handler name: 1 to 255 bytes (UTF-8 is guaranteed by `&str`).
pub fn validate_name(name: &str) -> Result<(), ProtoError> {
    if name.is_empty() {
        Err(ProtoError::Malformed("empty handler name"))
    } else if name.len() > MAX_NAME_LEN {
        Err(ProtoError::Malformed("handler name longer than 255 bytes"))
    } else {
        Ok(())
    }
}

impl<'a> Envelope<'a> {
    /// Decodes one envelope, borrowing from `bytes`.
    ///
    /// Rejects with [`ProtoError::Malformed`]: unknown tags, truncation, lengths past the
    /// end, trailing bytes, invalid UTF-8, empty or over-long names. Allocates nothing.
    pub fn decode(bytes: &'a [u8]) -> Result<Envelope<'a>, ProtoError> {
        let wire: WireEnvelope<'a> = decode_options(bytes.len())
            .deserialize(bytes)
            .map_err(|_| ProtoError::Malformed("envelope does not decode"))?;
        Ok(match wire {
            WireEnvelope::Call { id, name, body } => {
                validate_name(name)?;
                Envelope::Call { id, name, body }
            }
            WireEnvelope::Reply { id, outcome } => Envelope::Reply {
                id,
                outcome: match outcome {
                    WireOutcome::Ok(b) => Outcome::Ok(b),
                    WireOutcome::NoSuchHandler => Outcome::NoSuchHandler,
                    WireOutcome::Forbidden => Outcome::Forbidden,
                    WireOutcome::HandlerFailed(m) => Outcome::HandlerFailed(m),
                    WireOutcome::Overloaded => Outcome::Overloaded,
                },
            },
            WireEnvelope::Send { name, body } => {
                validate_name(name)?;
                Envelope::Send { name, body }
            }
            WireEnvelope::Ping { nonce } => Envelope::Ping { nonce },
            WireEnvelope::Pong { nonce } => Envelope::Pong { nonce },
            WireEnvelope::Goodbye { reason } => Envelope::Goodbye {
                reason: GoodbyeReason::from_u32(reason),
            },
        })
    }

    /// Exact number of bytes [`Envelope::encode_into`] appends.
    pub fn encoded_len(&self) -> usize {
        4 + match self {
            Envelope::Call { name, body, .. } => 8 + var_len(name.len()) + var_len(body.len()),
            Envelope::Reply { outcome, .. } => {
                8 + 4
                    + match outcome {
                        Outcome::Ok(b) => var_len(b.len()),
                        Outcome::HandlerFailed(m) => var_len(m.len()),
                        Outcome::NoSuchHandler | Outcome::Forbidden | Outcome::Overloaded => 0,
                    }
            }
            Envelope::Send { name, body } => var_len(name.len()) + var_len(body.len()),
            Envelope::Ping { .. } | Envelope::Pong { .. } => 8,
            Envelope::Goodbye { .. } => 4,
        }
    }

    /// Appends the encoding to `out` (one reservation, no intermediate buffer).
    ///
    /// Infallible; names are written as given, so callers check them with
    /// [`validate_name`] first or the peer will reject the envelope.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        match *self {
            Envelope::Call { id, name, body } => {
                put_u32(out, TAG_CALL);
                put_u64(out, id);
                put_bytes(out, name.as_bytes());
                put_bytes(out, body);
            }
            Envelope::Reply { id, outcome } => {
                put_u32(out, TAG_REPLY);
                put_u64(out, id);
                match outcome {
                    Outcome::Ok(b) => {
                        put_u32(out, 0);
                        put_bytes(out, b);
                    }
                    Outcome::NoSuchHandler => put_u32(out, 1),
                    Outcome::Forbidden => put_u32(out, 2),
                    Outcome::HandlerFailed(m) => {
                        put_u32(out, 3);
                        put_bytes(out, m.as_bytes());
                    }
                    Outcome::Overloaded => put_u32(out, 4),
                }
            }
            Envelope::Send { name, body } => {
                put_u32(out, TAG_SEND);
                put_bytes(out, name.as_bytes());
                put_bytes(out, body);
            }
            Envelope::Ping { nonce } => {
                put_u32(out, TAG_PING);
                put_u64(out, nonce);
            }
            Envelope::Pong { nonce } => {
                put_u32(out, TAG_PONG);
                put_u64(out, nonce);
            }
            Envelope::Goodbye { reason } => {
                put_u32(out, TAG_GOODBYE);
                put_u32(out, reason.as_u32());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn to_wire<'a>(e: &Envelope<'a>) -> WireEnvelope<'a> {
        match *e {
            Envelope::Call { id, name, body } => WireEnvelope::Call { id, name, body },
            Envelope::Reply { id, outcome } => WireEnvelope::Reply {
                id,
                outcome: match outcome {
                    Outcome::Ok(b) => WireOutcome::Ok(b),
                    Outcome::NoSuchHandler => WireOutcome::NoSuchHandler,
                    Outcome::Forbidden => WireOutcome::Forbidden,
                    Outcome::HandlerFailed(m) => WireOutcome::HandlerFailed(m),
                    Outcome::Overloaded => WireOutcome::Overloaded,
                },
            },
            Envelope::Send { name, body } => WireEnvelope::Send { name, body },
            Envelope::Ping { nonce } => WireEnvelope::Ping { nonce },
            Envelope::Pong { nonce } => WireEnvelope::Pong { nonce },
            Envelope::Goodbye { reason } => WireEnvelope::Goodbye {
                reason: reason.as_u32(),
            },
        }
    }

    fn samples() -> Vec<Envelope<'static>> {
        // Over 64 KiB (Noise's message limit, which frames may exceed); static, so
        // nothing is leaked (Miri checks). Smaller under Miri, which is ~1000x slower.
        #[cfg(not(miri))]
        const BIG_LEN: usize = 70_000;
        #[cfg(miri)]
        const BIG_LEN: usize = 700;
        static BIG: [u8; BIG_LEN] = [7u8; BIG_LEN];
        let big: &'static [u8] = &BIG;
        vec![
            Envelope::Call {
                id: 1,
                name: "echo",
                body: b"hi",
            },
            Envelope::Call {
                id: u64::MAX,
                name: "é",
                body: big,
            },
            Envelope::Reply {
                id: 5,
                outcome: Outcome::Ok(b""),
            },
            Envelope::Reply {
                id: 5,
                outcome: Outcome::Ok(big),
            },
            Envelope::Reply {
                id: 6,
                outcome: Outcome::NoSuchHandler,
            },
            Envelope::Reply {
                id: 7,
                outcome: Outcome::Forbidden,
            },
            Envelope::Reply {
                id: 8,
                outcome: Outcome::HandlerFailed("boom ✓"),
            },
            Envelope::Reply {
                id: 9,
                outcome: Outcome::Overloaded,
            },
            Envelope::Send {
                name: "chat",
                body: b"",
            },
            Envelope::Send {
                name: "x",
                body: b"\0\xff",
            },
            Envelope::Ping {
                nonce: 0x1122_3344_5566_7788,
            },
            Envelope::Pong { nonce: 0 },
            Envelope::Goodbye {
                reason: GoodbyeReason::Closing,
            },
            Envelope::Goodbye {
                reason: GoodbyeReason::Duplicate,
            },
            Envelope::Goodbye {
                reason: GoodbyeReason::TrustRevoked,
            },
            Envelope::Goodbye {
                reason: GoodbyeReason::ProtocolError,
            },
        ]
    }

    #[test]
    fn hand_encoder_is_byte_identical_to_bincode() {
        let opts = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_little_endian();
        for e in samples() {
            let reference = opts.serialize(&to_wire(&e)).unwrap();
            let mut ours = vec![0xee];
            e.encode_into(&mut ours);
            assert_eq!(&ours[1..], &reference[..], "{e:?}");
            assert_eq!(e.encoded_len(), reference.len(), "{e:?}");
            assert_eq!(Envelope::decode(&reference).unwrap(), e);
        }
    }

    #[test]
    fn unknown_goodbye_reason_reads_as_closing() {
        let bytes = [5, 0, 0, 0, 99, 0, 0, 0];
        assert_eq!(
            Envelope::decode(&bytes).unwrap(),
            Envelope::Goodbye {
                reason: GoodbyeReason::Closing
            }
        );
        assert_eq!(GoodbyeReason::from_u32(u32::MAX), GoodbyeReason::Closing);
    }

    #[test]
    fn every_truncation_is_rejected() {
        for e in samples() {
            let mut buf = Vec::new();
            e.encode_into(&mut buf);
            for cut in 0..buf.len().min(64) {
                assert!(Envelope::decode(&buf[..cut]).is_err(), "{e:?} cut {cut}");
            }
        }
    }
}
