//! The UDP discovery service: drives `UdpState` over a `UdpTransport` — announces to the
//! broadcast targets, reads datagrams, reports events — until shutdown.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use peernet_proto::Key;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::transport::UdpTransport;
use super::udp::{Incoming, UdpState};
use super::{Discovery, DiscoveryEvent};
use crate::metrics::Counters;

/// Most broadcast targets one announcement goes to (bounds every sending burst).
pub(crate) const MAX_TARGETS: usize = 32;
/// Most unicast targets (trusted peers' remembered and manual addresses) one
/// announcement goes to, at most once per interval.
pub(crate) const MAX_UNICAST: usize = 16;

/// The node's handle on a running UDP discovery service.
pub(crate) struct UdpDiscovery {
    reannounce: Arc<Notify>,
}

impl Discovery for UdpDiscovery {
    fn network_changed(&self) {
        self.reannounce.notify_one();
    }
}

/// Where the service learns about its surroundings.
pub(crate) struct Env {
    /// Broadcast targets (re-read at every announcement).
    pub targets: Box<dyn Fn() -> Vec<SocketAddr> + Send + Sync>,
    /// Unicast targets (re-read whenever `Due::unicast`; at most `MAX_UNICAST` used).
    pub unicast: Box<dyn Fn() -> Vec<SocketAddr> + Send + Sync>,
    /// This host's addresses (re-read at start and after network changes).
    pub local_ips: Box<dyn Fn() -> HashSet<IpAddr> + Send + Sync>,
    /// Receives every event.
    pub sink: Box<dyn Fn(DiscoveryEvent) + Send + Sync>,
    /// The node's metrics counters (datagrams in, out, dropped).
    pub counters: Arc<Counters>,
}

impl Env {
    /// Counts a received datagram; returns the time to handle it at.
    fn received(&self) -> std::time::Instant {
        self.counters.datagram_in();
        Instant::now().into_std()
    }
}

/// Starts the service on `transport`; it stops when `stop` becomes true.
pub(crate) fn spawn<T: UdpTransport>(
    transport: T,
    own: Key,
    tcp_port: u16,
    interval: Duration,
    env: Env,
    stop: watch::Receiver<bool>,
) -> UdpDiscovery {
    let reannounce = Arc::new(Notify::new());
    let state = UdpState::new(own, tcp_port, interval, Instant::now().into_std());
    tokio::spawn(run(transport, state, env, Arc::clone(&reannounce), stop));
    UdpDiscovery { reannounce }
}

async fn run<T: UdpTransport>(
    transport: T,
    mut state: UdpState,
    env: Env,
    reannounce: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    state.set_local_ips((env.local_ips)());
    let mut buf = [0u8; 64];
    loop {
        let now = Instant::now().into_std();
        let due = state.poll(now);
        for key in due.lost {
            (env.sink)(DiscoveryEvent::Lost { key });
        }
        if due.announce {
            if let Some(bytes) = state.announcement().copied() {
                let mut sent: Vec<SocketAddr> =
                    (env.targets)().into_iter().take(MAX_TARGETS).collect();
                if due.unicast {
                    let mut extra = 0;
                    for to in (env.unicast)() {
                        if extra == MAX_UNICAST {
                            break;
                        }
                        if !sent.contains(&to) {
                            sent.push(to);
                            extra += 1;
                        }
                    }
                }
                for to in sent {
                    match transport.send_to(&bytes, to).await {
                        Ok(_) => env.counters.datagram_out(),
                        Err(e) => tracing::debug!(%to, error = %e, "announcement not sent"),
                    }
                }
            }
        }
        let deadline = Instant::from_std(state.next_deadline());
        let mut failed = false;
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = reannounce.notified() => {
                state.set_local_ips((env.local_ips)());
                state.network_changed(Instant::now().into_std());
            }
            _ = tokio::time::sleep_until(deadline) => {}
            r = transport.recv_from(&mut buf) => match r {
                Ok((n, src)) => match state.on_datagram(src, &buf[..n], env.received()) {
                    Incoming::Event(ev) => (env.sink)(ev),
                    Incoming::OwnKeyElsewhere(addr) => tracing::warn!(
                        %addr,
                        "another address announces this node's own key (a copied identity, or replayed announcements)"
                    ),
                    Incoming::Dropped(why) => env.counters.datagram_dropped(why),
                    Incoming::Nothing => {}
                },
                Err(e) => {
                    tracing::debug!(error = %e, "discovery receive failed");
                    failed = true;
                }
            },
        }
        if failed {
            // ICMP errors and the like; never spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
