//! The process-wide tokio runtime and the GIL-free wait on it.
//!
//! The runtime is created lazily, once per process: after `fork()` the child sees a new
//! pid and builds its own (the parent's worker threads do not exist in the child).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::{Builder, Handle};

/// How long one GIL-free wait lasts before signals (Ctrl-C) are checked.
const SLICE: Duration = Duration::from_millis(50);

static RUNTIME: Mutex<Option<(u32, Handle)>> = Mutex::new(None);

/// The runtime of this process (created on first use, again after a fork).
pub(crate) fn handle() -> PyResult<Handle> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((p, h)) = slot.as_ref() {
        if *p == pid {
            return Ok(h.clone());
        }
    }
    let rt = Builder::new_multi_thread()
        .enable_all()
        .thread_name("peernet-rt")
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the tokio runtime: {e}")))?;
    let h = rt.handle().clone();
    // The runtime lives as long as the process; in a forked child the parent's one is
    // forgotten the same way (dropping it would wait for threads that do not exist).
    std::mem::forget(rt);
    *slot = Some((pid, h.clone()));
    Ok(h)
}

/// Runs `fut` to completion with the GIL released, driving it on the calling thread
/// (the runtime's I/O and timers run on its workers) with
/// `peernet_core::blocking::block_on` (a short yield-loop before parking, so a quick
/// reply needs no thread wake-up), in slices so that Ctrl-C (and any other pending
/// signal handler) interrupts the wait: the future is then dropped (cancelled) and the
/// signal's exception (`KeyboardInterrupt`) raised.
pub(crate) fn wait<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let h = handle()?;
    let mut fut = Box::pin(fut);
    loop {
        let (back, got) = py.detach(|| {
            let got = peernet_core::blocking::block_on(&h, async {
                tokio::time::timeout(SLICE, &mut fut).await
            });
            (fut, got)
        });
        fut = back;
        match got {
            Ok(v) => return Ok(v),
            Err(_elapsed) => py.check_signals()?,
        }
    }
}
