//! Pairing: `peernet_invite` / `peernet_join` and the invite handle.

use std::ffi::{c_char, CString};
use std::time::Duration;

use peernet_core::{Error, Invite, InviteOptions, PairedPeer};

use crate::guard::{cstr, ffi_guard, opt_cstr, out};
use crate::handle::{ArcHandle, BoxHandle};
use crate::node::{ms, peernet_node};
use crate::runtime::block_on;
use crate::types::{fill_text, key_out, peernet_key, peernet_status};

/// Bytes of `peernet_paired.name`, NUL included (names are at most 64 bytes).
pub const PEERNET_PAIRED_NAME_SIZE: usize = 65;
/// Bytes of `peernet_paired.sas`, NUL included.
pub const PEERNET_PAIRED_SAS_SIZE: usize = 64;

/// Whom a pairing made this node trust (filled by `peernet_join` and
/// `peernet_invite_wait`; plain data, nothing to free).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct peernet_paired {
    /// The peer's key, now trusted.
    pub key: peernet_key,
    /// Its chosen name (its trust label), NUL-terminated.
    pub name: [c_char; 65],
    /// Five verification words, NUL-terminated; the other side shows the same ones.
    pub sas: [c_char; 64],
}

/// An open invite: its ticket and short code. Free it with `peernet_invite_free`,
/// which also closes the pairing listener.
pub struct peernet_invitation {
    invite: Invite,
    ticket: CString,
    code: Option<CString>,
}

impl BoxHandle for peernet_invitation {
    const NAME: &'static str = "invite";
}

fn fill_paired(dst: &mut peernet_paired, p: &PairedPeer) {
    dst.key = key_out(&p.key);
    dst.name = [0; PEERNET_PAIRED_NAME_SIZE];
    fill_text(&mut dst.name, &p.name);
    dst.sas = [0; PEERNET_PAIRED_SAS_SIZE];
    fill_text(&mut dst.sas, &p.sas);
}

fn c_string(s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Internal("NUL inside an invite string".into()))
}

/// Opens an invite on a node: a one-time ticket and (if `with_code`) a short code
/// `N-word-word` another node passes to `peernet_join`. The node opens its own pairing
/// listener (one attempt at a time) that closes at expiry, after a success or at
/// `peernet_invite_free`; one attempt on the code, right or wrong, burns the code.
/// `name` is what the joiner will label this node (NULL: the host name);
/// `expiry_s` is the lifetime in seconds (0: 600). On success `*out_invite` is a
/// handle the caller owns; on failure NULL.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, name over 64 bytes, expiry over 24 h),
/// `PEERNET_ERR_IO` (binding the listener), `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `name` is NULL or a NUL-terminated string; `out_invite` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_invite(
    node: *mut peernet_node,
    name: *const c_char,
    expiry_s: u32,
    with_code: bool,
    out_invite: *mut *mut peernet_invitation,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let slot = unsafe { out(out_invite, "out_invite") }?;
        *slot = std::ptr::null_mut();
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        // SAFETY: contract above.
        let name = unsafe { opt_cstr(name, "name") }?;
        n.check_open()?;
        let mut opts = InviteOptions {
            name: name.map(str::to_owned),
            code: with_code,
            ..InviteOptions::default()
        };
        if expiry_s != 0 {
            opts.expiry = Duration::from_secs(u64::from(expiry_s));
        }
        let invite = block_on(n.node.invite(opts))??;
        let ticket = c_string(invite.ticket())?;
        let code = invite.code().map(c_string).transpose()?;
        *slot = peernet_invitation {
            invite,
            ticket,
            code,
        }
        .into_ptr();
        Ok(peernet_status::PEERNET_OK)
    })
}

/// The invite's ticket (`peernet1-…`), valid until `peernet_invite_free`; NULL for a
/// NULL invite.
///
/// # Safety
/// `invite` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peernet_invite_ticket(invite: *const peernet_invitation) -> *const c_char {
    ffi_guard!({
        // SAFETY: contract above.
        let i = unsafe { peernet_invitation::borrow(invite) }?;
        Ok(i.ticket.as_ptr())
    })
}

/// The invite's short code (`7-copper-violin`), valid until `peernet_invite_free`;
/// NULL when it has none (or for a NULL invite).
///
/// # Safety
/// `invite` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peernet_invite_code(invite: *const peernet_invitation) -> *const c_char {
    ffi_guard!({
        // SAFETY: contract above.
        let i = unsafe { peernet_invitation::borrow(invite) }?;
        Ok(i.code.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
    })
}

/// Waits up to `timeout_ms` for a joiner to pair; on success fills `*out_paired`
/// (again on every later call: an invite pairs once).
/// Errors: `PEERNET_ERR_TIMEOUT` (the invite stays open), `PEERNET_ERR_INVALID_ARGUMENT`
/// (NULL; or the invite ended: expired, used up, its node stopped — the last error
/// says which). Do not free the invite while another thread waits on it.
///
/// # Safety
/// `invite` is NULL or live; `out_paired` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_invite_wait(
    invite: *const peernet_invitation,
    timeout_ms: u32,
    out_paired: *mut peernet_paired,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let i = unsafe { peernet_invitation::borrow(invite) }?;
        // SAFETY: contract above.
        let dst = unsafe { out(out_paired, "out_paired") }?;
        let p = block_on(i.invite.wait(ms(timeout_ms)))??;
        fill_paired(dst, &p);
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Closes the invite's pairing listener and frees it; NULL is a no-op.
///
/// # Safety
/// `invite` is NULL or live, and no other thread uses it.
#[no_mangle]
pub unsafe extern "C" fn peernet_invite_free(invite: *mut peernet_invitation) {
    ffi_guard!({
        // SAFETY: contract above.
        unsafe { peernet_invitation::free(invite) };
        Ok(())
    })
}

/// Pairs with an invite: `code_or_ticket` is a short code (found on the LAN through the
/// discovery port) or a ticket. Blocks up to `timeout_ms`. `name` is what the inviter
/// will label this node (NULL: the host name). On success this node trusts the
/// inviter's key (the one its handshake proved) and `*out_paired` says who it is.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (a typo — the last error names the group or
/// word —, an expired ticket, no inviter announced the code), `PEERNET_ERR_IO` (the
/// inviter cannot be reached: used, expired or closed), `PEERNET_ERR_HANDSHAKE_FAILED`
/// (wrong code or ticket secret, someone in the middle), `PEERNET_ERR_TIMEOUT`,
/// `PEERNET_ERR_CLOSED`. Thread-safe.
///
/// # Safety
/// `node` is NULL or live; `code_or_ticket` and `name` are NULL or NUL-terminated
/// strings; `out_paired` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peernet_join(
    node: *mut peernet_node,
    code_or_ticket: *const c_char,
    name: *const c_char,
    timeout_ms: u32,
    out_paired: *mut peernet_paired,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let n = unsafe { peernet_node::acquire(node) }?;
        // SAFETY: contract above.
        let text = unsafe { cstr(code_or_ticket, "code_or_ticket") }?;
        // SAFETY: contract above.
        let name = unsafe { opt_cstr(name, "name") }?;
        // SAFETY: contract above.
        let dst = unsafe { out(out_paired, "out_paired") }?;
        n.check_open()?;
        let p = block_on(n.node.join(text, name, ms(timeout_ms)))??;
        fill_paired(dst, &p);
        Ok(peernet_status::PEERNET_OK)
    })
}
