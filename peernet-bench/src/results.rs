//! Everything one run measured; `None` = not measured (filtered out, or it failed and
//! the error is in `errors`).

use crate::crypto::Seal;
use crate::measure::{Flavour, Latency};
use crate::memory::MemoryReport;

/// Figures that depend on the runtime flavour.
#[derive(Debug, Default, Clone)]
pub struct PerFlavour {
    /// Raw TCP 64 B ping-pong.
    pub tcp_rtt: Option<Latency>,
    /// Raw TCP 64 B pipelined, round trips per second.
    pub tcp_pipe: Option<f64>,
    /// Raw TCP one direction, bytes per second.
    pub tcp_bulk: Option<f64>,
    /// Same work over raw TCP (peernet-proto, no node): sealed 64 KiB frames, bytes/s.
    pub wire_bulk: Option<f64>,
    /// Same work over raw TCP: XX + confirming Ping/Pong + Goodbye + close, per second.
    pub wire_hs: Option<f64>,
    /// PeerNet call RTT.
    pub call_rtt: Option<Latency>,
    /// PeerNet pipelined calls per second.
    pub call_rate: Option<f64>,
    /// The same with metrics (on, off): one pair of nodes, counting switched in slices.
    pub metrics_cost: Option<(f64, f64)>,
    /// PeerNet send throughput, bytes per second.
    pub send_bps: Option<f64>,
    /// PeerNet one stream of 64 KiB writes, bytes per second.
    pub stream_bps: Option<f64>,
    /// Call RTT (idle connection, while a stream saturates it).
    pub stream_calls: Option<(Latency, Latency)>,
    /// PeerNet connect+disconnect loops, connections per second.
    pub hs_rate: Option<f64>,
    /// Start of two nodes to their first call, over UDP discovery.
    pub first_call: Option<Latency>,
    /// The same over IPv6 loopback (`[::1]`, listeners and discovery).
    pub first_call_v6: Option<Latency>,
    /// A peer's restart on its port to the next call to it, no discovery.
    pub restart: Option<Latency>,
    /// The same with UDP discovery.
    pub restart_udp: Option<Latency>,
    /// The memory child's report.
    pub memory: Option<MemoryReport>,
}

/// The whole run.
#[derive(Debug, Default, Clone)]
pub struct Results {
    /// Current-thread runtime figures.
    pub ct: PerFlavour,
    /// Multi-thread runtime figures.
    pub mt: PerFlavour,
    /// ring seal, 64 B.
    pub ring_64: Option<Seal>,
    /// ring seal, 64 KiB.
    pub ring_64k: Option<Seal>,
    /// chacha20poly1305 crate seal, 64 B.
    pub rc_64: Option<Seal>,
    /// chacha20poly1305 crate seal, 64 KiB.
    pub rc_64k: Option<Seal>,
    /// X25519 DH per second.
    pub x25519: Option<f64>,
    /// XX handshakes per second, both sides in one thread.
    pub snow_hs: Option<f64>,
    /// Measurements that failed, with their error.
    pub errors: Vec<String>,
}

impl Results {
    /// The figures of one flavour.
    pub fn of(&self, f: Flavour) -> &PerFlavour {
        match f {
            Flavour::Current => &self.ct,
            Flavour::Multi => &self.mt,
        }
    }

    /// The figures of one flavour, to fill in.
    pub fn of_mut(&mut self, f: Flavour) -> &mut PerFlavour {
        match f {
            Flavour::Current => &mut self.ct,
            Flavour::Multi => &mut self.mt,
        }
    }

    /// Keeps `Ok` values; records errors under `what`.
    pub fn keep<T, E: std::fmt::Display>(&mut self, what: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("  {what} FAILED: {e}");
                self.errors.push(format!("{what}: {e}"));
                None
            }
        }
    }
}
