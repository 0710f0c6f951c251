//! Dialing: connect + handshake + registration, and `connect`'s redials; the helpers
//! the accept loop (`listen.rs`) shares with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peernet_proto::Key;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::conn::handshake::{self, Established};
use crate::conn::{lock, machine_config, spawn_connection, Conn, Host, Setup};
use crate::error::{CloseReason, Error, Result};
use crate::metrics::HandshakeResult;
use crate::shared::Shared;

/// The metrics result of a handshake that failed with `e`.
pub(crate) fn handshake_error(e: &Error) -> HandshakeResult {
    match e {
        Error::UntrustedPeer(_) => HandshakeResult::Untrusted,
        _ => HandshakeResult::Failed,
    }
}

/// The metrics result of registering an authenticated connection.
pub(crate) fn registration<T>(r: &Result<T>) -> HandshakeResult {
    match r {
        Ok(_) => HandshakeResult::Ok,
        Err(Error::UntrustedPeer(_)) => HandshakeResult::Untrusted,
        Err(Error::Closed(_)) => HandshakeResult::Failed,
        Err(_) => HandshakeResult::Refused,
    }
}

/// The node as its connections' host.
pub(crate) fn host_of(shared: &Arc<Shared>) -> Arc<dyn Host> {
    Arc::clone(shared) as Arc<dyn Host>
}

/// The setup of a connection this node is registering.
pub(crate) fn setup(shared: &Shared, outbound: bool, remote: SocketAddr) -> Setup {
    let c = &shared.config;
    Setup {
        id: shared.next_conn_id(),
        me: shared.identity.public(),
        outbound,
        remote,
        limits: crate::conn::ConnLimits {
            queue_bytes: c.send_queue_bytes,
            send_timeout: c.send_timeout,
            max_concurrent_calls: c.max_concurrent_calls,
            inbound_bytes: c.max_inbound_bytes,
            metrics: shared.counters.switch(),
        },
    }
}

/// Counts a dial in progress in the peer table (`PeerState::Connecting`).
struct Dialing(Arc<Shared>, Key);

impl Drop for Dialing {
    fn drop(&mut self) {
        let mut peers = lock(&self.0.peers);
        let e = peers.entry(self.1);
        e.dialing = e.dialing.saturating_sub(1);
    }
}

/// The dials of one auto-connect round that may send M3: one at a time. The first to
/// get past M2 holds it; it passes to a waiting dial only if the holder fails, so a
/// round that races several addresses of a peer commits the peer to one connection,
/// not one per address.
pub(crate) type Gate = Arc<Semaphore>;

/// A new [`Gate`].
pub(crate) fn gate() -> Gate {
    Arc::new(Semaphore::new(1))
}

/// Dials and authenticates; registers the connection. The attempt is recorded as the
/// peer's `last_dial` (why it is not connected). With `gate`, M3 waits for it.
///
/// Dropping the future before M3 leaves nothing behind; from M3 on the dial finishes
/// in a task of its own (confirmation, registration), whoever stops waiting for it:
/// the responder may have registered the connection already, and a dial cut off there
/// would leave it one that dies at once.
pub(crate) async fn dial(
    shared: &Arc<Shared>,
    key: Key,
    addr: SocketAddr,
    timeout: Duration,
    gate: Option<&Gate>,
) -> Result<Arc<Conn>> {
    let r = dial_once(shared, key, addr, timeout, gate).await;
    crate::metrics_peer::note_dial(shared, key, addr, &r);
    r
}

async fn dial_once(
    shared: &Arc<Shared>,
    key: Key,
    addr: SocketAddr,
    timeout: Duration,
    gate: Option<&Gate>,
) -> Result<Arc<Conn>> {
    lock(&shared.peers).entry(key).dialing += 1;
    let dialing = Dialing(Arc::clone(shared), key);
    let deadline = Instant::now() + timeout;
    let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => return Err(Error::Timeout),
        Ok(Err(e)) => return Err(Error::io(format!("connecting to {addr}"), e)),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let hs_deadline = deadline.min(Instant::now() + shared.config.handshake_timeout);
    let trusted = |k: &Key| shared.is_trusted(k);
    let offered = async {
        let offered =
            handshake::offer(stream, &shared.identity, &shared.hello, Some(key), trusted).await?;
        let permit = match gate {
            Some(g) => Some(
                Arc::clone(g)
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::HandshakeFailed("the dial round ended".into()))?,
            ),
            None => None,
        };
        Ok((offered, permit))
    };
    let timed = tokio::time::timeout_at(hs_deadline, offered).await;
    let (offered, permit) = in_time(shared, timed, hs_deadline < deadline)?;
    let s = Arc::clone(shared);
    let finish = shared.rt.spawn(async move {
        let _dialing = dialing;
        let config = machine_config(&s.config);
        let timed = tokio::time::timeout_at(hs_deadline, offered.commit(config)).await;
        let est: Established = in_time(&s, timed, hs_deadline < deadline)?;
        if s.is_shutting_down() {
            return Err(Error::Closed(CloseReason::LocalShutdown));
        }
        // Registration checks trust again: the peer chose when to confirm (spec 3.4),
        // and it may have been untrusted meanwhile.
        let r = spawn_connection(host_of(&s), est, setup(&s, true, addr));
        s.counters.handshake(registration(&r));
        if let (Ok(_), Some(p)) = (&r, permit) {
            // Keeps the round's gate shut: the round ends with this dial.
            p.forget();
        }
        r
    });
    finish
        .await
        .map_err(|e| Error::HandshakeFailed(format!("dial task ended: {e}")))?
}

/// The result of a handshake phase that had until the handshake deadline, counted in
/// the metrics when it failed. `short`: that deadline came before the dial's own.
fn in_time<T>(
    shared: &Shared,
    timed: std::result::Result<Result<T>, tokio::time::error::Elapsed>,
    short: bool,
) -> Result<T> {
    let counters = &shared.counters;
    match timed {
        Err(_) => {
            counters.handshake(HandshakeResult::Timeout);
            Err(if short {
                Error::HandshakeFailed("handshake timed out".into())
            } else {
                Error::Timeout
            })
        }
        Ok(r) => r.inspect_err(|e| counters.handshake(handshake_error(e))),
    }
}

/// First pause of `connect` between two dials of a peer that is not up yet.
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(50);
/// Longest pause of `connect` between two dials.
const CONNECT_RETRY_MAX: Duration = Duration::from_secs(1);

/// Whether a failed dial means nothing listens there yet (worth dialing again): the
/// connection was refused, or there is no route (yet) to the host or network.
fn not_up_yet(e: &Error) -> bool {
    // By errno: `ErrorKind::HostUnreachable` is newer than the crate's rust-version.
    matches!(e, Error::Io { source, .. }
        if source.kind() == std::io::ErrorKind::ConnectionRefused
            || matches!(source.raw_os_error(), Some(libc::EHOSTUNREACH | libc::ENETUNREACH)))
}

/// `Node::connect`: [`dial`], dialed again after 50 ms doubling to 1 s while the peer
/// is not up yet, until `timeout`; a handshake failure ends it at once.
pub(crate) async fn dial_until(
    shared: &Arc<Shared>,
    key: Key,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Arc<Conn>> {
    let deadline = Instant::now() + timeout;
    let mut pause = CONNECT_RETRY_FIRST;
    let mut refused = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = match dial(shared, key, addr, left, None).await {
            Err(e) if not_up_yet(&e) => e,
            other => return other,
        };
        refused += 1;
        shared
            .refused_dials
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if Instant::now() + pause >= deadline || shared.is_shutting_down() {
            let Error::Io { source, .. } = e else {
                return Err(e);
            };
            return Err(Error::io(
                format!(
                    "connecting to {addr} (dialed {refused} times in {timeout:?}; is the \
                     peer running and listening there?)"
                ),
                source,
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(CONNECT_RETRY_MAX);
        // The peer came up and dialed us meanwhile: that connection will do.
        if let Some(c) = lock(&shared.peers).route(&key) {
            return Ok(c);
        }
    }
}
