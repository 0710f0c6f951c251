//! PeerNet nodes for the benchmark: data directories on a RAM disk when there is one
//! (identity and trust writes fsync), loopback only, no auto-reconnect.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use peernet_core::{Handler, Node, NodeConfig, Request, Result};

/// Deadline of every connect, call and wait in the benchmark.
pub const T: Duration = Duration::from_secs(10);

/// The directory all node data of this process lives under.
pub fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        base.join(format!("peernet-bench-{}", std::process::id()))
    })
}

/// Removes this process's node data.
pub fn cleanup() {
    let _ = std::fs::remove_dir_all(root());
}

/// A config for a benchmark node; `listen` false = a client that accepts nothing.
pub fn config(listen: bool) -> NodeConfig {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = root().join(format!("n{}", N.fetch_add(1, Ordering::Relaxed)));
    let mut c = NodeConfig::new(dir);
    c.listen = listen.then(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    c.auto_connect = false;
    c
}

/// Starts a node.
pub async fn start(listen: bool) -> Result<Node> {
    Node::start(config(listen)).await
}

/// The loopback address a listening node accepts on.
pub fn addr(n: &Node) -> Result<SocketAddr> {
    n.local_addr()
        .ok_or_else(|| peernet_core::Error::InvalidArgument("node does not listen".into()))
}

/// Makes `a` and `b` trust each other.
pub fn mutual_trust(a: &Node, b: &Node) -> Result<()> {
    a.trust(&b.key(), None)?;
    b.trust(&a.key(), None)
}

/// Two nodes, `a` connected to `b`, with an async `echo` handler on `b` (metrics on:
/// the default).
pub async fn echo_pair() -> Result<(Node, Node)> {
    let a = Node::start(config(true)).await?;
    let b = Node::start(config(true)).await?;
    mutual_trust(&a, &b)?;
    b.expose(
        "echo",
        Handler::from_async(|r: Request| async move { Ok(r.body) }),
    )?;
    a.connect(&b.key(), addr(&b)?, T).await?;
    b.wait_connected(&a.key(), T).await?;
    Ok((a, b))
}
