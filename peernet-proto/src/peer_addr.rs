//! Manual peer addresses: `host:port` strings a user attaches to a trust entry
//! (`peernet trust add KEY --addr host:port`), kept in the trust file and resolved at
//! dial time (so a host name follows its DNS record or `/etc/hosts`).
//!
//! Accepted: `1.2.3.4:7100`, `[2001:db8::1]:7100`, `peer.example.net:7100` (a DNS name:
//! labels of 1-63 letters, digits or `-`, not starting or ending with `-`, at most 253
//! bytes in all), and an IPv6 link-local literal with its interface:
//! `[fe80::1%eth0]:7100` (an interface name, looked up at dial time, or an index:
//! `%2`). IP literals are written back in canonical form, names in lower case; port 0,
//! unspecified and multicast addresses are refused, and so is a scope on an address
//! that is not link-local.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::ProtoError;

/// Longest DNS name accepted.
pub const MAX_HOST_LEN: usize = 253;
/// Manual addresses kept per trusted peer.
pub const MAX_MANUAL_ADDRESSES: usize = 4;

fn bad(s: &str, why: &str) -> ProtoError {
    // The input is cut so a huge argument does not become a huge message.
    let shown: String = s.chars().take(80).collect();
    ProtoError::BadAddress(format!(
        "{shown:?} {why} (expected host:port, e.g. \"192.168.1.20:7100\", \
         \"[2001:db8::1]:7100\" or \"laptop.local:7100\")"
    ))
}

fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_HOST_LEN
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A manual address, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualAddress {
    /// An IP literal: dialed as is.
    Ip(SocketAddr),
    /// An IPv6 link-local literal on an interface named `scope` (or numbered: all
    /// digits), looked up at dial time.
    LinkLocal {
        /// The address (in `fe80::/10`).
        ip: Ipv6Addr,
        /// The interface: a name (`eth0`) or an index (`2`).
        scope: String,
        /// The TCP port.
        port: u16,
    },
    /// A DNS name: resolved at dial time.
    Name {
        /// The host name (lower case).
        host: String,
        /// The TCP port.
        port: u16,
    },
}

impl ManualAddress {
    /// Parses and checks `s` (see the module docs).
    pub fn parse(s: &str) -> Result<ManualAddress, ProtoError> {
        if s.len() > MAX_HOST_LEN + 8 {
            return Err(bad(s, "is too long"));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad(s, "has no port"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(s, "has no valid port (1-65535)"))?;
        let ip = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            if let Some((addr, scope)) = v6.split_once('%') {
                let ip: Ipv6Addr = addr
                    .parse()
                    .map_err(|_| bad(s, "is not an IPv6 address in brackets"))?;
                if (ip.segments()[0] & 0xffc0) != 0xfe80 {
                    return Err(bad(s, "has a %scope but is not link-local (fe80::/10)"));
                }
                let ok = !scope.is_empty()
                    && scope.len() <= 15
                    && scope
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"%[]/,".contains(&b));
                if !ok {
                    return Err(bad(s, "has no valid interface after % (e.g. %eth0 or %2)"));
                }
                return Ok(ManualAddress::LinkLocal {
                    ip,
                    scope: scope.to_owned(),
                    port,
                });
            }
            Some(IpAddr::V6(
                v6.parse::<Ipv6Addr>()
                    .map_err(|_| bad(s, "is not an IPv6 address in brackets"))?,
            ))
        } else {
            host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        };
        if let Some(ip) = ip {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(bad(s, "is not a peer's unicast address"));
            }
            return Ok(ManualAddress::Ip(SocketAddr::new(ip, port)));
        }
        if !is_dns_name(host) {
            return Err(bad(s, "is not an IP address or a host name"));
        }
        Ok(ManualAddress::Name {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl std::fmt::Display for ManualAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManualAddress::Ip(a) => write!(f, "{a}"),
            ManualAddress::LinkLocal { ip, scope, port } => write!(f, "[{ip}%{scope}]:{port}"),
            ManualAddress::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// `s` in canonical form (see [`ManualAddress`]), or why it is refused.
pub fn normalize(s: &str) -> Result<String, ProtoError> {
    ManualAddress::parse(s).map(|a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ips_and_names_in_canonical_form() {
        assert_eq!(normalize("192.168.1.20:7100").unwrap(), "192.168.1.20:7100");
        assert_eq!(
            normalize("[2001:DB8:0::1]:7100").unwrap(),
            "[2001:db8::1]:7100"
        );
        assert_eq!(normalize("Laptop.Local:80").unwrap(), "laptop.local:80");
        assert_eq!(normalize("localhost:1").unwrap(), "localhost:1");
        assert_eq!(
            normalize("[FE80::0:1%eth0]:7100").unwrap(),
            "[fe80::1%eth0]:7100"
        );
        assert_eq!(
            ManualAddress::parse("[fe80::1%2]:9").unwrap(),
            ManualAddress::LinkLocal {
                ip: "fe80::1".parse().unwrap(),
                scope: "2".into(),
                port: 9
            }
        );
        assert_eq!(
            ManualAddress::parse("a-b.c:9").unwrap(),
            ManualAddress::Name {
                host: "a-b.c".into(),
                port: 9
            }
        );
    }

    #[test]
    fn refuses_what_cannot_be_dialed_saying_the_form() {
        for bad in [
            "",
            "host",
            "host:0",
            "host:70000",
            ":7100",
            "0.0.0.0:7100",
            "224.0.0.1:7100",
            "[::]:7100",
            "[2001:db8::1%eth0]:7100",
            "[fe80::1%]:7100",
            "[fe80::1%a,b]:7100",
            "[fe80::1%sixteen-bytes-xx]:7100",
            "2001:db8::1:7100",
            "-bad.example:1",
            "bad-.example:1",
            "a..b:1",
            "a b:1",
            "under_score:1",
            "ex\u{e4}mple.com:1",
        ] {
            let e = normalize(bad).unwrap_err().to_string();
            assert!(e.contains("host:port"), "{bad:?}: {e}");
        }
        let long = format!("{}.com:1", "a".repeat(300));
        assert!(normalize(&long).unwrap_err().to_string().len() < 400);
    }
}
