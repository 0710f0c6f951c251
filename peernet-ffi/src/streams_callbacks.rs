//! The callback forms of streams: stream handlers (`peernet_expose_stream`, whose
//! callback receives an owned `peernet_stream *`) and `peernet_stream_read_async`.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use peernet_core::{CloseReason, Error, Key, Stream, StreamHandler};

use crate::callbacks::{required, InflightGuard, NodeCtx, SendPtr, UserData};
use crate::guard::{cstr, ffi_guard, invalid, set_last_error, status_of};
use crate::handle::ArcHandle;
use crate::node::peernet_node;
use crate::runtime::runtime;
use crate::streams::{peernet_stream, wait};
use crate::types::{key_out, peernet_authorize_fn, peernet_free_fn, peernet_key, peernet_status};

/// A stream handler: runs on a library thread (the blocking pool: it may block as long
/// as it likes, also with inline callbacks configured) once per stream a trusted,
/// authorized peer opens to it. `stream` is owned by the handler from then on: it may
/// use it during the call, or keep it and use it from any thread later, and frees it
/// with `peernet_stream_free` exactly once. `from` (the opener, also
/// `peernet_stream_peer`) is valid only during the call.
pub type peernet_stream_handler_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        from: *const peernet_key,
        stream: *mut peernet_stream,
    ),
>;

/// Completion of `peernet_stream_read_async`: runs exactly once on a library thread (it
/// may block and may call any `peernet_*` function, `peernet_stream_free` of its stream
/// included). `PEERNET_OK` with `len` > 0: `data` holds the bytes read; `PEERNET_OK`
/// with `len` 0 (`data` NULL): the end of the stream; any other status (`data` NULL,
/// `len` 0) is the error `peernet_stream_read` would have returned, and
/// `peernet_last_error()` inside the callback describes it. `data` is valid only during
/// the call.
pub type peernet_stream_read_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        status: peernet_status,
        data: *const u8,
        len: usize,
    ),
>;

type StreamHandlerFn = <peernet_stream_handler_fn as IntoIterator>::Item;
type ReadFn = <peernet_stream_read_fn as IntoIterator>::Item;

/// The C side of an exposed stream handler.
struct StreamCb {
    f: StreamHandlerFn,
    ud: Arc<UserData>,
    ctx: Arc<NodeCtx>,
}

impl StreamCb {
    /// Hands one accepted stream to the C handler (on a thread of the blocking pool).
    fn accept(&self, s: Stream) {
        // The node is closing: the stream is dropped, which resets it.
        let Some(guard) = self.ctx.enter() else {
            return;
        };
        let from = key_out(&s.peer());
        let Ok(handle) = peernet_stream::new(s, Arc::clone(&self.ctx)) else {
            return;
        };
        let p = peernet_stream::into_ptr(handle);
        // SAFETY: C handler called with a key valid for the call and a stream it now
        // owns; user_data is passed back untouched (contract of peernet_expose_stream).
        guard.run(|| unsafe { (self.f)(self.ud.ptr(), &from, p) });
    }
}

/// Builds a core stream handler from C functions. `ud` is tracked by the node.
fn make_stream_handler(
    ctx: &Arc<NodeCtx>,
    f: StreamHandlerFn,
    authorize: peernet_authorize_fn,
    ud: &Arc<UserData>,
) -> StreamHandler {
    let cb = Arc::new(StreamCb {
        f,
        ud: Arc::clone(ud),
        ctx: Arc::clone(ctx),
    });
    let body = Arc::clone(&cb);
    let handler = StreamHandler::blocking(move |s: Stream| body.accept(s));
    match authorize {
        None => handler,
        Some(auth) => handler.with_authorize(move |k: &Key| {
            let Some(guard) = cb.ctx.enter() else {
                return false;
            };
            let key = key_out(k);
            // SAFETY: C predicate called with a key valid for the call.
            guard.run(|| unsafe { auth(cb.ud.ptr(), &key) })
        }),
    }
}

/// Exposes a stream handler `name` (1–255 bytes of UTF-8; a namespace of its own,
/// apart from `peernet_expose`'s) to trusted peers; other peers' opens, and opens to names nobody exposed, are reset
/// with `PEERNET_STREAM_RESET_REFUSED` (default deny).
///
/// `handler` runs on a library thread for every stream opened to it (see
/// `peernet_stream_handler_fn`): it owns the `peernet_stream *` it is given and may
/// keep it past the call. `authorize` (NULL = every trusted peer) runs first, on the
/// same thread; false refuses the stream (reset with `PEERNET_STREAM_RESET_REFUSED`).
///
/// Ownership: as `peernet_expose`: on success the library owns the registration;
/// `user_data` is passed back untouched from library threads; `free_user_data`
/// (nullable) runs exactly once, after `peernet_revoke_stream` or in
/// `peernet_node_free`, once no callback using `user_data` is running (streams the
/// handler kept do not delay it). On failure nothing is registered and
/// `free_user_data` is not called.
///
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL node/name/handler, bad name),
/// `PEERNET_ERR_ALREADY_EXISTS`, `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `name` is NULL or a NUL-terminated string; the functions
/// follow the signatures above and do not unwind.
#[no_mangle]
pub unsafe extern "C" fn peernet_expose_stream(
    node: *mut peernet_node,
    name: *const c_char,
    handler: peernet_stream_handler_fn,
    authorize: peernet_authorize_fn,
    user_data: *mut c_void,
    free_user_data: peernet_free_fn,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        // SAFETY: contract above.
        let name = unsafe { cstr(name, "name") }?;
        let f = required(handler, "handler")?;
        n.check_open()?;
        let ud = UserData::new(user_data, free_user_data);
        let h = make_stream_handler(&n.ctx, f, authorize, &ud);
        if let Err(e) = n.node.expose_stream(name, h) {
            ud.disarm();
            return Err(e);
        }
        n.ctx.track(&ud);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Removes a stream handler: opens to it are refused (`PEERNET_STREAM_RESET_REFUSED`)
/// from now on; streams it already accepted go on. Its `free_user_data` runs once no
/// call of it is running.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, no stream handler of that name),
/// `PEERNET_ERR_CLOSED`. Thread-safe; may be called from inside the handler.
///
/// # Safety
/// `node` is NULL or live; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn peernet_revoke_stream(
    node: *mut peernet_node,
    name: *const c_char,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        // SAFETY: contract above.
        let name = unsafe { cstr(name, "name") }?;
        n.check_open()?;
        n.node.revoke_stream(name)?;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Starts one read of at most `max` bytes (bounded by `PEERNET_STREAM_READ_MAX`) and
/// returns at once; `done` runs exactly once (if and only if this returns
/// `PEERNET_OK`) on a library thread with what `peernet_stream_read` would have
/// returned after waiting up to `timeout_ms` (`PEERNET_WAIT_FOREVER`: no deadline):
/// bytes, the end, or the error (see `peernet_stream_read_fn`). It also runs when an
/// unfinished stream is freed meanwhile (`PEERNET_ERR_INVALID_ARGUMENT`, as for a
/// blocked read) or its node is freed (`PEERNET_ERR_CLOSED`; `peernet_node_free` waits
/// for it). The stream's memory stays
/// valid for the read until `done` returns. `user_data` is passed back untouched and
/// never freed by the library. Start the next read from `done` to read on.
/// Errors (then `done` never runs): `PEERNET_ERR_INVALID_ARGUMENT` (NULL stream or
/// done, `max` 0), `PEERNET_ERR_CLOSED` (the stream's node is freed or being freed).
/// Thread-safe; may be called from callbacks.
///
/// # Safety
/// `stream` is NULL or live; `done` does not unwind.
#[no_mangle]
pub unsafe extern "C" fn peernet_stream_read_async(
    stream: *mut peernet_stream,
    max: usize,
    timeout_ms: u32,
    done: peernet_stream_read_fn,
    user_data: *mut c_void,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let s = unsafe { peernet_stream::acquire(stream) }?;
        let done = required(done, "done")?;
        if max == 0 {
            return Err(invalid(
                "max is 0: ask for at least one byte (a read of 0 bytes means the end)",
            ));
        }
        let rt = runtime()?;
        let guard = s
            .ctx
            .enter()
            .ok_or(Error::Closed(CloseReason::LocalShutdown))?;
        let ud = SendPtr(user_data);
        rt.spawn_blocking(move || {
            let ud = ud; // the whole SendPtr, not its raw field
            let r = s.read_vec(max, wait(timeout_ms));
            drop(s);
            complete_read(&guard, done, ud, &r);
        });
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Runs a `peernet_stream_read_async` completion with the read's outcome.
fn complete_read(guard: &InflightGuard, done: ReadFn, ud: SendPtr, r: &Result<Vec<u8>, Error>) {
    let (status, data) = match r {
        Ok(v) => (peernet_status::PEERNET_OK, v.as_slice()),
        Err(e) => {
            set_last_error(&e.to_string());
            (status_of(e), &[][..])
        }
    };
    let ptr = if data.is_empty() {
        std::ptr::null()
    } else {
        data.as_ptr()
    };
    // SAFETY: C completion with pointers valid for the call.
    guard.run(|| unsafe { done(ud.0, status, ptr, data.len()) });
}
