//! File transfer for the Python layer (`peernet/_files.py`): `send_file_start` runs
//! `Node::send_file` on the runtime and returns a `FileSend` that the caller's thread
//! polls for progress and waits on (so a progress callback runs on the caller's own
//! thread, never on a runtime thread); `expose_files` / `revoke_files` wrap the
//! receiver, whose `on_received` callback runs on the node's event lane.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use peernet_core::{Error, ReceiveOptions, ReceivedFile, SendOptions, SendReport};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::errors::{check, to_py};
use crate::node::NodeHandle;
use crate::node_args::{key_arg, secs, sync};
use crate::runtime::{handle, wait};

/// (name, size, resumed_from, sent, restarted, sha256) of a finished transfer.
type ReportRow<'py> = (String, u64, u64, u64, bool, Bound<'py, PyBytes>);

/// A `send_file` in progress.
#[pyclass(frozen, module = "peernet._peernet")]
pub struct FileSend {
    done: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    finished: watch::Receiver<bool>,
    outcome: Arc<Mutex<Option<Result<SendReport, Error>>>>,
    task: AbortHandle,
}

#[pymethods]
impl FileSend {
    /// (bytes done, file size) so far; (0, 0) before the receiver answered.
    fn progress(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }

    /// Waits up to `timeout` seconds (GIL released): None while it runs, else the
    /// report row, or the transfer's exception. The outcome is handed out once; later
    /// calls raise `RuntimeError`.
    fn wait<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Option<ReportRow<'py>>> {
        let t = secs("timeout", timeout)?;
        let mut rx = self.finished.clone();
        let ended = wait(py, async move {
            tokio::time::timeout(t, rx.wait_for(|d| *d)).await.is_ok()
        })?;
        if !ended {
            return Ok(None);
        }
        let outcome = self
            .outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match outcome {
            Some(r) => check(py, r).map(|r| {
                Some((
                    r.name,
                    r.size,
                    r.resumed_from,
                    r.sent,
                    r.restarted,
                    PyBytes::new(py, &r.sha256),
                ))
            }),
            None => Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this transfer's outcome was already taken",
            )),
        }
    }

    /// Stops the transfer (the receiver keeps what it got, for a resume).
    fn cancel(&self) {
        self.task.abort();
    }
}

/// Starts sending the file at `path` to `key` (see `Node::send_file`).
#[pyfunction]
#[pyo3(signature = (node, key, path, name, timeout))]
pub(crate) fn send_file_start(
    py: Python<'_>,
    node: &NodeHandle,
    key: &[u8],
    path: PathBuf,
    name: Option<String>,
    timeout: f64,
) -> PyResult<FileSend> {
    let k = key_arg(key)?;
    let t = secs("timeout", timeout)?;
    let n = node.node(py)?;
    let done = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let (d, tt) = (Arc::clone(&done), Arc::clone(&total));
    let options = SendOptions {
        name,
        progress: Some(Arc::new(move |now, size| {
            tt.store(size, Ordering::Relaxed);
            d.store(now, Ordering::Relaxed);
        })),
        timeout: t,
    };
    let outcome = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&outcome);
    let (tx, finished) = watch::channel(false);
    let task = handle()?.spawn(async move {
        let r = n.send_file(&k, &path, options).await;
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        let _ = tx.send(true);
    });
    Ok(FileSend {
        done,
        total,
        finished,
        outcome,
        task: task.abort_handle(),
    })
}

/// Receives files into `dir`; `on_received(peer, name, path, size, resumed_from)` runs
/// on the event lane for each file that arrived whole.
#[pyfunction]
#[pyo3(signature = (node, dir, max_size, overwrite, timeout, on_received=None))]
pub(crate) fn expose_files(
    py: Python<'_>,
    node: &NodeHandle,
    dir: PathBuf,
    max_size: u64,
    overwrite: bool,
    timeout: f64,
    on_received: Option<Py<PyAny>>,
) -> PyResult<()> {
    let t = secs("timeout", timeout)?;
    let n = node.node(py)?;
    let lane = Arc::clone(&node.event_lane);
    let on_received = on_received.map(|cb| {
        let cb = Arc::new(cb);
        let f: peernet_core::OnReceived = Arc::new(move |f: &ReceivedFile| {
            let cb = Arc::clone(&cb);
            let f = f.clone();
            lane.submit(Box::new(move |py| {
                let peer = PyBytes::new(py, f.peer.as_bytes());
                let path = f.path.to_string_lossy().into_owned();
                if let Err(e) = cb.call1(py, (peer, f.name, path, f.size, f.resumed_from)) {
                    e.write_unraisable(py, None);
                }
            }));
        });
        f
    });
    let options = ReceiveOptions {
        max_size,
        overwrite,
        timeout: t,
        on_received,
        ..Default::default()
    };
    let r = sync(py, || n.expose_files(dir, options))?;
    check(py, r)
}

/// Stops receiving files.
#[pyfunction]
pub(crate) fn revoke_files(py: Python<'_>, node: &NodeHandle) -> PyResult<()> {
    let n = node.node(py)?;
    let r = sync(py, || n.revoke_files())?;
    r.map_err(|e| to_py(py, e))
}
