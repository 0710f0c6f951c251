//! Versions, status texts, the last error, keys and buffers.

use std::ffi::c_char;

use peernet_core::Key;

use crate::guard::{self, ffi_guard, ffi_guard_keep_error, invalid, key_in, out};
use crate::types::{peernet_buffer, peernet_key, peernet_status};

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v: u32 = 0;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    v
}

/// The ABI version (from `peernet-ffi/ABI_VERSION`, also the SONAME suffix).
pub(crate) const ABI_VERSION: u32 = parse_u32(env!("PEERNET_ABI_VERSION"));

/// The library version, e.g. "0.1.0" (same as `PEERNET_VERSION`). Static string: never
/// free it. Thread-safe; does not touch the last error.
#[no_mangle]
pub extern "C" fn peernet_version() -> *const c_char {
    ffi_guard_keep_error!({ Ok(VERSION.as_ptr().cast::<c_char>()) })
}

/// The ABI version of the loaded library (same as `PEERNET_ABI_VERSION`; the SONAME is
/// `libpeernet.so.<abi>`). A program can compare it with the macro it was compiled
/// with. Thread-safe; does not touch the last error.
#[no_mangle]
pub extern "C" fn peernet_abi_version() -> u32 {
    ffi_guard_keep_error!({ Ok(ABI_VERSION) })
}

/// The name of a status code ("PEERNET_ERR_TIMEOUT"; "PEERNET_ERR_UNKNOWN" for a value
/// that is not a status). Static string, never NULL: never free it. Takes an `int32_t`
/// so that any value is safe to pass. Thread-safe; does not touch the last error.
#[no_mangle]
pub extern "C" fn peernet_status_str(status: i32) -> *const c_char {
    ffi_guard_keep_error!({
        let s: &'static str = match status {
            0 => "PEERNET_OK\0",
            1 => "PEERNET_ERR_INVALID_ARGUMENT\0",
            2 => "PEERNET_ERR_IO\0",
            3 => "PEERNET_ERR_CORRUPT_FILE\0",
            4 => "PEERNET_ERR_NOT_CONNECTED\0",
            5 => "PEERNET_ERR_TIMEOUT\0",
            6 => "PEERNET_ERR_NO_SUCH_HANDLER\0",
            7 => "PEERNET_ERR_FORBIDDEN\0",
            8 => "PEERNET_ERR_HANDLER_FAILED\0",
            9 => "PEERNET_ERR_OVERLOADED\0",
            10 => "PEERNET_ERR_UNTRUSTED_PEER\0",
            11 => "PEERNET_ERR_HANDSHAKE_FAILED\0",
            12 => "PEERNET_ERR_PAYLOAD_TOO_LARGE\0",
            13 => "PEERNET_ERR_ALREADY_EXISTS\0",
            14 => "PEERNET_ERR_CLOSED\0",
            15 => "PEERNET_ERR_INTERNAL\0",
            16 => "PEERNET_ERR_BUSY\0",
            17 => "PEERNET_ERR_STREAM_RESET\0",
            _ => "PEERNET_ERR_UNKNOWN\0",
        };
        Ok(s.as_ptr().cast::<c_char>())
    })
}

/// The calling thread's last error message: why the last failed `peernet_*` call on
/// this thread failed; "" when it succeeded. Never NULL. Owned by the library: valid
/// until this thread's next `peernet_*` call (other than `peernet_last_error`,
/// `peernet_status_str`, `peernet_version`, `peernet_abi_version`); copy it to keep it.
/// Inside a `peernet_call_fn` completion it describes the completion's status.
#[no_mangle]
pub extern "C" fn peernet_last_error() -> *const c_char {
    ffi_guard_keep_error!({ Ok(guard::last_error_ptr()) })
}

/// Parses exactly 64 hex digits (either case) into `*out`.
///
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` for NULL, invalid UTF-8 or anything but 64 hex
/// digits (`*out` is then untouched). Thread-safe.
///
/// # Safety
/// `hex` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_key_from_hex(
    hex: *const c_char,
    out_key: *mut peernet_key,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let hex = unsafe { guard::cstr(hex, "hex") }?;
        // SAFETY: contract above.
        let out_key = unsafe { out(out_key, "out") }?;
        let k = Key::from_hex(hex).map_err(|_| invalid("a key is exactly 64 hex digits"))?;
        *out_key = peernet_key {
            bytes: *k.as_bytes(),
        };
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Writes the key as 64 lowercase hex digits and a NUL into `out`
/// (`PEERNET_KEY_HEX_SIZE` = 65 bytes). With a NULL argument it does nothing and sets
/// the last error. Thread-safe.
///
/// # Safety
/// `key` is NULL or readable; `out` is NULL or has room for 65 bytes.
#[no_mangle]
pub unsafe extern "C" fn peernet_key_to_hex(key: *const peernet_key, out_hex: *mut c_char) {
    ffi_guard!({
        // SAFETY: contract above.
        let k = unsafe { key_in(key, "key") }?;
        if out_hex.is_null() {
            return Err(invalid("out is NULL"));
        }
        let hex = k.to_hex();
        // SAFETY: `out_hex` has room for 65 bytes by the contract; hex is 64 ASCII bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(hex.as_ptr().cast::<c_char>(), out_hex, 64);
            *out_hex.add(64) = 0;
        }
        Ok(())
    })
}

/// Writes the key's display fingerprint (16 lowercase hex digits of SHA-256(key), not
/// for security decisions) and a NUL into `out` (`PEERNET_FINGERPRINT_SIZE` = 17
/// bytes). With a NULL argument it does nothing and sets the last error. Thread-safe.
///
/// # Safety
/// `key` is NULL or readable; `out` is NULL or has room for 17 bytes.
#[no_mangle]
pub unsafe extern "C" fn peernet_key_fingerprint(key: *const peernet_key, out_fp: *mut c_char) {
    ffi_guard!({
        // SAFETY: contract above.
        let k = unsafe { key_in(key, "key") }?;
        if out_fp.is_null() {
            return Err(invalid("out is NULL"));
        }
        let fp = k.fingerprint();
        let n = fp.len().min(16);
        // SAFETY: `out_fp` has room for 17 bytes by the contract; n <= 16.
        unsafe {
            std::ptr::copy_nonoverlapping(fp.as_ptr().cast::<c_char>(), out_fp, n);
            *out_fp.add(n) = 0;
        }
        Ok(())
    })
}

/// Frees the bytes of a buffer filled by the library and resets it to {NULL, 0}, so
/// freeing it twice is harmless. NULL and an empty buffer are no-ops. Thread-safe.
///
/// # Safety
/// `buf` is NULL or a buffer the library filled (or zero-initialised).
#[no_mangle]
pub unsafe extern "C" fn peernet_buffer_free(buf: *mut peernet_buffer) {
    ffi_guard!({
        if buf.is_null() {
            return Ok(());
        }
        // SAFETY: non-NULL buffer by the contract.
        let b = unsafe { &mut *buf };
        if !b.data.is_null() {
            let p = std::ptr::slice_from_raw_parts_mut(b.data, b.len + 1);
            // SAFETY: `data` came from `buffer_from` (a boxed slice of len + 1 bytes).
            drop(unsafe { Box::from_raw(p) });
        }
        b.data = std::ptr::null_mut();
        b.len = 0;
        Ok(())
    })
}

/// A library-owned buffer holding `v` plus a NUL byte; {NULL, 0} when empty.
pub(crate) fn buffer_from(mut v: Vec<u8>) -> peernet_buffer {
    if v.is_empty() {
        return peernet_buffer {
            data: std::ptr::null_mut(),
            len: 0,
        };
    }
    let len = v.len();
    v.push(0);
    let data = Box::into_raw(v.into_boxed_slice()).cast::<u8>();
    peernet_buffer { data, len }
}

/// Panics inside the library on purpose and returns what the guard made of it:
/// always `PEERNET_ERR_INTERNAL`, with the panic text in `peernet_last_error()`. Lets a
/// binding's test suite check that no panic crosses the boundary. Thread-safe.
#[no_mangle]
pub extern "C" fn peernet_selftest_panic() -> peernet_status {
    ffi_guard!({
        let v: Vec<u8> = Vec::new();
        if v.is_empty() {
            panic!("peernet_selftest_panic: deliberate panic");
        }
        Ok(peernet_status::PEERNET_OK)
    })
}
