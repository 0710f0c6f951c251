//! Shared bincode 1.3 settings and hand-written writers for the same layout (spec 5).

use bincode::Options;

/// The decoder options of spec 5: fixed-int little endian, bounded by the input length,
/// no trailing bytes.
pub(crate) fn decode_options(input_len: usize) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(u64::try_from(input_len).unwrap_or(u64::MAX))
        .reject_trailing_bytes()
}

/// Encoded size of a `str` or `bytes` field: u64 length prefix plus the bytes.
pub(crate) const fn var_len(n: usize) -> usize {
    8 + n
}

/// Appends a u32 LE.
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a u64 LE.
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `u64 LE length ‖ bytes` (bincode's layout for both `str` and `bytes`).
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, u64::try_from(b.len()).unwrap_or(u64::MAX));
    out.extend_from_slice(b);
}
