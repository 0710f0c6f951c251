//! `peernet_node`: lifecycle, trust store and connections.

use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use peernet_core::{CloseReason, Error, Node};
use tokio::sync::watch;

use crate::callbacks::{lock, NodeCtx};
use crate::config::{parse_addr, peernet_config};
use crate::events::{spawn_event_thread, EventState};
use crate::guard::{cstr, ffi_guard, key_in, opt_cstr, out};
use crate::handle::{ArcHandle, BoxHandle};
use crate::runtime::block_on;
use crate::types::{key_out, peernet_key, peernet_status};

/// The node and the peer key of an export that takes both (most do).
///
/// # Safety
/// `node` is NULL or a live node handle; `key` is NULL or readable.
pub(crate) unsafe fn node_and_key(
    node: *mut peernet_node,
    key: *const peernet_key,
) -> Result<(Arc<peernet_node>, peernet_core::Key), Error> {
    // SAFETY: the caller's contract.
    let n = unsafe { peernet_node::acquire(node) }?;
    // SAFETY: the caller's contract.
    let key = unsafe { key_in(key, "key") }?;
    Ok((n, key))
}

/// Opaque running node. Start with `peernet_node_start`, free with `peernet_node_free`.
/// Every function taking a node is thread-safe: call it from any thread, concurrently,
/// and from inside callbacks.
pub struct peernet_node {
    pub(crate) node: Node,
    pub(crate) ctx: Arc<NodeCtx>,
    pub(crate) events: Arc<EventState>,
    stop: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    closing: AtomicBool,
}

impl ArcHandle for peernet_node {
    const NAME: &'static str = "node";
}

impl peernet_node {
    /// Fails with `Closed` once `peernet_node_free` has started.
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.closing.load(Ordering::Acquire) {
            Err(Error::Closed(CloseReason::LocalShutdown))
        } else {
            Ok(())
        }
    }

    /// Stops the node: closes connections (calls in flight fail with `Closed`), drops
    /// handlers and pending responders, stops the event thread, waits for every
    /// callback in flight (except ones on this thread's stack) and releases every
    /// `user_data`.
    fn close(&self) {
        if self.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(e) = block_on(self.node.shutdown()) {
            tracing::warn!(error = %e, "node shutdown");
        }
        self.ctx.responders.drop_all();
        self.stop.send_replace(true);
        // Waiting below blocks this thread: on a runtime thread (an inline callback),
        // its queued tasks (completions among them) move to another thread first.
        crate::runtime::block_in_place(|| {
            if let Some(t) = lock(&self.thread).take() {
                if t.thread().id() != std::thread::current().id() {
                    let _ = t.join();
                }
            }
            let cb = lock(&self.events.callback).take();
            self.ctx.close_and_wait();
            self.events.close();
            drop(cb);
        });
    }
}

pub(crate) fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

/// Starts a node from a configuration (which is copied; free it whenever you like):
/// loads or creates the identity and trust store in the data directory and listens.
/// On success `*out` is a node the caller owns (free it with `peernet_node_free`); on
/// failure `*out` is NULL.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, bad values), `PEERNET_ERR_IO` (data
/// directory, listen address in use; a data directory or key file others could change
/// or read is refused this way, the last error naming the `chmod` to run),
/// `PEERNET_ERR_CORRUPT_FILE` (identity or trust file), `PEERNET_ERR_BUSY` (another
/// node, in this process or another, holds the data directory until it is freed; the
/// last error names its pid). Thread-safe.
///
/// # Safety
/// `config` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_node_start(
    config: *const peernet_config,
    out_node: *mut *mut peernet_node,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let out_node = unsafe { out(out_node, "out") }?;
        *out_node = std::ptr::null_mut();
        // SAFETY: contract above.
        let config = unsafe { peernet_config::borrow(config) }?;
        let inline = config.inline_callbacks();
        let node = block_on(Node::start(config.node_config().clone()))??;
        let ctx = NodeCtx::new(inline);
        let events = EventState::new();
        let (stop, stop_rx) = watch::channel(false);
        let thread = spawn_event_thread(
            node.events(),
            Arc::clone(&ctx),
            Arc::clone(&events),
            stop_rx,
        )?;
        let handle = Arc::new(peernet_node {
            node,
            ctx,
            events,
            stop,
            thread: Mutex::new(Some(thread)),
            closing: AtomicBool::new(false),
        });
        *out_node = peernet_node::into_ptr(handle);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Stops and frees a node; NULL is a no-op. Closes every connection (calls in flight,
/// blocking or async, fail with `PEERNET_ERR_CLOSED`; each `peernet_call_async`
/// completion still runs exactly once), drops every handler, answers every pending
/// responder with an error, and waits until every callback of this node that is running
/// has returned (callbacks on the calling thread's own stack excepted, so it may be
/// called from inside a callback). Every `free_user_data` of the node has run when it
/// returns; no callback of the node starts afterwards. The pointer is invalid after the
/// call; calls that other threads started before it remain memory-safe and fail with
/// `PEERNET_ERR_CLOSED`.
///
/// # Safety
/// `node` is NULL or from `peernet_node_start`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn peernet_node_free(node: *mut peernet_node) {
    ffi_guard!({
        // SAFETY: contract above.
        if let Some(n) = unsafe { peernet_node::release(node) } {
            n.close();
        }
        Ok(())
    })
}

/// Writes this node's public key to `*out`. With a NULL argument it does nothing and
/// sets the last error. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_node_key(node: *const peernet_node, out_key: *mut peernet_key) {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        // SAFETY: contract above.
        let o = unsafe { out(out_key, "out") }?;
        *o = key_out(&n.node.key());
        Ok(())
    })
}

/// The TCP port the node listens on (0 = not listening, or NULL node). Thread-safe.
///
/// # Safety
/// `node` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peernet_node_port(node: *const peernet_node) -> u16 {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        Ok(n.node.port())
    })
}

/// Writes the address the node's listener is bound to ("127.0.0.1:7000",
/// "[::1]:7000"), as text with a NUL, into `buf` of `len` bytes; `len` of
/// `PEERNET_PEER_TEXT_SIZE` (64) always suffices. A node that does not listen (its
/// config's listen address turned off) writes the empty string. With port 0 in the
/// config, this is where to find the port the system chose. The caller owns `buf`;
/// nothing is kept. Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL node or buf, or `len`
/// too small: the last error names the size needed; `buf` then holds the empty string
/// if `len` > 0). Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `buf` is NULL or `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn peernet_node_address(
    node: *const peernet_node,
    buf: *mut c_char,
    len: usize,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        if buf.is_null() {
            return Err(crate::guard::invalid("buf is NULL"));
        }
        // SAFETY: non-NULL, `len` writable bytes by the contract above.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        let text = n
            .node
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        if text.len() >= len {
            if let Some(first) = dst.first_mut() {
                *first = 0;
            }
            return Err(crate::guard::invalid(format!(
                "buf of {len} bytes is too small for the address {text:?}: pass at least \
                 {} bytes (PEERNET_PEER_TEXT_SIZE always suffices)",
                text.len() + 1
            )));
        }
        crate::types::fill_text(&mut dst[..=text.len()], &text);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Trusts a peer (persisted in the data directory), with an optional label (NULL keeps
/// the current one). Only trusted peers can connect or be connected to.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, own key, bad label),
/// `PEERNET_ERR_IO` (writing the trust file), `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable; `label` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn peernet_trust(
    node: *mut peernet_node,
    key: *const peernet_key,
    label: *const c_char,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        // SAFETY: contract above.
        let label = unsafe { opt_cstr(label, "label") }?;
        n.check_open()?;
        n.node.trust(&key, label)?;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Removes a peer from the trust store (and its RPC right) and closes its live
/// connections. Untrusting an unknown key succeeds.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL), `PEERNET_ERR_IO` (the trust file could
/// not be written: the key is untrusted and disconnected all the same, only the file
/// lags; untrust again once writing works), `PEERNET_ERR_CLOSED`.
/// Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn peernet_untrust(
    node: *mut peernet_node,
    key: *const peernet_key,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        n.check_open()?;
        n.node.untrust(&key)?;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Whether a key is in the trust store (false for NULL arguments). Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn peernet_is_trusted(
    node: *mut peernet_node,
    key: *const peernet_key,
) -> bool {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        Ok(n.node.is_trusted(&key))
    })
}

/// Grants or withdraws RPC rights to a trusted peer (persisted; effective on its next
/// call). Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, key not trusted),
/// `PEERNET_ERR_IO`, `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn peernet_grant_rpc(
    node: *mut peernet_node,
    key: *const peernet_key,
    allowed: bool,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        n.check_open()?;
        n.node.grant_rpc(&key, allowed)?;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Dials `addr` ("ip:port") and authenticates the peer as `key` (which must be trusted).
/// Blocks until the peer confirmed the connection or `timeout_ms` passed (0 times out at
/// once); returns at once if already connected. A peer that is not up yet (connection
/// refused, no route) is dialed again after 50 ms doubling to 1 s until `timeout_ms`,
/// so a program may start before its peer; a handshake refusal (the peer does not
/// trust us, another key) fails at once.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT`, `PEERNET_ERR_UNTRUSTED_PEER`, `PEERNET_ERR_IO`
/// (still refused at the timeout; the last error says how many dials were refused),
/// `PEERNET_ERR_TIMEOUT`, `PEERNET_ERR_HANDSHAKE_FAILED`, `PEERNET_ERR_CLOSED`.
/// Thread-safe; may be called from callbacks.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable; `addr` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn peernet_connect(
    node: *mut peernet_node,
    key: *const peernet_key,
    addr: *const c_char,
    timeout_ms: u32,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        // SAFETY: contract above.
        let addr = parse_addr(unsafe { cstr(addr, "addr") }?)?;
        n.check_open()?;
        block_on(n.node.connect(&key, addr, ms(timeout_ms)))??;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Closes every connection to a peer (it may redial later if it is trusted and
/// auto-connect is on). Errors: `PEERNET_ERR_INVALID_ARGUMENT`,
/// `PEERNET_ERR_NOT_CONNECTED`, `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn peernet_disconnect(
    node: *mut peernet_node,
    key: *const peernet_key,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        n.check_open()?;
        block_on(n.node.disconnect(&key))??;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Whether an authenticated connection to `key` is up (false for NULL). Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn peernet_is_connected(
    node: *mut peernet_node,
    key: *const peernet_key,
) -> bool {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        Ok(n.node.is_connected(&key))
    })
}

/// Waits until `key` is connected (by either side), or `timeout_ms`.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT`, `PEERNET_ERR_TIMEOUT`, `PEERNET_ERR_CLOSED`.
/// Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn peernet_wait_connected(
    node: *mut peernet_node,
    key: *const peernet_key,
    timeout_ms: u32,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        n.check_open()?;
        block_on(n.node.wait_connected(&key, ms(timeout_ms)))??;
        Ok(peernet_status::PEERNET_OK)
    })
}
