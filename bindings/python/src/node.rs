//! `NodeHandle`: the core node, adapted for the Python layer in `peernet/__init__.py`.
//!
//! Every blocking method waits with the GIL released (see [`crate::runtime::wait`]).
//! Python callables given to the handle (handlers, authorize predicates, the RPC
//! dispatcher, the event callback, completion callbacks) run only on the node's lanes.
//!
//! This file holds the class, its lifecycle and the `#[pymethods]` (one block: the
//! crate does not enable pyo3's `multiple-pymethods`); the longer bodies live in the
//! sibling modules: `node_args` (argument conversions), `node_start` (configuration and
//! start), `node_callbacks` (handlers, RPC dispatcher, event pump, completions),
//! `node_calls` (the `*_cb` operations and benchmark loops), `node_views` (trust and
//! peer rows).

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peernet_core::{Event, Handler, Key, Node, Request};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::errors::{check, to_py};
use crate::fair::FairLane;
use crate::lanes::Lane;
use crate::node_args::{addr_arg, node_closed, sync};
pub(crate) use crate::node_args::{key_arg, secs};
use crate::node_callbacks::{exposed_handler, rpc_dispatcher, spawn_event_pump};
use crate::node_start::DiscoveryArgs;
use crate::node_views::{peer_rows, trusted_rows, PeerRow, TrustedRow};
use crate::runtime::wait;

/// How long `close` waits for busy handler threads.
const JOIN_LIMIT: Duration = Duration::from_secs(5);

/// The live part of a handle (`None` once closed).
pub(crate) struct Inner {
    pub(crate) node: Arc<Node>,
    pub(crate) events: Option<JoinHandle<()>>,
    /// Subscribed as the node starts, so the first event callback also sees what
    /// happened before it was set (up to the core's event buffer).
    pub(crate) early: Option<broadcast::Receiver<Event>>,
}

/// A running core node.
#[pyclass(frozen, module = "peernet._peernet")]
pub struct NodeHandle {
    pub(crate) inner: Mutex<Option<Inner>>,
    pub(crate) key: Key,
    pub(crate) port: u16,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) pool: Arc<FairLane>,
    pub(crate) rpc_lane: Arc<FairLane>,
    pub(crate) completions: Arc<Lane>,
    pub(crate) event_lane: Arc<Lane>,
    pub(crate) event_backlog: Arc<AtomicUsize>,
    pub(crate) pid: u32,
}

impl NodeHandle {
    pub(crate) fn node(&self, py: Python<'_>) -> PyResult<Arc<Node>> {
        match self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(i) => Ok(Arc::clone(&i.node)),
            None => Err(to_py(py, node_closed())),
        }
    }

    fn close_lanes(&self) {
        self.pool.close();
        self.rpc_lane.close();
        self.completions.close();
        self.event_lane.close();
    }
}

#[pymethods]
impl NodeHandle {
    /// Starts a node (blocking, GIL released).
    #[staticmethod]
    #[pyo3(signature = (data_dir, listen, discovery, heartbeat, max_frame, handshake_timeout,
                        handler_threads, network_monitor, auto_connect, rpc_threads, mdns=None))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        py: Python<'_>,
        data_dir: std::path::PathBuf,
        listen: Option<&str>,
        discovery: Option<DiscoveryArgs>,
        heartbeat: (f64, f64),
        max_frame: u32,
        handshake_timeout: f64,
        handler_threads: usize,
        network_monitor: Option<f64>,
        auto_connect: bool,
        rpc_threads: usize,
        mdns: Option<(Vec<String>, Vec<String>)>,
    ) -> PyResult<NodeHandle> {
        crate::node_start::start(
            py,
            data_dir,
            listen,
            discovery,
            heartbeat,
            max_frame,
            handshake_timeout,
            handler_threads,
            network_monitor,
            auto_connect,
            rpc_threads,
            mdns,
        )
    }

    /// The node's key (32 bytes).
    fn key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.key.as_bytes())
    }

    /// The listening TCP port (0 = none).
    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    /// The listener's address as "ip:port", or None.
    #[getter]
    fn local_addr(&self) -> Option<String> {
        self.local_addr.map(|a| a.to_string())
    }

    /// Whether `close` ran (or the node was dropped).
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// Trusts a key, with an optional label.
    #[pyo3(signature = (key, label=None))]
    fn trust(&self, py: Python<'_>, key: &[u8], label: Option<&str>) -> PyResult<()> {
        let k = key_arg(key)?;
        let n = self.node(py)?;
        let r = sync(py, || n.trust(&k, label))?;
        check(py, r)
    }

    /// Untrusts a key (closing its connections); returns whether it was trusted.
    fn untrust(&self, py: Python<'_>, key: &[u8]) -> PyResult<bool> {
        let k = key_arg(key)?;
        let n = self.node(py)?;
        let r = sync(py, || n.untrust(&k))?;
        check(py, r)
    }

    /// Grants or withdraws RPC rights.
    fn grant_rpc(&self, py: Python<'_>, key: &[u8], allowed: bool) -> PyResult<()> {
        let k = key_arg(key)?;
        let n = self.node(py)?;
        let r = sync(py, || n.grant_rpc(&k, allowed))?;
        check(py, r)
    }

    /// Attaches a manual address (`host:port`) to a trusted key; returns it canonical.
    fn add_address(&self, py: Python<'_>, key: &[u8], addr: &str) -> PyResult<String> {
        let k = key_arg(key)?;
        let n = self.node(py)?;
        let r = sync(py, || n.add_address(&k, addr))?;
        check(py, r)
    }

    /// Detaches a manual address; returns whether it was attached.
    fn remove_address(&self, py: Python<'_>, key: &[u8], addr: &str) -> PyResult<bool> {
        let k = key_arg(key)?;
        let n = self.node(py)?;
        let r = sync(py, || n.remove_address(&k, addr))?;
        check(py, r)
    }

    /// The trust store: list of (key, label, added_at, rpc, remembered addresses,
    /// manual addresses).
    fn trusted<'py>(&self, py: Python<'py>) -> PyResult<Vec<TrustedRow<'py>>> {
        let n = self.node(py)?;
        Ok(trusted_rows(py, &n))
    }

    /// Exposes handler `name`: `target(peer, body, is_call, responder)` runs on the
    /// handler pool; with `authorize`, `authorize(peer) -> bool` runs there first.
    #[pyo3(signature = (name, target, authorize=None))]
    fn expose(
        &self,
        py: Python<'_>,
        name: &str,
        target: Py<PyAny>,
        authorize: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let n = self.node(py)?;
        let handler = exposed_handler(&self.pool, target, authorize)?;
        let r = sync(py, || n.expose(name, handler))?;
        check(py, r)
    }

    /// Removes handler `name`.
    fn revoke(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let n = self.node(py)?;
        let r = sync(py, || n.revoke(name))?;
        check(py, r)
    }

    /// Sets the RPC dispatcher `target(peer, module, function, args, responder)`, or
    /// removes it with None. It runs on the node's RPC threads (not the handler threads),
    /// each call within `budget` seconds: a call still queued then does not run, and
    /// the caller gets an error then (the function, if running, goes on to its end).
    fn set_rpc_dispatcher(
        &self,
        py: Python<'_>,
        target: Option<Py<PyAny>>,
        budget: f64,
    ) -> PyResult<()> {
        let budget = secs("rpc_timeout", budget)?;
        let n = self.node(py)?;
        let d = target.map(|t| rpc_dispatcher(&self.rpc_lane, t, budget));
        sync(py, || n.set_rpc_dispatcher(d))?;
        Ok(())
    }

    /// Dials `addr` and authenticates it as `key` (blocking).
    fn connect(&self, py: Python<'_>, key: &[u8], addr: &str, timeout: f64) -> PyResult<()> {
        let k = key_arg(key)?;
        let a = addr_arg(addr, None)?;
        let t = secs("timeout", timeout)?;
        let n = self.node(py)?;
        let r = wait(py, async move { n.connect(&k, a, t).await })?;
        check(py, r)
    }

    /// Closes every connection to `key` (blocking).
    fn disconnect(&self, py: Python<'_>, key: &[u8]) -> PyResult<()> {
        let k = key_arg(key)?;
        let n = self.node(py)?;
        let r = wait(py, async move { n.disconnect(&k).await })?;
        check(py, r)
    }

    /// Whether `key` is connected.
    fn is_connected(&self, py: Python<'_>, key: &[u8]) -> PyResult<bool> {
        let k = key_arg(key)?;
        Ok(self.node(py)?.is_connected(&k))
    }

    /// Verification words of the live connection to `key` (`None`: not connected).
    fn verification_words(&self, py: Python<'_>, key: &[u8]) -> PyResult<Option<String>> {
        let k = key_arg(key)?;
        Ok(self.node(py)?.verification_words(&k))
    }

    /// Waits until `key` is connected (blocking).
    fn wait_connected(&self, py: Python<'_>, key: &[u8], timeout: f64) -> PyResult<()> {
        let k = key_arg(key)?;
        let t = secs("timeout", timeout)?;
        let n = self.node(py)?;
        let r = wait(py, async move { n.wait_connected(&k, t).await })?;
        check(py, r)
    }

    /// Calls handler `name` on `key` and returns the reply (blocking).
    fn call<'py>(
        &self,
        py: Python<'py>,
        key: &[u8],
        name: String,
        body: &[u8],
        timeout: f64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let k = key_arg(key)?;
        let t = secs("timeout", timeout)?;
        let n = self.node(py)?;
        let body = body.to_vec();
        let r = wait(py, async move { n.call(&k, &name, &body, t).await })?;
        check(py, r).map(|v| PyBytes::new(py, &v))
    }

    /// Starts a call; `done(ok, value)` runs on the completion lane with the reply bytes
    /// or the exception.
    fn call_cb(
        &self,
        py: Python<'_>,
        key: &[u8],
        name: String,
        body: &[u8],
        timeout: f64,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        crate::node_calls::call_cb(self, py, key, name, body, timeout, done)
    }

    /// Sends to handler `name` on `key`, fire-and-forget (blocking while the queue is full).
    fn send(&self, py: Python<'_>, key: &[u8], name: String, body: &[u8]) -> PyResult<()> {
        let k = key_arg(key)?;
        let n = self.node(py)?;
        let body = body.to_vec();
        let r = wait(py, async move { n.send(&k, &name, &body).await })?;
        check(py, r)
    }

    /// RPC: `module.function(args)` on `key`; returns the reply bytes (blocking).
    fn rpc_call<'py>(
        &self,
        py: Python<'py>,
        key: &[u8],
        module: String,
        function: String,
        args: &[u8],
        timeout: f64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let k = key_arg(key)?;
        let t = secs("timeout", timeout)?;
        let n = self.node(py)?;
        let args = args.to_vec();
        let r = wait(py, async move {
            n.rpc_call(&k, &module, &function, &args, t).await
        })?;
        check(py, r).map(|v| PyBytes::new(py, &v))
    }

    /// RPC, completed through `done(ok, value)` like `call_cb`.
    #[allow(clippy::too_many_arguments)]
    fn rpc_call_cb(
        &self,
        py: Python<'_>,
        key: &[u8],
        module: String,
        function: String,
        args: &[u8],
        timeout: f64,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        crate::node_calls::rpc_call_cb(self, py, key, module, function, args, timeout, done)
    }

    /// Starts `connect`; `done(ok, value)` runs on the completion lane (value: `b""` or
    /// the exception), like `call_cb`.
    fn connect_cb(
        &self,
        py: Python<'_>,
        key: &[u8],
        addr: &str,
        timeout: f64,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        crate::node_calls::connect_cb(self, py, key, addr, timeout, done)
    }

    /// Starts `wait_connected`, completed through `done(ok, value)` like `call_cb`.
    fn wait_connected_cb(
        &self,
        py: Python<'_>,
        key: &[u8],
        timeout: f64,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        crate::node_calls::wait_connected_cb(self, py, key, timeout, done)
    }

    /// Starts `send` (which waits while the connection's queue is full), completed
    /// through `done(ok, value)` like `call_cb`.
    fn send_cb(
        &self,
        py: Python<'_>,
        key: &[u8],
        name: String,
        body: &[u8],
        done: Py<PyAny>,
    ) -> PyResult<()> {
        crate::node_calls::send_cb(self, py, key, name, body, done)
    }

    /// Manual discovery hint: `key` may be reached at `addr` (a trusted peer is then
    /// dialled by auto-connect).
    fn discovered(&self, py: Python<'_>, key: &[u8], addr: &str) -> PyResult<()> {
        let k = key_arg(key)?;
        let a = addr_arg(addr, None)?;
        let n = self.node(py)?;
        let r = sync(py, || n.discovered(&k, a))?;
        check(py, r)
    }

    /// Manual discovery: `key` is gone (live connections stay up).
    fn lost(&self, py: Python<'_>, key: &[u8]) -> PyResult<()> {
        let k = key_arg(key)?;
        let n = self.node(py)?;
        sync(py, || n.lost(&k))?;
        Ok(())
    }

    /// Peers: list of (key, state, trusted, rpc, label, address, last_seen, rtt).
    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Vec<PeerRow<'py>>> {
        let n = self.node(py)?;
        Ok(peer_rows(py, &n))
    }

    /// Metrics: (counters by name, [(handler, counters, latency buckets, sum)]).
    fn metrics(&self, py: Python<'_>) -> PyResult<crate::metrics::Metrics> {
        let n = self.node(py)?;
        Ok(crate::metrics::metrics(&n))
    }

    /// Metrics counting on or off while the node runs.
    fn set_metrics(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        self.node(py)?.set_metrics(on);
        Ok(())
    }

    /// Metrics in OpenMetrics text format.
    fn metrics_text(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.node(py)?.metrics_text())
    }

    /// (last dial, next dial, addresses, traffic) of a peer, or None.
    fn peer_detail(
        &self,
        py: Python<'_>,
        key: &[u8],
    ) -> PyResult<Option<crate::metrics::PeerDetail>> {
        let k = key_arg(key)?;
        Ok(crate::metrics::peer_detail(&*self.node(py)?, &k))
    }

    /// Sets the event callback `cb(kind, key, address, detail, close_reason)` (run on the event lane),
    /// or stops delivering events with None.
    fn set_event_callback(&self, py: Python<'_>, cb: Option<Py<PyAny>>) -> PyResult<()> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(inner) = g.as_mut() else {
            return Err(to_py(py, node_closed()));
        };
        if let Some(t) = inner.events.take() {
            t.abort();
        }
        let Some(cb) = cb else { return Ok(()) };
        let rx = match inner.early.take() {
            Some(rx) => rx,
            None => inner.node.events(),
        };
        inner.events = Some(spawn_event_pump(
            rx,
            cb,
            &self.event_lane,
            &self.event_backlog,
        )?);
        Ok(())
    }

    /// Stops the node and waits for it (blocking): connections closed, handlers dropped,
    /// handler and RPC threads joined (up to 5 s in all for busy ones). Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(inner) = inner else { return Ok(()) };
        if let Some(t) = inner.events {
            t.abort();
        }
        let n = inner.node;
        wait(py, async move { n.shutdown().await })?;
        self.close_lanes();
        let fair = [Arc::clone(&self.pool), Arc::clone(&self.rpc_lane)];
        let lanes = [Arc::clone(&self.completions), Arc::clone(&self.event_lane)];
        py.detach(|| {
            // One limit for all: busy threads of several lanes are waited for together.
            let deadline = Instant::now() + JOIN_LIMIT;
            let left = || deadline.saturating_duration_since(Instant::now());
            for l in fair {
                l.join(left());
            }
            for l in lanes {
                l.join(left());
            }
        });
        Ok(())
    }

    /// Benchmark support: exposes `name` as a pure-Rust echo handler (no Python), the
    /// baseline the Python handler rate is compared with.
    fn _bench_expose_rust_echo(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let n = self.node(py)?;
        let h = Handler::from_async(|req: Request| async move { Ok(req.body) });
        let r = sync(py, || n.expose(name, h))?;
        check(py, r)
    }

    /// Benchmark support: `count` sequential calls of `name` on `key` with a
    /// `size`-byte body from a Rust task (no Python per call). Returns each call's round
    /// trip in microseconds.
    fn _bench_rust_rtts(
        &self,
        py: Python<'_>,
        key: &[u8],
        name: String,
        size: usize,
        count: usize,
    ) -> PyResult<Vec<f64>> {
        crate::node_calls::bench_rust_rtts(self, py, key, name, size, count)
    }

    /// Benchmark support: `count` calls of `name` on `key` with a `size`-byte body,
    /// `concurrency` in flight, issued from Rust (no Python per call). Returns seconds.
    fn _bench_rust_calls(
        &self,
        py: Python<'_>,
        key: &[u8],
        name: String,
        size: usize,
        count: usize,
        concurrency: usize,
    ) -> PyResult<f64> {
        crate::node_calls::bench_rust_calls(self, py, key, name, size, count, concurrency)
    }

    /// Test support: handler jobs queued on the handler threads and not started yet.
    fn _handler_backlog(&self) -> usize {
        self.pool.waiting()
    }

    fn __repr__(&self) -> String {
        format!(
            "NodeHandle(key={}, local_addr={:?}, closed={})",
            self.key.fingerprint(),
            self.local_addr,
            self.closed()
        )
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        let inner = self
            .inner
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if std::process::id() != self.pid {
            // A forked child: the parent's node is not ours to stop.
            std::mem::forget(inner);
            return;
        }
        if let Some(inner) = inner {
            if let Some(t) = inner.events {
                t.abort();
            }
            // The core's Drop stops the node without waiting (no GIL needed).
            drop(inner.node);
        }
        self.close_lanes();
    }
}
