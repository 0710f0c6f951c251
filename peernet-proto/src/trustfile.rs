//! The persisted trust store: a human-readable, hand-editable text file.
//!
//! ```text
//! # PeerNet trust store, format 3
//! # One peer per line: <key hex> <added-at unix seconds> <rights> <addresses> <manual> <label>
//! # rights: "-" (none) or "rpc". addresses: "-" (none) or up to 4 confirmed ip:port,
//! # comma-separated, newest first. manual: "-" or up to 4 host:port given by the user,
//! # comma-separated. Label: rest of the line (may be empty).
//! 8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a 1764090000 rpc 192.168.1.20:7000,[fe80::1]:7000 laptop.example:7000 Bob's laptop
//! ```
//!
//! Rules:
//! - The first line must be the header `# PeerNet trust store, format <n>`; formats 1
//!   to 3 are understood. [`render`] writes 3 when an entry has manual addresses, else
//!   2 (so a file without them stays readable by releases that know only 2). Format 1
//!   lines have no addresses field (`<key> <added-at> <rights> <label>`), format 2 no
//!   manual field: an old file loads unchanged, with none. A file without the header
//!   (including an empty file) is an error, so a truncated or foreign file never loads
//!   as an empty store.
//! - Manual addresses (format 3) are `host:port` the user attached
//!   (`crate::peer_addr`: IP literals or DNS names, resolved at dial time, dialed
//!   first); at most [`crate::peer_addr::MAX_MANUAL_ADDRESSES`], no duplicates.
//! - An IPv6 link-local address keeps its numeric scope id (`[fe80::1%2]:7000`, the
//!   interface index it was reached over); other addresses have none.
//! - Addresses (format 2) are where a handshake with the peer's key last completed
//!   ([`MAX_ADDRESSES`] at most, no duplicates, no port 0, unspecified or multicast IP).
//!   They are hints with priority (a node dials them first after a restart), never
//!   trust: the handshake still authenticates the key.
//! - Other lines starting with `#` (after optional whitespace) and blank (whitespace
//!   only) lines are ignored.
//! - Fields are separated by spaces or tabs (one or more). The key is 64 hex digits (either
//!   case), added-at is decimal digits (u64), rights is `-` or `rpc`. The label is the
//!   rest of the line after the single separator that follows the rights field, verbatim
//!   (so leading spaces are kept); it is at most 256 bytes with no control characters.
//! - A trailing `\r` (CRLF files) is ignored. A key listed twice is an error.
//! - Every error names its 1-based line.

use std::net::SocketAddr;

use crate::{Key, ProtoError};

/// Longest label, in bytes.
pub const MAX_LABEL_LEN: usize = 256;
/// The header every trust file starts with, minus the version number.
pub const HEADER_PREFIX: &str = "# PeerNet trust store, format ";
/// The newest format [`parse`] understands, written by [`render`] when an entry has
/// manual addresses.
pub const FORMAT_VERSION: u32 = 3;
/// The format [`render`] writes when no entry has manual addresses.
pub const FORMAT_WITHOUT_MANUAL: u32 = 2;
/// The oldest format [`parse`] still reads (no addresses field).
pub const OLDEST_FORMAT: u32 = 1;
/// Most confirmed addresses kept per peer.
pub const MAX_ADDRESSES: usize = 4;

/// One trusted peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustEntry {
    /// The peer's static public key.
    pub key: Key,
    /// A name for humans; may be empty.
    pub label: String,
    /// When the peer was trusted, in Unix seconds.
    pub added_at: u64,
    /// Whether the peer may use `peernet.rpc` (spec 6).
    pub rpc: bool,
    /// Addresses an authenticated handshake with the peer completed over, newest
    /// first (at most [`MAX_ADDRESSES`]; empty in a format-1 file).
    pub addresses: Vec<SocketAddr>,
    /// Addresses the user attached (`host:port`, canonical form of
    /// [`crate::peer_addr::normalize`]; at most
    /// [`crate::peer_addr::MAX_MANUAL_ADDRESSES`]; empty before format 3). Resolved and
    /// dialed first; like every address a hint, never trust.
    pub manual: Vec<String>,
}

/// Whether `addr` may be stored as a peer's address (a dialable unicast address).
pub fn is_storable_address(addr: &SocketAddr) -> bool {
    addr.port() != 0 && !addr.ip().is_unspecified() && !addr.ip().is_multicast()
}

/// The stored form of an address: IP and port, and for an IPv6 link-local address
/// (`fe80::/10`) its numeric scope id (`[fe80::1%2]:7000`: without it the address
/// cannot be dialed); never flow info, nor a scope id on any other address. What is
/// parsed and what is written are the same value.
pub fn storable_form(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) if (v6.ip().segments()[0] & 0xffc0) == 0xfe80 => SocketAddr::V6(
            std::net::SocketAddrV6::new(*v6.ip(), v6.port(), 0, v6.scope_id()),
        ),
        _ => SocketAddr::new(a.ip(), a.port()),
    }
}

fn plain(a: SocketAddr) -> SocketAddr {
    storable_form(a)
}

/// Parses the addresses field: `-` or comma-separated addresses.
fn parse_addresses(n: usize, field: &str) -> Result<Vec<SocketAddr>, ProtoError> {
    if field == "-" {
        return Ok(Vec::new());
    }
    if field.is_empty() {
        return Err(err(n, "missing addresses field (\"-\" or ip:port,...)"));
    }
    // Bounded before anything is allocated per item.
    if field.split(',').count() > MAX_ADDRESSES {
        return Err(err(n, format!("more than {MAX_ADDRESSES} addresses")));
    }
    let mut out: Vec<SocketAddr> = Vec::with_capacity(MAX_ADDRESSES);
    for text in field.split(',') {
        let a: SocketAddr = text
            .parse()
            .map(plain)
            .map_err(|_| err(n, format!("{text:?} is not an ip:port address")))?;
        if !is_storable_address(&a) {
            return Err(err(n, format!("{a} cannot be dialed")));
        }
        if out.contains(&a) {
            return Err(err(n, format!("{a} is listed twice")));
        }
        out.push(a);
    }
    Ok(out)
}

/// Parses the manual field (format 3): `-` or comma-separated `host:port`.
fn parse_manual(n: usize, field: &str) -> Result<Vec<String>, ProtoError> {
    use crate::peer_addr::{normalize, MAX_MANUAL_ADDRESSES};
    if field == "-" {
        return Ok(Vec::new());
    }
    if field.is_empty() {
        return Err(err(
            n,
            "missing manual addresses field (\"-\" or host:port,...)",
        ));
    }
    if field.split(',').count() > MAX_MANUAL_ADDRESSES {
        return Err(err(
            n,
            format!("more than {MAX_MANUAL_ADDRESSES} manual addresses"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(MAX_MANUAL_ADDRESSES);
    for text in field.split(',') {
        let a = normalize(text).map_err(|e| err(n, e.to_string()))?;
        if out.contains(&a) {
            return Err(err(n, format!("{a} is listed twice")));
        }
        out.push(a);
    }
    Ok(out)
}

/// Checks a label: at most 256 bytes, no control characters.
pub fn validate_label(label: &str) -> Result<(), ProtoError> {
    if label.len() > MAX_LABEL_LEN {
        Err(ProtoError::BadLabel("longer than 256 bytes"))
    } else if label.chars().any(char::is_control) {
        Err(ProtoError::BadLabel("contains a control character"))
    } else {
        Ok(())
    }
}

/// Checks a key before it is trusted: a low-order point is refused
/// ([`ProtoError::LowOrderKey`]).
pub fn validate_key(key: &Key) -> Result<(), ProtoError> {
    if key.is_low_order() {
        Err(ProtoError::LowOrderKey)
    } else {
        Ok(())
    }
}

fn err(line: usize, reason: impl Into<String>) -> ProtoError {
    ProtoError::TrustFile {
        line,
        reason: reason.into(),
    }
}

/// Field separators (a label cannot contain a tab: it is a control character).
const SEPARATORS: [char; 2] = [' ', '\t'];

/// Splits off the next space-separated field; returns (field, rest after the one
/// separating space).
fn next_field(s: &str) -> (&str, Option<&str>) {
    let s = s.trim_start_matches(SEPARATORS);
    match s.split_once(SEPARATORS) {
        Some((field, rest)) => (field, Some(rest)),
        None => (s, None),
    }
}

fn parse_entry(n: usize, line: &str, version: u32) -> Result<TrustEntry, ProtoError> {
    let (key_text, rest) = next_field(line);
    let key = Key::from_hex(key_text)
        .map_err(|_| err(n, format!("{key_text:?} is not a 64-digit hex key")))?;
    validate_key(&key).map_err(|e| err(n, e.to_string()))?;
    let (added_text, rest) = next_field(rest.unwrap_or(""));
    if added_text.is_empty() || !added_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            n,
            format!("added-at {added_text:?} is not a number of seconds"),
        ));
    }
    let added_at: u64 = added_text
        .parse()
        .map_err(|_| err(n, format!("added-at {added_text:?} is too large")))?;
    let (rights, rest) = next_field(rest.unwrap_or(""));
    let rpc = match rights {
        "-" => false,
        "rpc" => true,
        "" => return Err(err(n, "missing rights field (\"-\" or \"rpc\")")),
        other => {
            return Err(err(
                n,
                format!("unknown rights {other:?} (\"-\" or \"rpc\")"),
            ))
        }
    };
    let (addresses, rest) = if version >= 2 {
        let (field, rest) = next_field(rest.unwrap_or(""));
        (parse_addresses(n, field)?, rest)
    } else {
        (Vec::new(), rest)
    };
    let (manual, label) = if version >= 3 {
        let (field, label) = next_field(rest.unwrap_or(""));
        (parse_manual(n, field)?, label)
    } else {
        (Vec::new(), rest)
    };
    let label = label.unwrap_or("");
    validate_label(label).map_err(|e| err(n, e.to_string()))?;
    Ok(TrustEntry {
        key,
        label: label.to_owned(),
        added_at,
        rpc,
        addresses,
        manual,
    })
}

fn parse_header(line: &str) -> Result<u32, ProtoError> {
    let version = line.strip_prefix(HEADER_PREFIX).ok_or_else(|| {
        err(
            1,
            format!("missing header line \"{HEADER_PREFIX}{FORMAT_VERSION}\""),
        )
    })?;
    match version.trim().parse::<u32>() {
        Ok(v) if (OLDEST_FORMAT..=FORMAT_VERSION).contains(&v) && version.trim() == v.to_string() => {
            Ok(v)
        }
        _ => Err(err(
            1,
            format!(
                "unsupported trust file format {:?} (this version reads {OLDEST_FORMAT} to {FORMAT_VERSION})",
                version.trim()
            ),
        )),
    }
}

/// Parses a trust file (see the module docs for the format).
pub fn parse(text: &str) -> Result<Vec<TrustEntry>, ProtoError> {
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let version = parse_header(lines.next().unwrap_or(""))?;
    let mut entries: Vec<TrustEntry> = Vec::new();
    let mut first_line_of: std::collections::HashMap<Key, usize> = Default::default();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry = parse_entry(n, line, version)?;
        if let Some(first) = first_line_of.insert(entry.key, n) {
            return Err(err(
                n,
                format!("key {} is already listed on line {first}", entry.key),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Makes a label safe to write: control characters become U+FFFD and it is cut to
/// 256 bytes on a character boundary. Valid labels are returned unchanged.
fn sanitize_label(label: &str) -> String {
    let mut out = String::with_capacity(label.len().min(MAX_LABEL_LEN));
    for c in label.chars() {
        let c = if c.is_control() { '\u{fffd}' } else { c };
        if out.len() + c.len_utf8() > MAX_LABEL_LEN {
            break;
        }
        out.push(c);
    }
    out
}

/// Writes the addresses field; addresses that could not be read back (undialable,
/// duplicates, beyond [`MAX_ADDRESSES`]) are left out.
fn render_addresses(out: &mut String, addresses: &[SocketAddr]) {
    let mut written: Vec<SocketAddr> = Vec::with_capacity(MAX_ADDRESSES);
    for a in addresses {
        if written.len() == MAX_ADDRESSES {
            break;
        }
        let a = plain(*a);
        if is_storable_address(&a) && !written.contains(&a) {
            written.push(a);
        }
    }
    if written.is_empty() {
        out.push('-');
    }
    for (i, a) in written.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&a.to_string());
    }
}

/// Writes the manual field; entries that could not be read back (invalid, duplicates,
/// beyond the limit) are left out.
fn render_manual(out: &mut String, manual: &[String]) {
    use crate::peer_addr::{normalize, MAX_MANUAL_ADDRESSES};
    let mut written: Vec<String> = Vec::with_capacity(MAX_MANUAL_ADDRESSES);
    for a in manual {
        if written.len() == MAX_MANUAL_ADDRESSES {
            break;
        }
        if let Ok(a) = normalize(a) {
            if !written.contains(&a) {
                written.push(a);
            }
        }
    }
    if written.is_empty() {
        out.push('-');
    }
    out.push_str(&written.join(","));
}

/// Writes a trust file: format 3 when an entry has manual addresses, else format 2.
/// `parse(&render(x)) == x` for entries with distinct keys, valid labels and valid
/// manual addresses; invalid labels are sanitised (never break the line structure).
pub fn render(entries: &[TrustEntry]) -> String {
    let v3 = entries.iter().any(|e| !e.manual.is_empty());
    let mut out = if v3 {
        format!(
            "{HEADER_PREFIX}{FORMAT_VERSION}\n\
             # One peer per line: <key hex> <added-at unix seconds> <rights> <addresses> <manual> <label>\n\
             # rights: \"-\" (none) or \"rpc\". addresses: \"-\" (none) or up to 4 confirmed ip:port,\n\
             # comma-separated, newest first. manual: \"-\" or up to 4 host:port given by the user,\n\
             # comma-separated. Label: rest of the line (may be empty).\n"
        )
    } else {
        format!(
            "{HEADER_PREFIX}{FORMAT_WITHOUT_MANUAL}\n\
             # One peer per line: <key hex> <added-at unix seconds> <rights> <addresses> <label>\n\
             # rights: \"-\" (none) or \"rpc\". addresses: \"-\" (none) or up to 4 confirmed ip:port,\n\
             # comma-separated, newest first. Label: rest of the line (may be empty).\n"
        )
    };
    for e in entries {
        out.push_str(&e.key.to_hex());
        out.push(' ');
        out.push_str(&e.added_at.to_string());
        out.push(' ');
        out.push_str(if e.rpc { "rpc" } else { "-" });
        out.push(' ');
        render_addresses(&mut out, &e.addresses);
        if v3 {
            out.push(' ');
            render_manual(&mut out, &e.manual);
        }
        if !e.label.is_empty() {
            out.push(' ');
            out.push_str(&sanitize_label(&e.label));
        }
        out.push('\n');
    }
    out
}
