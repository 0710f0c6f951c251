//! `peernet_config`: the opaque configuration builder.

use std::ffi::c_char;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use peernet_core::{Error, MdnsConfig, NodeConfig, UdpDiscoveryConfig};

use crate::guard::{cstr, ffi_guard, invalid, opt_cstr};
use crate::handle::BoxHandle;
use crate::types::peernet_status;

/// Opaque node configuration. Create with `peernet_config_new`, adjust with the
/// `peernet_config_set_*` functions, pass to `peernet_node_start` (which copies it), free
/// with `peernet_config_free`. Not thread-safe: use one config from one thread at a time.
pub struct peernet_config {
    cfg: NodeConfig,
    inline_callbacks: bool,
}

impl BoxHandle for peernet_config {
    const NAME: &'static str = "config";
}

impl peernet_config {
    pub(crate) fn node_config(&self) -> &NodeConfig {
        &self.cfg
    }

    /// Whether the node's callbacks run inline on the runtime thread
    /// (`peernet_config_set_inline_callbacks`).
    pub(crate) fn inline_callbacks(&self) -> bool {
        self.inline_callbacks
    }

    /// Applies a change if the result validates; else leaves the config as it was.
    pub(crate) fn update(
        &mut self,
        f: impl FnOnce(&mut NodeConfig),
    ) -> Result<peernet_status, Error> {
        let mut next = self.cfg.clone();
        f(&mut next);
        next.validate()?;
        self.cfg = next;
        Ok(peernet_status::PEERNET_OK)
    }
}

pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, Error> {
    s.trim().parse().map_err(|_| {
        invalid(format!(
            "{s:?} is not an address like \"127.0.0.1:7100\" or \"[::1]:7100\""
        ))
    })
}

fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

/// A new configuration with the defaults of docs/protocol.md, keeping its identity and
/// trust store in `data_dir` (created 0700 when the node starts). The path is used
/// literally: no `~` or `$VAR` expansion (a "~/x" is a directory named "~" under the
/// current directory); expand it first, e.g. with `getenv("HOME")`. A relative path is
/// relative to the current directory. Listens on
/// "[::]:0" by default (dual stack: IPv4 and IPv6; "0.0.0.0" where the host has no IPv6). Returns NULL (with the last error set) when `data_dir` is
/// NULL, empty or not UTF-8. The caller owns the result: free it with
/// `peernet_config_free`. Thread-safe.
///
/// # Safety
/// `data_dir` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_new(data_dir: *const c_char) -> *mut peernet_config {
    ffi_guard!({
        // SAFETY: contract above.
        let dir = unsafe { cstr(data_dir, "data_dir") }?;
        if dir.is_empty() {
            return Err(invalid("data_dir is empty"));
        }
        Ok(peernet_config {
            cfg: NodeConfig::new(dir),
            inline_callbacks: false,
        }
        .into_ptr())
    })
}

/// Frees a configuration; NULL is a no-op. Nodes started from it are unaffected.
///
/// # Safety
/// `config` is NULL or from `peernet_config_new`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_free(config: *mut peernet_config) {
    ffi_guard!({
        // SAFETY: contract above.
        unsafe { peernet_config::free(config) };
        Ok(())
    })
}

/// Sets the TCP listen address, e.g. "[::]:0" (dual stack, any free port), "0.0.0.0:0"
/// (IPv4 only), "127.0.0.1:7100", "[::1]:7100"; "none" accepts no connections (outgoing only).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL, not an address).
///
/// # Safety
/// `config` is NULL or live and used by no other thread; `addr` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_listen(
    config: *mut peernet_config,
    addr: *const c_char,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        // SAFETY: contract above.
        let addr = unsafe { cstr(addr, "addr") }?;
        let listen = if addr == "none" {
            None
        } else {
            Some(parse_addr(addr)?)
        };
        c.update(|n| n.listen = listen)
    })
}

/// Turns on UDP LAN discovery: announce this node every `interval_ms` (0 = the default
/// 5000) to `port` (0 = the default 4040) at `broadcast_addrs`, a comma-separated list of
/// "ip" or "ip:port" (NULL or "" = the default: the directed broadcast address of each
/// chosen IPv4 interface that is up, and the IPv6 link-local group ff02::504e:4554 on
/// each chosen IPv6 interface, see `peernet_config_set_discovery_interfaces`; tests use
/// "127.255.255.255"; an IPv6 entry such as "[::1]:4040" goes over an IPv6 socket).
/// Discovered trusted peers are connected automatically.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL config, bad address).
///
/// # Safety
/// `config` is NULL or live and used by no other thread; `broadcast_addrs` is NULL or
/// a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_udp_discovery(
    config: *mut peernet_config,
    port: u16,
    interval_ms: u32,
    broadcast_addrs: *const c_char,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        // SAFETY: contract above.
        let list = unsafe { opt_cstr(broadcast_addrs, "broadcast_addrs") }?.unwrap_or("");
        let mut d = UdpDiscoveryConfig::default();
        if port != 0 {
            d.port = port;
        }
        if interval_ms != 0 {
            d.interval = ms(interval_ms);
        }
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let addr = match item.parse::<IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, d.port),
                Err(_) => parse_addr(item)?,
            };
            d.broadcast.push(addr);
        }
        c.update(|n| n.udp_discovery = Some(d))
    })
}

/// Chooses the interfaces UDP discovery announces on (the default targets only; explicit
/// broadcast addresses are used as given): `allow` and `deny` are comma-separated
/// interface names ("eth0") or prefixes ending in '*' ("wg*"); NULL or "" = none. Deny
/// wins; with an allow list only matching interfaces are used; loopback, point-to-point
/// and container bridges ("docker*", "veth*", "br-*") only when allowed by name. Call
/// after `peernet_config_set_udp_discovery`.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL config, discovery not on, bad pattern).
///
/// # Safety
/// `config` is NULL or live and used by no other thread; `allow` and `deny` are NULL or
/// NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_discovery_interfaces(
    config: *mut peernet_config,
    allow: *const c_char,
    deny: *const c_char,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        // SAFETY: contract above.
        let allow = unsafe { opt_cstr(allow, "allow") }?.unwrap_or("");
        // SAFETY: contract above.
        let deny = unsafe { opt_cstr(deny, "deny") }?.unwrap_or("");
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let (allow, deny) = (list(allow), list(deny));
        if c.node_config().udp_discovery.is_none() {
            return Err(invalid(
                "UDP discovery is off: call peernet_config_set_udp_discovery first",
            ));
        }
        c.update(|n| {
            if let Some(d) = n.udp_discovery.as_mut() {
                d.allow_interfaces = allow;
                d.deny_interfaces = deny;
            }
        })
    })
}

/// Turns mDNS / DNS-SD discovery on or off (default off): advertise `_peernet._tcp` with
/// this node's key in a TXT record and browse for the others (UDP 5353; a record is a
/// hint only, like an announcement). `allow` and `deny` choose interfaces as in
/// `peernet_config_set_discovery_interfaces` (comma-separated; NULL or "" = none).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL config, bad pattern).
///
/// # Safety
/// `config` is NULL or live and used by no other thread; `allow` and `deny` are NULL or
/// NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_mdns(
    config: *mut peernet_config,
    enabled: bool,
    allow: *const c_char,
    deny: *const c_char,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        // SAFETY: contract above.
        let allow = unsafe { opt_cstr(allow, "allow") }?.unwrap_or("");
        // SAFETY: contract above.
        let deny = unsafe { opt_cstr(deny, "deny") }?.unwrap_or("");
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let m = enabled.then(|| MdnsConfig {
            allow_interfaces: list(allow),
            deny_interfaces: list(deny),
        });
        c.update(|n| n.mdns = m)
    })
}

/// Sets the heartbeat: a ping every `interval_ms`; a connection whose ping is unanswered
/// for `timeout_ms` is closed. Defaults 15000 / 45000.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL config, 0).
///
/// # Safety
/// `config` is NULL or live and used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_heartbeat(
    config: *mut peernet_config,
    interval_ms: u32,
    timeout_ms: u32,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        c.update(|n| {
            n.heartbeat_interval = ms(interval_ms);
            n.heartbeat_timeout = ms(timeout_ms);
        })
    })
}

/// Polls the local interfaces every `poll_ms` and reports changes
/// (`PEERNET_EVENT_NETWORK_CHANGED`), re-announcing and redialing; 0 = off (default).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL config).
///
/// # Safety
/// `config` is NULL or live and used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_network_monitor(
    config: *mut peernet_config,
    poll_ms: u32,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        c.update(|n| n.network_monitor = (poll_ms != 0).then(|| ms(poll_ms)))
    })
}

/// Sets the largest frame body this node accepts (default 1 MiB, at least 64 KiB).
/// Larger calls to this node fail with `PEERNET_ERR_PAYLOAD_TOO_LARGE`.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL config, below 64 KiB).
///
/// # Safety
/// `config` is NULL or live and used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_max_frame(
    config: *mut peernet_config,
    bytes: u32,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        c.update(|n| n.max_frame_len = bytes)
    })
}

/// Sets the deadline of a whole handshake (default 5000 ms).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL config, 0).
///
/// # Safety
/// `config` is NULL or live and used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_handshake_timeout(
    config: *mut peernet_config,
    timeout_ms: u32,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        c.update(|n| n.handshake_timeout = ms(timeout_ms))
    })
}

/// Whether disconnected trusted peers are redialed with backoff (default true).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL config).
///
/// # Safety
/// `config` is NULL or live and used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_auto_connect(
    config: *mut peernet_config,
    enabled: bool,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        c.update(|n| n.auto_connect = enabled)
    })
}

/// Chooses how the node runs its handlers, its RPC dispatcher and the completions of
/// its `peernet_call_async` calls. `false` (the default): each runs on a library thread
/// that it may block; before it starts, the runtime thread's other work is handed to
/// another thread (safe for any callback, but that hand-off costs a thread wake-up per
/// callback). `true`: each runs directly on a runtime thread, with no hand-off
/// (several times the pipelined call rate), never on a connection's reader. Then a callback
/// must be quick and must not block on anything but short locks: while it runs, that
/// runtime thread serves no other peer. It may still call every `peernet_*` function,
/// including blocking ones (those hand the runtime thread's work off themselves).
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL config).
///
/// # Safety
/// `config` is NULL or live and used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_inline_callbacks(
    config: *mut peernet_config,
    enabled: bool,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        c.inline_callbacks = enabled;
        Ok(peernet_status::PEERNET_OK)
    })
}

/// Sets how many calls from one peer are handled at once (default 1024); more are
/// answered `PEERNET_ERR_OVERLOADED` without running.
/// Errors: `PEERNET_ERR_INVALID_ARGUMENT` (NULL config, 0).
///
/// # Safety
/// `config` is NULL or live and used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn peernet_config_set_max_concurrent_calls(
    config: *mut peernet_config,
    calls: u32,
) -> peernet_status {
    ffi_guard!({
        // SAFETY: contract above.
        let c = unsafe { peernet_config::borrow_mut(config) }?;
        c.update(|n| n.max_concurrent_calls = calls as usize)
    })
}
