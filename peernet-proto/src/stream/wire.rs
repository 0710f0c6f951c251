//! Stream messages on the wire (docs/protocol.md, "Streams"): five more envelope kinds,
//! laid out like the others (spec 5: `u32 LE tag` then bincode 1.3 fixed-int LE fields,
//! `str`/`bytes` as `u64 LE length ‖ bytes`, no trailing bytes).
//!
//! Tags 16 to 20, so they never collide with the core envelopes (0 to 5) and leave 6 to
//! 15 free for them; `06000000` stays the "unknown tag" vector of docs/protocol.md.
//! A node that did not negotiate streams ([`FEATURE_STREAMS`](super::FEATURE_STREAMS))
//! decodes these tags as unknown and answers Goodbye 3, as it always did.
//!
//! Decoding borrows from the input and allocates nothing; every length is checked
//! against the input (bincode's limit) before it is used, then against the message's
//! own bound ([`MAX_DATA_LEN`], [`MAX_REASON_LEN`], the 255-byte handler name).

use bincode::Options;
use serde::{Deserialize, Serialize};

use crate::codec::{decode_options, put_bytes, put_u32, put_u64, var_len};
use crate::envelope::validate_name;
use crate::ProtoError;

/// Tag of [`StreamMessage::Open`].
pub const TAG_STREAM_OPEN: u32 = 16;
/// Tag of [`StreamMessage::Data`].
pub const TAG_STREAM_DATA: u32 = 17;
/// Tag of [`StreamMessage::Credit`].
pub const TAG_STREAM_CREDIT: u32 = 18;
/// Tag of [`StreamMessage::Fin`].
pub const TAG_STREAM_FIN: u32 = 19;
/// Tag of [`StreamMessage::Reset`].
pub const TAG_STREAM_RESET: u32 = 20;

/// Plaintext bytes of a StreamData before its data: tag 4, id 8, offset 8, length 8.
pub const DATA_HEADER_LEN: usize = 28;
/// Largest data in one StreamData: its sealed frame body (28-byte header, the data,
/// the 16-byte AEAD tag) is then exactly 65,536 bytes, the smallest `max_frame_len` a
/// peer may announce (spec 3.2), so a chunk fits every peer's frames and calls
/// interleave between chunks. Longer data does not decode.
pub const MAX_DATA_LEN: usize = 65_536 - DATA_HEADER_LEN - crate::channel::TAG_LEN;
/// Longest StreamReset reason, in bytes (longer ones do not decode; the table cuts the
/// reasons it sends on a UTF-8 boundary).
pub const MAX_REASON_LEN: usize = 1024;

/// One stream message, borrowing its strings and bytes from the decoded buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMessage<'a> {
    /// Opens stream `id` to the peer's stream handler `name` (tag 16).
    Open {
        /// The new stream's id (odd from the connection's initiator, even from the
        /// responder, each side's in increasing order with no gap).
        id: u64,
        /// Handler name, 1..=255 bytes of UTF-8.
        name: &'a str,
    },
    /// Bytes of one direction of stream `id`, at `offset` in that direction (tag 17).
    Data {
        /// The stream.
        id: u64,
        /// Position of the first byte in the direction's byte sequence; always the
        /// number of bytes sent before (the channel is ordered, so this is a check).
        offset: u64,
        /// At most [`MAX_DATA_LEN`] bytes.
        bytes: &'a [u8],
    },
    /// The sender of this message lets the peer send on stream `id` up to offset
    /// `limit` (tag 18). Cumulative: the total number of bytes the peer may have sent
    /// on the stream, not an increment; a limit at or below an earlier one changes
    /// nothing.
    Credit {
        /// The stream.
        id: u64,
        /// The peer may send bytes with offsets below this.
        limit: u64,
    },
    /// The sender sends nothing more on stream `id` (tag 19): half-close. The other
    /// direction stays open.
    Fin {
        /// The stream.
        id: u64,
    },
    /// Aborts stream `id` in both directions (tag 20); neither side sends on it again.
    Reset {
        /// The stream.
        id: u64,
        /// Why: see the `RESET_*` codes (others are the application's).
        code: u32,
        /// Text for the user, at most [`MAX_REASON_LEN`] bytes of UTF-8, may be empty.
        reason: &'a str,
    },
}

#[derive(Serialize, Deserialize)]
struct WireOpen<'a> {
    id: u64,
    #[serde(borrow)]
    name: &'a str,
}

#[derive(Serialize, Deserialize)]
struct WireData<'a> {
    id: u64,
    offset: u64,
    #[serde(borrow)]
    bytes: &'a [u8],
}

#[derive(Serialize, Deserialize)]
struct WireCredit {
    id: u64,
    limit: u64,
}

#[derive(Serialize, Deserialize)]
struct WireFin {
    id: u64,
}

#[derive(Serialize, Deserialize)]
struct WireReset<'a> {
    id: u64,
    code: u32,
    #[serde(borrow)]
    reason: &'a str,
}

/// The envelope tag of `bytes` when it is one of the stream tags (16..=20), without
/// decoding the rest: how a receiver that negotiated streams picks this decoder or
/// [`Envelope::decode`](crate::envelope::Envelope::decode).
pub fn stream_tag(bytes: &[u8]) -> Option<u32> {
    let tag = u32::from_le_bytes(*bytes.first_chunk::<4>()?);
    (TAG_STREAM_OPEN..=TAG_STREAM_RESET)
        .contains(&tag)
        .then_some(tag)
}

fn body<'a, T: Deserialize<'a>>(rest: &'a [u8]) -> Result<T, ProtoError> {
    decode_options(rest.len())
        .deserialize(rest)
        .map_err(|_| ProtoError::Malformed("stream message does not decode"))
}

impl<'a> StreamMessage<'a> {
    /// Decodes one stream message, borrowing from `bytes`.
    ///
    /// [`ProtoError::Malformed`] for a tag outside 16..=20, truncation, a length past
    /// the end, trailing bytes, invalid UTF-8, a handler name out of 1..=255 bytes, data
    /// over [`MAX_DATA_LEN`] or a reason over [`MAX_REASON_LEN`]. Allocates nothing.
    pub fn decode(bytes: &'a [u8]) -> Result<StreamMessage<'a>, ProtoError> {
        let Some((tag, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(ProtoError::Malformed("stream message shorter than its tag"));
        };
        Ok(match u32::from_le_bytes(*tag) {
            TAG_STREAM_OPEN => {
                let w: WireOpen<'a> = body(rest)?;
                validate_name(w.name)?;
                StreamMessage::Open {
                    id: w.id,
                    name: w.name,
                }
            }
            TAG_STREAM_DATA => {
                let w: WireData<'a> = body(rest)?;
                if w.bytes.len() > MAX_DATA_LEN {
                    return Err(ProtoError::Malformed(
                        "stream data longer than 65,492 bytes",
                    ));
                }
                StreamMessage::Data {
                    id: w.id,
                    offset: w.offset,
                    bytes: w.bytes,
                }
            }
            TAG_STREAM_CREDIT => {
                let w: WireCredit = body(rest)?;
                StreamMessage::Credit {
                    id: w.id,
                    limit: w.limit,
                }
            }
            TAG_STREAM_FIN => {
                let w: WireFin = body(rest)?;
                StreamMessage::Fin { id: w.id }
            }
            TAG_STREAM_RESET => {
                let w: WireReset<'a> = body(rest)?;
                if w.reason.len() > MAX_REASON_LEN {
                    return Err(ProtoError::Malformed(
                        "stream reset reason longer than 1024 bytes",
                    ));
                }
                StreamMessage::Reset {
                    id: w.id,
                    code: w.code,
                    reason: w.reason,
                }
            }
            _ => return Err(ProtoError::Malformed("not a stream message tag")),
        })
    }

    /// The stream the message is about.
    pub fn id(&self) -> u64 {
        match *self {
            StreamMessage::Open { id, .. }
            | StreamMessage::Data { id, .. }
            | StreamMessage::Credit { id, .. }
            | StreamMessage::Fin { id }
            | StreamMessage::Reset { id, .. } => id,
        }
    }

    /// Exact number of bytes [`StreamMessage::encode_into`] appends.
    pub fn encoded_len(&self) -> usize {
        4 + match self {
            StreamMessage::Open { name, .. } => 8 + var_len(name.len()),
            StreamMessage::Data { bytes, .. } => 16 + var_len(bytes.len()),
            StreamMessage::Credit { .. } => 16,
            StreamMessage::Fin { .. } => 8,
            StreamMessage::Reset { reason, .. } => 12 + var_len(reason.len()),
        }
    }

    /// Appends the encoding to `out`. Infallible and unchecked: the table only builds
    /// messages within the bounds [`StreamMessage::decode`] checks.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        match *self {
            StreamMessage::Open { id, name } => {
                put_u32(out, TAG_STREAM_OPEN);
                put_u64(out, id);
                put_bytes(out, name.as_bytes());
            }
            StreamMessage::Data { id, offset, bytes } => {
                put_data_header(out, id, offset, bytes.len());
                out.extend_from_slice(bytes);
            }
            StreamMessage::Credit { id, limit } => {
                put_u32(out, TAG_STREAM_CREDIT);
                put_u64(out, id);
                put_u64(out, limit);
            }
            StreamMessage::Fin { id } => {
                put_u32(out, TAG_STREAM_FIN);
                put_u64(out, id);
            }
            StreamMessage::Reset { id, code, reason } => {
                put_u32(out, TAG_STREAM_RESET);
                put_u64(out, id);
                put_u32(out, code);
                put_bytes(out, reason.as_bytes());
            }
        }
    }
}

/// Appends the 28 bytes of a StreamData before its `len` data bytes (the table copies
/// the data straight from its send buffer after it).
pub(crate) fn put_data_header(out: &mut Vec<u8>, id: u64, offset: u64, len: usize) {
    put_u32(out, TAG_STREAM_DATA);
    put_u64(out, id);
    put_u64(out, offset);
    put_u64(out, u64::try_from(len).unwrap_or(u64::MAX));
}

/// The longest prefix of `s` of at most `max` bytes that ends on a UTF-8 boundary.
pub(crate) fn cut_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// bincode of `(tag, body)`: the reference the hand encoder must equal.
    fn reference(m: &StreamMessage<'_>) -> Vec<u8> {
        let opts = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_little_endian();
        let (tag, mut b) = match *m {
            StreamMessage::Open { id, name } => {
                (TAG_STREAM_OPEN, opts.serialize(&WireOpen { id, name }))
            }
            StreamMessage::Data { id, offset, bytes } => (
                TAG_STREAM_DATA,
                opts.serialize(&WireData { id, offset, bytes }),
            ),
            StreamMessage::Credit { id, limit } => {
                (TAG_STREAM_CREDIT, opts.serialize(&WireCredit { id, limit }))
            }
            StreamMessage::Fin { id } => (TAG_STREAM_FIN, opts.serialize(&WireFin { id })),
            StreamMessage::Reset { id, code, reason } => (
                TAG_STREAM_RESET,
                opts.serialize(&WireReset { id, code, reason }),
            ),
        };
        let mut out = tag.to_le_bytes().to_vec();
        out.append(b.as_mut().unwrap());
        out
    }

    fn samples() -> Vec<StreamMessage<'static>> {
        static BIG: [u8; MAX_DATA_LEN] = [9u8; MAX_DATA_LEN];
        static REASON: [u8; MAX_REASON_LEN] = [b'r'; MAX_REASON_LEN];
        let long_reason = std::str::from_utf8(&REASON).unwrap();
        vec![
            StreamMessage::Open { id: 1, name: "f" },
            StreamMessage::Open {
                id: u64::MAX,
                name: "é",
            },
            StreamMessage::Data {
                id: 2,
                offset: 0,
                bytes: b"",
            },
            StreamMessage::Data {
                id: 3,
                offset: u64::MAX,
                bytes: &BIG,
            },
            StreamMessage::Credit { id: 4, limit: 0 },
            StreamMessage::Fin { id: 5 },
            StreamMessage::Reset {
                id: 6,
                code: u32::MAX,
                reason: "",
            },
            StreamMessage::Reset {
                id: 7,
                code: 1,
                reason: long_reason,
            },
        ]
    }

    #[test]
    fn hand_encoder_is_byte_identical_to_bincode() {
        for m in samples() {
            let r = reference(&m);
            let mut ours = vec![0xee];
            m.encode_into(&mut ours);
            assert_eq!(&ours[1..], &r[..], "{m:?}");
            assert_eq!(m.encoded_len(), r.len(), "{m:?}");
            assert_eq!(StreamMessage::decode(&r).unwrap(), m);
            assert_eq!(
                stream_tag(&r),
                Some(u32::from_le_bytes([r[0], r[1], r[2], r[3]]))
            );
        }
    }

    #[test]
    fn a_full_chunk_fills_the_smallest_frame_exactly() {
        let m = StreamMessage::Data {
            id: 1,
            offset: 0,
            bytes: &[0; MAX_DATA_LEN],
        };
        assert_eq!(
            m.encoded_len() + crate::channel::TAG_LEN,
            crate::frame::MIN_MAX_FRAME_LEN as usize
        );
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_rejected() {
        for m in samples() {
            let mut buf = Vec::new();
            m.encode_into(&mut buf);
            for cut in 0..buf.len().min(80) {
                assert!(
                    StreamMessage::decode(&buf[..cut]).is_err(),
                    "{m:?} cut {cut}"
                );
            }
            buf.push(0);
            assert!(StreamMessage::decode(&buf).is_err(), "{m:?} trailing");
        }
    }

    #[test]
    fn bounds_are_enforced_after_the_length_check() {
        let mut over = Vec::new();
        put_data_header(&mut over, 1, 0, MAX_DATA_LEN + 1);
        over.resize(over.len() + MAX_DATA_LEN + 1, 0);
        assert!(StreamMessage::decode(&over).is_err());

        let reason = "x".repeat(MAX_REASON_LEN + 1);
        let mut r = Vec::new();
        StreamMessage::Reset {
            id: 1,
            code: 0,
            reason: &reason,
        }
        .encode_into(&mut r);
        assert!(StreamMessage::decode(&r).is_err());

        for name in ["", &"n".repeat(256)] {
            let mut o = Vec::new();
            StreamMessage::Open { id: 1, name }.encode_into(&mut o);
            assert!(StreamMessage::decode(&o).is_err(), "name of {}", name.len());
        }
        // A length field claiming 2^63 bytes is refused before anything is reserved.
        let mut huge = Vec::new();
        put_data_header(&mut huge, 1, 0, 1 << 63);
        assert!(StreamMessage::decode(&huge).is_err());
    }

    #[test]
    fn other_tags_are_not_stream_tags() {
        for tag in [0u32, 5, 6, 15, 21, u32::MAX] {
            let b = tag.to_le_bytes();
            assert_eq!(stream_tag(&b), None);
            assert!(StreamMessage::decode(&b).is_err());
        }
        assert_eq!(stream_tag(&[16, 0, 0]), None);
    }

    #[test]
    fn cut_utf8_stays_on_a_boundary() {
        assert_eq!(cut_utf8("héllo", 2), "h");
        assert_eq!(cut_utf8("héllo", 3), "hé");
        assert_eq!(cut_utf8("abc", 10), "abc");
    }
}
