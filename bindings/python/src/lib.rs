//! `peernet._peernet`: the thin pyo3 adapter of peernet-core used by the Python package
//! `peernet` (the Pythonic API lives in `python/peernet/`). It holds no protocol logic:
//! it converts arguments, runs the core on one process-wide tokio runtime with the GIL
//! released, and runs Python callables only on its own threads ("lanes").

mod dispatch;
mod errors;
mod fair;
mod lanes;
mod logging;
mod metrics;
mod node;
mod node_args;
mod node_callbacks;
mod node_calls;
mod node_files;
mod node_start;
mod node_streams;
mod node_views;
mod pairing;
mod runtime;

use std::sync::atomic::Ordering;

use pyo3::prelude::*;

/// The display fingerprint of a 32-byte key (16 hex digits).
#[pyfunction]
fn fingerprint(key: &[u8]) -> PyResult<String> {
    Ok(node::key_arg(key)?.fingerprint())
}

/// Parses a key from 64 hex digits.
#[pyfunction]
fn key_from_hex<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    peernet_core::Key::from_hex(s)
        .map(|k| pyo3::types::PyBytes::new(py, k.as_bytes()))
        .map_err(|_| pyo3::exceptions::PyValueError::new_err(format!("{s:?} is not 64 hex digits")))
}

/// Sets the lowest Python logging level forwarded to the `peernet` logger.
#[pyfunction]
fn set_log_level(level: i64) {
    logging::set_level(level);
}

/// Called at interpreter exit: no thread of the library takes the GIL any more.
#[pyfunction]
fn _finalize() {
    lanes::FINALIZING.store(true, Ordering::Release);
}

/// The extension module.
#[pymodule]
fn _peernet(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();
    m.add("__version__", peernet_core::VERSION)?;
    m.add_function(wrap_pyfunction!(fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(key_from_hex, m)?)?;
    m.add_function(wrap_pyfunction!(set_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(_finalize, m)?)?;
    m.add_function(wrap_pyfunction!(pairing::invite, m)?)?;
    m.add_function(wrap_pyfunction!(pairing::join, m)?)?;
    m.add_function(wrap_pyfunction!(pairing::qr_text, m)?)?;
    m.add_class::<pairing::InviteHandle>()?;
    m.add_class::<node::NodeHandle>()?;
    m.add_class::<dispatch::Responder>()?;
    m.add_function(wrap_pyfunction!(node_files::send_file_start, m)?)?;
    m.add_function(wrap_pyfunction!(node_files::expose_files, m)?)?;
    m.add_function(wrap_pyfunction!(node_files::revoke_files, m)?)?;
    m.add_class::<node_files::FileSend>()?;
    m.add_class::<node_streams::StreamHandle>()?;
    Ok(())
}
