//! Argument conversions of `NodeHandle` (keys, seconds, addresses, times) and the two
//! small helpers every method uses: `sync` (a core call with the GIL released) and
//! `node_closed` (the error of a closed node).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peernet_core::Key;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::runtime::handle;

/// A key argument: exactly 32 bytes.
pub(crate) fn key_arg(b: &[u8]) -> PyResult<Key> {
    let raw: [u8; 32] = b
        .try_into()
        .map_err(|_| PyValueError::new_err(format!("a key is 32 bytes, not {}", b.len())))?;
    Ok(Key::from_bytes(raw))
}

/// Seconds (float) to a Duration; negative, NaN or huge values are `ValueError`.
pub(crate) fn secs(name: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a non-negative number of seconds, not {s}"
        ))
    })
}

/// "ip:port", or a bare IP with `default_port`.
pub(crate) fn addr_arg(s: &str, default_port: Option<u16>) -> PyResult<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    match (
        s.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>(),
        default_port,
    ) {
        (Ok(ip), Some(p)) => Ok(SocketAddr::new(ip, p)),
        _ => Err(PyValueError::new_err(format!(
            "{s:?} is not an address of the form IP:PORT"
        ))),
    }
}

pub(crate) fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs a synchronous core method with the GIL released, inside the runtime's context
/// (some start tasks: a trust change or a discovery hint may dial).
pub(crate) fn sync<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    let h = handle()?;
    Ok(py.detach(|| {
        let _guard = h.enter();
        f()
    }))
}

/// The error of an operation on a node that was closed (`close()` or the end of its
/// `with` block).
pub(crate) fn node_closed() -> peernet_core::Error {
    peernet_core::Error::Closed(peernet_core::CloseReason::LocalShutdown)
}
