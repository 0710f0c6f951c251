//! Handlers, responders, calls, sends and RPC.

use std::ffi::{c_char, c_void};

use peernet_core::{CloseReason, Error};

use crate::basics::buffer_from;
use crate::callbacks::{
    make_handler, make_rpc_dispatcher, required, take_responder, CallFn, InflightGuard, SendPtr,
    UserData,
};
use crate::guard::{bytes, cstr, ffi_guard, invalid, set_last_error, status_of};
use crate::handle::ArcHandle;
use crate::node::{ms, node_and_key, peernet_node};
use crate::runtime::{block_on, runtime};
use crate::types::{
    peernet_authorize_fn, peernet_buffer, peernet_call_fn, peernet_free_fn, peernet_handler_fn,
    peernet_key, peernet_responder, peernet_rpc_fn, peernet_status,
};

/// Exposes a named handler (1–255 bytes of UTF-8; names starting with "peernet." are
/// reserved) to trusted peers; nothing else is reachable (default deny).
///
/// `handler` runs on a library thread for every call or send (a runtime thread whose
/// other work is handed to another thread while the handler runs), so it may block
/// without stalling other peers, and may call any `peernet_*` function (including
/// blocking ones and `peernet_node_free`); with `peernet_config_set_inline_callbacks` it
/// runs on the runtime thread directly and must be quick. For a call it gets a `responder` to answer
/// exactly once, from any thread, now or later. `authorize` (NULL = every trusted peer)
/// runs first, on a runtime thread: it must be quick and must not block.
///
/// Ownership: on success the library owns the registration; `user_data` is passed back
/// untouched to both functions, from library threads (so it must be usable from any
/// thread). `free_user_data` (nullable) runs exactly once: after `peernet_revoke`, or in
/// `peernet_node_free` (before it returns), in both cases only once no callback using
/// `user_data` is still running (after a revoke, a call being handled finishes first;
/// a responder not yet answered delays it until it is answered). On failure nothing is
/// registered and `free_user_data` is NOT called: the caller still owns `user_data`.
///
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL node/name/handler, bad or reserved
/// name), `PEERNET_ERR_ALREADY_EXISTS`, `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `name` is NULL or a NUL-terminated string; the functions
/// follow the signatures above and do not unwind (no C++ exceptions, no longjmp).
#[no_mangle]
pub unsafe extern "C" fn peernet_expose(
    node: *mut peernet_node,
    name: *const c_char,
    handler: peernet_handler_fn,
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
        let h = make_handler(&n.ctx, f, authorize, &ud);
        if let Err(e) = n.node.expose(name, h) {
            ud.disarm();
            return Err(e);
        }
        n.ctx.track(&ud);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Removes a handler: calls to it get `PEERNET_ERR_NO_SUCH_HANDLER` from now on. Its
/// `free_user_data` runs once the calls it is handling have finished (see
/// `peernet_expose`).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, no handler of that name),
/// `PEERNET_ERR_CLOSED`. Thread-safe; may be called from inside the handler itself.
///
/// # Safety
/// `node` is NULL or live; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn peernet_revoke(
    node: *mut peernet_node,
    name: *const c_char,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        // SAFETY: contract above.
        let name = unsafe { cstr(name, "name") }?;
        n.check_open()?;
        n.node.revoke(name)?;
        Ok(peernet_status::PEERNET_OK)
    })
}

fn answer(
    r: *mut peernet_responder,
    result: Result<Vec<u8>, String>,
) -> Result<peernet_status, Error> {
    let tx = take_responder(r).map_err(|why| invalid(why.message()))?;
    tx.send(result).map_err(|_| {
        Error::Closed(CloseReason::Local(
            "the call is gone: its connection closed before the answer".into(),
        ))
    })?;
    Ok(peernet_status::PEERNET_OK)
}

/// Answers a call with `len` bytes (copied), from any thread, during or after the
/// handler. Consumes the responder: it must not be used again (doing so gives
/// `PEERNET_ERR_INVALID_ARGUMENT`, not undefined behaviour).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL responder, NULL data with len > 0 — the
/// responder is then NOT consumed; already answered; node freed), `PEERNET_ERR_CLOSED`
/// (the call is gone: its connection closed; the responder is consumed).
///
/// # Safety
/// `responder` is NULL or a responder handed to a handler; `data` is NULL or `len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn peernet_respond(
    responder: *mut peernet_responder,
    data: *const u8,
    len: usize,
) -> peernet_status {
    ffi_guard!({
        if responder.is_null() {
            return Err(invalid("responder is NULL"));
        }
        // SAFETY: contract above.
        let body = unsafe { bytes(data, len, "data") }?.to_vec();
        answer(responder, Ok(body))
    })
}

/// Answers a call with an error: the caller gets `PEERNET_ERR_HANDLER_FAILED` and
/// `message`. Consumes the responder like `peernet_respond`.
/// Errors: as `peernet_respond` (a NULL or non-UTF-8 message does not consume it).
///
/// # Safety
/// `responder` is NULL or a responder handed to a handler; `message` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn peernet_respond_error(
    responder: *mut peernet_responder,
    message: *const c_char,
) -> peernet_status {
    ffi_guard!({
        if responder.is_null() {
            return Err(invalid("responder is NULL"));
        }
        // SAFETY: contract above.
        let msg = unsafe { cstr(message, "message") }?.to_owned();
        answer(responder, Err(msg))
    })
}

/// Fills the optional result buffer from a call's outcome (nothing is allocated when
/// `result` is NULL).
fn finish_call(
    r: Result<Vec<u8>, Error>,
    result: *mut peernet_buffer,
) -> Result<peernet_status, Error> {
    let fill = |v: Vec<u8>| {
        if !result.is_null() {
            // SAFETY: non-NULL and writable by the caller's contract (peernet_call).
            unsafe { *result = buffer_from(v) };
        }
    };
    match r {
        Ok(v) => {
            fill(v);
            Ok(peernet_status::PEERNET_OK)
        }
        Err(Error::HandlerFailed(m)) => {
            fill(m.clone().into_bytes());
            Err(Error::HandlerFailed(m))
        }
        Err(e) => Err(e),
    }
}

fn clear(result: *mut peernet_buffer) {
    if !result.is_null() {
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe {
            *result = peernet_buffer {
                data: std::ptr::null_mut(),
                len: 0,
            }
        };
    }
}

/// Calls handler `name` on peer `key` with `len` bytes of `body` (copied) and blocks for
/// the reply, at most `timeout_ms`. On `PEERNET_OK` `*result` holds the reply; on
/// `PEERNET_ERR_HANDLER_FAILED` the handler's error text; else {NULL, 0}. The caller
/// owns `*result`: free it with `peernet_buffer_free`. `result` may be NULL (reply
/// discarded). Fails at once with `PEERNET_ERR_UNTRUSTED_PEER` when `key` is not trusted
/// (the last error names its fingerprint and the fix, `peernet_trust`),
/// `PEERNET_ERR_NOT_CONNECTED` when it is but there is no connection,
/// `PEERNET_ERR_PAYLOAD_TOO_LARGE` (nothing sent; the last error names `len` and the
/// peer's max_frame) when the call does not fit the peer's frame limit; with
/// `PEERNET_ERR_CLOSED` as soon as the connection drops (the last error says who
/// closed it and why: the peer's Goodbye, a reset, this node's shutdown, ...). A reply
/// larger than this node's max_frame comes back as `PEERNET_ERR_HANDLER_FAILED` with a
/// "reply too large: ..." text naming both sizes; `PEERNET_ERR_NO_SUCH_HANDLER`'s last
/// error names the handler.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT`, `PEERNET_ERR_UNTRUSTED_PEER`,
/// `PEERNET_ERR_NOT_CONNECTED`,
/// `PEERNET_ERR_TIMEOUT`, `PEERNET_ERR_NO_SUCH_HANDLER`, `PEERNET_ERR_FORBIDDEN`,
/// `PEERNET_ERR_HANDLER_FAILED`, `PEERNET_ERR_OVERLOADED`, `PEERNET_ERR_PAYLOAD_TOO_LARGE`,
/// `PEERNET_ERR_CLOSED`. Thread-safe; may be called from callbacks.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable; `name` is NULL or a
/// NUL-terminated string; `body` is NULL or `len` readable bytes; `result` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_call(
    node: *mut peernet_node,
    key: *const peernet_key,
    name: *const c_char,
    body: *const u8,
    len: usize,
    timeout_ms: u32,
    result: *mut peernet_buffer,
) -> peernet_status {
    ffi_guard!({
        clear(result);
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        // SAFETY: contract above.
        let name = unsafe { cstr(name, "name") }?;
        // SAFETY: contract above.
        let body = unsafe { bytes(body, len, "body") }?;
        n.check_open()?;
        let r = block_on(n.node.call(&key, name, body, ms(timeout_ms)))?;
        finish_call(r, result)
    })
}

/// Starts a call and returns at once; `done` runs exactly once (if and only if this
/// returns `PEERNET_OK`) on a library thread with the outcome (see `peernet_call_fn`),
/// also when the node is freed meanwhile (`PEERNET_ERR_CLOSED`; `peernet_node_free`
/// waits for it). `body` is copied. `user_data` is passed back untouched and never
/// freed by the library.
/// Errors (then `done` never runs): `PEERNET_ERR_INVALID_ARGUMENT` (NULL node/key/name/
/// done, bad body), `PEERNET_ERR_CLOSED`. Thread-safe; may be called from callbacks.
///
/// # Safety
/// As `peernet_call`; `done` does not unwind.
#[no_mangle]
pub unsafe extern "C" fn peernet_call_async(
    node: *mut peernet_node,
    key: *const peernet_key,
    name: *const c_char,
    body: *const u8,
    len: usize,
    timeout_ms: u32,
    done: peernet_call_fn,
    user_data: *mut c_void,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        // SAFETY: contract above.
        let name = unsafe { cstr(name, "name") }?;
        // SAFETY: contract above.
        let body = unsafe { bytes(body, len, "body") }?;
        let done = required(done, "done")?;
        n.check_open()?;
        let rt = runtime()?;
        let guard = n
            .ctx
            .enter()
            .ok_or(Error::Closed(CloseReason::LocalShutdown))?;
        let ud = SendPtr(user_data);
        if n.ctx.inline() {
            // No task for the call (its reply reaches a callback on the connection's
            // driver task); the completion then runs on a task of its own, because it
            // may call blocking functions that need that reader (peernet_call to the
            // same peer, peernet_node_free).
            n.node
                .call_with(&key, name, body, ms(timeout_ms), move |r| {
                    match tokio::runtime::Handle::try_current() {
                        Ok(rt) => {
                            rt.spawn(async move {
                                let ud = ud; // the whole SendPtr, not its raw field
                                complete_call(&guard, done, ud, &r);
                            });
                        }
                        // Only when the connection's state is dropped outside the runtime
                        // (the runtime itself going away): still exactly once, here.
                        Err(_) => complete_call(&guard, done, ud, &r),
                    }
                })?;
        } else {
            let (name, body) = (name.to_owned(), body.to_vec());
            rt.spawn(async move {
                let ud = ud; // the whole SendPtr, not its raw field
                let r = n.node.call(&key, &name, &body, ms(timeout_ms)).await;
                drop(n);
                complete_call(&guard, done, ud, &r);
            });
        }
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Runs a `peernet_call_async` completion with the call's outcome: by default in place
/// with the worker's queue handed to another thread (it may block), inline if the node
/// was configured so.
fn complete_call(guard: &InflightGuard, done: CallFn, ud: SendPtr, r: &Result<Vec<u8>, Error>) {
    let (status, data) = match r {
        Ok(v) => (peernet_status::PEERNET_OK, v.as_slice()),
        Err(e) => {
            set_last_error(&e.to_string());
            match e {
                Error::HandlerFailed(m) => (status_of(e), m.as_bytes()),
                _ => (status_of(e), &[][..]),
            }
        }
    };
    let ptr = if data.is_empty() {
        std::ptr::null()
    } else {
        data.as_ptr()
    };
    // SAFETY: C completion with pointers valid for the call.
    guard.run_blocking(|| unsafe { done(ud.0, status, ptr, data.len()) });
}

/// Sends `len` bytes of `body` (copied) to handler `name` on `key`, fire-and-forget: no
/// reply; the handler's result is dropped. Waits only for queue space (then
/// `PEERNET_ERR_OVERLOADED`).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT`, `PEERNET_ERR_UNTRUSTED_PEER` (key not
/// trusted: nothing is queued), `PEERNET_ERR_NOT_CONNECTED` (peer offline: nothing is
/// queued), `PEERNET_ERR_OVERLOADED`, `PEERNET_ERR_PAYLOAD_TOO_LARGE`,
/// `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// As `peernet_call`.
#[no_mangle]
pub unsafe extern "C" fn peernet_send(
    node: *mut peernet_node,
    key: *const peernet_key,
    name: *const c_char,
    body: *const u8,
    len: usize,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        // SAFETY: contract above.
        let name = unsafe { cstr(name, "name") }?;
        // SAFETY: contract above.
        let body = unsafe { bytes(body, len, "body") }?;
        n.check_open()?;
        block_on(n.node.send(&key, name, body))??;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Sets (or with `dispatcher` NULL removes) the RPC dispatcher, which receives
/// `module.function(args)` calls from peers granted RPC (`peernet_grant_rpc`); others
/// get `PEERNET_ERR_FORBIDDEN`. It runs like a handler (library thread, may block,
/// always gets a responder). The previous dispatcher's `free_user_data` runs once its
/// running calls have finished; this one's runs on replacement, removal or node free.
/// On failure the caller keeps `user_data`.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL node), `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `dispatcher` does not unwind.
#[no_mangle]
pub unsafe extern "C" fn peernet_set_rpc_dispatcher(
    node: *mut peernet_node,
    dispatcher: peernet_rpc_fn,
    user_data: *mut c_void,
    free_user_data: peernet_free_fn,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        n.check_open()?;
        match dispatcher {
            None => n.node.set_rpc_dispatcher(None),
            Some(f) => {
                let ud = UserData::new(user_data, free_user_data);
                let d = make_rpc_dispatcher(&n.ctx, f, &ud);
                n.ctx.track(&ud);
                n.node.set_rpc_dispatcher(Some(d));
            }
        }
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Calls `module.function(args)` on a peer that granted us RPC and blocks for the
/// reply, like `peernet_call` (same `result` rules and errors; a peer that did not
/// grant RPC answers `PEERNET_ERR_FORBIDDEN`, one without a dispatcher
/// `PEERNET_ERR_NO_SUCH_HANDLER`). By convention `args` and the reply are UTF-8 JSON.
///
/// # Safety
/// As `peernet_call`; `module` and `function` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn peernet_rpc_call(
    node: *mut peernet_node,
    key: *const peernet_key,
    module: *const c_char,
    function: *const c_char,
    args: *const u8,
    len: usize,
    timeout_ms: u32,
    result: *mut peernet_buffer,
) -> peernet_status {
    ffi_guard!({
        clear(result);
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        // SAFETY: contract above.
        let module = unsafe { cstr(module, "module") }?;
        // SAFETY: contract above.
        let function = unsafe { cstr(function, "function") }?;
        // SAFETY: contract above.
        let args = unsafe { bytes(args, len, "args") }?;
        n.check_open()?;
        let r = block_on(
            n.node
                .rpc_call(&key, module, function, args, ms(timeout_ms)),
        )?;
        finish_call(r, result)
    })
}
