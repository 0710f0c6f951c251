//! Pairing: `invite` / `join` on a node handle, the invite handle, and the QR code of a
//! ticket as terminal text (the `qrcode` crate without its image features).

use std::time::{Duration, UNIX_EPOCH};

use peernet_core::{Invite, InviteOptions, PairedPeer};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::check;
use crate::node::{secs, NodeHandle};
use crate::runtime::wait;

/// What a pairing returns to Python: (key, name, address, sas).
type PairedTuple<'py> = (Bound<'py, PyBytes>, String, Option<String>, String);

fn paired<'py>(py: Python<'py>, p: &PairedPeer) -> PairedTuple<'py> {
    (
        PyBytes::new(py, p.key.as_bytes()),
        p.name.clone(),
        p.address.map(|a| a.to_string()),
        p.sas.clone(),
    )
}

/// An open invite (closing it, or dropping it, closes the pairing listener).
#[pyclass(frozen, module = "peernet._peernet")]
pub struct InviteHandle {
    invite: std::sync::Arc<Invite>,
}

#[pymethods]
impl InviteHandle {
    /// The ticket text.
    #[getter]
    fn ticket(&self) -> String {
        self.invite.ticket().to_owned()
    }

    /// The short code, if any.
    #[getter]
    fn code(&self) -> Option<String> {
        self.invite.code().map(str::to_owned)
    }

    /// Expiry as unix seconds.
    #[getter]
    fn expires_at(&self) -> f64 {
        self.invite
            .expires_at()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    /// True while the invite can still be used.
    #[getter]
    fn is_open(&self) -> bool {
        self.invite.is_open()
    }

    /// Waits (GIL released) for the pairing; (key, name, address, sas).
    fn wait<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<PairedTuple<'py>> {
        let t = secs("timeout", timeout)?;
        let inv = std::sync::Arc::clone(&self.invite);
        let r = wait(py, async move { inv.wait(t).await })?;
        let p = check(py, r)?;
        Ok(paired(py, &p))
    }

    /// Closes the pairing listener now.
    fn cancel(&self) {
        self.invite.cancel();
    }
}

/// Opens an invite on `node` (blocking while the listener is bound).
#[pyfunction]
#[pyo3(signature = (node, expiry, name=None, code=true))]
pub(crate) fn invite(
    py: Python<'_>,
    node: &NodeHandle,
    expiry: f64,
    name: Option<String>,
    code: bool,
) -> PyResult<InviteHandle> {
    let n = node.node(py)?;
    let opts = InviteOptions {
        expiry: Duration::from_secs(secs("expiry", expiry)?.as_secs().max(1)),
        name,
        code,
        ..InviteOptions::default()
    };
    let r = wait(py, async move { n.invite(opts).await })?;
    let invite = check(py, r)?;
    Ok(InviteHandle {
        invite: std::sync::Arc::new(invite),
    })
}

/// Pairs `node` with an invite (blocking, GIL released); (key, name, address, sas).
#[pyfunction]
#[pyo3(signature = (node, code_or_ticket, timeout, name=None))]
pub(crate) fn join<'py>(
    py: Python<'py>,
    node: &NodeHandle,
    code_or_ticket: String,
    timeout: f64,
    name: Option<String>,
) -> PyResult<PairedTuple<'py>> {
    let n = node.node(py)?;
    let t = secs("timeout", timeout)?;
    let r = wait(py, async move {
        n.join(&code_or_ticket, name.as_deref(), t).await
    })?;
    let p = check(py, r)?;
    Ok(paired(py, &p))
}

/// `text` as a QR code drawn with Unicode half blocks (two modules per character
/// row), with the quiet zone; dark modules are spaces on a light background when
/// `invert` (for dark terminals).
#[pyfunction]
#[pyo3(signature = (text, invert=false))]
pub(crate) fn qr_text(text: &str, invert: bool) -> PyResult<String> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| PyValueError::new_err(format!("cannot make a QR code: {e}")))?;
    let (dark, light) = if invert {
        (
            qrcode::render::unicode::Dense1x2::Light,
            qrcode::render::unicode::Dense1x2::Dark,
        )
    } else {
        (
            qrcode::render::unicode::Dense1x2::Dark,
            qrcode::render::unicode::Dense1x2::Light,
        )
    };
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(dark)
        .light_color(light)
        .quiet_zone(true)
        .build())
}
