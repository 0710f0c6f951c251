//! What a node is doing, in numbers: counters kept with relaxed atomics (no lock on the
//! hot path), read as a [`NodeMetrics`] snapshot by [`Node::metrics`](crate::Node::metrics)
//! or as OpenMetrics text (`metrics_text.rs`).
//!
//! Per-connection traffic (bytes, frames, calls, sends, `Overloaded` answers) is counted
//! on the connection's own counters (`conn::Stats`) and summed at read time (live
//! connections plus the totals of closed ones), so the node-wide figures cost nothing
//! more on the hot path. Node-wide events (handshakes, duplicates, reconnects,
//! discovery) and per-handler figures are counted here. No figure is labelled by peer
//! key: per-peer figures are read through [`Node::peers`](crate::Node::peers).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// Upper bounds (microseconds) of the handler latency histogram buckets; a last
/// bucket (`+Inf`) takes the rest.
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000, 10_000_000,
];

/// How a handshake ended (the `result` label of `peernet_handshakes_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeResult {
    Ok = 0,
    Untrusted = 1,
    Timeout = 2,
    Failed = 3,
    Refused = 4,
}

/// Why a discovery datagram was dropped (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiscoveryDrop {
    /// Its source, or all sources together, exceeded the receive rate.
    RateLimited = 0,
    /// Not an announcement (length, magic, version, port 0).
    Malformed = 1,
    /// A new key while the table of heard peers is full.
    TableFull = 2,
}

/// Per-handler counters (one per exposed handler, plus the `unknown` and `rpc` ones).
#[derive(Debug, Default)]
pub(crate) struct HandlerCounters {
    calls: AtomicU64,
    sends: AtomicU64,
    /// Indexed like [`CallStatus`].
    errors: [AtomicU64; 4],
    /// Indexed like `LATENCY_BUCKETS_US`, the last one `+Inf` (not cumulative).
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

/// Error statuses of a call (the `status` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallStatus {
    NoSuchHandler = 0,
    Forbidden = 1,
    HandlerFailed = 2,
    Overloaded = 3,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl HandlerCounters {
    /// A call arrived for this handler (counted when `on`).
    pub(crate) fn call(&self, on: bool) {
        if on {
            inc(&self.calls);
        }
    }

    /// A send arrived for this handler.
    pub(crate) fn send(&self, on: bool) {
        if on {
            inc(&self.sends);
        }
    }

    /// A call ended with an error status before or without running the handler.
    pub(crate) fn error(&self, on: bool, status: CallStatus) {
        if on {
            inc(&self.errors[status as usize]);
        }
    }

    /// A call this handler ran was answered `took` after it was read: `failed` is
    /// `None` for a result, or the error status it ended with.
    pub(crate) fn done(&self, took: Duration, failed: Option<CallStatus>) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BUCKETS_US.partition_point(|&b| b < us);
        inc(&self.buckets[i]);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        if let Some(status) = failed {
            inc(&self.errors[status as usize]);
        }
    }

    pub(crate) fn snapshot(&self, name: &str) -> HandlerMetrics {
        let mut cumulative = 0;
        let buckets = self
            .buckets
            .iter()
            .map(|b| {
                cumulative += get(b);
                cumulative
            })
            .collect();
        HandlerMetrics {
            name: name.to_owned(),
            calls: get(&self.calls),
            sends: get(&self.sends),
            no_such_handler: get(&self.errors[0]),
            forbidden: get(&self.errors[1]),
            handler_failed: get(&self.errors[2]),
            overloaded: get(&self.errors[3]),
            latency_buckets: buckets,
            latency_sum: Duration::from_micros(get(&self.sum_us)),
        }
    }
}

/// One timed call on its way back to the driver with its answer. The driver reads
/// the clock once per turn: a call's time runs from the turn that read it to the turn
/// that queued its answer, so timing costs no clock read of its own.
#[derive(Debug)]
pub(crate) struct CallTiming {
    pub hc: Arc<HandlerCounters>,
    /// The driver's clock when it read the call.
    pub start: Instant,
    pub failed: Option<CallStatus>,
}

impl CallTiming {
    /// The answer was queued at `end` (the driver's clock).
    pub(crate) fn record(self, end: Instant) {
        self.hc
            .done(end.saturating_duration_since(self.start), self.failed);
    }
}

/// Node-wide counters (see the module comment for what lives where).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// False while counting is off (`NodeConfig::metrics`, `Node::set_metrics`):
    /// nothing new is counted. Shared with every connection.
    switch: Arc<AtomicBool>,
    handshakes: [AtomicU64; 5],
    reconnects: AtomicU64,
    duplicates: AtomicU64,
    discovery_in: AtomicU64,
    discovery_out: AtomicU64,
    discovery_dropped: [AtomicU64; 3],
    /// Calls to a name no handler has (never creates an entry).
    pub unknown: HandlerCounters,
    /// Calls to `peernet.rpc`.
    pub rpc: std::sync::Arc<HandlerCounters>,
    /// Totals of connections that have closed, added to the live ones at read time.
    pub closed: ClosedTotals,
}

/// Traffic of closed connections.
#[derive(Debug, Default)]
pub(crate) struct ClosedTotals {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub calls_in: AtomicU64,
    pub calls_out: AtomicU64,
    pub sends_in: AtomicU64,
    pub sends_out: AtomicU64,
    pub overloaded: AtomicU64,
}

impl Counters {
    pub(crate) fn new(on: bool) -> Counters {
        Counters {
            switch: Arc::new(AtomicBool::new(on)),
            ..Counters::default()
        }
    }

    /// Whether counting is on now.
    pub(crate) fn on(&self) -> bool {
        self.switch.load(Ordering::Relaxed)
    }

    /// Turns counting on or off for the node and all its connections.
    pub(crate) fn set(&self, on: bool) {
        self.switch.store(on, Ordering::Relaxed);
    }

    /// The switch, for a connection to read.
    pub(crate) fn switch(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.switch)
    }

    pub(crate) fn handshake(&self, r: HandshakeResult) {
        if self.on() {
            inc(&self.handshakes[r as usize]);
        }
    }

    pub(crate) fn reconnect(&self) {
        if self.on() {
            inc(&self.reconnects);
        }
    }

    pub(crate) fn duplicate(&self) {
        if self.on() {
            inc(&self.duplicates);
        }
    }

    pub(crate) fn datagram_in(&self) {
        if self.on() {
            inc(&self.discovery_in);
        }
    }

    pub(crate) fn datagram_out(&self) {
        if self.on() {
            inc(&self.discovery_out);
        }
    }

    pub(crate) fn datagram_dropped(&self, why: DiscoveryDrop) {
        if self.on() {
            inc(&self.discovery_dropped[why as usize]);
        }
    }

    /// The node-wide part of a snapshot (traffic and handlers are filled in by the node).
    pub(crate) fn snapshot(&self) -> NodeMetrics {
        let h = |r: HandshakeResult| get(&self.handshakes[r as usize]);
        let c = &self.closed;
        NodeMetrics {
            enabled: self.on(),
            handshakes_ok: h(HandshakeResult::Ok),
            handshakes_untrusted: h(HandshakeResult::Untrusted),
            handshakes_timeout: h(HandshakeResult::Timeout),
            handshakes_failed: h(HandshakeResult::Failed),
            handshakes_refused: h(HandshakeResult::Refused),
            connections_open: 0,
            peers_connected: 0,
            reconnects: get(&self.reconnects),
            duplicates: get(&self.duplicates),
            discovery_in: get(&self.discovery_in),
            discovery_out: get(&self.discovery_out),
            discovery_dropped_rate_limited: get(&self.discovery_dropped[0]),
            discovery_dropped_malformed: get(&self.discovery_dropped[1]),
            discovery_dropped_table_full: get(&self.discovery_dropped[2]),
            calls_in: get(&c.calls_in),
            calls_out: get(&c.calls_out),
            sends_in: get(&c.sends_in),
            sends_out: get(&c.sends_out),
            overloaded: get(&c.overloaded),
            bytes_in: get(&c.bytes_in),
            bytes_out: get(&c.bytes_out),
            frames_in: get(&c.frames_in),
            frames_out: get(&c.frames_out),
            handlers: Vec::new(),
        }
    }
}

/// A snapshot of a node's counters and gauges ([`Node::metrics`](crate::Node::metrics)).
/// Counters only grow (from node start); gauges are the value now. Every field is
/// described in the metrics documentation (docs/metrics.md), with the OpenMetrics name
/// it is exported under. Fields may be added: construct none, read them.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMetrics {
    /// Whether counting is on now (`NodeConfig::metrics`, `Node::set_metrics`); while
    /// off, no counter moves except the traffic counters peers always keep (bytes,
    /// frames, calls served).
    pub enabled: bool,
    /// Handshakes (inbound and outbound) that authenticated a trusted peer.
    pub handshakes_ok: u64,
    /// Handshakes that ended because the peer is not trusted (here, or there).
    pub handshakes_untrusted: u64,
    /// Handshakes that did not finish within the handshake timeout.
    pub handshakes_timeout: u64,
    /// Handshakes that failed otherwise (protocol error, closed, I/O).
    pub handshakes_failed: u64,
    /// Connections refused by a limit (handshake slots, per-source share, per-peer cap).
    pub handshakes_refused: u64,
    /// Gauge: authenticated connections open (active and draining).
    pub connections_open: u64,
    /// Gauge: peers with at least one connection.
    pub peers_connected: u64,
    /// Connections to a peer that had been connected before (since node start).
    pub reconnects: u64,
    /// Duplicate connections resolved (spec 5.1: one of two kept, the other drained).
    pub duplicates: u64,
    /// Discovery datagrams received.
    pub discovery_in: u64,
    /// Discovery announcements sent.
    pub discovery_out: u64,
    /// Discovery datagrams dropped by the rate limits.
    pub discovery_dropped_rate_limited: u64,
    /// Discovery datagrams dropped as malformed.
    pub discovery_dropped_malformed: u64,
    /// Discovery announcements of new keys dropped because the table was full.
    pub discovery_dropped_table_full: u64,
    /// Calls received (every Call envelope, whatever its outcome).
    pub calls_in: u64,
    /// Calls started by this node.
    pub calls_out: u64,
    /// Sends received.
    pub sends_in: u64,
    /// Sends queued by this node.
    pub sends_out: u64,
    /// `Overloaded` answers this node sent.
    pub overloaded: u64,
    /// Bytes received on authenticated connections (frame headers included).
    pub bytes_in: u64,
    /// Bytes sent on authenticated connections (frame headers included).
    pub bytes_out: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Per handler: every exposed handler, then `peernet.rpc`, then `unknown` (calls
    /// and sends to names no handler has).
    pub handlers: Vec<HandlerMetrics>,
}

/// Counters of one handler name.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerMetrics {
    /// The handler's name (`unknown` for names no handler has, `peernet.rpc` for RPC).
    pub name: String,
    /// Calls received for it.
    pub calls: u64,
    /// Sends received for it.
    pub sends: u64,
    /// Calls answered `NoSuchHandler` (only under `unknown`, and RPC without dispatcher).
    pub no_such_handler: u64,
    /// Calls answered `Forbidden`.
    pub forbidden: u64,
    /// Calls answered `HandlerFailed`.
    pub handler_failed: u64,
    /// Calls answered `Overloaded` (the handler was not run).
    pub overloaded: u64,
    /// Cumulative counts of call times (from this node reading the call to queuing its
    /// answer: the handler's run plus its waits) at most each of
    /// [`LATENCY_BUCKETS_US`], then `+Inf` (the number of calls timed).
    pub latency_buckets: Vec<u64>,
    /// Total time of the calls timed.
    pub latency_sum: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_the_first_bucket_not_below_it() {
        let c = HandlerCounters::default();
        c.call(true);
        c.done(Duration::ZERO, None);
        let s = c.snapshot("x");
        assert_eq!(s.calls, 1);
        assert_eq!(s.latency_buckets.last(), Some(&1));
        assert_eq!(s.latency_buckets.len(), LATENCY_BUCKETS_US.len() + 1);
        // Off: nothing counted, nothing timed.
        let off = HandlerCounters::default();
        off.call(false);
        assert_eq!(off.snapshot("x").calls, 0);
    }
}
