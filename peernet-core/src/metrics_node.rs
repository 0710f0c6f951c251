//! Assembles a [`NodeMetrics`] snapshot: the node-wide counters, the traffic of live
//! connections added to that of closed ones, the gauges, and the handlers' counters;
//! and folds a closing connection's traffic into the closed totals.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::conn::{lock, Conn};
use crate::metrics::NodeMetrics;
use crate::shared::Shared;

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Adds a connection's traffic to `m`.
fn add_conn(m: &mut NodeMetrics, c: &Conn) {
    let s = &c.stats;
    m.bytes_in += get(&s.bytes_in);
    m.bytes_out += get(&s.bytes_out);
    m.frames_in += get(&s.frames_in);
    m.frames_out += get(&s.frames_out);
    m.calls_in += get(&s.calls_in);
    m.calls_out += get(&s.calls_out);
    m.sends_in += get(&s.sends_in);
    m.sends_out += get(&s.sends_out);
    m.overloaded += get(&s.overloaded);
}

pub(crate) fn snapshot(shared: &Shared) -> NodeMetrics {
    let counters = &shared.counters;
    let mut m = counters.snapshot();
    {
        let peers = lock(&shared.peers);
        let conns = peers.all_conns();
        m.connections_open = conns.len() as u64;
        m.peers_connected = peers.connected_count() as u64;
        for c in &conns {
            add_conn(&mut m, c);
        }
    }
    m.handlers = shared.registry.metrics();
    m.handlers
        .push(counters.rpc.snapshot(peernet_proto::rpc::RPC_HANDLER));
    m.handlers.push(counters.unknown.snapshot("unknown"));
    m
}

/// A connection has closed: its traffic joins the closed totals (called once, when it
/// leaves the peer table, so it is never counted twice nor missed by a snapshot that
/// holds the peer-table lock).
pub(crate) fn conn_closed(shared: &Shared, c: &Conn) {
    let t = &shared.counters.closed;
    let s = &c.stats;
    for (to, from) in [
        (&t.bytes_in, &s.bytes_in),
        (&t.bytes_out, &s.bytes_out),
        (&t.frames_in, &s.frames_in),
        (&t.frames_out, &s.frames_out),
        (&t.calls_in, &s.calls_in),
        (&t.calls_out, &s.calls_out),
        (&t.sends_in, &s.sends_in),
        (&t.sends_out, &s.sends_out),
        (&t.overloaded, &s.overloaded),
    ] {
        to.fetch_add(get(from), Ordering::Relaxed);
    }
}
