//! The rows `NodeHandle.trusted` and `NodeHandle.peers` hand to Python: tuples of plain
//! values (keys as bytes, addresses as text, times as Unix seconds).

use peernet_core::{Node, PeerState};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::node_args::unix_secs;

/// A trust entry: (key, label, added_at, rpc, remembered addresses, manual addresses).
pub(crate) type TrustedRow<'py> = (
    Bound<'py, PyBytes>,
    String,
    u64,
    bool,
    Vec<String>,
    Vec<String>,
);

/// A peer: (key, state, trusted, rpc, label, address, last_seen, rtt).
pub(crate) type PeerRow<'py> = (
    Bound<'py, PyBytes>,
    &'static str,
    bool,
    bool,
    String,
    Option<String>,
    Option<f64>,
    Option<f64>,
);

/// The trust store of `n` as rows.
pub(crate) fn trusted_rows<'py>(py: Python<'py>, n: &Node) -> Vec<TrustedRow<'py>> {
    n.trusted()
        .into_iter()
        .map(|e| {
            (
                PyBytes::new(py, e.key.as_bytes()),
                e.label,
                e.added_at,
                e.rpc,
                e.addresses.iter().map(|a| a.to_string()).collect(),
                e.manual,
            )
        })
        .collect()
}

/// The peers of `n` as rows.
pub(crate) fn peer_rows<'py>(py: Python<'py>, n: &Node) -> Vec<PeerRow<'py>> {
    n.peers()
        .into_iter()
        .map(|p| {
            (
                PyBytes::new(py, p.key.as_bytes()),
                match p.state {
                    PeerState::Connected => "connected",
                    PeerState::Connecting => "connecting",
                    PeerState::Disconnected => "disconnected",
                },
                p.trusted,
                p.rpc,
                p.label,
                p.address.map(|a| a.to_string()),
                p.last_seen.map(unix_secs),
                p.rtt.map(|d| d.as_secs_f64()),
            )
        })
        .collect()
}
