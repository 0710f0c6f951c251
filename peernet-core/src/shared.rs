//! `Shared`: the node-wide state the node's tasks share — identity, configuration,
//! trust, handlers, the peer table, events, limits. It sits below every module that
//! acts on it (admission, dialing, listening, discovery, the network monitor, the
//! metrics), each of which adds its own methods in its own file; it imports none of
//! them, so no module imports one that imports it back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use peernet_proto::hello::Hello;
use peernet_proto::Key;
use tokio::sync::{broadcast, watch, Notify, Semaphore};

use crate::config::NodeConfig;
use crate::conn::{lock, CloseCause, Conn, StreamRegistry};
use crate::discovery::Discovery;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::handlers::Registry;
use crate::identity::Identity;
use crate::metrics::Counters;
use crate::peers::PeerTable;
use crate::rpc::RpcDispatcher;
use crate::sources::SourceShares;
use crate::trust::TrustStore;

/// Events buffered per subscriber; a subscriber that falls further behind loses the
/// oldest (it sees `RecvError::Lagged`).
pub(crate) const EVENT_CAPACITY: usize = 1024;

/// State shared by the node's tasks.
pub(crate) struct Shared {
    pub identity: Identity,
    pub config: NodeConfig,
    pub hello: Hello,
    pub registry: Registry,
    /// The stream handlers exposed.
    pub(crate) stream_registry: StreamRegistry,
    pub(crate) trust: Mutex<TrustStore>,
    pub peers: Mutex<PeerTable>,
    /// Created at the first subscription (before it, an event has no one to reach:
    /// the channel's 1,024 slots are most of an idle node's memory).
    pub(crate) events: std::sync::OnceLock<broadcast::Sender<Event>>,
    pub(crate) rpc: RwLock<Option<RpcDispatcher>>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) handshakes: Arc<Semaphore>,
    /// Each source IP address's share of `handshakes`.
    pub(crate) sources: Arc<SourceShares>,
    pub(crate) conn_ids: AtomicU64,
    /// Dials of `connect` refused (test support, see `Node::refused_dials`).
    pub(crate) refused_dials: AtomicU64,
    /// The runtime the node started in: tasks started from synchronous methods
    /// (`trust`, `discovered`) go there, so those work from any thread.
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) conns_changed: Notify,
    /// Running discovery services (told about network changes).
    pub(crate) discovery: Mutex<Vec<Box<dyn Discovery>>>,
    /// Node-wide metrics counters (see `metrics`).
    pub(crate) counters: Arc<Counters>,
}

impl Shared {
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn emit(
        &self,
        kind: EventKind,
        key: Option<Key>,
        address: Option<SocketAddr>,
        detail: String,
    ) {
        if let Some(tx) = self.events.get() {
            let _ = tx.send(Event {
                kind,
                key,
                address,
                detail,
                close_reason: None,
            });
        }
    }

    /// Reports that the last connection to `key` closed, and why.
    pub(crate) fn emit_disconnected(&self, key: Key, address: SocketAddr, cause: &CloseCause) {
        if let Some(tx) = self.events.get() {
            let _ = tx.send(Event {
                kind: EventKind::Disconnected,
                key: Some(key),
                address: Some(address),
                detail: cause.to_string(),
                close_reason: Some(cause.reason()),
            });
        }
    }

    /// A new event subscription.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events
            .get_or_init(|| broadcast::channel(EVENT_CAPACITY).0)
            .subscribe()
    }

    pub(crate) fn is_trusted(&self, key: &Key) -> bool {
        lock(&self.trust).is_trusted(key)
    }

    pub(crate) fn rpc_allowed(&self, key: &Key) -> bool {
        lock(&self.trust).rpc_allowed(key)
    }

    pub(crate) fn rpc_dispatcher(&self) -> Option<RpcDispatcher> {
        self.rpc.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Becomes true when the node stops.
    pub(crate) fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The connection calls to `key` use: `UntrustedPeer` (naming the key and the fix)
    /// when the key is not trusted, `NotConnected` when it is but no connection is up.
    pub(crate) fn route(&self, key: &Key) -> Result<Arc<Conn>> {
        if let Some(c) = lock(&self.peers).route(key) {
            return Ok(c);
        }
        if !self.is_trusted(key) {
            return Err(Error::UntrustedPeer(format!(
                "{} is not in this node's trust store, so nothing is sent to it; trust \
                 it first (Node::trust, peernet_trust in C, Node.trust in Python), then \
                 connect",
                key.fingerprint()
            )));
        }
        Err(Error::NotConnected)
    }
}
