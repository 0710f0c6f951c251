//! Unicast re-announce: where our announcement goes besides the broadcast targets —
//! the discovery port at the IPs of the remembered (handshake-confirmed) and manual
//! (IP literal) addresses of every trusted peer we are not connected to. That reaches
//! a peer across a router or a VPN, where no broadcast arrives: hearing us, it learns
//! our current port and dials us (after both restarted on new ports, say).
//!
//! Only the trust store chooses destinations, never an incoming datagram, so nothing
//! can make us send to a source we have not verified (no amplification). Bounded: at
//! most `service::MAX_UNICAST` destinations per announcement and one such round per
//! interval (`UdpState::poll`); with more candidates, each round starts further along
//! the list, so every peer gets its turn.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use peernet_proto::peer_addr::ManualAddress;
use peernet_proto::Key;

use crate::conn::lock;
use crate::discovery::service::MAX_UNICAST;
use crate::shared::Shared;

impl Shared {
    /// The unicast targets of this round on discovery port `port`, of one family (each
    /// family has its own socket; IPv6 link-local addresses are left out, the trust
    /// file keeps no scope id), starting at `*cursor` among the candidates.
    pub(crate) fn unicast_targets(
        &self,
        port: u16,
        v6: bool,
        cursor: &AtomicUsize,
    ) -> Vec<SocketAddr> {
        // Trust first, released before the peer table is locked (lock order).
        let candidates: Vec<(Key, Vec<IpAddr>)> = lock(&self.trust)
            .list()
            .into_iter()
            .map(|e| {
                let manual = e
                    .manual
                    .iter()
                    .filter_map(|m| match ManualAddress::parse(m) {
                        Ok(ManualAddress::Ip(a)) => Some(a.ip()),
                        _ => None,
                    });
                let ips = e.addresses.iter().map(|a| a.ip()).chain(manual).collect();
                (e.key, ips)
            })
            .collect();
        let mut ips: Vec<IpAddr> = Vec::new();
        {
            let peers = lock(&self.peers);
            for (key, list) in &candidates {
                if peers.route(key).is_some() {
                    continue;
                }
                for ip in list {
                    let family = match ip {
                        IpAddr::V4(_) => !v6,
                        IpAddr::V6(a) => v6 && (a.segments()[0] & 0xffc0) != 0xfe80,
                    };
                    if family && !ip.is_unspecified() && !ips.contains(ip) {
                        ips.push(*ip);
                    }
                }
            }
        }
        if ips.is_empty() {
            return Vec::new();
        }
        let start = cursor.fetch_add(MAX_UNICAST, Ordering::Relaxed) % ips.len();
        ips.rotate_left(start);
        ips.truncate(MAX_UNICAST);
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    }
}
