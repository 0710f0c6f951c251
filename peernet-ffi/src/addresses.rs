//! Manual addresses on trust entries (issue 18): `host:port` attached to a trusted peer,
//! persisted in the trust file, resolved at dial time and dialed first.

use std::ffi::c_char;

use crate::guard::{cstr, ffi_guard, out};
use crate::node::{node_and_key, peernet_node};
use crate::types::{peernet_key, peernet_status};

/// Attaches a manual address to a trusted peer: `addr` is "192.168.1.20:7100",
/// "[2001:db8::1]:7100" or "laptop.example:7100" (a host name is resolved at every dial
/// round). Persisted in the trust file and dialed before the peer's other addresses; a
/// hint only (the handshake still authenticates the key). At most 4 per peer; attaching
/// one already there succeeds. A disconnected peer is dialed now.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, not host:port, 4 already),
/// `PEERNET_ERR_UNTRUSTED_PEER` (trust the key first), `PEERNET_ERR_IO` (the trust
/// file), `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable; `addr` is NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn peernet_trust_add_address(
    node: *mut peernet_node,
    key: *const peernet_key,
    addr: *const c_char,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        // SAFETY: contract above.
        let addr = unsafe { cstr(addr, "addr") }?;
        n.check_open()?;
        n.node.add_address(&key, addr)?;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Detaches a manual address (compared in canonical form: "Host.Example:1" matches
/// "host.example:1"); `*was_attached` says whether it was there.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, not host:port), `PEERNET_ERR_IO`,
/// `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `key` is NULL or readable; `addr` is NULL or a NUL-terminated
/// string; `was_attached` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_trust_remove_address(
    node: *mut peernet_node,
    key: *const peernet_key,
    addr: *const c_char,
    was_attached: *mut bool,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let (n, key) = unsafe { node_and_key(node, key) }?;
        // SAFETY: contract above.
        let addr = unsafe { cstr(addr, "addr") }?;
        // SAFETY: contract above.
        let was = unsafe { out(was_attached, "was_attached") }?;
        n.check_open()?;
        *was = n.node.remove_address(&key, addr)?;
        Ok(peernet_status::PEERNET_OK)
    })
}
