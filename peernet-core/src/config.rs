//! Node configuration with the defaults of the protocol spec.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use peernet_proto::frame::{DEFAULT_MAX_FRAME_LEN, MIN_MAX_FRAME_LEN};

use crate::error::{Error, Result};

/// UDP LAN discovery settings (spec section 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpDiscoveryConfig {
    /// UDP port announcements are sent to and heard on (default 4040).
    pub port: u16,
    /// Time between announcements (default 5 s); a peer silent for 3 intervals is lost.
    pub interval: Duration,
    /// Where announcements go. Empty = the directed broadcast address of every chosen
    /// IPv4 interface that is up (not 255.255.255.255: see docs/architecture.md) and
    /// the IPv6 link-local multicast group `ff02::504e:4554` on every chosen IPv6
    /// interface, re-read at every announcement. Explicit targets are used as given,
    /// each family over its own socket, and no multicast group is joined (tests use
    /// `127.255.255.255` or `[::1]:PORT`): the interface lists below apply to the
    /// default targets only.
    pub broadcast: Vec<SocketAddr>,
    /// Interfaces announcements may leave through, by name (`eth0`) or prefix ending in
    /// `*` (`wl*`); empty (default) = every eligible one. Naming a loopback,
    /// point-to-point or container-bridge interface (`docker*`, `veth*`, `br-*`, skipped
    /// by default) here turns it on. At most 32 patterns. Re-read at every announcement,
    /// so after every network change.
    pub allow_interfaces: Vec<String>,
    /// Interfaces announcements never leave through (same patterns; wins over
    /// `allow_interfaces`), e.g. `["wg*", "tun*"]` for VPNs whose addresses peers must
    /// not learn. Default empty.
    pub deny_interfaces: Vec<String>,
}

impl Default for UdpDiscoveryConfig {
    fn default() -> Self {
        UdpDiscoveryConfig {
            port: peernet_proto::announce::DEFAULT_DISCOVERY_PORT,
            interval: Duration::from_secs(5),
            broadcast: Vec::new(),
            allow_interfaces: Vec::new(),
            deny_interfaces: Vec::new(),
        }
    }
}

/// mDNS / DNS-SD discovery settings: advertise `_peernet._tcp` with the key in a TXT
/// record, browse for the others (see docs/networks.md). Records are hints only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MdnsConfig {
    /// Interfaces used, by name or prefix ending in `*` (as in
    /// [`UdpDiscoveryConfig::allow_interfaces`]); empty (default) = every eligible one.
    pub allow_interfaces: Vec<String>,
    /// Interfaces never used (wins over `allow_interfaces`). Default empty.
    pub deny_interfaces: Vec<String>,
}

/// Default of [`NodeConfig::max_connections_per_peer`]: the two of a duplicate (spec
/// 5.1), a redial while the old connection is not yet known dead, and one dial.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 4;

/// Everything a node needs to start. `NodeConfig::new(dir)` gives the spec defaults.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Directory holding `identity.key` and `trusted_peers` (created 0700 if absent).
    pub data_dir: PathBuf,
    /// TCP listen address; port 0 picks a free port. `None` = accept no connections.
    /// Default `[::]:0`: dual stack (IPv4 and IPv6 peers) where the OS has IPv6, else
    /// `0.0.0.0` on the same port (logged).
    pub listen: Option<SocketAddr>,
    /// Largest transport frame body accepted (default 1 MiB, at least 64 KiB).
    pub max_frame_len: u32,
    /// Deadline for a whole handshake (default 5 s).
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once; more are closed at once (default 64). One source
    /// IP address gets at most a quarter of them (at least one), so one host cannot hold
    /// every slot.
    pub max_handshakes: usize,
    /// Connections one peer key may hold at once, counting draining duplicates and this
    /// node's dials to it in progress (default 4, at least 2: spec 5.1 resolves a
    /// duplicate by keeping one of two). A connection beyond it is refused at
    /// registration.
    pub max_connections_per_peer: usize,
    /// Ping interval (default 15 s).
    pub heartbeat_interval: Duration,
    /// A ping unanswered this long marks the connection dead (default 45 s).
    pub heartbeat_timeout: Duration,
    /// Calls from one peer being handled at once; more are answered `Overloaded` (default 1024).
    pub max_concurrent_calls: usize,
    /// Bytes of request bodies from one peer held by handlers running or sends waiting
    /// for the send worker (default 16 MiB): a call beyond it is answered `Overloaded`,
    /// a send waits (the reader stops reading: backpressure).
    pub max_inbound_bytes: usize,
    /// Bytes queued for sending on one connection before `call`/`send` wait (default 8 MiB).
    pub send_queue_bytes: usize,
    /// How long `send` (and the enqueueing part of `call`) waits for queue space before
    /// failing with `Overloaded` (default 5 s).
    pub send_timeout: Duration,
    /// How long a losing duplicate connection may take to drain (default 30 s).
    pub drain_timeout: Duration,
    /// UDP discovery; `None` (default) = off.
    pub udp_discovery: Option<UdpDiscoveryConfig>,
    /// mDNS / DNS-SD discovery (`_peernet._tcp`, UDP 5353); `None` (default) = off.
    /// The `peernet` CLI turns it on.
    pub mdns: Option<MdnsConfig>,
    /// Poll interval of the network monitor; `None` (default) = off.
    pub network_monitor: Option<Duration>,
    /// Redial disconnected trusted peers with backoff (default true).
    pub auto_connect: bool,
    /// Keep the metrics counters (`Node::metrics`; default true). Off skips the
    /// counting on the hot path; only the per-peer traffic counters remain.
    /// `Node::set_metrics` changes it while the node runs.
    pub metrics: bool,
    /// Speak streams (`Node::open_stream`, `Node::expose_stream`; default true): the
    /// Hello announces them, and a connection uses them when the peer's does too.
    /// Per connection: 16 streams each way, a 256 KiB window per stream.
    pub streams: bool,
}

impl NodeConfig {
    /// Defaults of the spec, listening on `[::]:0` (dual stack; see `listen`).
    pub fn new(data_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            data_dir: data_dir.into(),
            listen: Some(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            handshake_timeout: Duration::from_secs(5),
            max_handshakes: 64,
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
            heartbeat_interval: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(45),
            max_concurrent_calls: 1024,
            max_inbound_bytes: 16 << 20,
            send_queue_bytes: 8 << 20,
            send_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            udp_discovery: None,
            mdns: None,
            network_monitor: None,
            auto_connect: true,
            metrics: true,
            streams: true,
        }
    }

    /// Checks every value; called by `Node::start`.
    pub fn validate(&self) -> Result<()> {
        if self.max_frame_len < MIN_MAX_FRAME_LEN {
            return Err(Error::invalid(format!(
                "max_frame_len {} is below the minimum {MIN_MAX_FRAME_LEN}",
                self.max_frame_len
            )));
        }
        let positive = [
            ("handshake_timeout", self.handshake_timeout),
            ("heartbeat_interval", self.heartbeat_interval),
            ("heartbeat_timeout", self.heartbeat_timeout),
            ("send_timeout", self.send_timeout),
        ];
        for (name, d) in positive {
            if d.is_zero() {
                return Err(Error::invalid(format!("{name} must be positive")));
            }
        }
        if self.max_handshakes == 0 || self.max_concurrent_calls == 0 {
            return Err(Error::invalid("limits must be positive"));
        }
        if self.max_connections_per_peer < 2 {
            return Err(Error::invalid(
                "max_connections_per_peer must be at least 2 (a duplicate connection needs two)",
            ));
        }
        if self.max_inbound_bytes < 64 * 1024 {
            return Err(Error::invalid("max_inbound_bytes must be at least 64 KiB"));
        }
        if self.send_queue_bytes < 64 * 1024 {
            return Err(Error::invalid("send_queue_bytes must be at least 64 KiB"));
        }
        if let Some(d) = &self.udp_discovery {
            if d.interval.is_zero() {
                return Err(Error::invalid("discovery interval must be positive"));
            }
            crate::discovery::ifaces::validate("allow_interfaces", &d.allow_interfaces)?;
            crate::discovery::ifaces::validate("deny_interfaces", &d.deny_interfaces)?;
        }
        if let Some(m) = &self.mdns {
            crate::discovery::ifaces::validate("mdns allow_interfaces", &m.allow_interfaces)?;
            crate::discovery::ifaces::validate("mdns deny_interfaces", &m.deny_interfaces)?;
        }
        if self.network_monitor.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid("network monitor interval must be positive"));
        }
        Ok(())
    }
}
