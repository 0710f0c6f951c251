//! Running Python targets for the core: a job on a fair lane per request, its
//! [`Responder`], and the time budget of RPCs.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use peernet_core::{HandlerResult, Key, Request, RequestKind};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use tokio::sync::oneshot;

use crate::fair::FairLane;
use crate::lanes::Job;

/// The reply slot of one handler run, handed to the Python dispatcher.
#[pyclass(frozen, module = "peernet._peernet")]
pub struct Responder {
    tx: Mutex<Option<oneshot::Sender<HandlerResult>>>,
}

impl Responder {
    fn new(tx: oneshot::Sender<HandlerResult>) -> Responder {
        Responder {
            tx: Mutex::new(Some(tx)),
        }
    }

    fn answer(&self, r: HandlerResult) -> bool {
        match self.tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(tx) => tx.send(r).is_ok(),
            None => false,
        }
    }
}

#[pymethods]
impl Responder {
    /// Replies with `body`. Returns False if already answered or the caller is gone.
    fn ok(&self, body: &[u8]) -> bool {
        self.answer(Ok(body.to_vec()))
    }

    /// Fails with `message` (the caller gets `HandlerFailed(message)`).
    fn err(&self, message: &str) -> bool {
        self.answer(Err(message.to_owned()))
    }

    /// Whether a reply was given.
    #[getter]
    fn answered(&self) -> bool {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).is_none()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.answer(Err("handler gave no reply".to_owned()));
    }
}

/// Runs `target(*args, responder)` on `lane` in `peer`'s turn and awaits the answer.
pub(crate) async fn dispatch(
    lane: &FairLane,
    peer: Key,
    target: Arc<Py<PyAny>>,
    args: impl FnOnce(Python<'_>) -> Vec<Py<PyAny>> + Send + 'static,
) -> HandlerResult {
    dispatch_within(lane, peer, target, None, args).await
}

/// [`dispatch`], and with `budget` (an RPC): a job still queued when the budget is
/// spent does not run, and the answer is an error once it is spent (a Python thread
/// cannot be stopped: a job already running goes on to its end on its lane).
pub(crate) async fn dispatch_within(
    lane: &FairLane,
    peer: Key,
    target: Arc<Py<PyAny>>,
    budget: Option<Duration>,
    args: impl FnOnce(Python<'_>) -> Vec<Py<PyAny>> + Send + 'static,
) -> HandlerResult {
    let (tx, rx) = oneshot::channel();
    let deadline = budget.map(|b| (Instant::now() + b, b));
    // Whether the job started or was given up: decided once, by whichever side is first.
    let state = Arc::new(AtomicU8::new(QUEUED));
    let job_state = Arc::clone(&state);
    let job: Job = Box::new(move |py| {
        if let Some((at, b)) = deadline {
            let start = Instant::now() < at
                && job_state
                    .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
            if !start {
                job_state.store(GIVEN_UP, Ordering::Release);
                let _ = tx.send(Err(over_budget(b, false)));
                return;
            }
        }
        let responder = match Py::new(py, Responder::new(tx)) {
            Ok(r) => r,
            Err(e) => {
                e.write_unraisable(py, None);
                return;
            }
        };
        let mut a = args(py);
        a.push(responder.clone_ref(py).into_any());
        let result = PyTuple::new(py, a).and_then(|t| target.call1(py, t));
        if let Err(e) = result {
            responder.get().answer(Err(e.to_string()));
        }
    });
    if !lane.submit(&peer, job) {
        return Err("node closed".to_owned());
    }
    let answer = async { rx.await.unwrap_or_else(|_| Err("node closed".to_owned())) };
    match budget {
        None => answer.await,
        Some(b) => tokio::time::timeout(b, answer).await.unwrap_or_else(|_| {
            let never_started = state
                .compare_exchange(QUEUED, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            Err(over_budget(b, !never_started))
        }),
    }
}

/// A budgeted job waits for its turn...
const QUEUED: u8 = 0;
/// ...then runs...
const STARTED: u8 = 1;
/// ...or, its budget spent first, never does.
const GIVEN_UP: u8 = 2;

/// The error of an RPC whose budget (`rpc_timeout`) is spent.
fn over_budget(budget: Duration, started: bool) -> String {
    let what = if started {
        "ran past"
    } else {
        "waited for the RPC thread past"
    };
    let then = if started {
        "it may still be running there"
    } else {
        "it did not run"
    };
    format!(
        "TimeoutError: the RPC {what} the node's rpc_timeout of {} s; {then}",
        budget.as_secs_f64()
    )
}

/// Runs `pred(peer)` on `lane` and waits (on a tokio blocking thread) for its verdict.
pub(crate) fn run_authorize(lane: &FairLane, pred: &Arc<Py<PyAny>>, peer: &Key) -> bool {
    let (tx, rx) = mpsc::sync_channel(1);
    let pred = Arc::clone(pred);
    let peer = *peer;
    let job: Job = Box::new(move |py| {
        let verdict = pred
            .call1(py, (PyBytes::new(py, peer.as_bytes()),))
            .and_then(|v| v.is_truthy(py));
        let ok = match verdict {
            Ok(v) => v,
            Err(e) => {
                e.write_unraisable(py, None);
                false
            }
        };
        let _ = tx.send(ok);
    });
    lane.submit(&peer, job) && rx.recv().unwrap_or(false)
}

pub(crate) fn request_args(py: Python<'_>, req: Request) -> Vec<Py<PyAny>> {
    vec![
        PyBytes::new(py, req.from.as_bytes()).into_any().unbind(),
        PyBytes::new(py, &req.body).into_any().unbind(),
        pyo3::types::PyBool::new(py, req.kind == RequestKind::Call)
            .to_owned()
            .into_any()
            .unbind(),
    ]
}
