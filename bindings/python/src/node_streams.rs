//! `StreamHandle`: one byte stream of the core (`peernet_core::Stream`) for the Python
//! layer's `peernet.Stream` (`python/peernet/_streams.py`), and the core stream handler
//! of `Node.expose_stream`.
//!
//! Reads and writes block with the GIL released, in slices of 50 ms so that Ctrl-C
//! interrupts them (like every other blocking method, see [`crate::runtime::wait`]);
//! one thread may read while another writes. Exposed stream functions run on threads
//! of their own per exposed name (a fair lane, as handlers have), never on a tokio
//! thread, and never on the handler threads: a peer that keeps streams open cannot
//! hold up calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peernet_core::{Error, Key, Stream, StreamHandler};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::dispatch::run_authorize;
use crate::errors::{check, raise, to_py};
use crate::fair::FairLane;
use crate::lanes::Job;
use crate::node::NodeHandle;
use crate::node_args::{key_arg, secs, sync};
use crate::runtime::wait;

/// How long one GIL-free wait of a read or write lasts before signals are checked.
const SLICE: Duration = Duration::from_millis(50);

/// Most bytes one `read` returns (the core's receive window per stream).
pub(crate) const READ_MAX: usize = 256 * 1024;

/// One stream to or from a peer. Reads and writes may run on two threads at once.
#[pyclass(frozen, module = "peernet._peernet")]
pub struct StreamHandle {
    stream: Stream,
    peer: Key,
    name: String,
    /// `finish` was called (our direction is closed).
    finished: AtomicBool,
    /// `reset` was called here.
    reset: AtomicBool,
}

impl StreamHandle {
    fn new(stream: Stream) -> StreamHandle {
        StreamHandle {
            peer: stream.peer(),
            name: stream.name().to_owned(),
            stream,
            finished: AtomicBool::new(false),
            reset: AtomicBool::new(false),
        }
    }
}

/// The deadline of a call with `timeout` seconds (`None`, or too far to represent:
/// none).
fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    Ok(match timeout {
        None => None,
        Some(t) => Instant::now().checked_add(secs("timeout", t)?),
    })
}

/// The next wait: a slice, or what is left before `deadline` if that is shorter.
fn slice(deadline: Option<Instant>) -> Duration {
    deadline.map_or(SLICE, |d| {
        d.saturating_duration_since(Instant::now()).min(SLICE)
    })
}

/// Seconds for a message, to the millisecond ("0.3", "8").
fn shown(timeout: Option<f64>) -> f64 {
    (timeout.unwrap_or(0.0) * 1000.0).round() / 1000.0
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

#[pymethods]
impl StreamHandle {
    /// Opens a stream to the stream handler `name` of `key` (blocking until the open
    /// is queued; a refusal shows up as `StreamReset` on the first read or write).
    #[staticmethod]
    fn open(py: Python<'_>, node: &NodeHandle, key: &[u8], name: String) -> PyResult<Self> {
        let k = key_arg(key)?;
        let n = node.node(py)?;
        let r = wait(py, async move { n.open_stream(&k, &name).await })?;
        check(py, r).map(StreamHandle::new)
    }

    /// Exposes stream handler `name`: `target(stream)` runs on `threads` threads of
    /// its own (not the handler threads: a stream function may run as long as its
    /// peer keeps the stream open) for every stream a trusted peer opens to it; with
    /// `authorize`, `authorize(peer) -> bool` runs there first (a refused stream is
    /// reset, code 1). The threads end once the core drops the handler (revoke, close).
    #[staticmethod]
    #[pyo3(signature = (node, name, target, authorize=None, threads=4))]
    fn expose(
        py: Python<'_>,
        node: &NodeHandle,
        name: &str,
        target: Py<PyAny>,
        authorize: Option<Py<PyAny>>,
        threads: usize,
    ) -> PyResult<()> {
        if threads == 0 || threads > 1024 {
            return Err(PyValueError::new_err(format!(
                "threads must be 1..=1024, not {threads}"
            )));
        }
        let n = node.node(py)?;
        let lane = FairLane::new("peernet-stream", threads)
            .map_err(|e| PyOSError::new_err(format!("cannot start stream threads: {e}")))?;
        let handler = stream_handler(Arc::new(StreamLane(lane)), target, authorize);
        let r = sync(py, || n.expose_stream(name, handler))?;
        check(py, r)
    }

    /// Removes stream handler `name`.
    #[staticmethod]
    fn revoke(py: Python<'_>, node: &NodeHandle, name: &str) -> PyResult<()> {
        let n = node.node(py)?;
        let r = sync(py, || n.revoke_stream(name))?;
        check(py, r)
    }

    /// The peer's key (32 bytes).
    #[getter]
    fn peer<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.peer.as_bytes())
    }

    /// The stream handler name it was opened to.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The stream's id on its connection.
    #[getter]
    fn id(&self) -> u64 {
        self.stream.id()
    }

    /// Reads up to `n` (at most 256 KiB) bytes, waiting up to `timeout` seconds
    /// (`None`: forever) for the first; `b""` once the peer finished its direction.
    #[pyo3(signature = (n, timeout=None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let until = deadline(timeout)?;
        if n == 0 {
            return Ok(PyBytes::new(py, b""));
        }
        let mut buf = vec![0u8; n.min(READ_MAX)];
        loop {
            let wait_for = slice(until);
            let s = &self.stream;
            let r = py.detach(|| s.read_blocking(&mut buf, Some(wait_for)));
            match r {
                Ok(got) => {
                    buf.truncate(got);
                    return Ok(PyBytes::new(py, &buf));
                }
                Err(Error::Timeout) if !passed(until) => py.check_signals()?,
                Err(Error::Timeout) => {
                    return Err(raise(
                        py,
                        "Timeout",
                        format!(
                            "no data on stream {:?} from {} within {} s",
                            self.name,
                            self.peer.fingerprint(),
                            shown(timeout)
                        ),
                    ))
                }
                Err(e) => return Err(to_py(py, e)),
            }
        }
    }

    /// Writes all of `data`, waiting (up to `timeout` seconds, `None`: forever) while
    /// the peer's window is full. On `Timeout` the exception's `written` says how many
    /// bytes the stream took.
    #[pyo3(signature = (data, timeout=None))]
    fn write(&self, py: Python<'_>, data: &[u8], timeout: Option<f64>) -> PyResult<()> {
        let until = deadline(timeout)?;
        let mut done = 0;
        while done < data.len() {
            let wait_for = slice(until);
            let (s, rest) = (&self.stream, data.get(done..).unwrap_or_default());
            let r = py.detach(|| s.write_blocking(rest, Some(wait_for)));
            match r {
                Ok(took) => done += took,
                Err(Error::Timeout) if !passed(until) => py.check_signals()?,
                Err(Error::Timeout) => {
                    let err = raise(
                        py,
                        "Timeout",
                        format!(
                            "stream {:?} to {} took {done} of {} bytes within {} s \
                             (the peer reads slower than that)",
                            self.name,
                            self.peer.fingerprint(),
                            data.len(),
                            shown(timeout)
                        ),
                    );
                    let _ = err.value(py).setattr("written", done);
                    return Err(err);
                }
                Err(e) => return Err(to_py(py, e)),
            }
        }
        Ok(())
    }

    /// Finishes our direction: the peer reads the end after what was written.
    /// Idempotent; does nothing after a reset here.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        if self.reset.load(Ordering::Acquire) || self.finished.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let s = &self.stream;
        let r = sync(py, || s.finish())?;
        check(py, r)
    }

    /// Aborts both directions with `code` and `reason` (the core cuts it to 255 bytes).
    #[pyo3(signature = (code=0, reason=""))]
    fn reset(&self, py: Python<'_>, code: u32, reason: &str) -> PyResult<()> {
        self.reset.store(true, Ordering::Release);
        let s = &self.stream;
        sync(py, || s.reset(code, reason))
    }

    /// Whether `finish` or `reset` was called here.
    #[getter]
    fn closed(&self) -> bool {
        self.finished.load(Ordering::Acquire) || self.reset.load(Ordering::Acquire)
    }

    fn __repr__(&self) -> String {
        format!(
            "StreamHandle(id={}, peer={}, name={:?})",
            self.stream.id(),
            self.peer.fingerprint(),
            self.name
        )
    }
}

/// The threads of one exposed stream handler. The core's handler holds it; once the
/// core drops the handler (revoke, node shutdown) the lane closes and its threads end
/// when their jobs are done (they are not joined: a stream function runs to its end).
struct StreamLane(Arc<FairLane>);

impl Drop for StreamLane {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The core handler of `StreamHandle.expose`: each stream goes to `target(handle)` on
/// the handler's lane, in its peer's turn (the core's task or thread does not wait for
/// it: the stream now belongs to Python).
fn stream_handler(
    lane: Arc<StreamLane>,
    target: Py<PyAny>,
    authorize: Option<Py<PyAny>>,
) -> StreamHandler {
    let target = Arc::new(target);
    let run_lane = Arc::clone(&lane);
    let run = move |stream: Stream| {
        let target = Arc::clone(&target);
        let peer = stream.peer();
        let job: Job = Box::new(move |py| {
            let r = Py::new(py, StreamHandle::new(stream)).and_then(|h| target.call1(py, (h,)));
            if let Err(e) = r {
                // The Python trampoline catches the function's exceptions: this is a
                // failure of the trampoline itself.
                e.write_unraisable(py, None);
            }
        });
        // A closed lane drops the job, and with it the stream (reset, code 0).
        run_lane.0.submit(&peer, job);
    };
    match authorize {
        None => StreamHandler::from_async(move |stream: Stream| {
            run(stream);
            std::future::ready(())
        }),
        Some(pred) => {
            // The core runs the predicate before the stream flows, synchronously: a
            // Python one waits for its turn on the lane, so the handler is a blocking
            // one (a tokio blocking thread waits for the verdict only).
            let pred = Arc::new(pred);
            StreamHandler::blocking(run)
                .with_authorize(move |peer| run_authorize(&lane.0, &pred, peer))
        }
    }
}
