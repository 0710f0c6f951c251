//! Core errors to Python exceptions (classes defined in `peernet/_errors.py`).

use peernet_core::Error;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The Python exception for a core error: one class per C status; invalid arguments are
/// `ValueError`, I/O errors `OSError`.
pub(crate) fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let class = match &e {
        Error::InvalidArgument(m) => return PyValueError::new_err(m.clone()),
        Error::Io { .. } => return PyOSError::new_err(e.to_string()),
        Error::CorruptFile { .. } => "CorruptFile",
        Error::NotConnected => "NotConnected",
        Error::Timeout => "Timeout",
        Error::NoSuchHandler(_) => "NoSuchHandler",
        Error::Forbidden => "Forbidden",
        Error::HandlerFailed(m) => return raise(py, "HandlerFailed", m.clone()),
        Error::Overloaded => "Overloaded",
        Error::UntrustedPeer(_) => "UntrustedPeer",
        Error::HandshakeFailed(_) => "HandshakeFailed",
        Error::PayloadTooLarge { .. } => "PayloadTooLarge",
        Error::AlreadyExists(_) => "AlreadyExists",
        // The class says "closed"; the message says who closed and why.
        Error::Closed(why) => return raise(py, "Closed", why.to_string()),
        Error::Internal(_) => "InternalError",
        Error::StreamReset { code, reason } => {
            // `code` and `reason` as attributes: the peer's application decides them.
            let err = raise(py, "StreamReset", e.to_string());
            let v = err.value(py);
            let _ = v.setattr("code", *code);
            let _ = v.setattr("reason", reason.clone());
            return err;
        }
        Error::Busy { path, pid } => {
            // `pid` and `path` as attributes, so the CLI can say what to do.
            let err = raise(py, "Busy", e.to_string());
            let v = err.value(py);
            let _ = v.setattr("pid", *pid);
            let _ = v.setattr("path", path.to_string_lossy().into_owned());
            return err;
        }
        _ => "PeerNetError",
    };
    raise(py, class, e.to_string())
}

/// An exception of class `class` of `peernet._errors` with `msg`.
pub(crate) fn raise(py: Python<'_>, class: &str, msg: String) -> PyErr {
    let ty = py
        .import("peernet._errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match ty {
        Ok(t) => PyErr::from_type(t, msg),
        Err(_) => PyRuntimeError::new_err(format!("{class}: {msg}")),
    }
}

/// `Result<T, Error>` to `PyResult<T>`.
pub(crate) fn check<T>(py: Python<'_>, r: Result<T, Error>) -> PyResult<T> {
    r.map_err(|e| to_py(py, e))
}
