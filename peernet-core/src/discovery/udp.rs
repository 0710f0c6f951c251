//! UDP LAN discovery (spec 8), sans-IO: the state machine that decides when to
//! announce, what a datagram means and when a peer is lost. Time comes in as arguments;
//! `service.rs` drives it over a `UdpTransport`.
//!
//! - Announce at start, every interval, and after a network change. The announcement
//!   also goes by unicast to the remembered and manual addresses of trusted peers we
//!   are not connected to (`Due::unicast`), at most once per interval: that reaches
//!   peers across routers and VPNs, where no broadcast travels. Nothing is ever sent
//!   in answer to a datagram, so no source, spoofed or not, can make us send to it
//!   (no amplification: every destination comes from the config, the interfaces or
//!   the trust store).
//! - Incoming datagrams are rate-limited per source IP first (a small bounded table of
//!   token buckets, least recently heard source evicted), then checked cheaply (wrong
//!   length, magic or version are dropped, `Announcement::decode`), and only a
//!   well-formed announcement spends the shared budget (a global token bucket): one
//!   source's junk, however fast, cannot crowd out another source's announcements.
//! - Our own key from one of our own addresses with our port is our echo: dropped. Our
//!   own key from anywhere else is reported (rate-limited) as a warning: another node
//!   uses our identity, or someone replays our announcements.
//! - A peer is reported (`Discovered`) once when first heard and again only when its
//!   address changes; the same address again is only `Alive` (no event; it can hurry
//!   the redial of a trusted peer we are not connected to); a peer not heard from for
//!   3 intervals is lost (and forgotten).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use peernet_proto::announce::{Announcement, ANNOUNCE_LEN};
use peernet_proto::Key;

use super::DiscoveryEvent;
use crate::metrics::DiscoveryDrop;

/// Datagrams processed per second, sustained (a 5 s interval serves ~1000 peers).
pub(crate) const RATE_PER_SEC: u32 = 200;
/// Datagrams processed in a burst.
pub(crate) const BURST: u32 = 400;
/// Datagrams processed per second from one source IP, sustained (each node on a host
/// announces once per interval; this leaves room for dozens of nodes per host).
pub(crate) const SOURCE_RATE_PER_SEC: u32 = 50;
/// Datagrams processed in a burst from one source IP.
pub(crate) const SOURCE_BURST: u32 = 100;
/// Source IPs with a bucket of their own at once (the least recently heard is evicted;
/// about 40 bytes each).
pub(crate) const MAX_SOURCES: usize = 256;
/// Peers remembered at once; announcements of further new keys are dropped until some
/// are lost.
pub(crate) const MAX_PEERS: usize = 1024;
/// Intervals of silence after which a peer is lost.
pub(crate) const LOST_AFTER: u32 = 3;
/// One warning per foreign address announcing our key per this period.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Shortest time between two announcements triggered by network changes.
const MIN_ANNOUNCE_GAP: Duration = Duration::from_millis(100);

/// What an incoming datagram meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A new peer or a new address of a known one (`Discovered`), or a known peer
    /// announcing the same address again (`Alive`).
    Event(DiscoveryEvent),
    /// Another address announces our own key (warn once per `WARN_EVERY`).
    OwnKeyElsewhere(SocketAddr),
    /// Dropped: malformed, rate-limited, table full (counted in the metrics).
    Dropped(DiscoveryDrop),
    /// Nothing to report (our echo, our key elsewhere already warned about).
    Nothing,
}

/// What is due after [`UdpState::poll`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Due {
    /// Send our announcement now.
    pub announce: bool,
    /// Send it to the unicast targets too (with `announce`; at most once per interval).
    pub unicast: bool,
    /// Peers lost now.
    pub lost: Vec<Key>,
}

/// A token bucket, in whole tokens with explicit time.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    rate: u32,
    burst: u32,
}

impl Bucket {
    fn full(rate: u32, burst: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(burst),
            last: now,
            rate,
            burst,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * f64::from(self.rate)).min(f64::from(self.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The discovery state of one node.
#[derive(Debug)]
pub(crate) struct UdpState {
    own: Key,
    announcement: Option<[u8; ANNOUNCE_LEN]>,
    own_port: u16,
    interval: Duration,
    local_ips: HashSet<IpAddr>,
    heard: HashMap<Key, (SocketAddr, Instant)>,
    next_announce: Instant,
    last_announce: Option<Instant>,
    last_unicast: Option<Instant>,
    bucket: Bucket,
    sources: HashMap<IpAddr, Bucket>,
    warned: HashMap<SocketAddr, Instant>,
}

impl UdpState {
    /// A node with key `own` listening on TCP `port` (0: it does not announce).
    pub(crate) fn new(own: Key, port: u16, interval: Duration, now: Instant) -> UdpState {
        UdpState {
            own,
            announcement: (port != 0).then(|| {
                Announcement {
                    tcp_port: port,
                    key: own,
                }
                .encode()
            }),
            own_port: port,
            interval,
            local_ips: HashSet::new(),
            heard: HashMap::new(),
            next_announce: now,
            last_announce: None,
            last_unicast: None,
            bucket: Bucket::full(RATE_PER_SEC, BURST, now),
            sources: HashMap::new(),
            warned: HashMap::new(),
        }
    }

    /// The 39 bytes we announce (`None` without a listener).
    pub(crate) fn announcement(&self) -> Option<&[u8; ANNOUNCE_LEN]> {
        self.announcement.as_ref()
    }

    /// Our own addresses (loopback counts as ours anyway).
    pub(crate) fn set_local_ips(&mut self, ips: HashSet<IpAddr>) {
        self.local_ips = ips;
    }

    /// The network changed: announce again now (at most every `MIN_ANNOUNCE_GAP`).
    pub(crate) fn network_changed(&mut self, now: Instant) {
        let soonest = self.last_announce.map_or(now, |t| t + MIN_ANNOUNCE_GAP);
        self.next_announce = self.next_announce.min(soonest.max(now));
    }

    /// Spends a token of `ip`'s own bucket (a new source evicts the least recently
    /// heard one when the table is full; it starts with a full bucket).
    fn source_allows(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_SOURCES {
            if let Some(oldest) = self
                .sources
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| *k)
            {
                self.sources.remove(&oldest);
            }
        }
        self.sources
            .entry(ip)
            .or_insert_with(|| Bucket::full(SOURCE_RATE_PER_SEC, SOURCE_BURST, now))
            .take(now)
    }

    /// Handles one datagram from `src`.
    pub(crate) fn on_datagram(&mut self, src: SocketAddr, data: &[u8], now: Instant) -> Incoming {
        if !self.source_allows(src.ip(), now) {
            return Incoming::Dropped(DiscoveryDrop::RateLimited);
        }
        let Ok(a) = Announcement::decode(data) else {
            return Incoming::Dropped(DiscoveryDrop::Malformed);
        };
        if !self.bucket.take(now) {
            return Incoming::Dropped(DiscoveryDrop::RateLimited);
        }
        // An IPv6 link-local source keeps its scope id (the interface it came in on):
        // without it the address cannot be dialed.
        let addr = match src {
            SocketAddr::V6(s) => SocketAddr::V6(std::net::SocketAddrV6::new(
                *s.ip(),
                a.tcp_port,
                0,
                s.scope_id(),
            )),
            SocketAddr::V4(_) => SocketAddr::new(src.ip(), a.tcp_port),
        };
        if a.key == self.own {
            let ours = src.ip().is_loopback() || self.local_ips.contains(&src.ip());
            if ours && a.tcp_port == self.own_port {
                return Incoming::Nothing;
            }
            self.warned
                .retain(|_, t| now.saturating_duration_since(*t) < WARN_EVERY);
            if self.warned.contains_key(&addr) || self.warned.len() >= 64 {
                return Incoming::Nothing;
            }
            self.warned.insert(addr, now);
            return Incoming::OwnKeyElsewhere(addr);
        }
        if a.tcp_port == 0 {
            return Incoming::Dropped(DiscoveryDrop::Malformed);
        }
        match self.heard.get_mut(&a.key) {
            Some((old, last)) => {
                *last = now;
                if *old == addr {
                    return Incoming::Event(DiscoveryEvent::Alive { key: a.key });
                }
                *old = addr;
            }
            None => {
                if self.heard.len() >= MAX_PEERS {
                    return Incoming::Dropped(DiscoveryDrop::TableFull);
                }
                self.heard.insert(a.key, (addr, now));
            }
        }
        Incoming::Event(DiscoveryEvent::Discovered { key: a.key, addr })
    }

    fn lost_after(&self) -> Duration {
        self.interval.saturating_mul(LOST_AFTER)
    }

    /// What is due at `now`: an announcement, lost peers.
    pub(crate) fn poll(&mut self, now: Instant) -> Due {
        let mut due = Due::default();
        if now >= self.next_announce {
            due.announce = self.announcement.is_some();
            due.unicast = due.announce
                && match self.last_unicast {
                    None => true,
                    Some(t) => now.saturating_duration_since(t) >= self.interval,
                };
            if due.unicast {
                self.last_unicast = Some(now);
            }
            self.last_announce = Some(now);
            self.next_announce = now + self.interval;
        }
        let limit = self.lost_after();
        self.heard.retain(|k, (_, last)| {
            let alive = now.saturating_duration_since(*last) < limit;
            if !alive {
                due.lost.push(*k);
            }
            alive
        });
        due.lost.sort();
        due
    }

    /// When [`UdpState::poll`] next has something to do.
    pub(crate) fn next_deadline(&self) -> Instant {
        let limit = self.lost_after();
        self.heard
            .values()
            .map(|(_, last)| *last + limit)
            .fold(self.next_announce, Instant::min)
    }

    /// Source IPs with a bucket.
    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.sources.len()
    }

    /// Peers currently heard of.
    #[cfg(test)]
    pub(crate) fn heard(&self) -> usize {
        self.heard.len()
    }
}
