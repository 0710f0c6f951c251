//! mDNS / DNS-SD discovery (issue 18) over the `mdns-sd` crate: the node advertises
//! `_peernet._tcp.local.` with its key in the TXT record `key=<64 hex digits>` and
//! browses for the others. Interoperable with Avahi and Bonjour (`avahi-browse
//! _peernet._tcp`, Python `zeroconf`). Reaches peers where our broadcasts do not: Wi-Fi
//! access points that drop broadcast but pass multicast, bridges that filter it.
//!
//! A resolved record is only a hint, exactly like an announcement: it becomes a
//! `DiscoveryEvent` folded into the peer table unconfirmed, so a forged record
//! displaces nothing (only a handshake with the key confirms an address). Bounded on
//! our side: resolved records handled at most `RATE_PER_SEC` per second (burst
//! `BURST`), one address per record, at most `MAX_NAMES` instance names remembered
//! (for their removal). `mdns-sd` runs its own thread and keeps its own cache.
//!
//! Interfaces: the same allow/deny rules as UDP discovery (`ifaces`), applied by the
//! daemon's interface predicate (it re-reads interfaces itself every few seconds).
//! Off by default in `NodeConfig` (`mdns: None`); the CLI turns it on.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

use mdns_sd::{
    IfKind, IfPredicate, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo,
};
use peernet_proto::Key;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::ifaces::InterfaceFilter;
use super::{Discovery, DiscoveryEvent};
use crate::error::{Error, Result};

/// The DNS-SD service type.
pub const SERVICE_TYPE: &str = "_peernet._tcp.local.";
/// Resolved records handled per second, sustained.
const RATE_PER_SEC: f64 = 50.0;
/// Resolved records handled in a burst.
const BURST: f64 = 200.0;
/// Instance names remembered (to report a removal as `Lost`).
const MAX_NAMES: usize = 1024;

/// Shortest time between two browses we start (at start, and when a newly trusted
/// peer has no address): RFC 6762 §5.2 spaces the first two queries of a question at
/// least a second apart. Wishes in between are coalesced into one browse.
const REQUERY_GAP: Duration = Duration::from_secs(1);

/// The node's handle on the running mDNS service.
pub(crate) struct MdnsDiscovery {
    wanted: Arc<Notify>,
}

impl Discovery for MdnsDiscovery {
    // mdns-sd watches the host's addresses itself (and re-announces on a change).
    fn network_changed(&self) {}

    /// Browses again (at most once per `REQUERY_GAP`): `mdns-sd` sends a query 10–50 ms
    /// later and restarts its 1, 2, 4 … s schedule, which after an hour up is an hour
    /// between queries; a peer whose announcement was lost is found now, not then.
    fn peer_wanted(&self) {
        self.wanted.notify_one();
    }
}

/// When the browse a wish asks for may start: at once, or `REQUERY_GAP` after the
/// last one.
fn requery_at(last_browse: Instant, now: Instant) -> Instant {
    now.max(last_browse + REQUERY_GAP)
}

fn mdns_err(what: &str, e: mdns_sd::Error) -> Error {
    Error::io(
        format!("mDNS: {what}"),
        std::io::Error::other(e.to_string()),
    )
}

/// What a resolved record means: `(key, address)`, or `None` (not ours, malformed,
/// our own). One address: a routable IPv4 one first, then IPv6 (link-local with its
/// scope id), so a record cannot feed many hints.
pub(crate) fn hint_of(r: &ResolvedService, own: &Key) -> Option<(Key, SocketAddr)> {
    let key = Key::from_hex(r.txt_properties.get_property_val_str("key")?).ok()?;
    if key == *own || key.is_low_order() || r.port == 0 {
        return None;
    }
    let mut best: Option<(u8, SocketAddr)> = None;
    for a in r.addresses.iter().take(16) {
        let (rank, addr) = match a {
            ScopedIp::V4(v4) => (0, SocketAddr::from((*v4.addr(), r.port))),
            ScopedIp::V6(v6) => {
                let scope = v6.scope_id().index;
                (
                    1,
                    SocketAddr::V6(SocketAddrV6::new(*v6.addr(), r.port, 0, scope)),
                )
            }
            _ => continue,
        };
        let ip: IpAddr = addr.ip();
        if ip.is_unspecified() || ip.is_multicast() {
            continue;
        }
        let better = match &best {
            None => true,
            Some((r, _)) => rank < *r,
        };
        if better {
            best = Some((rank, addr));
        }
    }
    best.map(|(_, a)| (key, a))
}

/// Our record: instance `peernet-<first 16 hex digits of the key>`, host
/// `peernet-<same>.local.`, the listening `port`, TXT `key=<64 hex digits>`, the
/// addresses of the chosen interfaces (filled in by the daemon).
///
/// Announced at once, without RFC 6762 §8.1 probing. Probing (three queries 250 ms
/// apart after a random 0–250 ms wait) exists to find a name another host already
/// holds; ours carry 64 bits of our key, so a collision is a forgery, which probing
/// does not stop (the forger answers after it as well) and which costs nothing here
/// (a record is a hint; only the handshake with the key confirms an address). It was
/// 0.75–1 s of every start before a peer could hear of us: the whole of the 863 ms
/// "trust to first call" measured in `tests/netns_mdns.rs`.
pub(crate) fn service_info(own: &Key, port: u16) -> Result<ServiceInfo> {
    let hex = own.to_hex();
    let short = &hex[..16];
    let mut info = ServiceInfo::new(
        SERVICE_TYPE,
        &format!("peernet-{short}"),
        &format!("peernet-{short}.local."),
        (),
        port,
        [("key", hex.as_str())].as_slice(),
    )
    .map_err(|e| mdns_err("building the service record", e))?
    .enable_addr_auto();
    info.set_requires_probe(false);
    Ok(info)
}

/// Where mDNS hints go, and what stops the browser.
pub(crate) struct MdnsEnv {
    /// This node's key (its own record is not a hint).
    pub own: Key,
    /// Receives every hint (the node folds it into its peer table).
    pub sink: Box<dyn Fn(DiscoveryEvent) + Send + Sync>,
    /// Becomes true when the node stops.
    pub stop: watch::Receiver<bool>,
}

/// Starts mDNS: advertises this node (when it listens on `port`) and browses.
/// `filter` chooses the interfaces it runs on.
pub(crate) fn start(env: MdnsEnv, filter: InterfaceFilter, port: u16) -> Result<MdnsDiscovery> {
    let MdnsEnv {
        own,
        sink,
        mut stop,
    } = env;
    let daemon = ServiceDaemon::new().map_err(|e| mdns_err("starting the daemon", e))?;
    let chosen = IfPredicate::new(move |i| {
        filter.admits(&crate::sys::IfAddr {
            name: i.name.clone(),
            addr: i.ip(),
            broadcast: None,
            up: true,
            loopback: i.is_loopback(),
            point_to_point: false,
            multicast: true,
            index: i.index.unwrap_or(0),
        })
    });
    daemon
        .disable_interface(IfKind::All)
        .and_then(|()| daemon.enable_interface(IfKind::Predicate(chosen)))
        .map_err(|e| mdns_err("choosing interfaces", e))?;
    if port != 0 {
        daemon
            .register(service_info(&own, port)?)
            .map_err(|e| mdns_err("registering _peernet._tcp", e))?;
    }
    let mut events = daemon
        .browse(SERVICE_TYPE)
        .map_err(|e| mdns_err("browsing _peernet._tcp", e))?;
    let wanted = Arc::new(Notify::new());
    let handle = MdnsDiscovery {
        wanted: Arc::clone(&wanted),
    };
    tokio::spawn(async move {
        let mut names: HashMap<String, Key> = HashMap::new();
        let (mut tokens, mut last) = (BURST, Instant::now());
        let mut last_browse = Instant::now();
        let mut requery: Option<Instant> = None;
        loop {
            let ev = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                () = wanted.notified(), if requery.is_none() => {
                    requery = Some(requery_at(last_browse, Instant::now()));
                    continue;
                }
                () = tokio::time::sleep_until(requery.unwrap_or(last_browse)), if requery.is_some() => {
                    requery = None;
                    last_browse = Instant::now();
                    // A new listener replaces the old one (its channel closes): the
                    // daemon sends it what its cache holds, then the query's answers.
                    match daemon.browse(SERVICE_TYPE) {
                        Ok(rx) => events = rx,
                        Err(e) => tracing::debug!(error = %e, "mDNS: browsing again failed"),
                    }
                    continue;
                }
                ev = events.recv_async() => ev,
            };
            let Ok(ev) = ev else {
                break;
            };
            match ev {
                ServiceEvent::ServiceResolved(r) => {
                    let now = Instant::now();
                    tokens =
                        (tokens + now.duration_since(last).as_secs_f64() * RATE_PER_SEC).min(BURST);
                    last = now;
                    if tokens < 1.0 {
                        continue;
                    }
                    tokens -= 1.0;
                    if let Some((key, addr)) = hint_of(&r, &own) {
                        if names.len() < MAX_NAMES || names.contains_key(&r.fullname) {
                            names.insert(r.fullname.clone(), key);
                        }
                        sink(DiscoveryEvent::Discovered { key, addr });
                    }
                }
                ServiceEvent::ServiceRemoved(_, name) => {
                    if let Some(key) = names.remove(&name) {
                        sink(DiscoveryEvent::Lost { key });
                    }
                }
                _ => {}
            }
        }
        // Sends goodbyes (TTL 0) for our record and stops the daemon thread.
        if let Ok(done) = daemon.shutdown() {
            let _ = tokio::time::timeout(Duration::from_secs(1), done.recv_async()).await;
        }
    });
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, ips: &str, port: u16) -> ResolvedService {
        ServiceInfo::new(
            SERVICE_TYPE,
            "x",
            "x.local.",
            ips,
            port,
            [("key", key)].as_slice(),
        )
        .unwrap()
        .as_resolved_service()
    }

    /// Wishes for a browse are paced: one at once after a quiet second, else one
    /// `REQUERY_GAP` after the last browse.
    #[test]
    fn browses_asked_for_are_at_least_a_second_apart() {
        let t0 = Instant::now();
        assert_eq!(requery_at(t0, t0), t0 + REQUERY_GAP);
        let later = t0 + Duration::from_millis(300);
        assert_eq!(requery_at(t0, later), t0 + REQUERY_GAP);
        let quiet = t0 + Duration::from_secs(5);
        assert_eq!(requery_at(t0, quiet), quiet);
    }

    /// Our record is announced at once (no probing: see `service_info`) and carries
    /// the whole key (what `hint_of` reads back).
    #[test]
    fn our_record_is_announced_without_probing_and_names_the_key() {
        let own = Key([7; 32]);
        let info = service_info(&own, 7100).unwrap();
        assert!(!info.requires_probe());
        assert_eq!(info.get_port(), 7100);
        assert_eq!(
            info.get_property_val_str("key"),
            Some(own.to_hex().as_str())
        );
    }

    /// A record is a hint of one address, or nothing: malformed, foreign or our own
    /// records give none (and a hint never displaces a confirmed address: that is
    /// `apply_discovery`'s rule for every source).
    #[test]
    fn a_record_gives_at_most_one_hint_and_junk_gives_none() {
        let own = Key([1; 32]);
        let peer = Key([2; 32]);
        let r = record(&peer.to_hex(), "fe80::1,10.0.0.2", 7100);
        assert_eq!(
            hint_of(&r, &own),
            Some((peer, "10.0.0.2:7100".parse().unwrap()))
        );
        let r = record(&peer.to_hex(), "2001:db8::2", 7100);
        assert_eq!(
            hint_of(&r, &own),
            Some((peer, "[2001:db8::2]:7100".parse().unwrap()))
        );
        for bad in [
            record(&own.to_hex(), "10.0.0.2", 7100),
            record("not-a-key", "10.0.0.2", 7100),
            record(&peer.to_hex()[..63], "10.0.0.2", 7100),
            record(&Key([0; 32]).to_hex(), "10.0.0.2", 7100),
            record(&peer.to_hex(), "10.0.0.2", 0),
            record(&peer.to_hex(), "", 7100),
            record(&peer.to_hex(), "224.0.0.251", 7100),
        ] {
            assert_eq!(hint_of(&bad, &own), None, "{bad:?}");
        }
    }
}
