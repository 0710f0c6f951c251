//! One authenticated connection. [`Conn`] is the handle the node keeps: it checks a
//! call or send against the peer's limits, takes send-queue budget (backpressure) and
//! passes a command to the connection's one task, the driver (`driver.rs`), which owns
//! the socket and the sans-IO connection machine (`peernet_proto::connection`).
//! Handlers run off the driver (`serve.rs`); the handshake over a socket is in
//! `handshake.rs`.

mod close;
mod driver;
pub(crate) mod handshake;
mod pending;
mod serve;
mod stream;
mod stream_buf;
mod stream_handler;
mod streams;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use peernet_proto::channel::TAG_LEN;
use peernet_proto::connection::{CallId, CallOutcome};
use peernet_proto::envelope::{Envelope, GoodbyeReason};
use peernet_proto::hello::Hello;
use peernet_proto::Key;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::{CloseReason, Error, Result};
use crate::handlers::{Handler, Revoked};
use crate::metrics::{CallTiming, Counters, HandlerCounters};
use crate::rpc::RpcDispatcher;
use pending::{Callback, Waiter};

pub(crate) use close::CloseCause;
pub(crate) use driver::{machine_config, spawn_connection, Setup};
pub(crate) use pending::CallbackFn;
pub use stream::Stream;
pub use stream_handler::StreamHandler;
pub(crate) use stream_handler::StreamRegistry;

/// Locks a mutex, ignoring poisoning (every critical section here leaves the data
/// consistent; a panic elsewhere must not take the node down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a connection needs from its node: handlers, RPC rights, metrics counters,
/// registration and word of its end. The node implements it (`admission.rs`); this
/// module never sees the node itself.
pub(crate) trait Host: Send + Sync + 'static {
    /// The handler exposed as `name`, with its counters.
    fn handler(&self, name: &str) -> Option<(Handler, Arc<HandlerCounters>)>;
    /// The stream handler exposed as `name`.
    fn stream_handler(&self, name: &str) -> Option<StreamHandler>;
    /// Whether `peer` may use RPC here, and the dispatcher that serves it.
    fn rpc(&self, peer: &Key) -> RpcAccess;
    /// The node-wide metrics counters.
    fn counters(&self) -> &Counters;
    /// Registers an authenticated connection before its driver runs, or refuses it.
    fn opened(&self, conn: &Arc<Conn>) -> Result<()>;
    /// The peer said Goodbye 1 on `conn`: it keeps another connection (spec 5.1).
    fn peer_draining(&self, conn: &Arc<Conn>);
    /// The connection's driver ended, for `cause`.
    fn closed(self: Arc<Self>, conn: &Arc<Conn>, cause: CloseCause);
}

/// [`Host::rpc`]: spec 6 checks rights first, then whether a dispatcher is set.
pub(crate) enum RpcAccess {
    /// The peer has no RPC rights here.
    Forbidden,
    /// It has, but the program set no dispatcher.
    NoDispatcher,
    /// It has; this dispatcher serves it.
    Allowed(RpcDispatcher),
}

/// What a [`Conn`] asks its driver to do. Each command that queues bytes carries the
/// send-queue budget it took; the driver holds it until those bytes are written.
pub(crate) enum Cmd {
    /// Start a call that fails with `Timeout` at `deadline`.
    Call {
        name: String,
        body: Vec<u8>,
        deadline: Instant,
        waiter: Waiter,
        budget: Option<OwnedSemaphorePermit>,
    },
    /// A fire-and-forget send.
    Send {
        name: String,
        body: Vec<u8>,
        budget: Option<OwnedSemaphorePermit>,
    },
    /// A handler's answer to the peer's call `id`.
    Reply {
        id: CallId,
        outcome: CallOutcome,
        budget: Option<OwnedSemaphorePermit>,
        /// The call's timing, recorded when the driver queues the answer.
        timing: Option<CallTiming>,
    },
    /// Close after a Goodbye with this reason.
    Close(GoodbyeReason),
    /// Spec 5.1: drain as the losing duplicate, closing by `deadline` at the latest.
    Drain(Duration),
    /// Open a stream to the peer's stream handler `name`.
    OpenStream {
        name: String,
        reply: oneshot::Sender<Result<Stream>>,
    },
    /// A stream's handle changed something (wrote, read, finished, reset, dropped).
    StreamPoke(u64),
}

/// Per-connection counters (relaxed atomics; read by `peers()`).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub calls_served: AtomicU64,
    pub errors: AtomicU64,
    // Counted only when `NodeConfig::metrics` is on (see `crate::metrics`).
    pub calls_in: AtomicU64,
    pub calls_out: AtomicU64,
    pub sends_in: AtomicU64,
    pub sends_out: AtomicU64,
    pub overloaded: AtomicU64,
}

impl Stats {
    /// Adds 1 to `c` when counting is on (the one call sites use: easy to port).
    pub(crate) fn count(&self, on: bool, c: &AtomicU64) {
        if on {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// [`Stats::count`] for a counter only the connection's driver writes (`calls_in`,
    /// `sends_in`): a plain load and store, no locked read-modify-write, since no
    /// other thread adds to it (readers see it whole either way).
    pub(crate) fn count_driver(&self, on: bool, c: &AtomicU64) {
        if on {
            c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
    }
}

/// Static facts about a connection, fixed at the handshake.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub id: u64,
    pub peer: Key,
    /// The static key of the side that dialed (spec 5.1 keeps the smaller one).
    pub initiator: Key,
    pub outbound: bool,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub peer_hello: Hello,
    /// The Noise handshake hash (both ends have the same: verification words).
    pub handshake_hash: [u8; 32],
}

impl ConnInfo {
    /// Where the peer accepts connections: the address we dialed, or, for a connection
    /// it dialed, its source IP with the port its Hello names (its source port is an
    /// ephemeral one). `None` when it dialed us and listens nowhere.
    pub(crate) fn listen_addr(&self) -> Option<SocketAddr> {
        if self.outbound {
            Some(self.remote)
        } else if self.peer_hello.listen_port != 0 {
            Some(SocketAddr::new(
                self.remote.ip(),
                self.peer_hello.listen_port,
            ))
        } else {
            None
        }
    }
}

/// The handle to one live connection.
pub(crate) struct Conn {
    pub info: ConnInfo,
    cmds: mpsc::UnboundedSender<Cmd>,
    /// Bytes of calls, sends and replies queued and not yet written (backpressure).
    queue_bytes: Arc<Semaphore>,
    queue_cap: usize,
    send_timeout: Duration,
    /// Serving side: calls being handled now, bounded.
    pub(crate) serving: Arc<Semaphore>,
    /// Serving side: bytes of request bodies held by running handlers and queued sends.
    inbound_bytes: Arc<Semaphore>,
    inbound_cap: usize,
    /// The first close this node asked for, recorded before its Goodbye is queued (so
    /// before the peer can react to it); the cause of the calls the close fails.
    intent: Mutex<Option<CloseCause>>,
    /// Why it closed, once the driver ended it.
    closed: Mutex<Option<CloseReason>>,
    closing: AtomicBool,
    /// Spec 5.1: this connection lost to a duplicate; no new calls start on it.
    draining: AtomicBool,
    pub(crate) stats: Stats,
    /// The node's metrics switch (`NodeConfig::metrics`, `Node::set_metrics`).
    metrics: Arc<AtomicBool>,
    rtt_us: AtomicU32,
    /// Set by `untrust` (under the peer-table lock): the driver dispatches nothing more
    /// and no handler of this peer starts.
    pub(crate) revoked: Revoked,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.info.id)
            .field("peer", &self.info.peer)
            .field("remote", &self.info.remote)
            .field("local", &self.info.local)
            .finish()
    }
}

/// Limits a connection is created with.
#[derive(Debug, Clone)]
pub(crate) struct ConnLimits {
    pub queue_bytes: usize,
    pub send_timeout: Duration,
    pub max_concurrent_calls: usize,
    pub inbound_bytes: usize,
    /// The node's metrics switch.
    pub metrics: Arc<AtomicBool>,
}

impl Conn {
    pub(crate) fn new(
        info: ConnInfo,
        limits: ConnLimits,
    ) -> (Arc<Conn>, mpsc::UnboundedReceiver<Cmd>) {
        let (cmds, rx) = mpsc::unbounded_channel();
        let cap = limits.queue_bytes.clamp(1, Semaphore::MAX_PERMITS);
        let inbound_cap = limits.inbound_bytes.clamp(1, Semaphore::MAX_PERMITS);
        let conn = Arc::new(Conn {
            info,
            cmds,
            queue_bytes: Arc::new(Semaphore::new(cap)),
            queue_cap: cap,
            send_timeout: limits.send_timeout,
            serving: Arc::new(Semaphore::new(limits.max_concurrent_calls)),
            inbound_bytes: Arc::new(Semaphore::new(inbound_cap)),
            inbound_cap,
            intent: Mutex::new(None),
            closed: Mutex::new(None),
            closing: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            stats: Stats::default(),
            metrics: limits.metrics,
            rtt_us: AtomicU32::new(0),
            revoked: Revoked::default(),
        });
        (conn, rx)
    }

    /// The `Closed` error of an operation that found this connection ended: why it
    /// ended (the cause recorded when it closed, or the one asked for by `close`).
    /// Whether the metrics counters are kept now.
    pub(crate) fn metrics(&self) -> bool {
        self.metrics.load(Ordering::Relaxed)
    }

    pub(crate) fn closed_error(&self) -> Error {
        if let Some(r) = lock(&self.closed).as_ref() {
            return Error::Closed(r.clone());
        }
        let asked = lock(&self.intent).as_ref().map(CloseCause::reason);
        Error::Closed(asked.unwrap_or(CloseReason::Local("connection closed".into())))
    }

    /// Largest frame body the peer accepts.
    fn peer_limit(&self) -> usize {
        self.info.peer_hello.max_frame_len as usize
    }

    /// Checks an envelope against the peer's frame limit; `payload` is the length of
    /// the caller's bytes in it, for the error. Returns its sealed length.
    fn check_size(&self, env: &Envelope<'_>, payload: usize) -> Result<usize> {
        let len = env.encoded_len() + TAG_LEN;
        if len > self.peer_limit() {
            return Err(Error::PayloadTooLarge {
                len: payload,
                limit: self.peer_limit(),
                overhead: len.saturating_sub(payload),
            });
        }
        Ok(len)
    }

    /// Send-queue budget for `len` bytes, waiting for it (backpressure). A frame larger
    /// than the whole budget takes all of it (so it still goes, alone).
    async fn budget(&self, len: usize) -> Result<OwnedSemaphorePermit> {
        let need = len.clamp(1, self.queue_cap) as u32;
        Arc::clone(&self.queue_bytes)
            .acquire_many_owned(need)
            .await
            .map_err(|_| self.closed_error())
    }

    /// Budget for `len` bytes if there is room now.
    fn try_budget(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let need = len.clamp(1, self.queue_cap) as u32;
        Arc::clone(&self.queue_bytes)
            .try_acquire_many_owned(need)
            .ok()
    }

    fn command(&self, cmd: Cmd) -> std::result::Result<(), Cmd> {
        self.cmds.send(cmd).map_err(|e| e.0)
    }

    /// The driver's command sender, for a stream handle to poke it.
    pub(crate) fn stream_sender(&self) -> mpsc::UnboundedSender<Cmd> {
        self.cmds.clone()
    }

    /// Opens a stream to the peer's stream handler `name` (the driver answers at once).
    pub(crate) async fn open_stream(&self, name: &str) -> Result<Stream> {
        if self.is_draining() {
            return Err(Error::Closed(CloseReason::Duplicate));
        }
        let (reply, answer) = oneshot::channel();
        let cmd = Cmd::OpenStream {
            name: name.to_owned(),
            reply,
        };
        if self.command(cmd).is_err() {
            return Err(self.closed_error());
        }
        answer.await.unwrap_or_else(|_| Err(self.closed_error()))
    }

    /// Starts a call and waits for its reply.
    pub(crate) async fn call(&self, name: &str, body: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let len = self.check_size(&Envelope::Call { id: 0, name, body }, body.len())?;
        self.stats.count(self.metrics(), &self.stats.calls_out);
        let enqueue_deadline = deadline.min(Instant::now() + self.send_timeout);
        let budget = match tokio::time::timeout_at(enqueue_deadline, self.budget(len)).await {
            Err(_) if enqueue_deadline < deadline => return Err(Error::Overloaded),
            Err(_) => return Err(Error::Timeout),
            Ok(r) => r?,
        };
        let (tx, rx) = oneshot::channel();
        let cmd = Cmd::Call {
            name: name.to_owned(),
            body: body.to_vec(),
            deadline,
            waiter: Waiter::Task(tx),
            budget: Some(budget),
        };
        self.command(cmd).map_err(|_| self.closed_error())?;
        // The driver expires the call at `deadline`; this bound holds even if it
        // cannot (a driver that ended without answering drops the sender: `Closed`).
        match tokio::time::timeout_at(deadline + Duration::from_millis(100), rx).await {
            Err(_) => Err(Error::Timeout),
            Ok(Err(_)) => Err(self.closed_error()),
            Ok(Ok(r)) => r,
        }
    }

    /// Starts a call without a task: `done` runs exactly once, never on the calling
    /// thread before this returns — with the reply or `Timeout` (on the driver), or
    /// `Closed`. Must be called inside the runtime. When the send queue is full it
    /// falls back to a task running [`Conn::call`], which waits for queue space like
    /// every other call.
    pub(crate) fn call_with(
        self: &Arc<Self>,
        name: &str,
        body: &[u8],
        timeout: Duration,
        done: CallbackFn,
    ) {
        let deadline = Instant::now() + timeout;
        let len = match self.check_size(&Envelope::Call { id: 0, name, body }, body.len()) {
            Ok(l) => l,
            Err(e) => return deliver_later(done, Err(e)),
        };
        let Some(budget) = self.try_budget(len) else {
            // Queue full (or closed): wait for space in a task, like `call`.
            let conn = Arc::clone(self);
            let (name, body) = (name.to_owned(), body.to_vec());
            tokio::spawn(async move {
                let r = conn.call(&name, &body, timeout).await;
                Callback::new(done).run(r);
            });
            return;
        };
        self.stats.count(self.metrics(), &self.stats.calls_out);
        let cmd = Cmd::Call {
            name: name.to_owned(),
            body: body.to_vec(),
            deadline,
            waiter: Waiter::Callback(Callback::new(done)),
            budget: Some(budget),
        };
        if let Err(Cmd::Call { waiter, .. }) = self.command(cmd) {
            let e = self.closed_error();
            tokio::spawn(async move { waiter.finish(Err(e)) });
        }
    }

    /// Queues a fire-and-forget send.
    pub(crate) async fn send(&self, name: &str, body: &[u8]) -> Result<()> {
        self.stats.count(self.metrics(), &self.stats.sends_out);
        let len = self.check_size(&Envelope::Send { name, body }, body.len())?;
        let budget = tokio::time::timeout(self.send_timeout, self.budget(len))
            .await
            .map_err(|_| Error::Overloaded)??;
        let cmd = Cmd::Send {
            name: name.to_owned(),
            body: body.to_vec(),
            budget: Some(budget),
        };
        self.command(cmd).map_err(|_| self.closed_error())
    }

    /// Queues the answer to the peer's call `id`, waiting for send-queue space. Replies
    /// are bounded by the caller's `max_frame` (from its Hello): one too large for it
    /// becomes `HandlerFailed("reply too large: ...")` naming the size and the limit, so
    /// the caller learns why (the connection stays).
    pub(crate) async fn reply(&self, id: CallId, outcome: CallOutcome, timing: Option<CallTiming>) {
        let payload = match &outcome {
            CallOutcome::Ok(v) => v.len(),
            CallOutcome::HandlerFailed(m) => m.len(),
            _ => 0,
        };
        let env = Envelope::Reply {
            id: id.0,
            outcome: outcome.as_wire(),
        };
        let (outcome, len) = match self.check_size(&env, payload) {
            Ok(len) => (outcome, len),
            Err(e) => {
                let msg = match e {
                    Error::PayloadTooLarge {
                        len,
                        limit,
                        overhead,
                    } => format!(
                        "reply too large: the handler returned {len} bytes, but this \
                         caller's max_frame is {limit} bytes (at most {} reply bytes fit); \
                         return less, or raise max_frame on the caller",
                        limit.saturating_sub(overhead)
                    ),
                    other => format!("reply too large: {other}"),
                };
                tracing::debug!(peer = %self.info.peer.fingerprint(), %msg, "reply replaced");
                let len = msg.len() + 64;
                (CallOutcome::HandlerFailed(msg), len)
            }
        };
        let Ok(budget) = self.budget(len).await else {
            return;
        };
        let _ = self.command(Cmd::Reply {
            id,
            outcome,
            budget: Some(budget),
            timing,
        });
    }

    /// Asks the connection to close, after a Goodbye with `reason`.
    pub(crate) fn close(&self, reason: GoodbyeReason, cause: CloseCause) {
        lock(&self.intent).get_or_insert(cause);
        self.closing.store(true, Ordering::Release);
        let _ = self.command(Cmd::Close(reason));
    }

    /// The peer's trust was revoked: nothing more is dispatched or started for it, and
    /// the connection closes with Goodbye 2.
    pub(crate) fn revoke(&self) {
        self.revoked.set();
        self.close(
            GoodbyeReason::TrustRevoked,
            CloseCause::Local("trust revoked".into()),
        );
    }

    /// The close this node asked for, if it asked (see `intent`).
    pub(crate) fn close_intent(&self) -> Option<CloseCause> {
        lock(&self.intent).clone()
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Whether [`Conn::drain`] was called (this side resolved it as a losing duplicate).
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Spec 5.1 on the losing connection: no new calls start here (the caller already
    /// routes elsewhere); our outstanding calls finish or time out; then Goodbye 1. The
    /// connection closes once the peer has said Goodbye 1 too and every call it made
    /// here has been answered — or at `cap`.
    pub(crate) fn drain(&self, cap: Duration) {
        if !self.draining.swap(true, Ordering::AcqRel) {
            let _ = self.command(Cmd::Drain(cap));
        }
    }

    /// Permits for a request body of `len` bytes, if the inbound budget has room now.
    pub(crate) fn try_inbound(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let need = len.clamp(1, self.inbound_cap) as u32;
        Arc::clone(&self.inbound_bytes)
            .try_acquire_many_owned(need)
            .ok()
    }

    /// The inbound budget and the permits a body of `len` bytes needs, to wait for.
    pub(crate) fn inbound_need(&self, len: usize) -> (Arc<Semaphore>, u32) {
        (
            Arc::clone(&self.inbound_bytes),
            len.clamp(1, self.inbound_cap) as u32,
        )
    }

    pub(crate) fn set_rtt(&self, rtt: Duration) {
        let us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX).max(1);
        self.rtt_us.store(us, Ordering::Relaxed);
    }

    pub(crate) fn rtt_us(&self) -> u32 {
        self.rtt_us.load(Ordering::Relaxed)
    }

    /// The driver ended the connection: records why, refuses every later command and
    /// fails what waits for send-queue space.
    fn mark_closed(&self, reason: CloseReason) {
        lock(&self.closed).get_or_insert(reason);
        self.closing.store(true, Ordering::Release);
        self.queue_bytes.close();
        self.inbound_bytes.close();
    }
}

/// Runs `done` with `result` on a runtime task (never on the thread that started the
/// call, which may hold a lock the callback takes).
pub(crate) fn deliver_later(done: CallbackFn, result: Result<Vec<u8>>) {
    let cb = Callback::new(done);
    tokio::spawn(async move { cb.run(result) });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn info(outbound: bool, remote: &str, listen_port: u16) -> ConnInfo {
        ConnInfo {
            id: 1,
            peer: Key::from_bytes([2; 32]),
            initiator: Key::from_bytes([2; 32]),
            outbound,
            remote: remote.parse().unwrap(),
            local: "127.0.0.1:4000".parse().unwrap(),
            peer_hello: Hello::new(1 << 20, listen_port),
            handshake_hash: [0; 32],
        }
    }

    #[test]
    fn listen_addr_of_outbound_and_inbound_connections() {
        let a: SocketAddr = "127.0.0.2:7002".parse().unwrap();
        assert_eq!(info(true, "127.0.0.2:7002", 7002).listen_addr(), Some(a));
        // It dialed us from an ephemeral port: its Hello names where it listens.
        assert_eq!(info(false, "127.0.0.2:51234", 7002).listen_addr(), Some(a));
        assert_eq!(info(false, "127.0.0.2:51234", 0).listen_addr(), None);
    }
}
