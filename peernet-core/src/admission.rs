//! Who may hold what: the registration of an authenticated connection (trusted at that
//! moment, within the peer's connection cap), its removal and revocation by `untrust`;
//! the node as its connections' [`Host`].
//!
//! Registration and revocation are atomic with respect to each other: registration
//! checks trust while it holds the peer-table lock, and `untrust` removes trust before it
//! takes that lock to revoke the peer's connections. So a connection is either refused
//! at registration or revoked (and closed) by `untrust` — never registered for a key
//! that is not trusted at that moment — and a revoked connection dispatches nothing more
//! and starts no handler (see `Conn::revoked`).

use std::sync::Arc;

use peernet_proto::Key;

use crate::conn::{lock, CloseCause, Conn, Host, RpcAccess, StreamHandler};
use crate::error::{CloseReason, Error, Result};
use crate::events::EventKind;
use crate::handlers::Handler;
use crate::metrics::{Counters, HandlerCounters};
use crate::peers::AddressSource;
use crate::shared::Shared;

impl Shared {
    /// Called once per connection, before its tasks run: registers it, or refuses it
    /// (the caller then drops it: nothing was sent on it yet).
    pub(crate) fn connection_opened(&self, conn: &Arc<Conn>) -> Result<()> {
        let info = &conn.info;
        let added = {
            let mut peers = lock(&self.peers);
            // Under the peer-table lock (lock order: peers, then trust): see the module
            // comment. Shutdown works the same way (flag first, then this lock).
            if !self.is_trusted(&info.peer) {
                return Err(Error::UntrustedPeer(format!(
                    "{} was untrusted during the handshake; connection refused",
                    info.peer.fingerprint()
                )));
            }
            if self.is_shutting_down() {
                return Err(Error::Closed(CloseReason::LocalShutdown));
            }
            let held = peers.held(&info.peer, info.outbound);
            let cap = self.config.max_connections_per_peer;
            if held >= cap {
                tracing::debug!(peer = %info.peer.fingerprint(), held, "connection cap reached; connection refused");
                return Err(Error::HandshakeFailed(format!(
                    "{} already holds {held} connections here (max_connections_per_peer \
                     {cap}); connection refused, retry once one has closed",
                    info.peer.fingerprint()
                )));
            }
            if info.outbound {
                // Confirmed by this handshake; keeps the source it was first known by
                // (discovery, dial-back), else it came from `connect`.
                peers.confirm_address(info.peer, info.remote);
            } else if let Some(back) = info.listen_addr() {
                peers.note_address(info.peer, back, AddressSource::DialBack, false);
            }
            // The peer's authenticated Hello names the one port it listens on now:
            // confirmed addresses with another port are stale (it restarted).
            let port = info.peer_hello.listen_port;
            if port != 0 {
                peers.demote_other_ports(&info.peer, port);
            }
            let added = peers.add(conn);
            // A dial supervisor still waiting (it found `connect` dialing, or was woken
            // while this connection was being made) re-checks now and ends. Left
            // asleep, it would still be there when this connection drops, and the drop
            // would wake it into an immediate redial of a peer that just went away,
            // instead of a first backoff step (a refused dial there costs a second,
            // longer step).
            if let Some(w) = peers.get(&info.peer).and_then(|e| e.dialer.as_ref()) {
                w.notify_one();
            }
            added
        };
        // Confirmed addresses survive a restart (dialed first, whatever discovery hears).
        self.remember_confirmed(&info.peer);
        tracing::debug!(peer = %info.peer.fingerprint(), remote = %info.remote, outbound = info.outbound, "connection established");
        if added.reconnect {
            self.counters.reconnect();
        }
        if let Some(loser) = added.loser {
            self.counters.duplicate();
            tracing::debug!(peer = %info.peer.fingerprint(), "duplicate connection; draining the loser");
            loser.drain(self.config.drain_timeout);
        }
        if added.newly_connected {
            self.emit(
                EventKind::Connected,
                Some(info.peer),
                Some(info.remote),
                String::new(),
            );
        }
        self.conns_changed.notify_waiters();
        Ok(())
    }

    /// Called by `untrust` after the trust store dropped `key`: every registered
    /// connection of the peer dispatches nothing more, starts no handler, and closes
    /// with Goodbye 2.
    pub(crate) fn revoke_connections(&self, key: &Key) {
        for c in lock(&self.peers).conns(key) {
            c.revoke();
        }
    }

    /// Called once per connection, when its tasks have ended.
    pub(crate) fn connection_closed(self: &Arc<Self>, conn: &Arc<Conn>, cause: CloseCause) {
        let gone = {
            let mut peers = lock(&self.peers);
            crate::metrics_node::conn_closed(self, conn);
            peers.remove(conn)
        };
        tracing::debug!(peer = %conn.info.peer.fingerprint(), remote = %conn.info.remote, %cause, "connection closed");
        if gone {
            self.emit_disconnected(conn.info.peer, conn.info.remote, &cause);
            // Reconnect with backoff (not after untrust, disconnect or shutdown: the
            // supervisor checks) — at once if discovery already reports the peer at
            // another address (it restarted elsewhere before we noticed the drop).
            // (Compared with where the peer listens, not with the source address of a
            // connection it dialed, whose ephemeral port would always look "moved".)
            let info = &conn.info;
            let moved = lock(&self.peers)
                .get(&info.peer)
                .and_then(|e| e.discovered)
                .is_some_and(|a| Some(a) != info.listen_addr());
            self.ensure_dialer(info.peer, moved);
        }
        self.conns_changed.notify_waiters();
    }
}

impl Host for Shared {
    fn handler(&self, name: &str) -> Option<(Handler, Arc<HandlerCounters>)> {
        self.registry.get(name)
    }

    fn stream_handler(&self, name: &str) -> Option<StreamHandler> {
        self.stream_registry.get(name)
    }

    fn rpc(&self, peer: &Key) -> RpcAccess {
        if !self.rpc_allowed(peer) {
            return RpcAccess::Forbidden;
        }
        match self.rpc_dispatcher() {
            Some(d) => RpcAccess::Allowed(d),
            None => RpcAccess::NoDispatcher,
        }
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn opened(&self, conn: &Arc<Conn>) -> Result<()> {
        self.connection_opened(conn)
    }

    fn peer_draining(&self, conn: &Arc<Conn>) {
        let drain = lock(&self.peers).peer_draining(conn);
        if let Some(c) = drain {
            tracing::debug!(peer = %c.info.peer.fingerprint(), "the peer drains this duplicate; draining it too");
            c.drain(self.config.drain_timeout);
        }
    }

    fn closed(self: Arc<Self>, conn: &Arc<Conn>, cause: CloseCause) {
        self.connection_closed(conn, cause);
    }
}
