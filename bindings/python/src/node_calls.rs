//! The asynchronous operations of `NodeHandle` (`call_cb`, `rpc_call_cb`, `connect_cb`,
//! `wait_connected_cb`, `send_cb`: each completes through `done(ok, value)` on the
//! completion lane) and the Rust-side benchmark loops (`_bench_rust_rtts`,
//! `_bench_rust_calls`). The `#[pymethods]` in `node.rs` call these.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors::check;
use crate::node::NodeHandle;
use crate::node_args::{addr_arg, key_arg, node_closed, secs};
use crate::node_callbacks::complete;
use crate::runtime::{handle, wait};

/// The body of `NodeHandle.call_cb` (documented there).
pub(crate) fn call_cb(
    h: &NodeHandle,
    py: Python<'_>,
    key: &[u8],
    name: String,
    body: &[u8],
    timeout: f64,
    done: Py<PyAny>,
) -> PyResult<()> {
    let k = key_arg(key)?;
    let t = secs("timeout", timeout)?;
    let n = h.node(py)?;
    let lane = Arc::clone(&h.completions);
    // No task per call: the core runs the callback (which only queues the result
    // for the completion lane) on the connection's driver task.
    let rt = handle()?;
    let _context = rt.enter();
    let r = n.call_with(&k, &name, body, t, move |r| complete(&lane, done, r));
    check(py, r)
}

/// The body of `NodeHandle.rpc_call_cb` (documented there).
#[allow(clippy::too_many_arguments)]
pub(crate) fn rpc_call_cb(
    h: &NodeHandle,
    py: Python<'_>,
    key: &[u8],
    module: String,
    function: String,
    args: &[u8],
    timeout: f64,
    done: Py<PyAny>,
) -> PyResult<()> {
    let k = key_arg(key)?;
    let t = secs("timeout", timeout)?;
    let n = h.node(py)?;
    let lane = Arc::clone(&h.completions);
    let args = args.to_vec();
    handle()?.spawn(async move {
        let r = n.rpc_call(&k, &module, &function, &args, t).await;
        complete(&lane, done, r);
    });
    Ok(())
}

/// The body of `NodeHandle.connect_cb` (documented there).
pub(crate) fn connect_cb(
    h: &NodeHandle,
    py: Python<'_>,
    key: &[u8],
    addr: &str,
    timeout: f64,
    done: Py<PyAny>,
) -> PyResult<()> {
    let k = key_arg(key)?;
    let a = addr_arg(addr, None)?;
    let t = secs("timeout", timeout)?;
    let n = h.node(py)?;
    let lane = Arc::clone(&h.completions);
    handle()?.spawn(async move {
        let r = n.connect(&k, a, t).await.map(|()| Vec::new());
        complete(&lane, done, r);
    });
    Ok(())
}

/// The body of `NodeHandle.wait_connected_cb` (documented there).
pub(crate) fn wait_connected_cb(
    h: &NodeHandle,
    py: Python<'_>,
    key: &[u8],
    timeout: f64,
    done: Py<PyAny>,
) -> PyResult<()> {
    let k = key_arg(key)?;
    let t = secs("timeout", timeout)?;
    let n = h.node(py)?;
    let lane = Arc::clone(&h.completions);
    handle()?.spawn(async move {
        let r = n.wait_connected(&k, t).await.map(|()| Vec::new());
        complete(&lane, done, r);
    });
    Ok(())
}

/// The body of `NodeHandle.send_cb` (documented there).
pub(crate) fn send_cb(
    h: &NodeHandle,
    py: Python<'_>,
    key: &[u8],
    name: String,
    body: &[u8],
    done: Py<PyAny>,
) -> PyResult<()> {
    let k = key_arg(key)?;
    let n = h.node(py)?;
    let lane = Arc::clone(&h.completions);
    let body = body.to_vec();
    handle()?.spawn(async move {
        let r = n.send(&k, &name, &body).await.map(|()| Vec::new());
        complete(&lane, done, r);
    });
    Ok(())
}

/// The body of `NodeHandle._bench_rust_rtts` (documented there).
pub(crate) fn bench_rust_rtts(
    h: &NodeHandle,
    py: Python<'_>,
    key: &[u8],
    name: String,
    size: usize,
    count: usize,
) -> PyResult<Vec<f64>> {
    let k = key_arg(key)?;
    let n = h.node(py)?;
    // The loop runs as a task on the runtime's workers, not on this thread.
    let r = wait(py, async move {
        let task = tokio::spawn(async move {
            let body = vec![0u8; size];
            let mut rtts = Vec::with_capacity(count.min(1 << 20));
            for _ in 0..count {
                let t = std::time::Instant::now();
                n.call(&k, &name, &body, Duration::from_secs(30)).await?;
                rtts.push(t.elapsed().as_secs_f64() * 1e6);
            }
            Ok::<_, peernet_core::Error>(rtts)
        });
        task.await.unwrap_or(Err(node_closed()))
    })?;
    check(py, r)
}

/// The body of `NodeHandle._bench_rust_calls` (documented there).
pub(crate) fn bench_rust_calls(
    h: &NodeHandle,
    py: Python<'_>,
    key: &[u8],
    name: String,
    size: usize,
    count: usize,
    concurrency: usize,
) -> PyResult<f64> {
    let k = key_arg(key)?;
    let n = h.node(py)?;
    let per = count / concurrency.max(1);
    let r = wait(py, async move {
        let body = Arc::new(vec![0u8; size]);
        let name = Arc::new(name);
        let t = std::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency.max(1) {
            let (n, body, name) = (Arc::clone(&n), Arc::clone(&body), Arc::clone(&name));
            tasks.push(tokio::spawn(async move {
                for _ in 0..per {
                    n.call(&k, &name, &body, Duration::from_secs(30)).await?;
                }
                Ok::<_, peernet_core::Error>(())
            }));
        }
        for task in tasks {
            match task.await {
                Ok(r) => r?,
                Err(_) => return Err(node_closed()),
            }
        }
        Ok(t.elapsed().as_secs_f64())
    })?;
    check(py, r)
}
