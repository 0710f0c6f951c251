//! Invite tickets: `peernet1-` followed by dash-separated groups of base32 (RFC 4648
//! alphabet `A-Z2-7`, no padding, any case), each group 13 data characters and one Luhn
//! mod 32 check character (the last group may be shorter), as Syncthing device IDs do.
//!
//! The decoded bytes (at most [`MAX_PAYLOAD_LEN`]):
//!
//! ```text
//! key (32) ‖ secret (16) ‖ expires_at u64 BE (unix seconds) ‖ n u8 (0..=4) ‖
//! n × ( 0x04 ‖ ipv4 (4) ‖ port u16 BE  |  0x06 ‖ ipv6 (16) ‖ port u16 BE )
//! ```
//!
//! Every group is checked before any byte is decoded, so a typo is reported naming its
//! group; the text length is checked before anything is allocated.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use zeroize::Zeroize;

use super::PairError;
use crate::Key;

/// The prefix, which also carries the format version (compared case-insensitively).
pub const PREFIX: &str = "peernet1-";
/// At most this many addresses in a ticket.
pub const MAX_ADDRS: usize = 4;
/// Largest decoded ticket: 57 fixed bytes and four IPv6 addresses.
pub const MAX_PAYLOAD_LEN: usize = 32 + 16 + 8 + 1 + MAX_ADDRS * 19;
/// Data characters per group.
pub const GROUP_DATA: usize = 13;
/// Longest accepted ticket text (after removing whitespace): prefix, 17 groups of 14
/// and their dashes.
pub const MAX_TEXT_LEN: usize = 9 + 17 * 15;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A decoded invite ticket. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The inviter's static public key: the joiner accepts no other.
    pub key: Key,
    /// The one-time 128-bit secret.
    pub secret: [u8; 16],
    /// Unix seconds after which the invite is refused.
    pub expires_at: u64,
    /// Where the inviter's pairing listener accepts (at most [`MAX_ADDRS`]).
    pub addrs: Vec<SocketAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("key", &self.key)
            .field("expires_at", &self.expires_at)
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

/// Luhn mod 32 check value of `codepoints` (each 0..32), doubling from the right.
fn luhn32(codepoints: &[u8]) -> u8 {
    let mut factor = 2u32;
    let mut sum = 0u32;
    for &c in codepoints.iter().rev() {
        let addend = factor * u32::from(c);
        factor = 3 - factor;
        sum += addend / 32 + addend % 32;
    }
    // (32 - sum % 32) % 32 is below 32.
    ((32 - sum % 32) % 32) as u8
}

fn codepoint(c: u8) -> Option<u8> {
    match c.to_ascii_uppercase() {
        b @ b'A'..=b'Z' => Some(b - b'A'),
        b @ b'2'..=b'7' => Some(b - b'2' + 26),
        _ => None,
    }
}

impl Ticket {
    /// The binary form (at most [`MAX_PAYLOAD_LEN`] bytes). More than [`MAX_ADDRS`]
    /// addresses: only the first four are kept.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_PAYLOAD_LEN);
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(&self.secret);
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        let addrs = self
            .addrs
            .get(..self.addrs.len().min(MAX_ADDRS))
            .unwrap_or(&[]);
        // At most 4.
        out.push(addrs.len() as u8);
        for a in addrs {
            match a.ip() {
                IpAddr::V4(ip) => {
                    out.push(4);
                    out.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    out.push(6);
                    out.extend_from_slice(&ip.octets());
                }
            }
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        out
    }

    /// Parses the binary form; anything but an exact, complete encoding is refused.
    pub fn from_bytes(b: &[u8]) -> Result<Ticket, PairError> {
        if b.len() > MAX_PAYLOAD_LEN {
            return Err(PairError::TicketFormat("too long"));
        }
        let mut r = Reader(b);
        let key = Key(r.array::<32>()?);
        let secret = r.array::<16>()?;
        let expires_at = u64::from_be_bytes(r.array::<8>()?);
        let [n] = r.array::<1>()?;
        let n = usize::from(n);
        if n > MAX_ADDRS {
            return Err(PairError::TicketFormat("more than 4 addresses"));
        }
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            let ip = match r.array::<1>()? {
                [4] => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
                [6] => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
                _ => return Err(PairError::TicketFormat("unknown address type")),
            };
            let port = u16::from_be_bytes(r.array::<2>()?);
            addrs.push(SocketAddr::new(ip, port));
        }
        if !r.0.is_empty() {
            return Err(PairError::TicketFormat("bytes after the last address"));
        }
        Ok(Ticket {
            key,
            secret,
            expires_at,
            addrs,
        })
    }

    /// The text form: `peernet1-` and groups of 13 base32 characters plus a check
    /// character, dash-separated, uppercase.
    pub fn encode(&self) -> String {
        let data = base32(&self.to_bytes());
        let mut out = String::with_capacity(MAX_TEXT_LEN);
        out.push_str(PREFIX);
        for (i, chunk) in data.chunks(GROUP_DATA).enumerate() {
            if i > 0 {
                out.push('-');
            }
            let cps: Vec<u8> = chunk.iter().filter_map(|&c| codepoint(c)).collect();
            out.extend(chunk.iter().map(|&c| char::from(c)));
            out.push(char::from(ALPHABET[usize::from(luhn32(&cps))]));
        }
        out
    }

    /// Parses the text form (any case; whitespace, e.g. from a wrapped terminal line,
    /// is ignored). Every group's check character is verified first, so a typo is
    /// [`PairError::TicketTypo`] naming the group; then the bytes are decoded.
    pub fn parse(text: &str) -> Result<Ticket, PairError> {
        // Bound before allocating: whitespace counts against a generous limit too.
        if text.len() > 4 * MAX_TEXT_LEN {
            return Err(PairError::TicketFormat("far too long"));
        }
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if compact.len() > MAX_TEXT_LEN {
            return Err(PairError::TicketFormat("too long"));
        }
        let prefix = PREFIX.as_bytes();
        let head = compact.get(..prefix.len()).unwrap_or(&compact);
        if !head.eq_ignore_ascii_case(prefix) {
            if compact.len() >= 8 && compact[..7].eq_ignore_ascii_case(b"peernet") {
                return Err(PairError::TicketFormat(
                    "unknown ticket version (this build reads peernet1)",
                ));
            }
            return Err(PairError::TicketFormat("it does not start with peernet1-"));
        }
        let body = &compact[prefix.len()..];
        let groups: Vec<&[u8]> = body.split(|&b| b == b'-').collect();
        let mut data = Vec::with_capacity(body.len());
        let last = groups.len().saturating_sub(1);
        for (i, g) in groups.iter().enumerate() {
            let group = i + 1;
            let mut cps = Vec::with_capacity(g.len());
            for &c in g.iter() {
                match codepoint(c) {
                    Some(cp) => cps.push(cp),
                    None => {
                        return Err(PairError::TicketCharacter {
                            group,
                            ch: char::from(c),
                        })
                    }
                }
            }
            let full = GROUP_DATA + 1;
            if cps.len() < 2 || cps.len() > full || (i < last && cps.len() != full) {
                return Err(PairError::TicketFormat(
                    "a group has the wrong length (groups are 14 characters, the last may be \
                     shorter)",
                ));
            }
            let (check, chars) = match cps.split_last() {
                Some((c, rest)) => (*c, rest),
                None => return Err(PairError::TicketFormat("empty group")),
            };
            if luhn32(chars) != check {
                return Err(PairError::TicketTypo { group });
            }
            data.extend_from_slice(chars);
        }
        let bytes = unbase32(&data)?;
        Ticket::from_bytes(&bytes)
    }

    /// True when the invite has expired at `now` (unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], PairError> {
        let (head, rest) = self
            .0
            .split_at_checked(N)
            .ok_or(PairError::TicketFormat("too short"))?;
        self.0 = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }
}

/// RFC 4648 base32 without padding, uppercase ASCII bytes.
fn base32(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize]);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize]);
    }
    out
}

/// Inverse of [`base32`] on code points; the padding bits must be zero and the
/// length a possible one (canonical form only).
fn unbase32(cps: &[u8]) -> Result<Vec<u8>, PairError> {
    let mut out = Vec::with_capacity(cps.len() * 5 / 8);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &c in cps {
        acc = (acc << 5) | u32::from(c & 31);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    if bits >= 5 || (acc & ((1 << bits) - 1)) != 0 {
        return Err(PairError::TicketFormat("characters missing at the end"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_round_trips_every_length() {
        for n in 0..40u8 {
            let b: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let cps: Vec<u8> = base32(&b).iter().filter_map(|&c| codepoint(c)).collect();
            assert_eq!(unbase32(&cps).unwrap(), b);
        }
    }

    #[test]
    fn luhn_catches_every_single_substitution() {
        let cps: Vec<u8> = (0..13).map(|i| (i * 7) % 32).collect();
        let check = luhn32(&cps);
        for pos in 0..cps.len() {
            for v in 0..32u8 {
                if v == cps[pos] {
                    continue;
                }
                let mut c = cps.clone();
                c[pos] = v;
                assert_ne!(luhn32(&c), check, "pos {pos} value {v}");
            }
        }
    }
}
