//! What runs the Python callables given to a `NodeHandle`: the core handler of an exposed
//! Python handler (with its authorize predicate), the RPC dispatcher, the task that pumps
//! events to the event callback, and the completion of `*_cb` operations. All of them run
//! Python only on the node's lanes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use peernet_core::{Event, Handler, Request, RpcCall, RpcDispatcher};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::dispatch::{dispatch, dispatch_within, request_args, run_authorize};
use crate::errors::to_py;
use crate::fair::FairLane;
use crate::lanes::Lane;
use crate::runtime::handle;

/// Events waiting for the event callback at most; more are dropped (with a warning).
const EVENT_BACKLOG: usize = 1024;

/// The core handler of `NodeHandle.expose`: `target(peer, body, is_call, responder)` on
/// the handler pool `lane`, after `authorize(peer)` there if given.
pub(crate) fn exposed_handler(
    lane: &Arc<FairLane>,
    target: Py<PyAny>,
    authorize: Option<Py<PyAny>>,
) -> PyResult<Handler> {
    let target = Arc::new(target);
    let lane = Arc::clone(lane);
    Ok(match authorize {
        None => Handler::from_async(move |req: Request| {
            let lane = Arc::clone(&lane);
            let target = Arc::clone(&target);
            async move {
                let peer = req.from;
                dispatch(&lane, peer, target, move |py| request_args(py, req)).await
            }
        }),
        Some(pred) => {
            // The core runs authorize predicates synchronously; a Python one must
            // wait for the GIL, so this handler is a blocking one (tokio's blocking
            // pool waits; Python still runs on the handler lane).
            let pred = Arc::new(pred);
            let auth_lane = Arc::clone(&lane);
            let rt = handle()?;
            Handler::blocking(move |req: Request| {
                let target = Arc::clone(&target);
                let peer = req.from;
                rt.block_on(dispatch(&lane, peer, target, move |py| {
                    request_args(py, req)
                }))
            })
            .with_authorize(move |peer| run_authorize(&auth_lane, &pred, peer))
        }
    })
}

/// The RPC dispatcher of `NodeHandle.set_rpc_dispatcher`: `t(peer, module, function,
/// args, responder)` on the RPC lane `lane`, each call within `budget`.
pub(crate) fn rpc_dispatcher(
    lane: &Arc<FairLane>,
    t: Py<PyAny>,
    budget: Duration,
) -> RpcDispatcher {
    let t = Arc::new(t);
    let lane = Arc::clone(lane);
    RpcDispatcher::from_async(move |c: RpcCall| {
        let lane = Arc::clone(&lane);
        let t = Arc::clone(&t);
        async move {
            dispatch_within(&lane, c.from, t, Some(budget), move |py| {
                vec![
                    PyBytes::new(py, c.from.as_bytes()).into_any().unbind(),
                    c.module
                        .into_pyobject(py)
                        .map(|s| s.into_any().unbind())
                        .unwrap_or_else(|_| py.None()),
                    c.function
                        .into_pyobject(py)
                        .map(|s| s.into_any().unbind())
                        .unwrap_or_else(|_| py.None()),
                    PyBytes::new(py, &c.args).into_any().unbind(),
                ]
            })
            .await
        }
    })
}

/// The task of `NodeHandle.set_event_callback`: events from `rx` to `cb` on the event
/// lane, at most `EVENT_BACKLOG` of them waiting there (`backlog` counts them).
pub(crate) fn spawn_event_pump(
    mut rx: broadcast::Receiver<Event>,
    cb: Py<PyAny>,
    lane: &Arc<Lane>,
    backlog: &Arc<AtomicUsize>,
) -> PyResult<JoinHandle<()>> {
    let cb = Arc::new(cb);
    let lane = Arc::clone(lane);
    let backlog = Arc::clone(backlog);
    Ok(handle()?.spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(target: "peernet::python", dropped = n, "events dropped: the callback is too slow");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            if backlog.load(Ordering::Relaxed) >= EVENT_BACKLOG {
                tracing::warn!(target: "peernet::python", "event dropped: the callback is too slow");
                continue;
            }
            backlog.fetch_add(1, Ordering::Relaxed);
            let cb = Arc::clone(&cb);
            let backlog = Arc::clone(&backlog);
            lane.submit(Box::new(move |py| {
                backlog.fetch_sub(1, Ordering::Relaxed);
                deliver(py, &cb, ev);
            }));
        }
    }))
}

/// Completes a `*_cb` operation: `done(ok, value)` on the completion lane.
pub(crate) fn complete(lane: &Lane, done: Py<PyAny>, r: Result<Vec<u8>, peernet_core::Error>) {
    lane.submit(Box::new(move |py| {
        let (ok, value) = match r {
            Ok(v) => (true, PyBytes::new(py, &v).into_any().unbind()),
            Err(e) => (false, to_py(py, e).into_value(py).into_any()),
        };
        if let Err(e) = done.call1(py, (ok, value)) {
            // The event loop is closed: nobody waits for this result.
            if !e.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py) {
                e.write_unraisable(py, None);
            }
        }
    }));
}

/// Calls the event callback with one event (on the event lane).
fn deliver(py: Python<'_>, cb: &Py<PyAny>, ev: Event) {
    let key = ev
        .key
        .map(|k| PyBytes::new(py, k.as_bytes()).into_any().unbind());
    let addr = ev.address.map(|a| a.to_string());
    let close = ev.close_reason.as_ref().map(|r| r.code());
    if let Err(e) = cb.call1(py, (ev.kind.as_str(), key, addr, ev.detail, close)) {
        e.write_unraisable(py, None);
    }
}
