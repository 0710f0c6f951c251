//! Interface choice: which of the host's interfaces announcements go out on.
//!
//! Real hosts carry interfaces whose addresses must not be announced: docker and other
//! container bridges (`docker0`, `br-1a2b…`, their `veth…` ends), VPN tunnels, loopback.
//! A peer that hears us over such an interface learns an address it cannot reach us at
//! (zyre#434, iroh#3084, localsend#1840). The rules, applied to every IPv4 address of
//! every interface, re-read at every announcement (so after every network change):
//!
//! 1. The interface is up and has a directed broadcast address (so loopback and
//!    point-to-point tunnels without broadcast are never used).
//! 2. It matches no `deny` pattern (deny wins over everything).
//! 3. If `allow` is not empty, it matches an `allow` pattern.
//! 4. A point-to-point, loopback or container-bridge interface ([`DEFAULT_SKIPPED`]) is
//!    used only when an `allow` pattern names it.
//!
//! IPv6 announcements go to our multicast group [`IPV6_GROUP`] on every interface that
//! passes rules 2-4, is up, supports multicast and has an IPv6 address.
//!
//! A pattern is an interface name (`eth0`) or a prefix ending in `*` (`wg*`). Explicit
//! broadcast targets (`UdpDiscoveryConfig::broadcast`) bypass these rules: they are
//! used as given (tests use `127.255.255.255`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::error::{Error, Result};
use crate::sys::IfAddr;

/// Interfaces skipped unless an allow pattern names them: container bridges and their
/// virtual ends (docker, podman/libvirt bridges, veth pairs).
pub(crate) const DEFAULT_SKIPPED: [&str; 3] = ["docker*", "veth*", "br-*"];

/// The IPv6 multicast group of PeerNet discovery: link-local scope (`ff02::/16`, never
/// routed), group id `0x504e4554` ("PNET"), outside the ranges IANA assigned in
/// `ff02::` (all-nodes `::1`, routers `::2`, mDNS `::fb`, solicited-node `::1:ff00:0/104`).
pub const IPV6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0x504e, 0x4554);

/// Most patterns in one list.
pub(crate) const MAX_PATTERNS: usize = 32;
/// Longest pattern (an interface name is at most 15 bytes on Linux, plus the `*`).
pub(crate) const MAX_PATTERN_LEN: usize = 16;

/// Whether `pattern` (a name, or a prefix ending in `*`) matches interface `name`.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// Checks an allow or deny list (`what` names it in the error).
pub(crate) fn validate(what: &str, list: &[String]) -> Result<()> {
    if list.len() > MAX_PATTERNS {
        return Err(Error::invalid(format!(
            "{what}: at most {MAX_PATTERNS} patterns ({} given)",
            list.len()
        )));
    }
    for p in list {
        let body = p.strip_suffix('*').unwrap_or(p);
        let ok = !p.is_empty()
            && p.len() <= MAX_PATTERN_LEN
            && !body.contains('*')
            && p.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
        if !ok {
            return Err(Error::invalid(format!(
                "{what}: {p:?} is not an interface name or a prefix ending in '*' \
                 (1-{MAX_PATTERN_LEN} printable bytes, e.g. \"eth0\" or \"wg*\")"
            )));
        }
    }
    Ok(())
}

/// The allow and deny lists of `UdpDiscoveryConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InterfaceFilter {
    /// Patterns an interface must match (empty: any).
    pub allow: Vec<String>,
    /// Patterns an interface must not match.
    pub deny: Vec<String>,
}

impl InterfaceFilter {
    fn allowed_by_name(&self, name: &str) -> bool {
        self.allow.iter().any(|p| matches(p, name))
    }

    /// Whether announcements may leave through `i` (see the module docs).
    pub(crate) fn admits(&self, i: &IfAddr) -> bool {
        if !i.up || self.deny.iter().any(|p| matches(p, &i.name)) {
            return false;
        }
        if !self.allow.is_empty() && !self.allowed_by_name(&i.name) {
            return false;
        }
        let special =
            i.loopback || i.point_to_point || DEFAULT_SKIPPED.iter().any(|p| matches(p, &i.name));
        !special || self.allowed_by_name(&i.name)
    }

    /// The directed broadcast addresses announcements go to, sorted, without
    /// duplicates.
    pub(crate) fn broadcast_addrs(&self, ifaces: &[IfAddr]) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = ifaces
            .iter()
            .filter(|i| matches!(i.addr, IpAddr::V4(_)) && self.admits(i))
            .filter_map(|i| i.broadcast)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Indexes of the interfaces IPv6 announcements go out on (see the module docs),
    /// sorted, without duplicates.
    pub(crate) fn multicast_indexes(&self, ifaces: &[IfAddr]) -> Vec<u32> {
        let mut v: Vec<u32> = ifaces
            .iter()
            .filter(|i| matches!(i.addr, IpAddr::V6(_)) && i.multicast && i.index != 0)
            .filter(|i| self.admits(i))
            .map(|i| i.index)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The IPv6 targets now: [`IPV6_GROUP`] on `port`, scoped to each chosen
    /// interface (an empty list when the interfaces cannot be read: logged).
    pub(crate) fn multicast_targets(&self, port: u16) -> Vec<SocketAddr> {
        match crate::sys::interfaces() {
            Ok(ifaces) => self
                .multicast_indexes(&ifaces)
                .into_iter()
                .map(|idx| SocketAddr::V6(SocketAddrV6::new(IPV6_GROUP, port, 0, idx)))
                .collect(),
            Err(e) => {
                tracing::debug!(error = %e, "interfaces not readable; no multicast this round");
                Vec::new()
            }
        }
    }

    /// [`InterfaceFilter::broadcast_addrs`] of the host's interfaces now, as targets on
    /// `port` (none when the interfaces cannot be read: logged).
    pub(crate) fn targets(&self, port: u16) -> Vec<SocketAddr> {
        match crate::sys::interfaces() {
            Ok(ifaces) => self
                .broadcast_addrs(&ifaces)
                .into_iter()
                .map(|ip| SocketAddr::from((ip, port)))
                .collect(),
            Err(e) => {
                tracing::debug!(error = %e, "interfaces not readable; no broadcast this round");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, addr: &str, brd: Option<&str>) -> IfAddr {
        IfAddr {
            name: name.into(),
            addr: addr.parse().unwrap(),
            broadcast: brd.map(|b| b.parse().unwrap()),
            up: true,
            loopback: name == "lo",
            point_to_point: name.starts_with("tun"),
            multicast: name != "lo",
            index: name.len() as u32,
        }
    }

    fn host() -> Vec<IfAddr> {
        vec![
            iface("lo", "127.0.0.1", None),
            iface("eth0", "192.168.1.20", Some("192.168.1.255")),
            iface("eth0", "fe80::1", None),
            iface("wlan0", "10.0.0.7", Some("10.0.0.255")),
            iface("docker0", "172.17.0.1", Some("172.17.255.255")),
            iface("br-1a2b3c", "172.18.0.1", Some("172.18.255.255")),
            iface("veth12ab", "169.254.3.3", Some("169.254.255.255")),
            iface("tun0", "10.8.0.2", None),
            iface("tunb", "10.9.0.2", Some("10.9.0.255")),
            iface("wg0", "10.66.0.2", Some("10.66.0.255")),
        ]
    }

    fn ips(v: &[&str]) -> Vec<Ipv4Addr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn patterns_match_names_and_prefixes() {
        assert!(matches("eth0", "eth0"));
        assert!(!matches("eth0", "eth01"));
        assert!(matches("eth*", "eth01"));
        assert!(matches("*", "anything"));
        assert!(!matches("wg*", "eth0"));
    }

    #[test]
    fn default_skips_loopback_tunnels_and_container_bridges() {
        let f = InterfaceFilter::default();
        assert_eq!(
            f.broadcast_addrs(&host()),
            ips(&["10.0.0.255", "10.66.0.255", "192.168.1.255"])
        );
    }

    #[test]
    fn deny_keeps_a_vpn_out_and_wins_over_allow() {
        let f = InterfaceFilter {
            allow: vec![],
            deny: vec!["wg*".into(), "wlan0".into()],
        };
        assert_eq!(f.broadcast_addrs(&host()), ips(&["192.168.1.255"]));
        let f = InterfaceFilter {
            allow: vec!["eth*".into(), "wg0".into()],
            deny: vec!["wg0".into()],
        };
        assert_eq!(f.broadcast_addrs(&host()), ips(&["192.168.1.255"]));
    }

    #[test]
    fn allow_limits_and_asks_for_skipped_ones() {
        let f = InterfaceFilter {
            allow: vec!["docker0".into(), "tunb".into()],
            deny: vec![],
        };
        assert_eq!(
            f.broadcast_addrs(&host()),
            ips(&["10.9.0.255", "172.17.255.255"])
        );
        // A down interface is never used.
        let mut h = host();
        for i in &mut h {
            i.up = false;
        }
        assert!(InterfaceFilter::default().broadcast_addrs(&h).is_empty());
    }

    #[test]
    fn ipv6_multicast_goes_to_chosen_multicast_interfaces() {
        let f = InterfaceFilter::default();
        // eth0 has an IPv6 address (index 4 in the fake); lo has no multicast, docker0
        // and the others have no IPv6 address.
        assert_eq!(f.multicast_indexes(&host()), vec![4]);
        let deny = InterfaceFilter {
            allow: vec![],
            deny: vec!["eth*".into()],
        };
        assert!(deny.multicast_indexes(&host()).is_empty());
        assert!(IPV6_GROUP.is_multicast());
        assert_eq!(IPV6_GROUP.segments()[0], 0xff02, "link-local scope");
    }

    #[test]
    fn bad_patterns_are_refused_with_the_rule() {
        assert!(validate("deny_interfaces", &["eth0".into(), "wg*".into()]).is_ok());
        for bad in ["", "e*th", "a b", "x/y", "seventeen-bytes-x"] {
            let e = validate("deny_interfaces", &[bad.to_string()]).unwrap_err();
            assert!(e.to_string().contains("deny_interfaces"), "{e}");
        }
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("e{i}")).collect();
        assert!(validate("allow_interfaces", &many).is_err());
    }
}
