//! Binding the TCP listener. `[::]` (the default) is bound dual-stack (IPV6_V6ONLY off:
//! IPv4 peers connect too, seen as IPv4-mapped addresses, which `accept_loop` turns
//! back into plain IPv4); where the OS has no IPv6 it falls back to `0.0.0.0` on the
//! same port, saying so in the log.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use crate::error::{Error, Result};

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
    if matches!(addr, SocketAddr::V6(a) if a.ip().is_unspecified()) {
        match bind_dual_stack(addr) {
            Ok(l) => return Ok(l),
            Err(e) if no_ipv6(&e) => {
                let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
                tracing::warn!(
                    error = %e,
                    "IPv6 is not available here: listening on {v4} (IPv4 only); set the \
                     listen address to 0.0.0.0:PORT to say so and silence this"
                );
                return TcpListener::bind(v4)
                    .await
                    .map_err(|e| Error::io(format!("listening on {v4}"), e));
            }
            Err(e) => return Err(Error::io(format!("listening on {addr}"), e)),
        }
    }
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("listening on {addr}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default `[::]` listener takes IPv4 and IPv6 clients (where the host has
    /// IPv6; else it is an IPv4 listener and only the IPv4 dial is checked).
    #[tokio::test]
    async fn dual_stack_listener_accepts_both_families() {
        let l = bind("[::]:0".parse().unwrap()).await.unwrap();
        let local = l.local_addr().unwrap();
        let port = local.port();
        let c4 = tokio::net::TcpStream::connect(("127.0.0.1", port));
        let (a, b) = tokio::join!(c4, l.accept());
        a.unwrap();
        let (_, from) = b.unwrap();
        assert_eq!(
            from.ip().to_canonical(),
            "127.0.0.1".parse::<std::net::IpAddr>().unwrap()
        );
        if local.is_ipv6() {
            let c6 = tokio::net::TcpStream::connect(("::1", port));
            let (a, b) = tokio::join!(c6, l.accept());
            a.unwrap();
            assert!(b.unwrap().1.is_ipv6());
        }
    }
}
