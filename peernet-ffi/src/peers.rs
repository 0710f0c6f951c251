//! Peers, discovery, events and the logger hook.

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use peernet_core::{Error, PeerState};

use crate::callbacks::{lock, UserData};
use crate::config::parse_addr;
use crate::events::EventCallback;
use crate::guard::{cstr, ffi_guard, out};
use crate::handle::ArcHandle;
use crate::node::{ms, node_and_key, peernet_node};
use crate::types::{
    fill_text, key_out, peernet_event, peernet_event_fn, peernet_free_fn, peernet_key,
    peernet_log_fn, peernet_peer_info, peernet_peer_state, peernet_status,
};

/// A snapshot of every known peer (connected, discovered or trusted), sorted by key.
/// On success `*out` points to `*count` records the caller owns (free them with
/// `peernet_peers_free(*out, *count)`); with no peers `*out` is NULL and `*count` 0.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL), `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `out` and `count` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_peers(
    node: *mut peernet_node,
    out_peers: *mut *mut peernet_peer_info,
    count: *mut usize,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let out_peers = unsafe { out(out_peers, "out") }?;
        // SAFETY: contract above.
        let count = unsafe { out(count, "count") }?;
        *out_peers = std::ptr::null_mut();
        *count = 0;
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        n.check_open()?;
        let infos: Vec<peernet_peer_info> = n
            .node
            .peers()
            .iter()
            .map(|p| {
                let mut info = peernet_peer_info {
                    key: key_out(&p.key),
                    state: match p.state {
                        PeerState::Connected => peernet_peer_state::PEERNET_PEER_CONNECTED,
                        PeerState::Connecting => peernet_peer_state::PEERNET_PEER_CONNECTING,
                        PeerState::Disconnected => peernet_peer_state::PEERNET_PEER_DISCONNECTED,
                    },
                    trusted: p.trusted,
                    rpc: p.rpc,
                    label: [0; 64],
                    address: [0; 64],
                    last_seen_ms: p
                        .last_seen
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    rtt_us: p
                        .rtt
                        .map_or(0, |d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX)),
                };
                fill_text(&mut info.label, &p.label);
                fill_text(
                    &mut info.address,
                    &p.address.map(|a| a.to_string()).unwrap_or_default(),
                );
                info
            })
            .collect();
        if !infos.is_empty() {
            *count = infos.len();
            *out_peers = Box::into_raw(infos.into_boxed_slice()).cast::<peernet_peer_info>();
        }
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Frees what `peernet_peers` returned; NULL is a no-op. Thread-safe.
///
/// # Safety
/// `peers` is NULL or exactly what `peernet_peers` returned, with its `count`, freed once.
#[no_mangle]
pub unsafe extern "C" fn peernet_peers_free(peers: *mut peernet_peer_info, count: usize) {
    ffi_guard!({
        if !peers.is_null() {
            let p = std::ptr::slice_from_raw_parts_mut(peers, count);
            // SAFETY: came from Box<[peernet_peer_info]> of `count` records (contract).
            drop(unsafe { Box::from_raw(p) });
        }
        Ok(())
    })
}

/// Manual discovery: tells the node that `key` may be reached at `addr` ("ip:port"),
/// as if discovery had heard it (a `PEERNET_EVENT_DISCOVERED` follows; a trusted peer is
/// then connected automatically when auto-connect is on).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, bad address, own key),
/// `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable; `addr` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn peernet_discovered(
    node: *mut peernet_node,
    key: *const peernet_key,
    addr: *const std::ffi::c_char,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        // SAFETY: contract above.
        let addr = parse_addr(unsafe { cstr(addr, "addr") }?)?;
        n.check_open()?;
        n.node.discovered(&key, addr)?;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Manual discovery: `key` is no longer reachable where it was discovered (a
/// `PEERNET_EVENT_LOST` follows if it was discovered; live connections stay up).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL), `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn peernet_lost(
    node: *mut peernet_node,
    key: *const peernet_key,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        n.check_open()?;
        n.node.lost(&key);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Sets (or with `callback` NULL removes) the event callback. It runs on the node's
/// event thread, one event at a time in order; it may block (delaying later events) and
/// may call any `peernet_*` function. The previous callback's `free_user_data` runs
/// once it is not running any more; this one's on replacement, removal or node free.
/// Events also go to the queue of `peernet_next_event` either way.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL node), `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `callback` does not unwind.
#[no_mangle]
pub unsafe extern "C" fn peernet_set_event_callback(
    node: *mut peernet_node,
    callback: peernet_event_fn,
    user_data: *mut c_void,
    free_user_data: peernet_free_fn,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        n.check_open()?;
        let next = callback.map(|f| {
            let ud = UserData::new(user_data, free_user_data);
            n.ctx.track(&ud);
            Arc::new(EventCallback { f, ud })
        });
        let old = std::mem::replace(&mut *lock(&n.events.callback), next);
        drop(old);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// For programs that cannot take calls on foreign threads: waits up to `timeout_ms`
/// (0 = just look) for the next event of the node's bounded queue
/// (`PEERNET_EVENT_QUEUE_CAPACITY` events; when full, the oldest is dropped) and copies
/// it to `*out`. Every event goes to this queue whether or not a callback is set.
/// Errors: `PEERNET_ERR_TIMEOUT` (no event), `PEERNET_ERR_INVALID_ARGUMENT` (NULL),
/// `PEERNET_ERR_CLOSED` (the node was freed while waiting). Thread-safe; several
/// threads may wait (each event goes to one).
///
/// # Safety
/// `node` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_next_event(
    node: *mut peernet_node,
    timeout_ms: u32,
    out_event: *mut peernet_event,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        // SAFETY: contract above.
        let o = unsafe { out(out_event, "out") }?;
        let events = Arc::clone(&n.events);
        drop(n);
        *o = crate::runtime::block_in_place(|| events.next(ms(timeout_ms)))?;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// A file descriptor that is readable while the node's event queue (the one
/// `peernet_next_event` reads) holds events, for `poll`/`epoll`/`select` loops:
/// level-triggered — it stays readable until the queue is empty, whatever the number of
/// events, so after it polls readable the caller drains the queue with
/// `peernet_next_event(node, 0, &ev)` until `PEERNET_ERR_TIMEOUT` (reading the
/// descriptor itself is not needed and does not remove events). With edge-triggered
/// epoll, drain the queue on every wake-up. It is also readable once the node is being
/// freed (`peernet_next_event` then gives `PEERNET_ERR_CLOSED`). The library owns the
/// descriptor (close-on-exec, non-blocking): never close it; it is valid until
/// `peernet_node_free`, so take it out of your poll set before freeing the node. Every
/// call returns the same descriptor. Returns -1 (and sets the last error) for a NULL
/// node, or on a system without eventfd (Linux only for now). Thread-safe.
///
/// # Safety
/// `node` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peernet_event_fd(node: *mut peernet_node) -> c_int {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        n.check_open()?;
        n.events.fd()
    })
}

/// Sends the library's log records at `max_level` and more severe (`PEERNET_LOG_ERROR`
/// 1 … `PEERNET_LOG_TRACE` 5; `PEERNET_LOG_OFF` 0 = none) to `callback`, process-wide;
/// `callback` NULL removes it. The callback runs on whichever library thread logs (often
/// a runtime thread): it must be quick and must not block; records logged from inside it
/// are dropped. `user_data` is passed back untouched and must stay valid until the
/// logger is replaced or removed: when this returns, the previous callback is no longer
/// running. Uses the process-wide `tracing` dispatcher: fails with
/// `PEERNET_ERR_ALREADY_EXISTS` if the host (a Rust program) installed its own.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (level out of range, called from inside the
/// log callback), `PEERNET_ERR_ALREADY_EXISTS`. Thread-safe.
#[no_mangle]
pub extern "C" fn peernet_set_logger(
    callback: peernet_log_fn,
    user_data: *mut c_void,
    max_level: c_int,
) -> peernet_status {
    ffi_guard!({
        crate::logger::set_logger(callback, user_data, max_level)?;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Bytes that always suffice for `peernet_verification_words` (NUL included).
pub const PEERNET_VERIFICATION_WORDS_SIZE: usize = 64;

/// Writes the verification words of the live connection to `key` — five words derived
/// from its Noise handshake hash, the same on both ends, e.g. "copper violin ..." — as
/// text with a NUL into `buf` of `len` bytes (`PEERNET_VERIFICATION_WORDS_SIZE` always
/// suffices). Two people compare what their screens show: a man in the middle holds two
/// handshakes, with different words. Every new connection has new words. The caller
/// owns `buf`; nothing is kept. Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, or `len`
/// too small: the last error names the size needed), `PEERNET_ERR_NOT_CONNECTED`.
/// Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable; `buf` is NULL or `len` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn peernet_verification_words(
    node: *const peernet_node,
    key: *const peernet_key,
    buf: *mut c_char,
    len: usize,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        // SAFETY: contract above.
        let key = unsafe { crate::guard::key_in(key, "key") }?;
        if buf.is_null() {
            return Err(crate::guard::invalid("buf is NULL"));
        }
        // SAFETY: non-NULL, `len` writable bytes by the contract above.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        let text = n.node.verification_words(&key).ok_or(Error::NotConnected)?;
        if text.len() >= len {
            return Err(crate::guard::invalid(format!(
                "buf of {len} bytes is too small for the verification words: pass at \
                 least {} bytes (PEERNET_VERIFICATION_WORDS_SIZE always suffices)",
                text.len() + 1
            )));
        }
        crate::types::fill_text(&mut dst[..=text.len()], &text);
        Ok(peernet_status::PEERNET_OK)
    })
}
