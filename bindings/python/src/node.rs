//! `NodeHandle`: the core node, adapted for the Python layer in `peernet/__init__.py`.
//!
//! Every blocking method waits with the GIL released (see [`crate::runtime::wait`]).
//! Python callables given to the handle (handlers, authorize predicates, the RPC
//! dispatcher, the event callback, completion callbacks) run only on the node's lanes.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peernet_core::{
    Event, Handler, Key, Node, NodeConfig, PeerState, Request, RpcCall, RpcDispatcher,
    UdpDiscoveryConfig,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::dispatch::{dispatch, dispatch_within, request_args, run_authorize};
use crate::errors::{check, to_py};
use crate::fair::FairLane;
use crate::lanes::Lane;
use crate::runtime::{handle, wait};

/// Events waiting for the event callback at most; more are dropped (with a warning).
const EVENT_BACKLOG: usize = 1024;
/// How long `close` waits for busy handler threads.
const JOIN_LIMIT: Duration = Duration::from_secs(5);

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
fn addr_arg(s: &str, default_port: Option<u16>) -> PyResult<SocketAddr> {
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

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

struct Inner {
    node: Arc<Node>,
    events: Option<JoinHandle<()>>,
    /// Subscribed as the node starts, so the first event callback also sees what
    /// happened before it was set (up to the core's event buffer).
    early: Option<broadcast::Receiver<Event>>,
}

/// Runs a synchronous core method with the GIL released, inside the runtime's context
/// (some start tasks: a trust change or a discovery hint may dial).
fn sync<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    let h = handle()?;
    Ok(py.detach(|| {
        let _guard = h.enter();
        f()
    }))
}

/// A running core node.
#[pyclass(frozen, module = "peernet._peernet")]
pub struct NodeHandle {
    inner: Mutex<Option<Inner>>,
    key: Key,
    port: u16,
    local_addr: Option<SocketAddr>,
    pool: Arc<FairLane>,
    rpc_lane: Arc<FairLane>,
    completions: Arc<Lane>,
    event_lane: Arc<Lane>,
    event_backlog: Arc<AtomicUsize>,
    pid: u32,
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

/// UDP discovery from Python: port, interval (s), broadcast targets, allowed and denied
/// interface patterns.
type DiscoveryArgs = (u16, f64, Vec<String>, Vec<String>, Vec<String>);

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
        let mut cfg = NodeConfig::new(data_dir);
        cfg.listen = listen.map(|l| addr_arg(l, None)).transpose()?;
        if let Some((port, interval, broadcast, allow, deny)) = discovery {
            cfg.udp_discovery = Some(UdpDiscoveryConfig {
                port,
                interval: secs("discovery interval", interval)?,
                broadcast: broadcast
                    .iter()
                    .map(|b| addr_arg(b, Some(port)))
                    .collect::<PyResult<_>>()?,
                allow_interfaces: allow,
                deny_interfaces: deny,
            });
        }
        cfg.mdns = mdns.map(|(allow, deny)| peernet_core::MdnsConfig {
            allow_interfaces: allow,
            deny_interfaces: deny,
        });
        cfg.heartbeat_interval = secs("heartbeat interval", heartbeat.0)?;
        cfg.heartbeat_timeout = secs("heartbeat timeout", heartbeat.1)?;
        cfg.max_frame_len = max_frame;
        cfg.handshake_timeout = secs("handshake_timeout", handshake_timeout)?;
        cfg.network_monitor = network_monitor
            .map(|s| secs("network_monitor", s))
            .transpose()?;
        cfg.auto_connect = auto_connect;
        if handler_threads == 0 || handler_threads > 1024 {
            return Err(PyValueError::new_err("handler_threads must be 1..=1024"));
        }
        if rpc_threads == 0 || rpc_threads > 1024 {
            return Err(PyValueError::new_err("rpc_threads must be 1..=1024"));
        }
        let started = wait(py, async move {
            let node = Node::start(cfg).await?;
            let early = node.events();
            Ok::<_, peernet_core::Error>((node, early))
        })?;
        let (node, early) = check(py, started)?;
        let io = |e: std::io::Error| pyo3::exceptions::PyOSError::new_err(e.to_string());
        Ok(NodeHandle {
            key: node.key(),
            port: node.port(),
            local_addr: node.local_addr(),
            inner: Mutex::new(Some(Inner {
                node: Arc::new(node),
                events: None,
                early: Some(early),
            })),
            pool: FairLane::new("peernet-handler", handler_threads).map_err(io)?,
            rpc_lane: FairLane::new("peernet-rpc", rpc_threads).map_err(io)?,
            completions: Lane::new("peernet-complete", 1).map_err(io)?,
            event_lane: Lane::new("peernet-event", 1).map_err(io)?,
            event_backlog: Arc::new(AtomicUsize::new(0)),
            pid: std::process::id(),
        })
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
    #[allow(clippy::type_complexity)]
    fn trusted<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<
        Vec<(
            Bound<'py, PyBytes>,
            String,
            u64,
            bool,
            Vec<String>,
            Vec<String>,
        )>,
    > {
        let n = self.node(py)?;
        Ok(n.trusted()
            .into_iter()
            .map(|e| {
                (
                    PyBytes::new(py, e.key.as_bytes()),
                    e.label,
                    e.added_at,
                    e.rpc,
                    e.addresses.iter().map(|a| a.to_string()).collect(),
                    e.manual,
                )
            })
            .collect())
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
        let target = Arc::new(target);
        let lane = Arc::clone(&self.pool);
        let handler = match authorize {
            None => Handler::from_async(move |req: Request| {
                let lane = Arc::clone(&lane);
                let target = Arc::clone(&target);
                async move {
                    let peer = req.from;
                    dispatch(&lane, peer, target, move |py| request_args(py, req)).await
                }
            }),
            Some(pred) => {
                // The core runs authorize predicates synchronously; a Python one must
                // wait for the GIL, so this handler is a blocking one (tokio's blocking
                // pool waits; Python still runs on the handler lane).
                let pred = Arc::new(pred);
                let auth_lane = Arc::clone(&lane);
                let rt = handle()?;
                Handler::blocking(move |req: Request| {
                    let target = Arc::clone(&target);
                    let peer = req.from;
                    rt.block_on(dispatch(&lane, peer, target, move |py| {
                        request_args(py, req)
                    }))
                })
                .with_authorize(move |peer| run_authorize(&auth_lane, &pred, peer))
            }
        };
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
        let d = target.map(|t| {
            let t = Arc::new(t);
            let lane = Arc::clone(&self.rpc_lane);
            RpcDispatcher::from_async(move |c: RpcCall| {
                let lane = Arc::clone(&lane);
                let t = Arc::clone(&t);
                async move {
                    dispatch_within(&lane, c.from, t, Some(budget), move |py| {
                        vec![
                            PyBytes::new(py, c.from.as_bytes()).into_any().unbind(),
                            c.module
                                .into_pyobject(py)
                                .map(|s| s.into_any().unbind())
                                .unwrap_or_else(|_| py.None()),
                            c.function
                                .into_pyobject(py)
                                .map(|s| s.into_any().unbind())
                                .unwrap_or_else(|_| py.None()),
                            PyBytes::new(py, &c.args).into_any().unbind(),
                        ]
                    })
                    .await
                }
            })
        });
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
        let k = key_arg(key)?;
        let t = secs("timeout", timeout)?;
        let n = self.node(py)?;
        let lane = Arc::clone(&self.completions);
        // No task per call: the core runs the callback (which only queues the result
        // for the completion lane) on the connection's driver task.
        let rt = handle()?;
        let _context = rt.enter();
        let r = n.call_with(&k, &name, body, t, move |r| complete(&lane, done, r));
        check(py, r)
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
        let k = key_arg(key)?;
        let t = secs("timeout", timeout)?;
        let n = self.node(py)?;
        let lane = Arc::clone(&self.completions);
        let args = args.to_vec();
        handle()?.spawn(async move {
            let r = n.rpc_call(&k, &module, &function, &args, t).await;
            complete(&lane, done, r);
        });
        Ok(())
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
        let k = key_arg(key)?;
        let a = addr_arg(addr, None)?;
        let t = secs("timeout", timeout)?;
        let n = self.node(py)?;
        let lane = Arc::clone(&self.completions);
        handle()?.spawn(async move {
            let r = n.connect(&k, a, t).await.map(|()| Vec::new());
            complete(&lane, done, r);
        });
        Ok(())
    }

    /// Starts `wait_connected`, completed through `done(ok, value)` like `call_cb`.
    fn wait_connected_cb(
        &self,
        py: Python<'_>,
        key: &[u8],
        timeout: f64,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        let k = key_arg(key)?;
        let t = secs("timeout", timeout)?;
        let n = self.node(py)?;
        let lane = Arc::clone(&self.completions);
        handle()?.spawn(async move {
            let r = n.wait_connected(&k, t).await.map(|()| Vec::new());
            complete(&lane, done, r);
        });
        Ok(())
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
        let k = key_arg(key)?;
        let n = self.node(py)?;
        let lane = Arc::clone(&self.completions);
        let body = body.to_vec();
        handle()?.spawn(async move {
            let r = n.send(&k, &name, &body).await.map(|()| Vec::new());
            complete(&lane, done, r);
        });
        Ok(())
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
    #[allow(clippy::type_complexity)]
    fn peers<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<
        Vec<(
            Bound<'py, PyBytes>,
            &'static str,
            bool,
            bool,
            String,
            Option<String>,
            Option<f64>,
            Option<f64>,
        )>,
    > {
        let n = self.node(py)?;
        Ok(n.peers()
            .into_iter()
            .map(|p| {
                (
                    PyBytes::new(py, p.key.as_bytes()),
                    match p.state {
                        PeerState::Connected => "connected",
                        PeerState::Connecting => "connecting",
                        PeerState::Disconnected => "disconnected",
                    },
                    p.trusted,
                    p.rpc,
                    p.label,
                    p.address.map(|a| a.to_string()),
                    p.last_seen.map(unix_secs),
                    p.rtt.map(|d| d.as_secs_f64()),
                )
            })
            .collect())
    }

    /// Metrics: (counters by name, [(handler, counters, latency buckets, sum)]).
    fn metrics(&self, py: Python<'_>) -> PyResult<crate::metrics::Metrics> {
        let n = self.node(py)?;
        Ok(crate::metrics::metrics(&n))
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
        let cb = Arc::new(cb);
        let mut rx = match inner.early.take() {
            Some(rx) => rx,
            None => inner.node.events(),
        };
        let lane = Arc::clone(&self.event_lane);
        let backlog = Arc::clone(&self.event_backlog);
        inner.events = Some(handle()?.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(target: "peernet::python", dropped = n, "events dropped: the callback is too slow");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                if backlog.load(Ordering::Relaxed) >= EVENT_BACKLOG {
                    tracing::warn!(target: "peernet::python", "event dropped: the callback is too slow");
                    continue;
                }
                backlog.fetch_add(1, Ordering::Relaxed);
                let cb = Arc::clone(&cb);
                let backlog = Arc::clone(&backlog);
                lane.submit(Box::new(move |py| {
                    backlog.fetch_sub(1, Ordering::Relaxed);
                    deliver(py, &cb, ev);
                }));
            }
        }));
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
        let k = key_arg(key)?;
        let n = self.node(py)?;
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
        let k = key_arg(key)?;
        let n = self.node(py)?;
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

fn complete(lane: &Lane, done: Py<PyAny>, r: Result<Vec<u8>, peernet_core::Error>) {
    lane.submit(Box::new(move |py| {
        let (ok, value) = match r {
            Ok(v) => (true, PyBytes::new(py, &v).into_any().unbind()),
            Err(e) => (false, to_py(py, e).into_value(py).into_any()),
        };
        if let Err(e) = done.call1(py, (ok, value)) {
            // The event loop is closed: nobody waits for this result.
            if !e.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py) {
                e.write_unraisable(py, None);
            }
        }
    }));
}

fn deliver(py: Python<'_>, cb: &Py<PyAny>, ev: Event) {
    let key = ev
        .key
        .map(|k| PyBytes::new(py, k.as_bytes()).into_any().unbind());
    let addr = ev.address.map(|a| a.to_string());
    let close = ev.close_reason.as_ref().map(|r| r.code());
    if let Err(e) = cb.call1(py, (ev.kind.as_str(), key, addr, ev.detail, close)) {
        e.write_unraisable(py, None);
    }
}

/// The error of an operation on a node that was closed (`close()` or the end of its
/// `with` block).
fn node_closed() -> peernet_core::Error {
    peernet_core::Error::Closed(peernet_core::CloseReason::LocalShutdown)
}
