//! The one guard every export goes through: it clears the thread's last error, catches
//! panics (which become `PEERNET_ERR_INTERNAL`), and turns a `peernet_core::Error` into
//! a status code plus the thread's last-error message. Also the argument readers that
//! turn NULL, invalid UTF-8 and oversize lengths into `PEERNET_ERR_INVALID_ARGUMENT`.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use peernet_core::{Error, Key};

use crate::types::{peernet_key, peernet_status};

/// Locks a mutex, ignoring poisoning (no callback runs under our locks).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    /// The calling thread's last error message (empty = none).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Replaces the calling thread's last error message.
pub(crate) fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = c);
}

/// Empties the calling thread's last error message.
pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|l| {
        let mut l = l.borrow_mut();
        if !l.as_bytes().is_empty() {
            *l = CString::default();
        }
    });
}

/// Pointer to the calling thread's last error; valid until this thread replaces it.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().as_ptr())
}

/// The status code of an error.
pub(crate) fn status_of(e: &Error) -> peernet_status {
    use peernet_status::*;
    match e {
        Error::InvalidArgument(_) => PEERNET_ERR_INVALID_ARGUMENT,
        Error::Io { .. } => PEERNET_ERR_IO,
        Error::CorruptFile { .. } => PEERNET_ERR_CORRUPT_FILE,
        Error::NotConnected => PEERNET_ERR_NOT_CONNECTED,
        Error::Timeout => PEERNET_ERR_TIMEOUT,
        Error::NoSuchHandler(_) => PEERNET_ERR_NO_SUCH_HANDLER,
        Error::Forbidden => PEERNET_ERR_FORBIDDEN,
        Error::HandlerFailed(_) => PEERNET_ERR_HANDLER_FAILED,
        Error::Overloaded => PEERNET_ERR_OVERLOADED,
        Error::UntrustedPeer(_) => PEERNET_ERR_UNTRUSTED_PEER,
        Error::HandshakeFailed(_) => PEERNET_ERR_HANDSHAKE_FAILED,
        Error::PayloadTooLarge { .. } => PEERNET_ERR_PAYLOAD_TOO_LARGE,
        Error::AlreadyExists(_) => PEERNET_ERR_ALREADY_EXISTS,
        Error::Closed(_) => PEERNET_ERR_CLOSED,
        Error::Busy { .. } => PEERNET_ERR_BUSY,
        Error::StreamReset { .. } => PEERNET_ERR_STREAM_RESET,
        _ => PEERNET_ERR_INTERNAL,
    }
}

/// What an export returns when its body fails or panics.
pub trait FfiReturn {
    /// The value for a failure with `status` (the last error is already set).
    fn on_error(status: peernet_status) -> Self;
}

impl FfiReturn for peernet_status {
    fn on_error(status: peernet_status) -> Self {
        status
    }
}

impl<T> FfiReturn for *mut T {
    fn on_error(_: peernet_status) -> Self {
        std::ptr::null_mut()
    }
}

impl<T> FfiReturn for *const T {
    fn on_error(_: peernet_status) -> Self {
        std::ptr::null()
    }
}

impl FfiReturn for bool {
    fn on_error(_: peernet_status) -> Self {
        false
    }
}

impl FfiReturn for u16 {
    fn on_error(_: peernet_status) -> Self {
        0
    }
}

impl FfiReturn for u32 {
    fn on_error(_: peernet_status) -> Self {
        0
    }
}

impl FfiReturn for u64 {
    fn on_error(_: peernet_status) -> Self {
        0
    }
}

impl FfiReturn for std::ffi::c_int {
    fn on_error(_: peernet_status) -> Self {
        -1
    }
}

impl FfiReturn for () {
    fn on_error(_: peernet_status) -> Self {}
}

/// Text of a panic payload.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Runs an export body: clears the last error (if `clear`), contains panics, maps errors.
/// Used only through [`ffi_guard!`] and [`ffi_guard_keep_error!`].
pub(crate) fn run<R: FfiReturn>(clear: bool, f: impl FnOnce() -> Result<R, Error>) -> R {
    if clear {
        clear_last_error();
    }
    // Some synchronous core functions spawn tasks; once the shared runtime exists (it
    // does whenever a node does), every export runs inside its context.
    let _context = crate::runtime::enter();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            set_last_error(&e.to_string());
            R::on_error(status_of(&e))
        }
        Err(p) => {
            let msg = panic_message(p.as_ref());
            set_last_error(&format!("internal error: panic inside libpeernet: {msg}"));
            R::on_error(peernet_status::PEERNET_ERR_INTERNAL)
        }
    }
}

/// The guard of every export: `ffi_guard!({ body returning Result<R, Error> })`.
macro_rules! ffi_guard {
    ($body:block) => {
        $crate::guard::run(
            true,
            || -> ::std::result::Result<_, ::peernet_core::Error> { $body },
        )
    };
}

/// The guard of the few exports that must not clear the last error
/// (`peernet_last_error`, `peernet_status_str`, versions).
macro_rules! ffi_guard_keep_error {
    ($body:block) => {
        $crate::guard::run(
            false,
            || -> ::std::result::Result<_, ::peernet_core::Error> { $body },
        )
    };
}

pub(crate) use {ffi_guard, ffi_guard_keep_error};

/// An `InvalidArgument` error.
pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// Largest string accepted from C (names are far shorter; paths and address lists fit).
pub(crate) const MAX_STRING: usize = 64 * 1024;

/// Reads a required NUL-terminated UTF-8 string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn cstr<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract (documented per export).
    let s = unsafe { CStr::from_ptr(p) };
    if s.to_bytes().len() > MAX_STRING {
        return Err(invalid(format!("{what} is longer than {MAX_STRING} bytes")));
    }
    s.to_str()
        .map_err(|_| invalid(format!("{what} is not valid UTF-8")))
}

/// Reads an optional NUL-terminated UTF-8 string (NULL = `None`).
///
/// # Safety
/// As [`cstr`].
pub(crate) unsafe fn opt_cstr<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: same contract as ours.
        unsafe { cstr(p, what) }.map(Some)
    }
}

/// Reads a body `(ptr, len)`; NULL is accepted only with `len == 0`.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that stay valid for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL but its length is {len}")));
    }
    if len > isize::MAX as usize {
        return Err(invalid(format!("{what} length {len} is too large")));
    }
    // SAFETY: non-NULL, `len` readable bytes by the caller's contract, len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Reads a required key.
///
/// # Safety
/// `p` is NULL or points to a readable `peernet_key`.
pub(crate) unsafe fn key_in(p: *const peernet_key, what: &str) -> Result<Key, Error> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and readable by the caller's contract; peernet_key is plain bytes.
    Ok(Key::from_bytes(unsafe { (*p).bytes }))
}

/// A required out-pointer as a reference.
///
/// # Safety
/// `p` is NULL or points to writable, properly aligned memory for a `T` that nothing
/// else accesses during `'a`.
pub(crate) unsafe fn out<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Error> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, writable and unaliased by the caller's contract.
    Ok(unsafe { &mut *p })
}
