//! What the driver does with the peer's calls and sends: finds the handler, applies the
//! serving limits, and runs the handler off the driver — a call in a task of its own
//! (its answer comes back to the driver as a command), sends in order in one task per
//! connection, started at the first send — so a slow handler never stalls reading.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use peernet_proto::connection::{CallId, CallOutcome, MAX_ERROR_MESSAGE};
use peernet_proto::rpc::{RpcRequest, RPC_HANDLER};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::{Conn, Host, RpcAccess};
use crate::handlers::{Handled, Request, RequestKind, Revoked};
use crate::metrics::{CallStatus, CallTiming, HandlerCounters};
use crate::rpc::RpcCall;

/// Answers `Overloaded` (the handler `hc` counts is not run).
fn overloaded(conn: &Conn, hc: &HandlerCounters) -> Option<CallOutcome> {
    hc.error(conn.metrics(), CallStatus::Overloaded);
    conn.stats.count(conn.metrics(), &conn.stats.overloaded);
    Some(CallOutcome::Overloaded)
}

/// The wire answer of a handler's result (a long error message is cut).
fn outcome(conn: &Conn, handled: Handled) -> CallOutcome {
    match handled {
        Handled::Ok(v) => CallOutcome::Ok(v),
        Handled::Forbidden => CallOutcome::Forbidden,
        Handled::Failed(mut m) => {
            conn.stats.errors.fetch_add(1, Ordering::Relaxed);
            if m.len() > MAX_ERROR_MESSAGE {
                let mut cut = MAX_ERROR_MESSAGE;
                while !m.is_char_boundary(cut) {
                    cut -= 1;
                }
                m.truncate(cut);
            }
            CallOutcome::HandlerFailed(m)
        }
    }
}

/// The peer called `name`, read by the driver at `now`. `Some(answer)` when the driver
/// answers at once (no such handler, a serving limit, RPC refused); `None` when a
/// handler task was started, which answers through [`Conn::reply`].
pub(super) fn on_call(
    host: &Arc<dyn Host>,
    conn: &Arc<Conn>,
    id: CallId,
    name: String,
    body: Vec<u8>,
    now: Instant,
) -> Option<CallOutcome> {
    let on = conn.metrics();
    conn.stats.count_driver(on, &conn.stats.calls_in);
    if name == RPC_HANDLER {
        return on_rpc(host, conn, id, &body, now);
    }
    let Some((handler, hc)) = host.handler(&name) else {
        let unknown = &host.counters().unknown;
        unknown.call(on);
        unknown.error(on, CallStatus::NoSuchHandler);
        return Some(CallOutcome::NoSuchHandler);
    };
    let Ok(permit) = Arc::clone(&conn.serving).try_acquire_owned() else {
        return overloaded(conn, &hc);
    };
    let Some(bytes) = conn.try_inbound(body.len()) else {
        return overloaded(conn, &hc);
    };
    hc.call(on);
    let req = Request {
        from: conn.info.peer,
        name,
        body,
        kind: RequestKind::Call,
    };
    let conn = Arc::clone(conn);
    tokio::spawn(async move {
        let handled = handler.handle(req, &conn.revoked).await;
        let timing = on.then(|| CallTiming {
            hc,
            start: now,
            failed: handled.status(),
        });
        conn.stats.calls_served.fetch_add(1, Ordering::Relaxed);
        conn.reply(id, outcome(&conn, handled), timing).await;
        drop((permit, bytes));
    });
    None
}

/// Spec 6: rights first (Forbidden whether or not a dispatcher is set), then the
/// dispatcher (NoSuchHandler), then the body.
fn on_rpc(
    host: &Arc<dyn Host>,
    conn: &Arc<Conn>,
    id: CallId,
    body: &[u8],
    now: Instant,
) -> Option<CallOutcome> {
    let peer = conn.info.peer;
    let (on, hc) = (conn.metrics(), Arc::clone(&host.counters().rpc));
    let dispatcher = match host.rpc(&peer) {
        RpcAccess::Forbidden => {
            hc.error(on, CallStatus::Forbidden);
            return Some(CallOutcome::Forbidden);
        }
        RpcAccess::NoDispatcher => {
            hc.error(on, CallStatus::NoSuchHandler);
            return Some(CallOutcome::NoSuchHandler);
        }
        RpcAccess::Allowed(d) => d,
    };
    let Ok(req) = RpcRequest::decode(body) else {
        hc.error(on, CallStatus::HandlerFailed);
        return Some(CallOutcome::HandlerFailed("malformed rpc request".into()));
    };
    let Ok(permit) = Arc::clone(&conn.serving).try_acquire_owned() else {
        return overloaded(conn, &hc);
    };
    let Some(bytes) = conn.try_inbound(req.args.len()) else {
        return overloaded(conn, &hc);
    };
    hc.call(on);
    let call = RpcCall {
        from: peer,
        module: req.module.to_owned(),
        function: req.function.to_owned(),
        args: req.args.to_vec(),
    };
    let conn = Arc::clone(conn);
    tokio::spawn(async move {
        let handled = dispatcher.handle(call, &conn.revoked).await;
        let timing = on.then(|| CallTiming {
            hc,
            start: now,
            failed: handled.status(),
        });
        conn.stats.calls_served.fetch_add(1, Ordering::Relaxed);
        conn.reply(id, outcome(&conn, handled), timing).await;
        drop((permit, bytes));
    });
    None
}

/// A send that arrived, with the inbound budget its body holds until its handler ran.
pub(super) type Arrived = (Request, OwnedSemaphorePermit);

/// The in-order send lane of one connection (spec 5: sends run in the order they
/// arrived). Its task starts with the first send, so an idle connection has none.
#[derive(Default)]
pub(super) struct SendLane {
    tx: Option<mpsc::UnboundedSender<Arrived>>,
}

impl SendLane {
    /// Hands a send to the lane (sends to `peernet.rpc` are dropped: RPC is call-only).
    /// Unbounded channel, bounded by the inbound byte budget each send holds.
    pub(super) fn push(&mut self, host: &Arc<dyn Host>, conn: &Conn, sent: Arrived) {
        if sent.0.name == RPC_HANDLER {
            tracing::debug!(peer = %conn.info.peer.fingerprint(), "send to peernet.rpc dropped");
            return;
        }
        conn.stats
            .count_driver(conn.metrics(), &conn.stats.sends_in);
        let tx = self.tx.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let lane = (Arc::clone(host), conn.revoked.clone());
            tokio::spawn(send_worker(lane, rx));
            tx
        });
        let _ = tx.send(sent);
    }
}

/// Runs sends in the order they arrived on one connection; ends when the driver does.
async fn send_worker(
    (host, revoked): (Arc<dyn Host>, Revoked),
    mut rx: mpsc::UnboundedReceiver<Arrived>,
) {
    while let Some((req, _bytes)) = rx.recv().await {
        if revoked.is_set() {
            // Trust revoked: the sends still queued are dropped, none starts.
            continue;
        }
        let on = host.counters().on();
        let Some((handler, hc)) = host.handler(&req.name) else {
            host.counters().unknown.send(on);
            tracing::debug!(peer = %req.from.fingerprint(), name = %req.name, "send to unknown handler dropped");
            continue;
        };
        hc.send(on);
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
