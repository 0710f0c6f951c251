//! One authenticated connection: the shared handle (`Conn`) used to start calls and
//! sends, its pending-call table and send queue. The tasks that drive the socket live in
//! `reader.rs` and `writer.rs`; the handshake over a socket in `handshake.rs`.

mod close;
pub(crate) mod handshake;
mod pending;
mod reader;
mod writer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use peernet_proto::channel::TAG_LEN;
use peernet_proto::envelope::{Envelope, GoodbyeReason};
use peernet_proto::frame::HEADER_LEN;
use peernet_proto::hello::Hello;
use peernet_proto::Key;
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::{CloseReason, Error, Result};
use crate::handlers::Revoked;
use pending::{Callback, Pending, Waiter};

pub(crate) use close::CloseCause;
pub(crate) use pending::CallbackFn;
pub(crate) use reader::spawn_connection;

/// Locks a mutex, ignoring poisoning (every critical section here leaves the data
/// consistent; a panic elsewhere must not take the node down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An envelope encoded for the writer: `HEADER_LEN` bytes of room for the frame header,
/// then the plaintext, with capacity for the tag, so that a large frame can be sealed
/// where it is and written without another copy. Only [`Plain::encode`] makes one, so
/// the writer never gets bytes without the header room.
pub(crate) struct Plain(Vec<u8>);

impl Plain {
    /// Encodes `env` (`len` is its encoded length).
    pub(crate) fn encode(env: &Envelope<'_>, len: usize) -> Plain {
        let mut v = Vec::with_capacity(HEADER_LEN + len + TAG_LEN);
        v.extend_from_slice(&[0; HEADER_LEN]);
        env.encode_into(&mut v);
        Plain(v)
    }

    /// Header room and plaintext, for the writer to seal.
    pub(crate) fn into_frame(self) -> Vec<u8> {
        self.0
    }

    /// Bytes held (header room included).
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// What the writer task is asked to do.
pub(crate) enum Out {
    /// An encoded envelope to seal and write; the permit holds its bytes against the
    /// connection's send-queue budget until it is written.
    Frame(Plain, Option<OwnedSemaphorePermit>),
    /// Flush what came before, shut the socket's write side down and stop.
    Close,
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
    queue: mpsc::UnboundedSender<Out>,
    queue_bytes: Arc<Semaphore>,
    queue_cap: usize,
    send_timeout: Duration,
    pending: Mutex<Pending>,
    pending_empty: Notify,
    /// A callback call got a deadline earlier than every other one.
    deadline_moved: Notify,
    next_id: AtomicU64,
    close_tx: watch::Sender<Option<CloseCause>>,
    /// The first close this node asked for, recorded before its Goodbye is queued (so
    /// before the peer can react to it); the cause of the calls the close fails.
    intent: Mutex<Option<CloseCause>>,
    /// Serving side: calls being handled now, bounded.
    pub(crate) serving: Arc<Semaphore>,
    serving_cap: usize,
    /// Serving side: bytes of request bodies held by running handlers and queued sends.
    inbound_bytes: Arc<Semaphore>,
    inbound_cap: usize,
    /// Spec 5.1: this connection lost to a duplicate; no new calls start on it.
    draining: AtomicBool,
    /// The peer said Goodbye 1 (it starts no new calls here).
    peer_goodbye: AtomicBool,
    peer_goodbye_notify: Notify,
    pub(crate) stats: Stats,
    /// `NodeConfig::metrics`: whether the metrics counters are kept.
    pub(crate) metrics: bool,
    rtt_us: AtomicU32,
    /// Set by `untrust` (under the peer-table lock): the reader dispatches nothing more
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
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub queue_bytes: usize,
    pub send_timeout: Duration,
    pub max_concurrent_calls: usize,
    pub inbound_bytes: usize,
    /// `NodeConfig::metrics`.
    pub metrics: bool,
}

impl Conn {
    pub(crate) fn new(
        info: ConnInfo,
        limits: ConnLimits,
    ) -> (
        Arc<Conn>,
        mpsc::UnboundedReceiver<Out>,
        watch::Receiver<Option<CloseCause>>,
    ) {
        let (queue, rx) = mpsc::unbounded_channel();
        let (close_tx, close_rx) = watch::channel(None);
        let cap = limits.queue_bytes.min(Semaphore::MAX_PERMITS);
        let inbound_cap = limits.inbound_bytes.min(Semaphore::MAX_PERMITS);
        let conn = Arc::new(Conn {
            info,
            queue,
            queue_bytes: Arc::new(Semaphore::new(cap)),
            queue_cap: cap,
            send_timeout: limits.send_timeout,
            pending: Mutex::new(Pending::default()),
            pending_empty: Notify::new(),
            deadline_moved: Notify::new(),
            next_id: AtomicU64::new(1),
            close_tx,
            intent: Mutex::new(None),
            serving: Arc::new(Semaphore::new(limits.max_concurrent_calls)),
            serving_cap: limits.max_concurrent_calls,
            inbound_bytes: Arc::new(Semaphore::new(inbound_cap)),
            inbound_cap,
            draining: AtomicBool::new(false),
            peer_goodbye: AtomicBool::new(false),
            peer_goodbye_notify: Notify::new(),
            stats: Stats::default(),
            metrics: limits.metrics,
            rtt_us: AtomicU32::new(0),
            revoked: Revoked::default(),
        });
        (conn, rx, close_rx)
    }

    /// The `Closed` error of an operation that found this connection ended: why it
    /// ended (the cause recorded when it closed, or the one asked for by `close`).
    pub(crate) fn closed_error(&self) -> Error {
        if let Some(r) = &lock(&self.pending).closed {
            return Error::Closed(r.clone());
        }
        let asked = self.close_tx.borrow().as_ref().map(CloseCause::reason);
        Error::Closed(asked.unwrap_or(CloseReason::Local("connection closed".into())))
    }

    /// Largest frame body the peer accepts.
    fn peer_limit(&self) -> usize {
        self.info.peer_hello.max_frame_len as usize
    }

    /// Encodes an envelope for this peer, refusing one over its frame limit.
    /// `payload` is the length of the caller's bytes in it, for the error.
    pub(crate) fn encode(&self, env: &Envelope<'_>, payload: usize) -> Result<Plain> {
        let len = env.encoded_len();
        if len + TAG_LEN > self.peer_limit() {
            return Err(Error::PayloadTooLarge {
                len: payload,
                limit: self.peer_limit(),
                overhead: (len + TAG_LEN).saturating_sub(payload),
            });
        }
        Ok(Plain::encode(env, len))
    }

    /// Queues an encoded envelope, waiting for send-queue space (backpressure).
    pub(crate) async fn enqueue(&self, plaintext: Plain) -> Result<()> {
        // Clamp so a frame bigger than the whole budget still goes (alone).
        let need = plaintext.len().clamp(1, self.queue_cap) as u32;
        let permit = Arc::clone(&self.queue_bytes)
            .acquire_many_owned(need)
            .await
            .map_err(|_| self.closed_error())?;
        self.queue
            .send(Out::Frame(plaintext, Some(permit)))
            .map_err(|_| self.closed_error())
    }

    /// Queues a small control envelope (Ping, Pong, Goodbye) without waiting.
    pub(crate) fn enqueue_control(&self, env: &Envelope<'_>) {
        let v = Plain::encode(env, env.encoded_len());
        let _ = self.queue.send(Out::Frame(v, None));
    }

    /// Starts a call and waits for its reply.
    pub(crate) async fn call(&self, name: &str, body: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(&Envelope::Call { id, name, body }, body.len())?;
        self.stats.count(self.metrics, &self.stats.calls_out);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = lock(&self.pending);
            if let Some(r) = &p.closed {
                return Err(Error::Closed(r.clone()));
            }
            p.insert(id, Waiter::Task(tx));
        }
        // Removes the entry however this future ends (timeout, error, cancellation).
        let _guard = PendingGuard { conn: self, id };
        let enqueue_deadline = deadline.min(Instant::now() + self.send_timeout);
        match tokio::time::timeout_at(enqueue_deadline, self.enqueue(frame)).await {
            Err(_) if enqueue_deadline < deadline => return Err(Error::Overloaded),
            Err(_) => return Err(Error::Timeout),
            Ok(r) => r?,
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Err(_) => Err(Error::Timeout),
            Ok(Err(_)) => Err(self.closed_error()),
            Ok(Ok(r)) => r.map_err(|e| e.for_handler(name)),
        }
    }

    /// Starts a call without a task: `done` runs exactly once, never on the calling
    /// thread before this returns — with the reply (on the reader task), `Timeout` (on
    /// this connection's expiry task), or `Closed`. Must be called inside the runtime.
    /// When the send queue is full it falls back to a task running [`Conn::call`], which
    /// waits for queue space like every other call.
    pub(crate) fn call_with(
        self: &Arc<Self>,
        name: &str,
        body: &[u8],
        timeout: Duration,
        done: CallbackFn,
    ) {
        let deadline = Instant::now() + timeout;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = match self.encode(&Envelope::Call { id, name, body }, body.len()) {
            Ok(f) => f,
            Err(e) => return deliver_later(done, Err(e)),
        };
        // The Reply does not repeat the name: `NoSuchHandler` gets it here.
        let asked = name.to_owned();
        let done: CallbackFn = Box::new(move |r| done(r.map_err(|e| e.for_handler(&asked))));
        let need = frame.len().clamp(1, self.queue_cap) as u32;
        let Ok(permit) = Arc::clone(&self.queue_bytes).try_acquire_many_owned(need) else {
            // Queue full (or closed): wait for space in a task, like `call`.
            let conn = Arc::clone(self);
            let (name, body) = (name.to_owned(), body.to_vec());
            tokio::spawn(async move {
                let r = conn.call(&name, &body, timeout).await;
                Callback::new(done).run(r);
            });
            return;
        };
        self.stats.count(self.metrics, &self.stats.calls_out);
        {
            let mut p = lock(&self.pending);
            if let Some(r) = &p.closed {
                let e = Error::Closed(r.clone());
                drop(p);
                return deliver_later(done, Err(e));
            }
            if p.insert(id, Waiter::Callback(Callback::new(done), deadline)) {
                self.deadline_moved.notify_one();
            }
        }
        if self.queue.send(Out::Frame(frame, Some(permit))).is_err() {
            if let Some(w) = self.remove_pending(id) {
                let e = self.closed_error();
                tokio::spawn(async move { w.finish(Err(e)) });
            }
        }
    }

    /// Fails the callback calls whose deadline passed with `Timeout`; runs as long as
    /// the connection does (one timer per connection, not one per call).
    pub(crate) async fn expire_calls(&self) {
        loop {
            let moved = self.deadline_moved.notified();
            let next = lock(&self.pending).next_deadline();
            match next {
                None => moved.await,
                Some(at) => {
                    tokio::select! {
                        _ = moved => {}
                        _ = tokio::time::sleep_until(at) => {
                            let expired = {
                                let mut p = lock(&self.pending);
                                let expired = p.expired(Instant::now());
                                if !expired.is_empty() && p.is_empty() {
                                    // As `remove_pending`: a draining duplicate waits
                                    // for the table to empty.
                                    self.pending_empty.notify_waiters();
                                }
                                expired
                            };
                            for w in expired {
                                w.finish(Err(Error::Timeout));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Queues a fire-and-forget send.
    pub(crate) async fn send(&self, name: &str, body: &[u8]) -> Result<()> {
        self.stats.count(self.metrics, &self.stats.sends_out);
        let frame = self.encode(&Envelope::Send { name, body }, body.len())?;
        tokio::time::timeout(self.send_timeout, self.enqueue(frame))
            .await
            .map_err(|_| Error::Overloaded)?
    }

    /// Completes the call `id` (a Reply arrived); unknown ids are dropped.
    pub(crate) fn complete(&self, id: u64, result: Result<Vec<u8>>) {
        let waiter = self.remove_pending(id);
        match waiter {
            Some(w) => w.finish(result),
            None => tracing::debug!(id, "reply for an unknown call id dropped"),
        }
    }

    fn remove_pending(&self, id: u64) -> Option<Waiter> {
        let mut p = lock(&self.pending);
        let w = p.remove(id);
        if p.is_empty() {
            self.pending_empty.notify_waiters();
        }
        w
    }

    /// Fails every outstanding call with `Closed` (saying why: `cause`) and refuses new
    /// ones.
    pub(crate) fn fail_pending(&self, cause: &CloseCause) {
        let reason = cause.reason();
        let waiters: Vec<Waiter> = {
            let mut p = lock(&self.pending);
            p.closed = Some(reason.clone());
            p.drain()
        };
        for w in waiters {
            w.finish(Err(Error::Closed(reason.clone())));
        }
        self.pending_empty.notify_waiters();
        self.queue_bytes.close();
    }

    pub(crate) fn pending_count(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Asks the connection to close, after a Goodbye with `reason` if given.
    pub(crate) fn close(&self, reason: Option<GoodbyeReason>, cause: CloseCause) {
        lock(&self.intent).get_or_insert_with(|| cause.clone());
        if let Some(reason) = reason {
            self.enqueue_control(&Envelope::Goodbye { reason });
        }
        self.close_tx.send_if_modified(|c| {
            if c.is_none() {
                *c = Some(cause);
                true
            } else {
                false
            }
        });
    }

    /// The peer's trust was revoked: nothing more is dispatched or started for it, and
    /// the connection closes with Goodbye 2.
    pub(crate) fn revoke(&self) {
        self.revoked.set();
        self.close(
            Some(GoodbyeReason::TrustRevoked),
            CloseCause::Local("trust revoked".into()),
        );
    }

    /// The close this node asked for, if it asked (see `intent`).
    pub(crate) fn close_intent(&self) -> Option<CloseCause> {
        lock(&self.intent).clone()
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.close_tx.borrow().is_some()
    }

    pub(crate) fn note_peer_goodbye(&self) {
        self.peer_goodbye.store(true, Ordering::Release);
        self.peer_goodbye_notify.notify_waiters();
    }

    /// Spec 5.1 on the losing connection: no new calls start here (the caller already
    /// routes elsewhere); our outstanding calls finish or time out; then Goodbye 1. The
    /// socket closes once the peer has said Goodbye 1 too (so none of its calls are in
    /// flight) and every call it made here has been answered — or at `cap`.
    pub(crate) fn drain(self: &Arc<Self>, cap: Duration) {
        if self.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        let conn = Arc::clone(self);
        tokio::spawn(async move {
            let deadline = Instant::now() + cap;
            let _ = tokio::time::timeout_at(deadline, async {
                loop {
                    let notified = conn.pending_empty.notified();
                    if conn.pending_count() == 0 {
                        break;
                    }
                    notified.await;
                }
                conn.enqueue_control(&Envelope::Goodbye {
                    reason: GoodbyeReason::Duplicate,
                });
                loop {
                    let notified = conn.peer_goodbye_notify.notified();
                    if conn.peer_goodbye.load(Ordering::Acquire) {
                        break;
                    }
                    notified.await;
                }
                // Every call the peer made here holds a serving permit until answered.
                let _all = conn.serving.acquire_many(conn.serving_cap as u32).await;
            })
            .await;
            conn.close(None, CloseCause::Local("duplicate connection".into()));
        });
    }

    /// Permits for a request body of `len` bytes, if the inbound budget has room now.
    pub(crate) fn try_inbound(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let need = len.clamp(1, self.inbound_cap) as u32;
        Arc::clone(&self.inbound_bytes)
            .try_acquire_many_owned(need)
            .ok()
    }

    /// Permits for a request body of `len` bytes, waiting for room (backpressure).
    pub(crate) async fn inbound(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let need = len.clamp(1, self.inbound_cap) as u32;
        Arc::clone(&self.inbound_bytes)
            .acquire_many_owned(need)
            .await
            .ok()
    }

    pub(crate) fn set_rtt(&self, rtt: Duration) {
        let us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX).max(1);
        self.rtt_us.store(us, Ordering::Relaxed);
    }

    pub(crate) fn rtt_us(&self) -> u32 {
        self.rtt_us.load(Ordering::Relaxed)
    }
}

/// Runs `done` with `result` on a runtime task (never on the thread that started the
/// call, which may hold a lock the callback takes).
pub(crate) fn deliver_later(done: CallbackFn, result: Result<Vec<u8>>) {
    let cb = Callback::new(done);
    tokio::spawn(async move { cb.run(result) });
}

struct PendingGuard<'a> {
    conn: &'a Conn,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.conn.remove_pending(self.id);
    }
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
