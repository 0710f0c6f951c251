//! The UDP transport discovery runs over: a trait, so the discovery service can be
//! tested with an in-memory network, and the real socket.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

/// A datagram socket.
pub(crate) trait UdpTransport: Send + Sync + 'static {
    /// Sends one datagram.
    fn send_to(&self, buf: &[u8], to: SocketAddr)
        -> impl Future<Output = io::Result<usize>> + Send;
    /// Receives one datagram (truncated to `buf`).
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
}

impl UdpTransport for UdpSocket {
    fn send_to(
        &self,
        buf: &[u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send {
        UdpSocket::send_to(self, buf, to)
    }

    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        UdpSocket::recv_from(self, buf)
    }
}

/// Binds `0.0.0.0:port` for discovery with SO_REUSEADDR and SO_REUSEPORT (several nodes
/// on one host all hear the broadcasts, spec 8) and SO_BROADCAST. Must be called inside
/// a tokio runtime.
pub(crate) fn bind(port: u16) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    s.set_reuse_port(true)?;
    s.set_broadcast(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    UdpSocket::from_std(s.into())
}

/// Binds `[::]:port` (IPv6 only) for discovery over multicast, with SO_REUSEADDR and
/// SO_REUSEPORT, multicast loop on (nodes on one host hear each other) and a hop limit
/// of 1. Returns the socket and a duplicate of it, for joining the group on
/// interfaces that appear later. Must be called inside a tokio runtime.
pub(crate) fn bind_v6(port: u16) -> io::Result<(UdpSocket, Socket)> {
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_only_v6(true)?;
    s.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    s.set_reuse_port(true)?;
    s.set_multicast_loop_v6(true)?;
    s.set_multicast_hops_v6(1)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    let dup = s.try_clone()?;
    Ok((UdpSocket::from_std(s.into())?, dup))
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory broadcast network: a datagram to `x.x.x.255:port` (or any address
    //! whose port matches and whose IP is the target's) reaches every socket bound to
    //! that port, the sender's own included, like a real broadcast.

    use std::sync::{Arc, Mutex};

    use tokio::sync::mpsc;

    use super::*;

    type Inbox = mpsc::UnboundedSender<(Vec<u8>, SocketAddr)>;
    /// (from, to, bytes) of one datagram.
    pub(crate) type Sent = (SocketAddr, SocketAddr, Vec<u8>);

    /// The network: every socket, and a log of what was sent.
    #[derive(Clone, Default)]
    pub(crate) struct FakeNet {
        members: Arc<Mutex<Vec<(SocketAddr, Inbox)>>>,
        /// Every datagram sent: (from, to, bytes).
        pub sent: Arc<Mutex<Vec<Sent>>>,
    }

    /// One socket on the fake network.
    pub(crate) struct FakeSocket {
        addr: SocketAddr,
        net: FakeNet,
        inbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<(Vec<u8>, SocketAddr)>>,
    }

    impl FakeNet {
        /// A socket with source address `addr`.
        pub(crate) fn socket(&self, addr: SocketAddr) -> FakeSocket {
            let (tx, rx) = mpsc::unbounded_channel();
            self.members
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((addr, tx));
            FakeSocket {
                addr,
                net: self.clone(),
                inbox: tokio::sync::Mutex::new(rx),
            }
        }

        /// Delivers `data` as if sent from `from` to `to`.
        pub(crate) fn inject(&self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
            self.sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((from, to, data.to_vec()));
            let broadcast = match to.ip() {
                std::net::IpAddr::V4(ip) => ip.octets()[3] == 255,
                std::net::IpAddr::V6(_) => false,
            };
            for (addr, inbox) in self
                .members
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
            {
                if addr.port() == to.port() && (broadcast || addr.ip() == to.ip()) {
                    let _ = inbox.send((data.to_vec(), from));
                }
            }
        }
    }

    impl UdpTransport for FakeSocket {
        async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
            self.net.inject(self.addr, to, buf);
            Ok(buf.len())
        }

        async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
            let mut inbox = self.inbox.lock().await;
            match inbox.recv().await {
                Some((data, from)) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    Ok((n, from))
                }
                None => std::future::pending().await,
            }
        }
    }
}
