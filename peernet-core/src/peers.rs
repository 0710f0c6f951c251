//! The peer table: the one owner of per-peer state — live connections (and which one
//! wins when there are two, spec 5.1), known addresses and where each came from, last
//! seen, and counters. Guarded by one mutex in `Shared`; no I/O happens under it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use peernet_proto::Key;

use crate::conn::Conn;

/// Where an address of a peer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressSource {
    /// Given by the program (`connect`, manual discovery).
    Manual,
    /// Remembered from the trust file (confirmed by a handshake before a restart).
    Remembered,
    /// Heard in a LAN announcement (unauthenticated: a hint).
    Discovery,
    /// The peer's Hello listen port with the IP it connected from.
    DialBack,
}

/// One address a peer may be reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAddress {
    /// The address.
    pub addr: SocketAddr,
    /// Where it came from.
    pub source: AddressSource,
    /// A handshake with the peer's key completed over it.
    pub confirmed: bool,
    /// When it was last heard of or used.
    pub last_seen: SystemTime,
}

/// Connection state of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// No connection and no dial in progress.
    Disconnected,
    /// A dial is in progress.
    Connecting,
    /// At least one authenticated connection is up.
    Connected,
}

/// Traffic counters of a peer, over all its connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes received (frame headers included).
    pub bytes_in: u64,
    /// Bytes sent (frame headers included).
    pub bytes_out: u64,
    /// Calls this node answered for the peer.
    pub calls_served: u64,
    /// Handler failures answered to the peer.
    pub errors: u64,
    /// Calls received from the peer (whatever their outcome; 0 with metrics off).
    pub calls_in: u64,
    /// Calls made to the peer (0 with metrics off).
    pub calls_out: u64,
    /// Sends received from the peer (0 with metrics off).
    pub sends_in: u64,
    /// Sends queued to the peer (0 with metrics off).
    pub sends_out: u64,
}

impl PeerStats {
    fn add_conn(&mut self, c: &Conn) {
        let s = &c.stats;
        self.frames_in += s.frames_in.load(Ordering::Relaxed);
        self.frames_out += s.frames_out.load(Ordering::Relaxed);
        self.bytes_in += s.bytes_in.load(Ordering::Relaxed);
        self.bytes_out += s.bytes_out.load(Ordering::Relaxed);
        self.calls_served += s.calls_served.load(Ordering::Relaxed);
        self.errors += s.errors.load(Ordering::Relaxed);
        self.calls_in += s.calls_in.load(Ordering::Relaxed);
        self.calls_out += s.calls_out.load(Ordering::Relaxed);
        self.sends_in += s.sends_in.load(Ordering::Relaxed);
        self.sends_out += s.sends_out.load(Ordering::Relaxed);
    }
}

/// A snapshot of what the node knows about one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's key.
    pub key: Key,
    /// Connection state.
    pub state: PeerState,
    /// In the trust store.
    pub trusted: bool,
    /// Granted RPC rights.
    pub rpc: bool,
    /// Label from the trust store ("" if none).
    pub label: String,
    /// The live connection's address, else the last confirmed, else the last seen.
    pub address: Option<SocketAddr>,
    /// Every known address.
    pub addresses: Vec<KnownAddress>,
    /// When the peer was last heard from.
    pub last_seen: Option<SystemTime>,
    /// Heartbeat round-trip time of the live connection.
    pub rtt: Option<Duration>,
    /// Counters.
    pub stats: PeerStats,
    /// The last dial attempt this node made to the peer (`None`: none yet), with its
    /// error: why the peer is not connected.
    pub last_dial: Option<DialAttempt>,
    /// When the dial supervisor next tries (`None`: no attempt scheduled — connected,
    /// not trusted, auto-connect off, disconnected by the program, or given up until a
    /// new hint).
    pub next_dial: Option<SystemTime>,
}

/// One dial attempt (see [`PeerInfo::last_dial`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialAttempt {
    /// When it ended.
    pub at: SystemTime,
    /// The address dialed.
    pub address: SocketAddr,
    /// Why it failed (`None`: it connected).
    pub error: Option<String>,
}

/// Most addresses remembered per peer.
pub(crate) const MAX_ADDRESSES: usize = 8;
/// Most unconfirmed addresses of one peer from one source IP (the IP an announcement
/// came from, which is the IP of the address it names): a host announcing a key at many
/// ports replaces only its own hints, never another source's or a confirmed address.
pub(crate) const MAX_UNCONFIRMED_PER_SOURCE: usize = 2;

/// Makes room for `new` (not yet in `addrs`) in a peer's address list, or says it must
/// not be added. Unconfirmed addresses are capped per source IP (the oldest of that
/// source goes); in a full list an unconfirmed newcomer displaces only the oldest
/// unconfirmed address among the sources holding the most, and never a confirmed one (if
/// every address is confirmed the newcomer is dropped). A confirmed newcomer displaces
/// the oldest unconfirmed address, else the oldest confirmed one.
fn make_room(addrs: &mut Vec<KnownAddress>, new: &KnownAddress) -> bool {
    let oldest = |addrs: &[KnownAddress], pick: &dyn Fn(&KnownAddress) -> bool| {
        (0..addrs.len())
            .filter(|&i| pick(&addrs[i]))
            .min_by_key(|&i| addrs[i].last_seen)
    };
    if !new.confirmed {
        let ip = new.addr.ip();
        let same = |a: &KnownAddress| !a.confirmed && a.addr.ip() == ip;
        if addrs.iter().filter(|a| same(a)).count() >= MAX_UNCONFIRMED_PER_SOURCE {
            if let Some(i) = oldest(addrs, &same) {
                addrs.remove(i);
            }
            return true;
        }
    }
    if addrs.len() < MAX_ADDRESSES {
        return true;
    }
    let unconfirmed = |ip| {
        addrs
            .iter()
            .filter(|a| !a.confirmed && a.addr.ip() == ip)
            .count()
    };
    let most = addrs
        .iter()
        .filter(|a| !a.confirmed)
        .map(|a| unconfirmed(a.addr.ip()))
        .max();
    let victim = match most {
        // The oldest hint among the sources holding the most.
        Some(n) => oldest(addrs, &|a: &KnownAddress| {
            !a.confirmed && unconfirmed(a.addr.ip()) == n
        }),
        None if new.confirmed => oldest(addrs, &|_: &KnownAddress| true),
        None => None,
    };
    match victim {
        Some(i) => {
            addrs.remove(i);
            true
        }
        None => false,
    }
}

#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub active: Option<Arc<Conn>>,
    /// The peer's other live connections: losers draining (spec 5.1), and standbys —
    /// older connections the peer itself dialed, kept open until the peer (their
    /// initiator) decides which of its duplicates stays (see [`PeerTable::add`]).
    pub others: Vec<Arc<Conn>>,
    /// Dials in progress (the dial supervisor's and `connect`'s).
    pub dialing: u32,
    pub addrs: Vec<KnownAddress>,
    pub last_seen: Option<SystemTime>,
    /// The address discovery currently reports for the peer (`None`: not discovered or
    /// lost). Used to report each discovery once.
    pub discovered: Option<SocketAddr>,
    /// Wakes the peer's dial supervisor, if one runs (see `dialer`).
    pub dialer: Option<Arc<tokio::sync::Notify>>,
    /// Rounds the running supervisor has made (see `dialer::ALIVE_ROUNDS`).
    pub dial_rounds: u32,
    /// The program disconnected the peer: no redial until a new hint (connect,
    /// discovery, trust, network change).
    pub hold: bool,
    closed_stats: PeerStats,
    /// Had a connection before (the next one is a reconnect).
    ever_connected: bool,
    pub last_dial: Option<DialAttempt>,
    pub next_dial: Option<SystemTime>,
}

/// Result of adding a connection.
pub(crate) struct Added {
    /// The peer had no connection before.
    pub newly_connected: bool,
    /// A connection that lost to a duplicate and must drain.
    pub loser: Option<Arc<Conn>>,
    /// The peer had no connection, but had one before.
    pub reconnect: bool,
}

#[derive(Debug, Default)]
pub(crate) struct PeerTable {
    peers: HashMap<Key, Entry>,
}

/// Spec 5.1: keep the connection whose initiator has the smaller key; between two of
/// the same initiator (a redial while the old one is not yet known dead, or two
/// addresses raced) the newer.
fn new_wins(new: &Conn, old: &Conn) -> bool {
    if new.info.initiator != old.info.initiator {
        new.info.initiator < old.info.initiator
    } else {
        true
    }
}

/// Takes the newest connection of `others` that neither drains nor closes.
fn take_standby(others: &mut Vec<Arc<Conn>>) -> Option<Arc<Conn>> {
    let i = others
        .iter()
        .rposition(|c| !c.is_draining() && !c.is_closing())?;
    Some(others.remove(i))
}

impl PeerTable {
    pub(crate) fn entry(&mut self, key: Key) -> &mut Entry {
        self.peers.entry(key).or_default()
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&Entry> {
        self.peers.get(key)
    }

    /// The entry of a known peer (never creates one).
    pub(crate) fn entry_mut(&mut self, key: &Key) -> Option<&mut Entry> {
        self.peers.get_mut(key)
    }

    /// Registers `conn`. Beside a live connection, spec 5.1 picks the one to keep and
    /// the loser drains — except when the peer dialed both: then only the peer knows
    /// which one it keeps (the other may be a dial it abandoned after its last
    /// handshake message, when this side had already registered it), so the newer
    /// takes new calls and the older stays as a standby, closed by the peer or
    /// promoted if the newer ends first (see `remove` and `peer_draining`).
    pub(crate) fn add(&mut self, conn: &Arc<Conn>) -> Added {
        let e = self.entry(conn.info.peer);
        e.last_seen = Some(SystemTime::now());
        let reconnect = e.ever_connected && e.others.is_empty();
        e.ever_connected = true;
        match e.active.take() {
            None => {
                e.active = Some(Arc::clone(conn));
                Added {
                    newly_connected: true,
                    loser: None,
                    reconnect,
                }
            }
            Some(old) if !conn.info.outbound && !old.info.outbound => {
                e.active = Some(Arc::clone(conn));
                e.others.push(old);
                Added {
                    newly_connected: false,
                    loser: None,
                    reconnect: false,
                }
            }
            Some(old) => {
                let (win, lose) = if new_wins(conn, &old) {
                    (Arc::clone(conn), old)
                } else {
                    (old, Arc::clone(conn))
                };
                e.active = Some(win);
                e.others.push(Arc::clone(&lose));
                Added {
                    newly_connected: false,
                    loser: Some(lose),
                    reconnect: false,
                }
            }
        }
    }

    /// Removes a closed connection; returns true if the peer now has none. When the
    /// active one goes, the newest standby (neither draining nor closing) takes over.
    pub(crate) fn remove(&mut self, conn: &Arc<Conn>) -> bool {
        let Some(e) = self.peers.get_mut(&conn.info.peer) else {
            return false;
        };
        e.closed_stats.add_conn(conn);
        e.last_seen = Some(SystemTime::now());
        e.others.retain(|c| !Arc::ptr_eq(c, conn));
        match &e.active {
            Some(a) if Arc::ptr_eq(a, conn) => {
                e.active = take_standby(&mut e.others);
                e.active.is_none()
            }
            _ => false,
        }
    }

    /// The peer said Goodbye 1 on `conn` (spec 5.1): it keeps another connection. When
    /// this side holds a usable one too, it follows the peer's choice: that one becomes
    /// (or stays) active and `conn` is returned, to drain. Otherwise nothing changes:
    /// the connection the peer keeps is not registered here yet, and this side's own
    /// decision follows when it is.
    pub(crate) fn peer_draining(&mut self, conn: &Arc<Conn>) -> Option<Arc<Conn>> {
        let e = self.peers.get_mut(&conn.info.peer)?;
        if conn.is_draining() || conn.is_closing() {
            return None;
        }
        let is_active = e.active.as_ref().is_some_and(|a| Arc::ptr_eq(a, conn));
        if !is_active {
            return e.others.iter().find(|c| Arc::ptr_eq(c, conn)).cloned();
        }
        let standby = take_standby(&mut e.others)?;
        e.others.push(Arc::clone(conn));
        e.active = Some(standby);
        Some(Arc::clone(conn))
    }

    /// The connection new calls go to.
    pub(crate) fn route(&self, key: &Key) -> Option<Arc<Conn>> {
        self.peers
            .get(key)
            .and_then(|e| e.active.as_ref())
            .filter(|c| !c.is_closing())
            .cloned()
    }

    /// Every live connection of a peer (active, draining and standby).
    pub(crate) fn conns(&self, key: &Key) -> Vec<Arc<Conn>> {
        self.peers
            .get(key)
            .map(|e| e.active.iter().chain(e.others.iter()).cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn all_conns(&self) -> Vec<Arc<Conn>> {
        self.peers
            .values()
            .flat_map(|e| e.active.iter().chain(e.others.iter()).cloned())
            .collect()
    }

    /// Connections `key` holds (active, draining, closing but not yet gone) plus this
    /// node's dials to it in progress, one fewer when `own_dial`: the connection being
    /// registered came from one of those dials.
    pub(crate) fn held(&self, key: &Key, own_dial: bool) -> usize {
        self.peers.get(key).map_or(0, |e| {
            usize::from(e.active.is_some())
                + e.others.len()
                + e.dialing.saturating_sub(u32::from(own_dial)) as usize
        })
    }

    /// Peers with an active connection.
    pub(crate) fn connected_count(&self) -> usize {
        self.peers.values().filter(|e| e.active.is_some()).count()
    }

    pub(crate) fn conn_count(&self) -> usize {
        self.peers
            .values()
            .map(|e| usize::from(e.active.is_some()) + e.others.len())
            .sum()
    }

    /// Marks an address a handshake went through as confirmed (a new one is recorded
    /// as `Manual`: the program gave it to `connect`).
    pub(crate) fn confirm_address(&mut self, key: Key, addr: SocketAddr) {
        let e = self.entry(key);
        match e.addrs.iter_mut().find(|a| a.addr == addr) {
            Some(a) => {
                a.confirmed = true;
                a.last_seen = SystemTime::now();
            }
            None => self.note_address(key, addr, AddressSource::Manual, true),
        }
    }

    /// Records an address for a peer (confirmed addresses stay confirmed).
    pub(crate) fn note_address(
        &mut self,
        key: Key,
        addr: SocketAddr,
        source: AddressSource,
        confirmed: bool,
    ) {
        let e = self.entry(key);
        let now = SystemTime::now();
        if let Some(a) = e.addrs.iter_mut().find(|a| a.addr == addr) {
            a.confirmed |= confirmed;
            a.last_seen = now;
            if matches!(source, AddressSource::Manual | AddressSource::Remembered) {
                a.source = source;
            }
            return;
        }
        let new = KnownAddress {
            addr,
            source,
            confirmed,
            last_seen: now,
        };
        if make_room(&mut e.addrs, &new) {
            e.addrs.push(new);
        }
    }

    /// The confirmed addresses of a peer, newest first (what the trust file keeps).
    pub(crate) fn confirmed(&self, key: &Key) -> Vec<SocketAddr> {
        let Some(e) = self.peers.get(key) else {
            return Vec::new();
        };
        let mut v: Vec<&KnownAddress> = e.addrs.iter().filter(|a| a.confirmed).collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.last_seen));
        v.into_iter().map(|a| a.addr).collect()
    }

    /// Addresses to dial, best first: confirmed ones (newest first), then unconfirmed
    /// ones (newest first). An unconfirmed address is only tried after every confirmed
    /// one failed, so a forged announcement never displaces a working address.
    pub(crate) fn candidates(&self, key: &Key) -> Vec<SocketAddr> {
        let Some(e) = self.peers.get(key) else {
            return Vec::new();
        };
        let mut v: Vec<&KnownAddress> = e.addrs.iter().collect();
        v.sort_by_key(|a| std::cmp::Reverse((a.confirmed, a.last_seen)));
        v.into_iter().map(|a| a.addr).collect()
    }

    /// After a handshake succeeded over another address: `failed` addresses no longer
    /// count as confirmed (the peer moved).
    pub(crate) fn demote(&mut self, key: &Key, failed: &[SocketAddr]) {
        if let Some(e) = self.peers.get_mut(key) {
            for a in e.addrs.iter_mut().filter(|a| failed.contains(&a.addr)) {
                a.confirmed = false;
            }
        }
    }

    /// Addresses of `key` on another port than `port` (the one its authenticated Hello
    /// names) no longer count as confirmed.
    pub(crate) fn demote_other_ports(&mut self, key: &Key, port: u16) {
        if let Some(e) = self.peers.get_mut(key) {
            for a in e.addrs.iter_mut().filter(|a| a.addr.port() != port) {
                a.confirmed = false;
            }
        }
    }

    /// Forgets a peer that has no connection, no dial and no supervisor (an untrusted
    /// peer discovery lost), so unauthenticated announcements cannot grow the table.
    pub(crate) fn forget_idle(&mut self, key: &Key) {
        let idle = self.peers.get(key).is_some_and(|e| {
            e.active.is_none() && e.others.is_empty() && e.dialing == 0 && e.dialer.is_none()
        });
        if idle {
            self.peers.remove(key);
        }
    }

    /// Every key in the table.
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.peers.keys().copied().collect()
    }

    /// Snapshots every peer; `trust` gives (trusted, rpc, label) of a key.
    pub(crate) fn infos(
        &self,
        trust: &dyn Fn(&Key) -> Option<(bool, String)>,
        trusted_keys: &[Key],
    ) -> Vec<PeerInfo> {
        let mut keys: Vec<Key> = self.peers.keys().copied().collect();
        for k in trusted_keys {
            if !self.peers.contains_key(k) {
                keys.push(*k);
            }
        }
        keys.sort();
        keys.into_iter()
            .map(|key| {
                let empty = Entry::default();
                let e = self.peers.get(&key).unwrap_or(&empty);
                let (trusted, rpc, label) = match trust(&key) {
                    Some((rpc, label)) => (true, rpc, label),
                    None => (false, false, String::new()),
                };
                let mut stats = e.closed_stats;
                for c in e.active.iter().chain(e.others.iter()) {
                    stats.add_conn(c);
                }
                let state = if e.active.is_some() {
                    PeerState::Connected
                } else if e.dialing > 0 {
                    PeerState::Connecting
                } else {
                    PeerState::Disconnected
                };
                let address = e.active.as_ref().map(|c| c.info.remote).or_else(|| {
                    e.addrs
                        .iter()
                        .max_by_key(|a| (a.confirmed, a.last_seen))
                        .map(|a| a.addr)
                });
                let rtt = e
                    .active
                    .as_ref()
                    .map(|c| c.rtt_us())
                    .filter(|&us| us > 0)
                    .map(|us| Duration::from_micros(u64::from(us)));
                PeerInfo {
                    key,
                    state,
                    trusted,
                    rpc,
                    label,
                    address,
                    addresses: e.addrs.clone(),
                    last_seen: e.last_seen,
                    rtt,
                    stats,
                    last_dial: e.last_dial.clone(),
                    next_dial: e.next_dial,
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "peers_tests.rs"]
mod tests;
