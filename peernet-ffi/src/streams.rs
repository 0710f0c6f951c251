//! `peernet_stream`: one bidirectional byte stream to or from one peer (issue 16), the
//! C face of `peernet_core::Stream`. Open, blocking read and write with timeouts,
//! half-close, reset, free, accessors. The callback forms (a stream handler, an async
//! read) are in `streams_callbacks`.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peernet_core::{Error, Key, Stream};

use crate::callbacks::{lock, NodeCtx};
use crate::guard::{bytes, cstr, ffi_guard, invalid, opt_cstr, out};
use crate::handle::ArcHandle;
use crate::node::{node_and_key, peernet_node};
use crate::runtime::block_in_place;
use crate::types::{fill_text, key_out, peernet_key, peernet_status};

/// `timeout_ms` of the stream functions that waits as long as it takes (until data,
/// the end, a reset or the connection closing).
pub const PEERNET_WAIT_FOREVER: u32 = u32::MAX;

/// Reset code: the application gave up on the stream; what `peernet_stream_free` sends
/// for a stream that was not finished.
pub const PEERNET_STREAM_RESET_CANCELLED: u32 = 0;
/// Reset code: the peer has no stream handler of that name, or its authorize callback
/// (or default deny) refused the opener.
pub const PEERNET_STREAM_RESET_REFUSED: u32 = 1;
/// Reset code: the peer already had its maximum of this node's streams open (16 by
/// default); retry once one of them ended.
pub const PEERNET_STREAM_RESET_TOO_MANY_STREAMS: u32 = 2;
/// Smallest reset code for applications (0 to 15 are the library's).
pub const PEERNET_STREAM_RESET_APP_MIN: u32 = 16;

/// Longest reset reason sent, in bytes (a longer one is cut at a UTF-8 character
/// boundary).
pub const PEERNET_STREAM_REASON_MAX: usize = 255;
/// Bytes of a reason buffer that always suffices for `peernet_stream_reset_info`.
pub const PEERNET_STREAM_REASON_SIZE: usize = 256;

/// Most bytes one `peernet_stream_read` returns (a larger `cap` is fine; the read is
/// then short, as stream reads may be).
pub const PEERNET_STREAM_READ_MAX: usize = 64 * 1024;

/// Opaque: one bidirectional byte stream with one peer, from `peernet_stream_open` or
/// handed to a stream handler (`peernet_expose_stream`). The caller owns it and frees
/// it with `peernet_stream_free`, exactly once. Every function taking a stream is
/// thread-safe: one thread may read while another writes, and a reset (or the free of
/// an unfinished stream) from a third wakes both.
pub struct peernet_stream {
    pub(crate) stream: Stream,
    pub(crate) ctx: Arc<NodeCtx>,
    name: CString,
    peer: Key,
    /// The peer's reset (code, reason), once a read or write has reported it.
    reset_seen: Mutex<Option<(u32, String)>>,
    /// `peernet_stream_finish` succeeded (free then lets the written bytes drain).
    finished: AtomicBool,
}

impl ArcHandle for peernet_stream {
    const NAME: &'static str = "stream";
}

impl peernet_stream {
    /// Wraps a core stream for C.
    pub(crate) fn new(stream: Stream, ctx: Arc<NodeCtx>) -> Result<Arc<peernet_stream>, Error> {
        let name = CString::new(stream.name())
            .map_err(|_| Error::Internal("NUL inside a stream handler name".into()))?;
        let peer = stream.peer();
        Ok(Arc::new(peernet_stream {
            stream,
            ctx,
            name,
            peer,
            reset_seen: Mutex::new(None),
            finished: AtomicBool::new(false),
        }))
    }

    /// Notes the peer's reset of a result, for `peernet_stream_reset_info`.
    pub(crate) fn note<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error::StreamReset { code, reason }) = &r {
            let mut seen = lock(&self.reset_seen);
            if seen.is_none() {
                *seen = Some((*code, reason.clone()));
            }
        }
        r
    }

    /// One read of at most `max` bytes (bounded by [`PEERNET_STREAM_READ_MAX`]) into a
    /// buffer of the library: `Ok(empty)` is the end of the stream.
    pub(crate) fn read_vec(&self, max: usize, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; max.min(PEERNET_STREAM_READ_MAX)];
        let n = block_in_place(|| self.note(self.stream.read_blocking(&mut buf, timeout)))?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// `timeout_ms` as the core's optional deadline.
pub(crate) fn wait(timeout_ms: u32) -> Option<Duration> {
    (timeout_ms != PEERNET_WAIT_FOREVER).then(|| Duration::from_millis(u64::from(timeout_ms)))
}

/// Opens a stream to the stream handler `name` (1–255 bytes of UTF-8) of the peer
/// `key`, which must be trusted and connected. Blocks only until the open is queued
/// (no round trip): a refusal by the peer (no such stream handler, not authorized, too
/// many streams) shows up on the first read or write that reaches it, as
/// `PEERNET_ERR_STREAM_RESET` with code `PEERNET_STREAM_RESET_REFUSED` or
/// `PEERNET_STREAM_RESET_TOO_MANY_STREAMS`. Write first, then read: bytes written
/// before the peer accepted are sent once it has.
///
/// Ownership: on success `*out` is a stream the caller owns (free it with
/// `peernet_stream_free`, also after the node was freed); on failure `*out` is NULL.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, bad name), `PEERNET_ERR_UNTRUSTED_PEER`,
/// `PEERNET_ERR_NOT_CONNECTED`, `PEERNET_ERR_OVERLOADED` (this node has its maximum of
/// streams open to that peer), `PEERNET_ERR_CLOSED`. Thread-safe; may be called from
/// callbacks.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable; `name` is NULL or a
/// NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_open(
    node: *mut peernet_node,
    key: *const peernet_key,
    name: *const c_char,
    out_stream: *mut *mut peernet_stream,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let out_stream = unsafe { out(out_stream, "out") }?;
        *out_stream = std::ptr::null_mut();
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        // SAFETY: contract above.
        let name = unsafe { cstr(name, "name") }?;
        n.check_open()?;
        let s = crate::runtime::block_on(n.node.open_stream(&key, name))??;
        *out_stream = peernet_stream::into_ptr(peernet_stream::new(s, Arc::clone(&n.ctx))?);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Reads what the peer wrote: blocks until at least one byte is there, the peer
/// finished its direction, or `timeout_ms` passed (0: only what is already there;
/// `PEERNET_WAIT_FOREVER`: no deadline). On `PEERNET_OK`, `*got` bytes (1 to
/// min(`cap`, `PEERNET_STREAM_READ_MAX`)) were copied to `buf`; `*got` == 0 with
/// `PEERNET_OK` is the end of the stream (the peer called `peernet_stream_finish`;
/// reading again gives the end again). On any error `*got` is 0.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, `cap` 0),
/// `PEERNET_ERR_TIMEOUT` (nothing came; the stream stays usable),
/// `PEERNET_ERR_STREAM_RESET` (the peer reset it or refused the open: the last error
/// names its code and reason, `peernet_stream_reset_info` gives them typed),
/// `PEERNET_ERR_CLOSED` (the connection or the node closed first),
/// `PEERNET_ERR_INVALID_ARGUMENT` also once this side reset the stream. Thread-safe
/// (one thread may read while another writes); may be called from callbacks.
///
/// # Safety
/// `stream` is NULL or live; `buf` is NULL or `cap` writable bytes; `got` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_read(
    stream: *mut peernet_stream,
    buf: *mut u8,
    cap: usize,
    timeout_ms: u32,
    got: *mut usize,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let got = unsafe { out(got, "got") }?;
        *got = 0;
        // SAFETY: contract above.
        let s = unsafe { peernet_stream::acquire(stream) }?;
        if buf.is_null() {
            return Err(invalid("buf is NULL"));
        }
        if cap == 0 {
            return Err(invalid(
                "cap is 0: pass room for at least one byte (a read of 0 bytes means the end)",
            ));
        }
        let data = s.read_vec(cap, wait(timeout_ms))?;
        // SAFETY: `buf` has `cap` writable bytes by the contract; data.len() <= cap.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
        *got = data.len();
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Writes up to `len` bytes of `data` (copied): blocks until the stream has room for at
/// least one byte (flow control: the peer's receive window) or `timeout_ms` passed (0:
/// only what fits now; `PEERNET_WAIT_FOREVER`: no deadline). On `PEERNET_OK` `*written`
/// (1 to `len`; 0 only for `len` 0) bytes were taken; write the rest again.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, NULL data with `len` > 0; after
/// `peernet_stream_finish` or this side's reset), `PEERNET_ERR_TIMEOUT` (no room
/// came; nothing taken),
/// `PEERNET_ERR_STREAM_RESET` (as `peernet_stream_read`), `PEERNET_ERR_CLOSED`.
/// `*written` is 0 on any error. Thread-safe; may be called from callbacks.
///
/// # Safety
/// `stream` is NULL or live; `data` is NULL or `len` readable bytes; `written` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_write(
    stream: *mut peernet_stream,
    data: *const u8,
    len: usize,
    timeout_ms: u32,
    written: *mut usize,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let written = unsafe { out(written, "written") }?;
        *written = 0;
        // SAFETY: contract above.
        let s = unsafe { peernet_stream::acquire(stream) }?;
        // SAFETY: contract above.
        let data = unsafe { bytes(data, len, "data") }?;
        let n = block_in_place(|| s.note(s.stream.write_blocking(data, wait(timeout_ms))))?;
        *written = n;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Half-closes the stream: this side writes no more; the peer reads what was written,
/// then the end (`*got` == 0). Reading goes on until the peer finishes too. Returns at
/// once (the written bytes drain in the background, also after `peernet_stream_free`);
/// a second finish does nothing.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL; this side reset the stream),
/// `PEERNET_ERR_STREAM_RESET`, `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `stream` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_finish(stream: *mut peernet_stream) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let s = unsafe { peernet_stream::acquire(stream) }?;
        s.note(s.stream.finish())?;
        s.finished.store(true, Ordering::Release);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Aborts the stream both ways: what is buffered is dropped, the peer's reads and
/// writes fail with `PEERNET_ERR_STREAM_RESET` carrying `code` and `reason` (NULL =
/// ""; UTF-8, cut to `PEERNET_STREAM_REASON_MAX` bytes at a character boundary), and
/// this side's later reads, writes and finish fail with
/// `PEERNET_ERR_INVALID_ARGUMENT`; reads and writes blocked on other threads return at
/// once. Applications use codes from `PEERNET_STREAM_RESET_APP_MIN` (16) up. Resetting
/// twice, or a stream that already ended, does nothing. The stream still has to be
/// freed.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL stream, reason not UTF-8; nothing is
/// reset). Thread-safe.
///
/// # Safety
/// `stream` is NULL or live; `reason` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_reset(
    stream: *mut peernet_stream,
    code: u32,
    reason: *const c_char,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let s = unsafe { peernet_stream::acquire(stream) }?;
        // SAFETY: contract above.
        let reason = unsafe { opt_cstr(reason, "reason") }?.unwrap_or("");
        s.stream.reset(code, reason);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Frees a stream; NULL is a no-op. A stream not finished (`peernet_stream_finish`)
/// is reset with `PEERNET_STREAM_RESET_CANCELLED` (as dropping a Rust `Stream` does); a
/// finished one still delivers what was written, and later input is discarded.
/// Calls other threads started before the free stay memory-safe (they hold the
/// stream until they return): on an unfinished stream they return at once
/// (`PEERNET_ERR_INVALID_ARGUMENT`: reset by this side); on a finished one a blocked
/// read waits for data, the end or its timeout as before. The pointer is invalid
/// afterwards. Works after the stream's node was freed. Thread-safe.
///
/// # Safety
/// `stream` is NULL or a stream from `peernet_stream_open` or a stream handler, freed
/// only once.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_free(stream: *mut peernet_stream) {
    ffi_guard!({
        // SAFETY: contract above.
        if let Some(s) = unsafe { peernet_stream::release(stream) } {
            if !s.finished.load(Ordering::Acquire) {
                // Explicitly, not only in Drop: calls blocked on other threads hold
                // their own counts, and must wake now.
                s.stream.reset(PEERNET_STREAM_RESET_CANCELLED, "");
            }
        }
        Ok(())
    })
}

/// Writes the key of the stream's peer to `*out`. With a NULL argument it does nothing
/// and sets the last error. Thread-safe.
///
/// # Safety
/// `stream` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_peer(
    stream: *const peernet_stream,
    out_key: *mut peernet_key,
) {
    ffi_guard!({
        // SAFETY: contract above.
        let s = unsafe { peernet_stream::acquire(stream) }?;
        // SAFETY: contract above.
        let o = unsafe { out(out_key, "out") }?;
        *o = key_out(&s.peer);
        Ok(())
    })
}

/// The name of the stream handler the stream was opened to (NULL for a NULL stream).
/// Owned by the stream: valid until `peernet_stream_free`. Thread-safe.
///
/// # Safety
/// `stream` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_name(stream: *const peernet_stream) -> *const c_char {
    ffi_guard!({
        if stream.is_null() {
            return Err(invalid("stream is NULL"));
        }
        // SAFETY: live by the contract; the name lives as long as the handle, which
        // the caller keeps until free.
        Ok(unsafe { &*stream }.name.as_ptr())
    })
}

/// The stream's id, unique among the streams of its connection (odd when the dialing
/// side opened it; for logs); 0 for NULL. Thread-safe.
///
/// # Safety
/// `stream` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_id(stream: *const peernet_stream) -> u64 {
    ffi_guard!({
        // SAFETY: contract above.
        let s = unsafe { peernet_stream::acquire(stream) }?;
        Ok(s.stream.id())
    })
}

/// The peer's reset, typed: once a read, write or finish on this stream returned
/// `PEERNET_ERR_STREAM_RESET`, writes the peer's code to `*code` and its reason
/// (NUL-terminated, cut at a UTF-8 boundary to fit; `PEERNET_STREAM_REASON_SIZE`
/// always suffices) into `reason` of `len` bytes (`reason` may be NULL with `len` 0).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL stream or code; no reset reported on
/// this stream yet: `*code` untouched, `reason` the empty string). Thread-safe.
///
/// # Safety
/// `stream` is NULL or live; `code` is NULL or writable; `reason` is NULL or `len`
/// writable bytes.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_reset_info(
    stream: *const peernet_stream,
    code: *mut u32,
    reason: *mut c_char,
    len: usize,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let s = unsafe { peernet_stream::acquire(stream) }?;
        // SAFETY: contract above.
        let code = unsafe { out(code, "code") }?;
        let dst: &mut [c_char] = if reason.is_null() || len == 0 {
            &mut []
        } else {
            // SAFETY: non-NULL, `len` writable bytes by the contract above.
            unsafe { std::slice::from_raw_parts_mut(reason, len) }
        };
        fill_text(dst, "");
        let seen = lock(&s.reset_seen).clone();
        let (c, r) = seen.ok_or_else(|| {
            invalid("the stream has not been reset by the peer (no read or write reported it)")
        })?;
        *code = c;
        fill_text(dst, &r);
        Ok(peernet_status::PEERNET_OK)
    })
}
