//! Frames: `u32 BE length ‖ body` (spec 2).

use crate::ProtoError;

/// Size of the frame header (the u32 BE body length).
pub const HEADER_LEN: usize = 4;
/// Body limit for handshake frames.
pub const HANDSHAKE_FRAME_LIMIT: usize = 1024;
/// Default transport body limit (1 MiB), announced in the Hello.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 1 << 20;
/// Smallest transport body limit a node may announce.
pub const MIN_MAX_FRAME_LEN: u32 = 65_536;

/// Reads a frame header from the front of `buf`, before anything is allocated.
///
/// `Ok(None)` when `buf` has fewer than 4 bytes; `Ok(Some(n))` the body length if
/// `1 <= n <= limit`; [`ProtoError::FrameEmpty`] or [`ProtoError::FrameTooLarge`] otherwise.
pub fn parse_header(buf: &[u8], limit: usize) -> Result<Option<usize>, ProtoError> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*head);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len == 0 {
        Err(ProtoError::FrameEmpty)
    } else if len > limit {
        Err(ProtoError::FrameTooLarge { len, limit })
    } else {
        Ok(Some(len))
    }
}

/// Appends `u32 BE length ‖ body` to `out`.
///
/// Callers keep bodies within the peer's limit (at most [`u32::MAX`] in any case; a
/// longer body would get a saturated, wrong header, and the peer would reject it).
pub fn encode_frame(body: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.reserve(HEADER_LEN + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn header_cases() {
        assert_eq!(parse_header(&[0, 0, 0], 10), Ok(None));
        assert_eq!(parse_header(&[0, 0, 0, 0], 10), Err(ProtoError::FrameEmpty));
        assert_eq!(parse_header(&[0, 0, 0, 10, 9], 10), Ok(Some(10)));
        assert_eq!(
            parse_header(&[0, 0, 0, 11], 10),
            Err(ProtoError::FrameTooLarge { len: 11, limit: 10 })
        );
        assert_eq!(
            parse_header(&[0xff, 0xff, 0xff, 0xff], 1 << 20),
            Err(ProtoError::FrameTooLarge {
                len: 0xffff_ffff,
                limit: 1 << 20
            })
        );
    }

    #[test]
    fn encode_appends() {
        let mut out = vec![9];
        encode_frame(b"hi", &mut out);
        assert_eq!(out, [9, 0, 0, 0, 2, b'h', b'i']);
    }
}
