//! Observability: the node's counters as a plain, versioned C struct
//! (`peernet_metrics`), the same in OpenMetrics text (`peernet_metrics_text`), and one
//! peer's diagnostics — why it is not connected (`peernet_peer_detail`).

use std::ffi::c_char;
use std::time::{SystemTime, UNIX_EPOCH};

use peernet_core::{AddressSource, Error};

use crate::basics::buffer_from;
use crate::guard::{ffi_guard, invalid, out};
use crate::handle::{ArcHandle, BoxHandle};
use crate::node::{node_and_key, peernet_node};
use crate::types::{fill_text, peernet_buffer, peernet_status};

/// Layout version of `peernet_node_metrics` and `peernet_peer_details` this library
/// fills. Fields are only ever appended (never reordered or removed), and the version
/// grows with each addition.
pub const PEERNET_METRICS_VERSION: u32 = 1;

/// A node's counters (from node start) and gauges (now); the meaning of each is in
/// docs/metrics.md, under the same name. Versioned so it can grow without breaking the
/// ABI: set `size = sizeof(peernet_node_metrics)` before the call; the library fills at
/// most that many bytes (an older library fewer: then `size` says how many) and sets
/// `version` to its `PEERNET_METRICS_VERSION`. Read only fields that lie within `size`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct peernet_node_metrics {
    /// In: bytes the caller provides (sizeof). Out: bytes the library filled.
    pub size: u32,
    /// Out: the layout version the library filled.
    pub version: u32,
    /// 1 when counting is on now (`peernet_config_set_metrics`, `peernet_set_metrics`), else 0.
    pub enabled: u64,
    /// Handshakes that authenticated a trusted peer.
    pub handshakes_ok: u64,
    /// Handshakes that ended because the peer is not trusted (here or there).
    pub handshakes_untrusted: u64,
    /// Handshakes that timed out.
    pub handshakes_timeout: u64,
    /// Handshakes that failed otherwise.
    pub handshakes_failed: u64,
    /// Connections refused by a limit.
    pub handshakes_refused: u64,
    /// Gauge: authenticated connections open.
    pub connections_open: u64,
    /// Gauge: peers with at least one connection.
    pub peers_connected: u64,
    /// Connections to a peer connected before.
    pub reconnects: u64,
    /// Duplicate connections resolved.
    pub duplicates: u64,
    /// Discovery datagrams received.
    pub discovery_in: u64,
    /// Discovery announcements sent.
    pub discovery_out: u64,
    /// Discovery datagrams dropped by the rate limits.
    pub discovery_dropped_rate_limited: u64,
    /// Discovery datagrams dropped as malformed.
    pub discovery_dropped_malformed: u64,
    /// Discovery announcements dropped because the table was full.
    pub discovery_dropped_table_full: u64,
    /// Calls received.
    pub calls_in: u64,
    /// Calls started.
    pub calls_out: u64,
    /// Sends received.
    pub sends_in: u64,
    /// Sends queued.
    pub sends_out: u64,
    /// `Overloaded` answers sent.
    pub overloaded: u64,
    /// Bytes received on authenticated connections.
    pub bytes_in: u64,
    /// Bytes sent on authenticated connections.
    pub bytes_out: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
}

/// Where a known address came from.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum peernet_address_source {
    /// Given by the program (`peernet_connect`, `peernet_discovered`).
    #[default]
    PEERNET_ADDRESS_MANUAL = 0,
    /// Heard in a LAN announcement (unauthenticated).
    PEERNET_ADDRESS_DISCOVERY = 1,
    /// The port the peer's Hello names, with the IP it connected from.
    PEERNET_ADDRESS_DIAL_BACK = 2,
    /// Remembered from the trust file (confirmed before a restart).
    PEERNET_ADDRESS_REMEMBERED = 3,
}

/// One address a peer may be reached at.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct peernet_known_address {
    /// "ip:port", NUL-terminated.
    pub address: [c_char; 64],
    /// Where it came from.
    pub source: peernet_address_source,
    /// A handshake with the peer's key completed over it.
    pub confirmed: bool,
    /// When it was last heard of or used (Unix ms).
    pub last_seen_ms: u64,
}

/// Most addresses `peernet_peer_detail` reports (the node keeps at most 8 per peer).
pub const PEERNET_MAX_ADDRESSES: usize = 8;

/// Why a peer is (not) connected, and its traffic. Versioned like
/// `peernet_node_metrics` (set `size` first).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct peernet_peer_details {
    /// In: bytes the caller provides (sizeof). Out: bytes the library filled.
    pub size: u32,
    /// Out: the layout version the library filled.
    pub version: u32,
    /// When the last dial attempt ended (Unix ms; 0: none yet).
    pub last_dial_ms: u64,
    /// When the next automatic attempt is due (Unix ms; 0: none scheduled).
    pub next_dial_ms: u64,
    /// The address the last attempt dialed ("" if none).
    pub last_dial_address: [c_char; 64],
    /// Why the last attempt failed ("" if it connected, or none yet; cut to 255 bytes).
    pub last_dial_error: [c_char; 256],
    /// Bytes received from the peer.
    pub bytes_in: u64,
    /// Bytes sent to the peer.
    pub bytes_out: u64,
    /// Calls received from the peer.
    pub calls_in: u64,
    /// Calls made to the peer.
    pub calls_out: u64,
    /// Entries of `addresses` in use.
    pub address_count: u32,
    /// The known addresses.
    pub addresses: [peernet_known_address; PEERNET_MAX_ADDRESSES],
}

fn unix_ms(t: Option<SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Copies the first `min(*size, sizeof T)` bytes of `full` to `dst`, then sets the
/// header (`size`, `version`: the first two u32 of every versioned struct).
///
/// # Safety
/// `dst` is writable for the `u32` it starts with and for as many bytes as that says.
unsafe fn fill_versioned<T: Copy>(dst: *mut T, full: &T) -> Result<(), Error> {
    // SAFETY: `dst` is readable for its first u32 (contract).
    let want = unsafe { dst.cast::<u32>().read_unaligned() } as usize;
    if want < 8 {
        return Err(invalid(
            "size is smaller than the header; set size = sizeof(the struct) before the call",
        ));
    }
    let n = want.min(std::mem::size_of::<T>());
    // SAFETY: `dst` is writable for `want >= n` bytes (contract); `full` is a T of
    // size_of::<T>() >= n bytes; the two do not overlap (`full` is our own value).
    unsafe {
        std::ptr::copy_nonoverlapping((full as *const T).cast::<u8>(), dst.cast::<u8>(), n);
        dst.cast::<u32>().write_unaligned(n as u32);
        dst.cast::<u32>()
            .add(1)
            .write_unaligned(PEERNET_METRICS_VERSION);
    }
    Ok(())
}

/// Fills `*out` with the node's counters (see `peernet_node_metrics`; set
/// `out->size = sizeof(*out)` first). Cheap: reads atomics and takes the peer-table
/// lock once. Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, `size` < 8),
/// `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `out` is NULL or writable for `out->size` bytes.
#[no_mangle]
pub unsafe extern "C" fn peernet_metrics(
    node: *mut peernet_node,
    out_metrics: *mut peernet_node_metrics,
) -> peernet_status {
    ffi_guard!({
        if out_metrics.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        n.check_open()?;
        let m = n.node.metrics();
        let full = peernet_node_metrics {
            size: 0,
            version: 0,
            enabled: u64::from(m.enabled),
            handshakes_ok: m.handshakes_ok,
            handshakes_untrusted: m.handshakes_untrusted,
            handshakes_timeout: m.handshakes_timeout,
            handshakes_failed: m.handshakes_failed,
            handshakes_refused: m.handshakes_refused,
            connections_open: m.connections_open,
            peers_connected: m.peers_connected,
            reconnects: m.reconnects,
            duplicates: m.duplicates,
            discovery_in: m.discovery_in,
            discovery_out: m.discovery_out,
            discovery_dropped_rate_limited: m.discovery_dropped_rate_limited,
            discovery_dropped_malformed: m.discovery_dropped_malformed,
            discovery_dropped_table_full: m.discovery_dropped_table_full,
            calls_in: m.calls_in,
            calls_out: m.calls_out,
            sends_in: m.sends_in,
            sends_out: m.sends_out,
            overloaded: m.overloaded,
            bytes_in: m.bytes_in,
            bytes_out: m.bytes_out,
            frames_in: m.frames_in,
            frames_out: m.frames_out,
        };
        // SAFETY: contract above.
        unsafe { fill_versioned(out_metrics, &full) }?;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Turns the node's metrics counting on (`on` true) or off while it runs, for it and
/// every connection (it starts as `peernet_config_set_metrics` set). What was counted
/// stays; while off nothing new is counted; `enabled` in `peernet_metrics` tells which.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL), `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peernet_set_metrics(node: *mut peernet_node, on: bool) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        n.check_open()?;
        n.node.set_metrics(on);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// The node's metrics in OpenMetrics text format (per-handler figures included; ends
/// with "# EOF"), NUL-terminated in `*out` (free with `peernet_buffer_free`).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL), `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_metrics_text(
    node: *mut peernet_node,
    out_text: *mut peernet_buffer,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let out_text = unsafe { out(out_text, "out") }?;
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        n.check_open()?;
        *out_text = buffer_from(n.node.metrics_text().into_bytes());
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Fills `*out` with what the node knows about `key`: the last dial attempt and its
/// error, the next attempt, the known addresses with their source, and its traffic
/// (set `out->size = sizeof(*out)` first). Errors: `PEERNET_ERR_INVALID_ARGUMENT`
/// (NULL, `size` < 8), `PEERNET_ERR_NOT_CONNECTED` (the node knows nothing of `key`:
/// neither trusted, discovered nor connected), `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable; `out` is NULL or writable for
/// `out->size` bytes.
#[no_mangle]
pub unsafe extern "C" fn peernet_peer_detail(
    node: *mut peernet_node,
    key: *const crate::types::peernet_key,
    out_detail: *mut peernet_peer_details,
) -> peernet_status {
    ffi_guard!({
        if out_detail.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        n.check_open()?;
        let Some(p) = n.node.peer(&key) else {
            return Err(Error::NotConnected);
        };
        let empty = peernet_known_address {
            address: [0; 64],
            source: peernet_address_source::PEERNET_ADDRESS_MANUAL,
            confirmed: false,
            last_seen_ms: 0,
        };
        let mut d = peernet_peer_details {
            size: 0,
            version: 0,
            last_dial_ms: unix_ms(p.last_dial.as_ref().map(|d| d.at)),
            next_dial_ms: unix_ms(p.next_dial),
            last_dial_address: [0; 64],
            last_dial_error: [0; 256],
            bytes_in: p.stats.bytes_in,
            bytes_out: p.stats.bytes_out,
            calls_in: p.stats.calls_in,
            calls_out: p.stats.calls_out,
            address_count: 0,
            addresses: [empty; PEERNET_MAX_ADDRESSES],
        };
        if let Some(last) = &p.last_dial {
            fill_text(&mut d.last_dial_address, &last.address.to_string());
            fill_text(&mut d.last_dial_error, last.error.as_deref().unwrap_or(""));
        }
        for (slot, a) in d.addresses.iter_mut().zip(&p.addresses) {
            fill_text(&mut slot.address, &a.addr.to_string());
            slot.source = match a.source {
                AddressSource::Manual => peernet_address_source::PEERNET_ADDRESS_MANUAL,
                AddressSource::Discovery => peernet_address_source::PEERNET_ADDRESS_DISCOVERY,
                AddressSource::DialBack => peernet_address_source::PEERNET_ADDRESS_DIAL_BACK,
                AddressSource::Remembered => peernet_address_source::PEERNET_ADDRESS_REMEMBERED,
                _ => peernet_address_source::PEERNET_ADDRESS_MANUAL,
            };
            slot.confirmed = a.confirmed;
            slot.last_seen_ms = unix_ms(Some(a.last_seen));
            d.address_count += 1;
        }
        // SAFETY: contract above.
        unsafe { fill_versioned(out_detail, &d) }?;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Whether the node keeps its metrics counters (default true). Off skips the counting
/// on the hot path; `peernet_metrics` then reports `enabled` 0 and only the traffic
/// counters peers always kept (bytes, frames). Errors: `PEERNET_ERR_INVALID_ARGUMENT`
/// (NULL config).
///
/// # Safety
/// `config` is NULL or live and used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_metrics(
    config: *mut crate::config::peernet_config,
    enabled: bool,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { crate::config::peernet_config::borrow_mut(config) }?;
        c.update(|n| n.metrics = enabled)
    })
}
