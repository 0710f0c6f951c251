//! The reader task: opens frames in place, decodes envelopes and dispatches them —
//! calls to handler tasks, sends to the in-order send worker, replies to the pending
//! table, pings to pongs — and runs the heartbeat. It also owns the connection's life:
//! when it ends, the connection is gone.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use peernet_proto::channel::RecvCipher;
use peernet_proto::envelope::{Envelope, GoodbyeReason, Outcome};
use peernet_proto::frame::{self, HEADER_LEN};
use peernet_proto::heartbeat::{Heartbeat, HeartbeatAction};
use peernet_proto::rpc::{RpcRequest, RPC_HANDLER};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::handshake::Established;
use super::{writer, CloseCause, Conn, ConnInfo, ConnLimits, Out};
use crate::error::{Error, Result};
use crate::handlers::{Handled, Request, RequestKind, Revoked};
use crate::metrics::{CallStatus, HandlerCounters};
use crate::node::Shared;
use crate::rpc::RpcCall;

/// Read buffer of an idle connection. It grows with the bytes that arrive (doubling
/// while full, up to twice the frame it holds the start of), never to the length a
/// frame header claims before those bytes come, and shrinks back at a heartbeat tick
/// that finds it drained (so bulk transfers keep theirs).
const INITIAL_BUF: usize = 8 * 1024;
/// Sends queued for the in-order send worker before the reader stops reading.
const SEND_QUEUE: usize = 256;
/// Longest handler error message sent back (longer ones are cut).
const MAX_ERROR_MESSAGE: usize = 4096;

/// Registers an established connection with the node and starts its tasks. Refused
/// (nothing is sent, the socket closes) when the peer is no longer trusted, the node is
/// stopping, or the peer holds its share of connections (`Shared::connection_opened`).
pub(crate) fn spawn_connection(
    shared: &Arc<Shared>,
    est: Established,
    outbound: bool,
    remote: SocketAddr,
) -> Result<Arc<Conn>> {
    let local = est
        .stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let me = shared.identity.public();
    let info = ConnInfo {
        id: shared.next_conn_id(),
        peer: est.peer,
        initiator: if outbound { me } else { est.peer },
        outbound,
        remote,
        local,
        peer_hello: est.peer_hello,
    };
    let limits = ConnLimits {
        queue_bytes: shared.config.send_queue_bytes,
        send_timeout: shared.config.send_timeout,
        max_concurrent_calls: shared.config.max_concurrent_calls,
        inbound_bytes: shared.config.max_inbound_bytes,
        metrics: shared.config.metrics,
    };
    let (conn, out_rx, close_rx) = Conn::new(info, limits);
    // Queued before the connection is registered: once registered, another task may
    // queue a call on it at once (its Connected event woke `wait_connected`), and the
    // responder's first frame must still be the confirming Ping (spec 3.4), or the
    // initiator fails the handshake. Nothing is written yet: a refused connection is
    // dropped before its writer starts, so it still sends nothing.
    if outbound {
        if let Some(nonce) = est.confirm_ping {
            conn.enqueue_control(&Envelope::Pong { nonce });
        }
    } else {
        // Spec 3.4: the responder confirms its trust check with a Ping first.
        conn.enqueue_control(&Envelope::Ping { nonce: 0 });
    }
    shared.connection_opened(&conn)?;
    let (rd, wr) = est.stream.into_split();
    let (send_tx, send_rx) = mpsc::channel(SEND_QUEUE);
    tokio::spawn(send_worker(
        Arc::clone(shared),
        conn.revoked.clone(),
        send_rx,
    ));
    let now = Instant::now().into_std();
    let reader = Reader {
        conn: Arc::clone(&conn),
        shared: Arc::clone(shared),
        recv: est.recv,
        limit: shared.config.max_frame_len as usize,
        send_tx,
    };
    let hb = Heartbeat::new(
        shared.config.heartbeat_interval,
        shared.config.heartbeat_timeout,
        now,
    );
    let shared = Arc::clone(shared);
    let task_conn = Arc::clone(&conn);
    tokio::spawn(async move {
        let conn = task_conn;
        let mut writer = tokio::spawn(writer::run(Arc::clone(&conn), wr, out_rx, est.send));
        let (cause, writer_done) = tokio::select! {
            cause = reader.run(rd, est.leftover, close_rx, hb) => (cause, false),
            w = &mut writer => {
                (w.ok().flatten().unwrap_or(CloseCause::Io("writer stopped".into())), true)
            }
            // Never returns: fails `call_with` calls whose deadline passed.
            () = conn.expire_calls() => (CloseCause::Local("call expiry stopped".into()), false),
        };
        // A close this node asked for is the cause, even when the peer's reaction (it
        // closes on our Goodbye) reached the reader first: `close` records it before
        // it queues the Goodbye, `revoke` sets its flag before that.
        let cause = if conn.revoked.is_set() {
            CloseCause::Local("trust revoked".into())
        } else {
            conn.close_intent().unwrap_or(cause)
        };
        conn.fail_pending(&cause);
        if !writer_done {
            // Flush a Goodbye queued by `close`, then stop the writer; a peer that does
            // not read gets 2 s, then the socket is dropped.
            let _ = conn.queue_send(Out::Close);
            if tokio::time::timeout(Duration::from_secs(2), &mut writer)
                .await
                .is_err()
            {
                writer.abort();
            }
        }
        shared.connection_closed(&conn, cause);
    });
    Ok(conn)
}

impl Conn {
    fn queue_send(&self, out: Out) -> Result<(), ()> {
        self.queue.send(out).map_err(|_| ())
    }

    /// Queues a Reply. Replies are bounded by the caller's `max_frame` (from its
    /// Hello): one too large for it becomes `HandlerFailed("reply too large: ...")`
    /// naming the size and the limit, so the caller learns why (the connection stays).
    pub(crate) async fn reply(&self, id: u64, outcome: Outcome<'_>) {
        let payload = match &outcome {
            Outcome::Ok(v) => v.len(),
            Outcome::HandlerFailed(m) => m.len(),
            _ => 0,
        };
        let frame = match self.encode(&Envelope::Reply { id, outcome }, payload) {
            Ok(f) => f,
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
                let outcome = Outcome::HandlerFailed(&msg);
                match self.encode(&Envelope::Reply { id, outcome }, msg.len()) {
                    Ok(f) => f,
                    Err(_) => {
                        let outcome = Outcome::HandlerFailed("reply too large");
                        match self.encode(&Envelope::Reply { id, outcome }, 0) {
                            Ok(f) => f,
                            Err(_) => return,
                        }
                    }
                }
            }
        };
        let _ = self.enqueue(frame).await;
    }

    /// Answers `Overloaded` (the handler `hc` counts is not run).
    async fn overloaded(&self, id: u64, hc: &HandlerCounters) {
        hc.error(self.metrics, CallStatus::Overloaded);
        self.stats.count(self.metrics, &self.stats.overloaded);
        self.reply(id, Outcome::Overloaded).await
    }

    async fn reply_handled(&self, id: u64, handled: Handled) {
        match &handled {
            Handled::Ok(v) => self.reply(id, Outcome::Ok(v)).await,
            Handled::Forbidden => self.reply(id, Outcome::Forbidden).await,
            Handled::Failed(m) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let mut cut = m.len().min(MAX_ERROR_MESSAGE);
                while !m.is_char_boundary(cut) {
                    cut -= 1;
                }
                self.reply(id, Outcome::HandlerFailed(&m[..cut])).await
            }
        }
    }
}

struct Reader {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    recv: RecvCipher,
    limit: usize,
    send_tx: mpsc::Sender<(Request, OwnedSemaphorePermit)>,
}

/// Runs the heartbeat when its deadline passed: a ping to send, or a dead connection.
fn heartbeat_tick(hb: &mut Heartbeat, conn: &Conn) -> Option<CloseCause> {
    match hb.poll(Instant::now().into_std()) {
        HeartbeatAction::Dead => {
            conn.close(None, CloseCause::HeartbeatTimeout);
            Some(CloseCause::HeartbeatTimeout)
        }
        HeartbeatAction::SendPing(nonce) => {
            conn.enqueue_control(&Envelope::Ping { nonce });
            None
        }
        HeartbeatAction::Idle => None,
    }
}

/// Grows a full read buffer (it holds the start of a frame of `want` bytes, header
/// included, that is longer than the buffer): at most doubling, so memory follows the
/// bytes that actually arrived; up to `2 * want`, room for the next frame too, so large
/// frames then take fewer reads and no compaction per frame.
fn grow(buf: &mut Vec<u8>, want: usize) {
    let len = (2 * buf.len()).min(2 * want).max(buf.len() + 1);
    buf.resize(len, 0);
}

fn close_cause(close_rx: &watch::Receiver<Option<CloseCause>>) -> CloseCause {
    let cause = close_rx.borrow().clone();
    cause.unwrap_or(CloseCause::Local("closed".into()))
}

impl Reader {
    async fn run(
        mut self,
        mut rd: OwnedReadHalf,
        mut buf: Vec<u8>,
        mut close_rx: watch::Receiver<Option<CloseCause>>,
        mut hb: Heartbeat,
    ) -> CloseCause {
        let conn = Arc::clone(&self.conn);
        let (mut start, mut end) = (0, buf.len());
        if buf.len() < INITIAL_BUF {
            buf.resize(INITIAL_BUF, 0);
        }
        loop {
            // Length (header included) of the frame whose start the buffer holds.
            let mut want = 0;
            // Every whole frame in the buffer.
            loop {
                // `untrust` sets this under the peer-table lock before it returns:
                // frames already read are not dispatched after it.
                if conn.revoked.is_set() {
                    return CloseCause::Local("trust revoked".into());
                }
                let n = match frame::parse_header(&buf[start..end], self.limit) {
                    Err(e) => return CloseCause::Protocol(e.to_string()),
                    Ok(None) => break,
                    Ok(Some(n)) => n,
                };
                if end - start < HEADER_LEN + n {
                    want = HEADER_LEN + n;
                    if buf.len() - start < want {
                        buf.copy_within(start..end, 0);
                        end -= start;
                        start = 0;
                    }
                    break;
                }
                let body = &mut buf[start + HEADER_LEN..start + HEADER_LEN + n];
                start += HEADER_LEN + n;
                let plain = match self.recv.open_in_place(body) {
                    Ok(p) => p,
                    Err(e) => return CloseCause::Protocol(format!("frame: {e}")),
                };
                let stats = &self.conn.stats;
                stats.frames_in.fetch_add(1, Ordering::Relaxed);
                stats
                    .bytes_in
                    .fetch_add((HEADER_LEN + n) as u64, Ordering::Relaxed);
                match Envelope::decode(plain) {
                    Ok(Envelope::Pong { nonce }) => {
                        hb.on_pong(nonce, Instant::now().into_std());
                        if let Some(rtt) = hb.rtt() {
                            conn.set_rtt(rtt);
                        }
                    }
                    Ok(env) => {
                        // Usually done at once. When it waits (the send queue is full
                        // because the peer does not read, or the send worker is
                        // behind), the heartbeat and a close request must still work,
                        // without dropping the envelope being handled.
                        let fut = self.on_envelope(env);
                        tokio::pin!(fut);
                        let first = tokio::select! {
                            biased;
                            r = &mut fut => Some(r),
                            _ = std::future::ready(()) => None,
                        };
                        let outcome = match first {
                            Some(r) => r,
                            None => loop {
                                let deadline = tokio::time::Instant::from_std(hb.next_deadline());
                                tokio::select! {
                                    biased;
                                    r = &mut fut => break r,
                                    _ = close_rx.changed() => return close_cause(&close_rx),
                                    _ = tokio::time::sleep_until(deadline) => {
                                        if let Some(cause) = heartbeat_tick(&mut hb, &conn) {
                                            return cause;
                                        }
                                    }
                                }
                            },
                        };
                        if let Some(cause) = outcome {
                            return cause;
                        }
                    }
                    Err(e) => {
                        self.conn.close(
                            Some(GoodbyeReason::ProtocolError),
                            CloseCause::Protocol(e.to_string()),
                        );
                        return CloseCause::Protocol(format!("envelope: {e}"));
                    }
                }
            }
            if start == end {
                start = 0;
                end = 0;
            } else if buf.len() - end < 1024 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            }
            if end == buf.len() {
                grow(&mut buf, want);
            }
            let deadline = tokio::time::Instant::from_std(hb.next_deadline());
            tokio::select! {
                biased;
                _ = close_rx.changed() => return close_cause(&close_rx),
                r = rd.read(&mut buf[end..]) => match r {
                    Ok(0) => return CloseCause::PeerClosed("connection closed".into()),
                    Ok(n) => end += n,
                    Err(e) => return CloseCause::Io(e.to_string()),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if start == end && buf.len() > INITIAL_BUF {
                        buf = vec![0; INITIAL_BUF];
                    }
                    if let Some(cause) = heartbeat_tick(&mut hb, &conn) {
                        return cause;
                    }
                }
            }
        }
    }

    async fn on_envelope(&mut self, env: Envelope<'_>) -> Option<CloseCause> {
        match env {
            Envelope::Call { id, name, body } => self.on_call(id, name, body).await,
            Envelope::Reply { id, outcome } => self.conn.complete(id, outcome_result(outcome)),
            Envelope::Send { name, body } => {
                if name == RPC_HANDLER {
                    tracing::debug!(peer = %self.conn.info.peer.fingerprint(), "send to peernet.rpc dropped");
                    return None;
                }
                self.conn
                    .stats
                    .count(self.conn.metrics, &self.conn.stats.sends_in);
                // Waits when the worker is behind (in count or in bytes):
                // backpressure, nothing dropped.
                let bytes = self.conn.inbound(body.len()).await?;
                let req = Request {
                    from: self.conn.info.peer,
                    name: name.to_owned(),
                    body: body.to_vec(),
                    kind: RequestKind::Send,
                };
                let _ = self.send_tx.send((req, bytes)).await;
            }
            Envelope::Ping { nonce } => {
                let env = Envelope::Pong { nonce };
                let v = super::Plain::encode(&env, env.encoded_len());
                // Through the byte budget: a ping flood cannot grow our queue.
                let _ = self.conn.enqueue(v).await;
            }
            // Handled in `run`, next to the heartbeat.
            Envelope::Pong { .. } => {}
            Envelope::Goodbye { reason } => {
                if reason == GoodbyeReason::Duplicate {
                    self.conn.note_peer_goodbye();
                    return None;
                }
                return Some(CloseCause::Goodbye(reason));
            }
        }
        None
    }

    async fn on_call(&mut self, id: u64, name: &str, body: &[u8]) {
        let conn = &self.conn;
        let on = conn.metrics;
        conn.stats.count(on, &conn.stats.calls_in);
        if name == RPC_HANDLER {
            return self.on_rpc(id, body).await;
        }
        let Some((handler, hc)) = self.shared.registry.get(name) else {
            let unknown = &self.shared.counters.unknown;
            unknown.call(on);
            unknown.error(on, CallStatus::NoSuchHandler);
            return conn.reply(id, Outcome::NoSuchHandler).await;
        };
        let Ok(permit) = Arc::clone(&conn.serving).try_acquire_owned() else {
            return conn.overloaded(id, &hc).await;
        };
        let Some(bytes) = conn.try_inbound(body.len()) else {
            return conn.overloaded(id, &hc).await;
        };
        let start = hc.call(on);
        let req = Request {
            from: conn.info.peer,
            name: name.to_owned(),
            body: body.to_vec(),
            kind: RequestKind::Call,
        };
        let conn = Arc::clone(conn);
        tokio::spawn(async move {
            let handled = handler.handle(req, &conn.revoked).await;
            hc.done(start, &handled);
            conn.stats.calls_served.fetch_add(1, Ordering::Relaxed);
            conn.reply_handled(id, handled).await;
            drop((permit, bytes));
        });
    }

    /// Spec 6: rights first (Forbidden whether or not a dispatcher is set), then the
    /// dispatcher (NoSuchHandler), then the body.
    async fn on_rpc(&mut self, id: u64, body: &[u8]) {
        let conn = &self.conn;
        let peer = conn.info.peer;
        let (on, hc) = (conn.metrics, Arc::clone(&self.shared.counters.rpc));
        if !self.shared.rpc_allowed(&peer) {
            hc.error(on, CallStatus::Forbidden);
            return conn.reply(id, Outcome::Forbidden).await;
        }
        let Some(dispatcher) = self.shared.rpc_dispatcher() else {
            hc.error(on, CallStatus::NoSuchHandler);
            return conn.reply(id, Outcome::NoSuchHandler).await;
        };
        let Ok(req) = RpcRequest::decode(body) else {
            hc.error(on, CallStatus::HandlerFailed);
            return conn
                .reply(id, Outcome::HandlerFailed("malformed rpc request"))
                .await;
        };
        let Ok(permit) = Arc::clone(&conn.serving).try_acquire_owned() else {
            return conn.overloaded(id, &hc).await;
        };
        let Some(bytes) = conn.try_inbound(req.args.len()) else {
            return conn.overloaded(id, &hc).await;
        };
        let start = hc.call(on);
        let call = RpcCall {
            from: peer,
            module: req.module.to_owned(),
            function: req.function.to_owned(),
            args: req.args.to_vec(),
        };
        let conn = Arc::clone(conn);
        tokio::spawn(async move {
            let handled = dispatcher.handle(call, &conn.revoked).await;
            hc.done(start, &handled);
            conn.stats.calls_served.fetch_add(1, Ordering::Relaxed);
            conn.reply_handled(id, handled).await;
            drop((permit, bytes));
        });
    }
}

/// Runs sends in the order they arrived on one connection (spec 5).
async fn send_worker(
    shared: Arc<Shared>,
    revoked: Revoked,
    mut rx: mpsc::Receiver<(Request, OwnedSemaphorePermit)>,
) {
    while let Some((req, _bytes)) = rx.recv().await {
        if revoked.is_set() {
            // Trust revoked: the sends still queued are dropped, none starts.
            continue;
        }
        let Some((handler, hc)) = shared.registry.get(&req.name) else {
            shared.counters.unknown.send(shared.config.metrics);
            tracing::debug!(peer = %req.from.fingerprint(), name = %req.name, "send to unknown handler dropped");
            continue;
        };
        hc.send(shared.config.metrics);
        let (peer, name) = (req.from, req.name.clone());
        match handler.handle(req, &revoked).await {
            Handled::Ok(_) => {}
            Handled::Forbidden => {
                tracing::debug!(peer = %peer.fingerprint(), %name, "send refused by authorize")
            }
            Handled::Failed(m) => {
                tracing::debug!(peer = %peer.fingerprint(), %name, error = %m, "send handler failed")
            }
        }
    }
}

fn outcome_result(outcome: Outcome<'_>) -> Result<Vec<u8>> {
    match outcome {
        Outcome::Ok(v) => Ok(v.to_vec()),
        // The Reply does not carry the name; `Conn::call` puts it in.
        Outcome::NoSuchHandler => Err(Error::NoSuchHandler(String::new())),
        Outcome::Forbidden => Err(Error::Forbidden),
        Outcome::HandlerFailed(m) => Err(Error::HandlerFailed(m.to_owned())),
        Outcome::Overloaded => Err(Error::Overloaded),
    }
}
