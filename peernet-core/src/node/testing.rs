//! `Node`'s test-support accessors (hidden from the docs): what the integration tests
//! observe that has no event (task counts, dial supervisors, the active connection).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use peernet_proto::Key;

use super::Node;
use crate::conn::lock;

impl Node {
    #[doc(hidden)]
    /// Test support: background tasks still running (listener, handshakes, dialers,
    /// discovery, network monitor).
    pub fn background_tasks(&self) -> usize {
        self.shared.shutdown.receiver_count()
    }

    #[doc(hidden)]
    /// Test support: dials of `connect` refused so far (the peer was not up yet).
    pub fn refused_dials(&self) -> u64 {
        self.shared.refused_dials.load(Ordering::Relaxed)
    }

    #[doc(hidden)]
    /// Test support: number of live connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.peers).conn_count()
    }

    #[doc(hidden)]
    /// Test support: whether a dial supervisor runs for `key` (auto-connect/reconnect).
    pub fn has_dialer(&self, key: &Key) -> bool {
        lock(&self.shared.peers)
            .get(key)
            .is_some_and(|e| e.dialer.is_some())
    }

    #[doc(hidden)]
    /// Test support: (local, remote) address of the connection calls to `key` use.
    pub fn active_connection(&self, key: &Key) -> Option<(SocketAddr, SocketAddr)> {
        lock(&self.shared.peers)
            .route(key)
            .map(|c| (c.info.local, c.info.remote))
    }

    #[doc(hidden)]
    /// Test support: when `key` was last seen.
    pub fn last_seen(&self, key: &Key) -> Option<SystemTime> {
        lock(&self.shared.peers).get(key).and_then(|e| e.last_seen)
    }
}
