//! Starting UDP discovery: an IPv4 service (directed broadcast, spec 8) and an IPv6
//! service (our link-local multicast group `ifaces::IPV6_GROUP`), each over its own
//! socket on the discovery port, both feeding the same peer table.
//!
//! With explicit targets (`UdpDiscoveryConfig::broadcast`) each family sends to its
//! own targets only, and a family without any is not started: no multicast group is
//! joined (a membership report is traffic on that interface), so tests that name
//! `127.255.255.255` or `[::1]` stay on loopback.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use crate::config::UdpDiscoveryConfig;
use crate::conn::lock;
use crate::discovery::ifaces::{InterfaceFilter, IPV6_GROUP};
use crate::discovery::{service, transport};
use crate::error::{Error, Result};
use crate::shared::Shared;

/// Most interfaces the IPv6 socket joins the group on.
const MAX_JOINED: usize = 64;

fn env(
    shared: &Arc<Shared>,
    disc_port: u16,
    v6: bool,
    targets: Box<dyn Fn() -> Vec<SocketAddr> + Send + Sync>,
) -> service::Env {
    let weak = Arc::downgrade(shared);
    let weak_u = Arc::downgrade(shared);
    let cursor = AtomicUsize::new(0);
    service::Env {
        targets,
        unicast: Box::new(move || {
            weak_u
                .upgrade()
                .map(|s| s.unicast_targets(disc_port, v6, &cursor))
                .unwrap_or_default()
        }),
        local_ips: Box::new(|| {
            crate::sys::local_addrs()
                .unwrap_or_default()
                .into_iter()
                .collect()
        }),
        sink: Box::new(move |ev| {
            if let Some(s) = weak.upgrade() {
                s.apply_discovery(ev);
            }
        }),
        counters: Arc::clone(&shared.counters),
    }
}

/// Binds the discovery sockets and starts the services (see the module docs). The
/// IPv4 socket failing to bind is an error; the IPv6 one is logged and skipped (IPv6
/// disabled), unless IPv6 targets were named explicitly and no IPv4 ones.
pub(crate) fn start_udp_discovery(
    shared: &Arc<Shared>,
    d: &UdpDiscoveryConfig,
    port: u16,
) -> Result<()> {
    let explicit = !d.broadcast.is_empty();
    let (fixed4, fixed6): (Vec<SocketAddr>, Vec<SocketAddr>) =
        d.broadcast.iter().partition(|a| a.is_ipv4());
    let filter = InterfaceFilter {
        allow: d.allow_interfaces.clone(),
        deny: d.deny_interfaces.clone(),
    };
    let disc_port = d.port;
    let own = shared.identity.public();
    let has4 = !explicit || !fixed4.is_empty();
    if has4 {
        let socket = transport::bind(d.port)
            .map_err(|e| Error::io(format!("binding UDP discovery port {}", d.port), e))?;
        let f = filter.clone();
        let targets: Box<dyn Fn() -> Vec<SocketAddr> + Send + Sync> = if explicit {
            Box::new(move || fixed4.clone())
        } else {
            // The directed broadcast address of every chosen IPv4 interface that is up.
            Box::new(move || f.targets(disc_port))
        };
        let env = env(shared, disc_port, false, targets);
        let s = service::spawn(socket, own, port, d.interval, env, shared.shutdown_rx());
        lock(&shared.discovery).push(Box::new(s));
    }
    if explicit && fixed6.is_empty() {
        return Ok(());
    }
    let (socket, dup) = match transport::bind_v6(d.port) {
        Ok(s) => s,
        Err(e) if has4 => {
            tracing::info!(
                port = d.port,
                error = %e,
                "IPv6 discovery is off (binding [::]:port failed; no IPv6 here?); IPv4 discovery runs"
            );
            return Ok(());
        }
        Err(e) => {
            return Err(Error::io(
                format!("binding UDP discovery port [::]:{}", d.port),
                e,
            ))
        }
    };
    let targets: Box<dyn Fn() -> Vec<SocketAddr> + Send + Sync> = if explicit {
        Box::new(move || fixed6.clone())
    } else {
        // Our group on every chosen interface; joined there first (interfaces that
        // appear later are joined at the announcement after they do).
        let joined = Mutex::new(HashSet::new());
        Box::new(move || {
            let t = filter.multicast_targets(disc_port);
            let mut j = joined.lock().unwrap_or_else(|p| p.into_inner());
            for a in &t {
                let SocketAddr::V6(a) = a else { continue };
                let idx = a.scope_id();
                if j.contains(&idx) || j.len() >= MAX_JOINED {
                    continue;
                }
                match dup.join_multicast_v6(&IPV6_GROUP, idx) {
                    Ok(()) => {
                        j.insert(idx);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                        j.insert(idx);
                    }
                    Err(e) => {
                        tracing::debug!(interface = idx, error = %e, "IPv6 discovery group not joined")
                    }
                }
            }
            t
        })
    };
    let env = env(shared, disc_port, true, targets);
    let s = service::spawn(socket, own, port, d.interval, env, shared.shutdown_rx());
    lock(&shared.discovery).push(Box::new(s));
    Ok(())
}
