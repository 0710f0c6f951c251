//! `NodeHandle.start`: the core configuration from the Python arguments, the node
//! started with the GIL released, and the handle with its lanes.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use peernet_core::{Node, NodeConfig, UdpDiscoveryConfig};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::check;
use crate::fair::FairLane;
use crate::lanes::Lane;
use crate::node::{Inner, NodeHandle};
use crate::node_args::{addr_arg, secs};
use crate::runtime::wait;

/// UDP discovery from Python: port, interval (s), broadcast targets, allowed and denied
/// interface patterns.
pub(crate) type DiscoveryArgs = (u16, f64, Vec<String>, Vec<String>, Vec<String>);

/// The body of `NodeHandle.start` (its arguments documented there).
#[allow(clippy::too_many_arguments)]
pub(crate) fn start(
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
