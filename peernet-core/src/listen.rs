//! Binding the TCP listener. `[::]` (the default) is bound dual-stack (IPV6_V6ONLY off:
//! IPv4 peers connect too, seen as IPv4-mapped addresses, which `accept_loop` turns
//! back into plain IPv4); where the OS has no IPv6 it falls back to `0.0.0.0` on the
//! same port, saying so in the log. And the accept loop: each accepted socket gets a
//! handshake slot (its source's share first), the responder's handshake, registration.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use peernet_proto::Key;

use crate::conn::handshake;
use crate::conn::{machine_config, spawn_connection};
use crate::error::{Error, Result};
use crate::metrics::HandshakeResult;
use crate::net::{handshake_error, host_of, registration, setup};
use crate::shared::Shared;

fn bind_dual_stack(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    s.set_only_v6(false)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

/// Whether a dual-stack bind failed for want of IPv6 (not: the port is taken, or
/// not ours to bind), so IPv4 alone is worth a try.
fn no_ipv6(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
    )
}

/// Binds the listener on `addr` (see the module docs). Must be called inside a tokio
/// runtime.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    bind_with(addr, bind_dual_stack).await
}

/// [`bind`], with the dual-stack bind given (a test makes it fail like a host without
/// IPv6 does).
async fn bind_with(
    addr: SocketAddr,
    dual_stack: impl FnOnce(SocketAddr) -> io::Result<TcpListener>,
) -> Result<TcpListener> {
    if matches!(addr, SocketAddr::V6(a) if a.ip().is_unspecified()) {
        match dual_stack(addr) {
            Ok(l) => return Ok(l),
            Err(e) if no_ipv6(&e) => {
                let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
                tracing::warn!(
                    error = %e,
                    "IPv6 is not available here: listening on {v4} (IPv4 only); set the \
                     listen address to 0.0.0.0:PORT to say so and silence this"
                );
                return TcpListener::bind(v4).await.map_err(|e| {
                    Error::io(
                        format!("listening on {v4} (IPv6 unavailable: {addr} failed)"),
                        e,
                    )
                });
            }
            Err(e) => return Err(Error::io(format!("listening on {addr}"), e)),
        }
    }
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("listening on {addr}"), e))
}

/// `stop` is created before the task is spawned, so a task not yet polled still counts
/// as running for `Node::shutdown`.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            a = listener.accept() => a,
        };
        let (stream, remote) = match accepted {
            // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d: one form per peer.
            Ok((s, r)) => (s, SocketAddr::new(r.ip().to_canonical(), r.port())),
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Its source's share first, so one host holding its share costs the others no
        // global slot.
        let Some(slot) = shared.sources.try_acquire(remote.ip()) else {
            shared.counters.handshake(HandshakeResult::Refused);
            tracing::debug!(%remote, "this source holds its share of handshakes; connection closed");
            continue;
        };
        let Ok(permit) = Arc::clone(&shared.handshakes).try_acquire_owned() else {
            shared.counters.handshake(HandshakeResult::Refused);
            tracing::debug!(%remote, "too many handshakes in progress; connection closed");
            continue;
        };
        let shared = Arc::clone(&shared);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = (permit, slot);
            let _ = stream.set_nodelay(true);
            // The client's key, when the handshake got far enough to show an untrusted one.
            let refused = std::sync::OnceLock::new();
            let trusted = |k: &Key| {
                let ok = shared.is_trusted(k);
                if !ok {
                    let _ = refused.set(*k);
                }
                ok
            };
            let res = tokio::select! {
                r = tokio::time::timeout(
                    shared.config.handshake_timeout,
                    handshake::respond(
                        stream,
                        &shared.identity,
                        &shared.hello,
                        trusted,
                        machine_config(&shared.config),
                    ),
                ) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            let counters = &shared.counters;
            match res {
                Ok(Ok(est)) => {
                    let r = spawn_connection(host_of(&shared), est, setup(&shared, false, remote));
                    counters.handshake(registration(&r));
                    if let Err(e) = r {
                        tracing::debug!(%remote, error = %e, "inbound connection refused");
                    }
                }
                Ok(Err(e)) => {
                    counters.handshake(handshake_error(&e));
                    tracing::debug!(%remote, error = %e, "inbound handshake failed");
                    if let (Error::UntrustedPeer(m), Some(k)) = (&e, refused.get()) {
                        shared.emit(
                            crate::events::EventKind::Refused,
                            Some(*k),
                            Some(remote),
                            m.clone(),
                        );
                    }
                }
                Err(_) => {
                    counters.handshake(HandshakeResult::Timeout);
                    tracing::debug!(%remote, "inbound handshake timed out")
                }
            }
        });
    }
    // `Node::shutdown` returns once every `stop` receiver is gone: close the listening
    // socket first, so the port can be bound again as soon as shutdown returns (a
    // restart on the same port lost this race now and then on the multi-thread runtime).
    drop(listener);
    drop(stop);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peer address of the next connection `l` accepts (the client connected
    /// before: the connection waits in the backlog), within a deadline.
    async fn accepted(l: &TcpListener) -> SocketAddr {
        tokio::time::timeout(Duration::from_secs(5), l.accept())
            .await
            .expect("no connection accepted within 5 s")
            .unwrap()
            .1
    }

    /// Where IPv6 sockets cannot be made (a kernel booted with `ipv6.disable=1`:
    /// `EAFNOSUPPORT`), `[::]` falls back to an IPv4 listener on `0.0.0.0` that takes
    /// IPv4 clients; a taken port or a refused bind is an error, not a fallback.
    #[tokio::test]
    async fn without_ipv6_the_default_listener_falls_back_to_ipv4() {
        let no_v6 = |_| Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT));
        let l = bind_with("[::]:0".parse().unwrap(), no_v6).await.unwrap();
        let local = l.local_addr().unwrap();
        assert_eq!(local.ip(), std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        tokio::net::TcpStream::connect(("127.0.0.1", local.port()))
            .await
            .unwrap();
        accepted(&l).await;
        for kind in [io::ErrorKind::AddrInUse, io::ErrorKind::PermissionDenied] {
            let r = bind_with("[::]:0".parse().unwrap(), |_| Err(io::Error::from(kind))).await;
            assert!(r.is_err(), "{kind:?} fell back to IPv4");
        }
    }

    /// The default `[::]` listener takes IPv4 and IPv6 clients (where the host has
    /// IPv6; else it is an IPv4 listener and only the IPv4 dial is checked).
    #[tokio::test]
    async fn dual_stack_listener_accepts_both_families() {
        let l = bind("[::]:0".parse().unwrap()).await.unwrap();
        let local = l.local_addr().unwrap();
        let port = local.port();
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("an IPv4 client cannot connect to the [::] listener");
        assert_eq!(
            accepted(&l).await.ip().to_canonical(),
            "127.0.0.1".parse::<std::net::IpAddr>().unwrap()
        );
        if local.is_ipv6() {
            tokio::net::TcpStream::connect(("::1", port)).await.unwrap();
            assert!(accepted(&l).await.is_ipv6());
        }
    }
}
