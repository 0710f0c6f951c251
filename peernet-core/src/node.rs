//! `Node`: the public API (the state its tasks share is `shared.rs`).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use peernet_proto::envelope::{validate_name, GoodbyeReason};
use peernet_proto::hello::Hello;
use peernet_proto::rpc::{RpcRequest, RESERVED_PREFIX, RPC_HANDLER};
use peernet_proto::trustfile::TrustEntry;
use peernet_proto::Key;
use tokio::sync::{broadcast, watch, Notify, Semaphore};
use tokio::time::Instant;

use crate::config::NodeConfig;
use crate::conn::{lock, CloseCause, StreamRegistry};
use crate::discovery;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::handlers::{Handler, Registry};
use crate::identity::Identity;
use crate::listen::accept_loop;
use crate::manager::start_udp_discovery;
use crate::metrics::{Counters, NodeMetrics};
use crate::net::dial_until;
use crate::peers::{PeerInfo, PeerTable};
use crate::rpc::RpcDispatcher;
use crate::shared::Shared;
use crate::sources::SourceShares;
use crate::trust::TrustStore;

mod addresses;
mod pairing;
mod streams;
mod testing;
#[cfg(test)]
mod want_tests;

/// How long a lock that names no holder is waited for before `Busy`: see
/// [`lock_data_dir`].
const UNNAMED_LOCK_WAIT: Duration = Duration::from_secs(2);

/// Locks the data directory. A lock whose file names no holder is being released (its
/// holder emptied the file and is closing it) or taken (the pid is not written yet), or
/// it is still held through a descriptor that a child process inherited in the instant
/// between its fork and its exec (an flock belongs to the open file, which the child
/// shares until exec closes it): retried for a short while, then `Busy`. A lock that
/// names its holder fails at once.
async fn lock_data_dir(dir: &std::path::Path) -> Result<crate::datadir::DirLock> {
    let deadline = Instant::now() + UNNAMED_LOCK_WAIT;
    let mut pause = Duration::from_millis(1);
    loop {
        match crate::datadir::open(dir) {
            Err(Error::Busy { pid: None, .. }) if Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// A PeerNet node. Several can run in one process, each isolated. Dropping it stops it
/// (without waiting); [`Node::shutdown`] stops it and waits.
pub struct Node {
    shared: Arc<Shared>,
    port: u16,
    local_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("key", &self.shared.identity.public())
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Node {
    /// Starts a node: locks its data directory (`Error::Busy` while another node holds
    /// it), loads or creates its identity and trust store, and listens.
    /// Must be called inside a tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<Node> {
        config.validate()?;
        // Checked and locked (else `Error::Busy`) before any file in it is read.
        let dir_lock = lock_data_dir(&config.data_dir).await?;
        let identity = Identity::load_or_create(&config.data_dir)?;
        let trust = TrustStore::load(&config.data_dir, dir_lock)?;
        let listener = match config.listen {
            Some(addr) => Some(crate::listen::bind(addr).await?),
            None => None,
        };
        let local_addr = match &listener {
            Some(l) => Some(
                l.local_addr()
                    .map_err(|e| Error::io("listener address", e))?,
            ),
            None => None,
        };
        let port = local_addr.map_or(0, |a| a.port());
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            hello: {
                let mut h = Hello::new(config.max_frame_len, port);
                if config.streams {
                    h.features |= peernet_proto::stream::FEATURE_STREAMS;
                }
                h
            },
            handshakes: Arc::new(Semaphore::new(config.max_handshakes)),
            sources: SourceShares::new(config.max_handshakes),
            identity,
            registry: Registry::default(),
            stream_registry: StreamRegistry::default(),
            trust: Mutex::new(trust),
            peers: Mutex::new(PeerTable::default()),
            events: std::sync::OnceLock::new(),
            rpc: RwLock::new(None),
            shutdown,
            conn_ids: AtomicU64::new(1),
            refused_dials: AtomicU64::new(0),
            rt: tokio::runtime::Handle::current(),
            conns_changed: Notify::new(),
            discovery: Mutex::new(Vec::new()),
            counters: Arc::new(Counters::new(config.metrics)),
            config,
        });
        if let Some(listener) = listener {
            tokio::spawn(accept_loop(
                Arc::clone(&shared),
                listener,
                shared.shutdown_rx(),
            ));
        }
        if let Some(d) = shared.config.udp_discovery.clone() {
            start_udp_discovery(&shared, &d, port)?;
        }
        if let Some(m) = shared.config.mdns.clone() {
            crate::manager::start_mdns(&shared, &m, port)?;
        }
        if let Some(every) = shared.config.network_monitor {
            let weak = Arc::downgrade(&shared);
            crate::netmon::spawn(
                crate::netmon::Getifaddrs,
                every,
                Box::new(move |change| {
                    if let Some(s) = weak.upgrade() {
                        s.network_changed(change);
                    }
                }),
                shared.shutdown_rx(),
            );
        }
        shared.dial_remembered();
        tracing::info!(key = %shared.identity.public().fingerprint(), ?local_addr, "node started");
        Ok(Node {
            shared,
            port,
            local_addr,
        })
    }

    /// This node's public key.
    pub fn key(&self) -> Key {
        self.shared.identity.public()
    }

    /// The TCP port this node listens on (0 = none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.shared.config
    }

    // ---- trust ----

    /// Trusts `key` (persisted). With a label, sets or replaces its label.
    pub fn trust(&self, key: &Key, label: Option<&str>) -> Result<()> {
        if *key == self.key() {
            return Err(Error::invalid("a node cannot trust itself"));
        }
        lock(&self.shared.trust).trust(*key, label)?;
        // A peer discovered before it was trusted is dialed now; one not heard of
        // yet is asked for (and dialed once a source reports it).
        self.shared.ensure_dialer(*key, true);
        self.shared.want_address(key);
        Ok(())
    }

    /// Removes `key` from the trust store (and its RPC right) and closes its live
    /// connections with Goodbye 2. Returns whether it was trusted. Once it returns, no
    /// connection of the peer is registered (one still in its handshake is refused), no
    /// envelope of it is dispatched and no handler starts for it. Fails closed: if the
    /// trust file cannot be written, the key is still untrusted and disconnected, and
    /// the error says the file lags behind (untrust again once writing works).
    pub fn untrust(&self, key: &Key) -> Result<bool> {
        // Trust first, then the peer table (see `admission`).
        let (was, saved) = lock(&self.shared.trust).untrust(key);
        self.shared.revoke_connections(key);
        // Wakes the peer's dial supervisor, which sees the untrust and stops.
        self.shared.ensure_dialer(*key, false);
        saved.map(|()| was)
    }

    /// Grants or withdraws RPC rights to a trusted peer (persisted; effective on the
    /// next call). Withdrawing fails closed like [`untrust`](Node::untrust): if the
    /// trust file cannot be written, the right is withdrawn all the same and the error
    /// says the file lags behind.
    pub fn grant_rpc(&self, key: &Key, allowed: bool) -> Result<()> {
        lock(&self.shared.trust).grant_rpc(key, allowed)
    }

    /// The trust store's entries.
    pub fn trusted(&self) -> Vec<TrustEntry> {
        lock(&self.shared.trust).list()
    }

    /// Whether `key` is trusted.
    pub fn is_trusted(&self, key: &Key) -> bool {
        self.shared.is_trusted(key)
    }

    // ---- handlers ----

    /// Exposes a named handler to trusted peers (default deny: nothing else is
    /// reachable). Names are 1–255 bytes; `peernet.` is reserved.
    pub fn expose(&self, name: &str, handler: Handler) -> Result<()> {
        self.shared.registry.expose(name, handler)
    }

    /// Removes a handler; calls to it get `NoSuchHandler` from now on.
    pub fn revoke(&self, name: &str) -> Result<()> {
        self.shared.registry.revoke(name)
    }

    /// Sets (or with `None` removes) the RPC dispatcher.
    pub fn set_rpc_dispatcher(&self, dispatcher: Option<RpcDispatcher>) {
        *self.shared.rpc.write().unwrap_or_else(|p| p.into_inner()) = dispatcher;
    }

    // ---- connections ----

    /// Dials `addr` and authenticates it as `key` (which must be trusted). Returns once
    /// the peer has confirmed the connection (spec 3.4); at once if already connected.
    ///
    /// A peer that is not up yet (the connection is refused, or there is no route to
    /// it) is dialed again, after 50 ms doubling to 1 s, until `timeout`: a program
    /// may start before its peer. When the timeout ends it, the error is that last
    /// `Io` error, saying how many dials were refused. A handshake that fails — the
    /// peer does not trust us (`UntrustedPeer`), it is another key, a bad message —
    /// fails at once: retrying would not change it.
    pub async fn connect(&self, key: &Key, addr: SocketAddr, timeout: Duration) -> Result<()> {
        if !self.is_trusted(key) {
            return Err(Error::UntrustedPeer(format!(
                "{} is not in the trust store; trust it first",
                key.fingerprint()
            )));
        }
        lock(&self.shared.peers).entry(*key).hold = false;
        if self.is_connected(key) {
            return Ok(());
        }
        dial_until(&self.shared, *key, addr, timeout)
            .await
            .map(|_| ())
    }

    /// Closes every connection to `key` (Goodbye 0).
    pub async fn disconnect(&self, key: &Key) -> Result<()> {
        let conns = {
            let mut peers = lock(&self.shared.peers);
            // No automatic redial until a new hint (connect, discovery, trust).
            peers.entry(*key).hold = true;
            peers.conns(key)
        };
        if conns.is_empty() {
            return Err(Error::NotConnected);
        }
        for c in &conns {
            c.close(
                GoodbyeReason::Closing,
                CloseCause::Local("disconnected".into()),
            );
        }
        self.wait_conns(|p| p.conns(key).is_empty(), Duration::from_secs(5))
            .await;
        Ok(())
    }

    /// Verification words of the live connection to `key`: five words derived from its
    /// Noise handshake hash, the same on both ends — so two people can compare what
    /// their screens show instead of trusting a fingerprint on first use (a man in the
    /// middle would hold two different handshakes, with different words). `None` when
    /// no connection is up. Each new connection has new words.
    pub fn verification_words(&self, key: &Key) -> Option<String> {
        let conn = lock(&self.shared.peers).route(key)?;
        Some(peernet_proto::pairing::sas::words(
            &conn.info.handshake_hash,
        ))
    }

    /// Whether an authenticated connection to `key` is up.
    pub fn is_connected(&self, key: &Key) -> bool {
        lock(&self.shared.peers).route(key).is_some()
    }

    /// Waits until `key` is connected, or the timeout.
    pub async fn wait_connected(&self, key: &Key, timeout: Duration) -> Result<()> {
        if self.wait_conns(|p| p.route(key).is_some(), timeout).await {
            Ok(())
        } else {
            Err(Error::Timeout)
        }
    }

    async fn wait_conns(&self, cond: impl Fn(&PeerTable) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let changed = self.shared.conns_changed.notified();
            if cond(&lock(&self.shared.peers)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return cond(&lock(&self.shared.peers));
            }
        }
    }

    // ---- messages ----

    /// Calls handler `name` on `key` and waits for the reply. Fails at once with
    /// `UntrustedPeer` when `key` is not trusted, `NotConnected` when it is but there
    /// is no connection, `PayloadTooLarge` (nothing sent) when the call does not fit
    /// the peer's `max_frame`; with `Closed` (saying who closed and why) as soon as
    /// the connection drops, and with `Timeout` at the deadline. The reply is bounded
    /// by this node's `max_frame`: a larger one comes back as `HandlerFailed("reply
    /// too large: ...")` naming both sizes.
    pub async fn call(
        &self,
        key: &Key,
        name: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        check_user_name(name)?;
        self.shared.route(key)?.call(name, body, timeout).await
    }

    /// Starts a call like [`Node::call`] and returns at once; `done` gets its outcome,
    /// exactly once, with the same errors `call` returns. No task is spawned per call:
    /// `done` runs on the connection's driver task when the reply arrives (or on a
    /// runtime task for an early error, a timeout or a closed connection) — never on the
    /// calling thread before this returns. So `done` must be quick and must not block:
    /// while it runs, that connection reads nothing. This is the building block of the
    /// bindings' asynchronous calls; Rust code normally awaits [`Node::call`].
    ///
    /// Must be called from inside a tokio runtime (or with one entered): otherwise it
    /// returns `Error::Internal` and `done` is dropped without running.
    pub fn call_with<F>(
        &self,
        key: &Key,
        name: &str,
        body: &[u8],
        timeout: Duration,
        done: F,
    ) -> Result<()>
    where
        F: FnOnce(Result<Vec<u8>>) + Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Internal("call_with needs a tokio runtime".into()));
        }
        let done: crate::conn::CallbackFn = Box::new(done);
        match check_user_name(name).and_then(|()| self.shared.route(key)) {
            Ok(conn) => conn.call_with(name, body, timeout, done),
            Err(e) => crate::conn::deliver_later(done, Err(e)),
        }
        Ok(())
    }

    /// Sends `body` to handler `name` on `key`, fire-and-forget: no reply, refused if
    /// the key is not trusted (`UntrustedPeer`) or the peer is offline (`NotConnected`). Waits for queue space up to the send timeout
    /// (then `Overloaded`).
    pub async fn send(&self, key: &Key, name: &str, body: &[u8]) -> Result<()> {
        check_user_name(name)?;
        self.shared.route(key)?.send(name, body).await
    }

    /// Calls `module.function(args)` on a peer that granted us RPC (spec 6).
    pub async fn rpc_call(
        &self,
        key: &Key,
        module: &str,
        function: &str,
        args: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let body = RpcRequest {
            module,
            function,
            args,
        }
        .encode();
        self.shared
            .route(key)?
            .call(RPC_HANDLER, &body, timeout)
            .await
    }

    // ---- discovery ----

    /// Manual discovery: the program heard (from Bonjour, a configuration file, ...)
    /// that `key` may be reached at `addr`. The address is recorded unconfirmed (only a
    /// handshake confirms it), a `Discovered` event is reported when it is new, and a
    /// trusted peer without a connection is dialed (auto-connect). The same address
    /// reported again is no new event, but while the peer is being redialed (the first
    /// rounds after a drop) it is dialed at once rather than at the end of the backoff
    /// step. Untrusted keys are recorded too (`peers()` lists them) but never dialed.
    pub fn discovered(&self, key: &Key, addr: SocketAddr) -> Result<()> {
        let ev = discovery::manual::discovered(&self.key(), key, addr)?;
        self.shared.apply_discovery(ev);
        Ok(())
    }

    /// Manual discovery: `key` is no longer announced (a `Lost` event if it was
    /// discovered; live connections stay up).
    pub fn lost(&self, key: &Key) {
        self.shared.apply_discovery(discovery::manual::lost(key));
    }

    // ---- peers and events ----

    /// A snapshot of every known peer (connected, discovered or trusted).
    pub fn peers(&self) -> Vec<PeerInfo> {
        // A snapshot, not the trust lock held while taking the peer table's: the lock
        // order is peers, then trust (registration checks trust under the peer table).
        let trusted: std::collections::HashMap<Key, (bool, String)> = {
            let trust = lock(&self.shared.trust);
            let keys = trust.list().into_iter().map(|e| e.key);
            keys.filter_map(|k| trust.get(&k).map(|e| (k, (e.rpc, e.label.clone()))))
                .collect()
        };
        let keys: Vec<Key> = trusted.keys().copied().collect();
        let lookup = |k: &Key| trusted.get(k).cloned();
        lock(&self.shared.peers).infos(&lookup, &keys)
    }

    /// What the node knows about one peer (`None`: neither known nor trusted): its
    /// state, addresses with their source, traffic, and why it is not connected — the
    /// last dial attempt with its error and when the next one is due.
    pub fn peer(&self, key: &Key) -> Option<PeerInfo> {
        self.peers().into_iter().find(|p| p.key == *key)
    }

    /// A snapshot of the node's counters and gauges (see [`NodeMetrics`]).
    pub fn metrics(&self) -> NodeMetrics {
        crate::metrics_node::snapshot(&self.shared)
    }

    /// Turns the metrics counting on or off while the node runs, for it and every
    /// connection (it starts as [`NodeConfig::metrics`](crate::NodeConfig::metrics)
    /// says). What was counted stays in the snapshot; while off nothing new is
    /// counted (a call already read when it changes may still be timed).
    /// [`NodeMetrics::enabled`] tells which it is.
    pub fn set_metrics(&self, on: bool) {
        self.shared.counters.set(on);
    }

    /// The same snapshot in OpenMetrics text format (ends with `# EOF`), for a
    /// Prometheus scrape or a log line. Labels are fixed sets and handler names; never
    /// a peer key.
    pub fn metrics_text(&self) -> String {
        crate::metrics_text::render(&self.metrics())
    }

    /// Subscribes to events (connected, disconnected, discovered, lost, network changed).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.subscribe()
    }

    /// Stops the node: stops accepting, closes every connection (Goodbye 0; calls in
    /// flight fail with `Closed`), drops every handler, waits until all connection
    /// tasks have ended (at most 5 s), and releases the data directory (another node may
    /// open it; trust changes on this one then fail with `Closed`).
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        for c in lock(&self.shared.peers).all_conns() {
            c.close(
                GoodbyeReason::Closing,
                CloseCause::Local("node shutting down".into()),
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        self.wait_conns(|p| p.conn_count() == 0, Duration::from_secs(5))
            .await;
        // Every background task (listener, handshakes, dialers, discovery, monitor)
        // holds a shutdown receiver and drops it when it ends.
        let _ = tokio::time::timeout_at(deadline, self.shared.shutdown.closed()).await;
        self.shared.registry.clear();
        self.shared.stream_registry.clear();
        self.set_rpc_dispatcher(None);
        lock(&self.shared.trust).release();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        for c in lock(&self.shared.peers).all_conns() {
            c.close(
                GoodbyeReason::Closing,
                CloseCause::Local("node dropped".into()),
            );
        }
        self.shared.registry.clear();
        self.shared.stream_registry.clear();
        *self.shared.rpc.write().unwrap_or_else(|p| p.into_inner()) = None;
        lock(&self.shared.trust).release();
    }
}

fn check_user_name(name: &str) -> Result<()> {
    validate_name(name).map_err(|e| Error::invalid(format!("handler name: {e}")))?;
    if name.starts_with(RESERVED_PREFIX) {
        return Err(Error::invalid(format!(
            "{name:?} is reserved; use rpc_call for RPC"
        )));
    }
    Ok(())
}
