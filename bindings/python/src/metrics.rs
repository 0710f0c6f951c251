//! Metrics and per-peer diagnostics for Python: plain tuples and dicts, turned into
//! dataclasses by `peernet/_metrics.py`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use peernet_core::{AddressSource, Key, Node, NodeMetrics};

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A handler's figures: (name, counters, cumulative latency buckets, latency sum s).
pub(crate) type HandlerRow = (String, BTreeMap<&'static str, u64>, Vec<u64>, f64);

/// The node's counters by name, and one row per handler.
pub(crate) type Metrics = (BTreeMap<&'static str, u64>, Vec<HandlerRow>);

/// A snapshot of `n`'s metrics.
pub(crate) fn metrics(n: &Node) -> Metrics {
    let m: NodeMetrics = n.metrics();
    let c = BTreeMap::from([
        ("enabled", u64::from(m.enabled)),
        ("handshakes_ok", m.handshakes_ok),
        ("handshakes_untrusted", m.handshakes_untrusted),
        ("handshakes_timeout", m.handshakes_timeout),
        ("handshakes_failed", m.handshakes_failed),
        ("handshakes_refused", m.handshakes_refused),
        ("connections_open", m.connections_open),
        ("peers_connected", m.peers_connected),
        ("reconnects", m.reconnects),
        ("duplicates", m.duplicates),
        ("discovery_in", m.discovery_in),
        ("discovery_out", m.discovery_out),
        (
            "discovery_dropped_rate_limited",
            m.discovery_dropped_rate_limited,
        ),
        ("discovery_dropped_malformed", m.discovery_dropped_malformed),
        (
            "discovery_dropped_table_full",
            m.discovery_dropped_table_full,
        ),
        ("calls_in", m.calls_in),
        ("calls_out", m.calls_out),
        ("sends_in", m.sends_in),
        ("sends_out", m.sends_out),
        ("overloaded", m.overloaded),
        ("bytes_in", m.bytes_in),
        ("bytes_out", m.bytes_out),
        ("frames_in", m.frames_in),
        ("frames_out", m.frames_out),
    ]);
    let handlers = m
        .handlers
        .into_iter()
        .map(|h| {
            let counts = BTreeMap::from([
                ("calls", h.calls),
                ("sends", h.sends),
                ("no_such_handler", h.no_such_handler),
                ("forbidden", h.forbidden),
                ("handler_failed", h.handler_failed),
                ("overloaded", h.overloaded),
            ]);
            (
                h.name,
                counts,
                h.latency_buckets,
                h.latency_sum.as_secs_f64(),
            )
        })
        .collect();
    (c, handlers)
}

/// The last dial: (unix time, address, error or None).
pub(crate) type DialRow = (f64, String, Option<String>);
/// A known address: (address, source, confirmed, last seen).
pub(crate) type AddressRow = (String, &'static str, bool, f64);
/// (last dial, next dial, addresses, traffic counters).
pub(crate) type PeerDetail = (
    Option<DialRow>,
    Option<f64>,
    Vec<AddressRow>,
    BTreeMap<&'static str, u64>,
);

/// What the node knows about `key` beyond `peers()` (None: nothing).
pub(crate) fn peer_detail(n: &Node, key: &Key) -> Option<PeerDetail> {
    let p = n.peer(key)?;
    let last = p
        .last_dial
        .map(|d| (unix(d.at), d.address.to_string(), d.error));
    let addrs = p
        .addresses
        .iter()
        .map(|a| {
            let source = match a.source {
                AddressSource::Manual => "manual",
                AddressSource::Discovery => "discovery",
                AddressSource::DialBack => "dial_back",
                AddressSource::Remembered => "remembered",
                _ => "other",
            };
            (a.addr.to_string(), source, a.confirmed, unix(a.last_seen))
        })
        .collect();
    let s = p.stats;
    let stats = BTreeMap::from([
        ("bytes_in", s.bytes_in),
        ("bytes_out", s.bytes_out),
        ("frames_in", s.frames_in),
        ("frames_out", s.frames_out),
        ("calls_in", s.calls_in),
        ("calls_out", s.calls_out),
        ("sends_in", s.sends_in),
        ("sends_out", s.sends_out),
        ("calls_served", s.calls_served),
        ("errors", s.errors),
    ]);
    Some((last, p.next_dial.map(unix), addrs, stats))
}
