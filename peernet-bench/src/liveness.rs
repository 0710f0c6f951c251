//! How fast nodes find each other and come back: the time from starting two nodes to
//! their first successful call (UDP discovery on 127.255.255.255, auto-connect), and
//! from a peer's restart to the next successful call to it (the dialer's backoff, and
//! discovery). Every figure is a set of runs, bounded in count and time; these are
//! timings of the default configuration (discovery interval 5 s, first backoff step
//! 0.5 s), not of shortened test intervals.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use peernet_core::{
    CloseReason, Error, Handler, Key, Node, NodeConfig, Request, Result, UdpDiscoveryConfig,
};

use crate::measure::{nanos, Bound, Budget, Latency};
use crate::nodes::{self, T};

/// The dialer's first backoff step, nominal: what `peernet_proto::backoff` gives with
/// the largest jitter (the jittered delay is between half of it and all of it).
pub fn first_backoff() -> Duration {
    peernet_proto::backoff::Backoff::default_reconnect().next_delay(1.0)
}

/// Most runs of each figure (each run starts and stops nodes).
const RUNS: u64 = 20;
// The table prints the 99th percentile as the worst run: true for up to 50 runs.
const _: () = assert!(RUNS <= 50);

/// A UDP port that was free a moment ago, for one measurement's discovery.
fn free_udp_port() -> Result<u16> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| Error::Internal(e.to_string()))?;
    let port = s
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?
        .port();
    Ok(port)
}

/// Node config on `dir` listening on `127.0.0.1:port`, auto-connect on, UDP discovery
/// (default interval) on `udp` over 127.255.255.255 when given.
fn config(dir: &Path, port: u16, udp: Option<u16>) -> NodeConfig {
    let mut c = NodeConfig::new(dir);
    c.listen = Some(SocketAddr::from(([127, 0, 0, 1], port)));
    c.udp_discovery = udp.map(|p| UdpDiscoveryConfig {
        port: p,
        broadcast: vec![SocketAddr::from(([127, 255, 255, 255], p))],
        ..UdpDiscoveryConfig::default()
    });
    c
}

/// Starts a node and exposes `echo` on it.
async fn start_echo(c: NodeConfig) -> Result<Node> {
    let n = Node::start(c).await?;
    n.expose(
        "echo",
        Handler::from_async(|r: Request| async move { Ok(r.body) }),
    )?;
    Ok(n)
}

/// Calls `to` until a call succeeds (waiting for the connection in between), within `T`.
async fn first_call(a: &Node, to: &Key) -> Result<()> {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout);
        }
        a.wait_connected(to, left).await?;
        match a.call(to, "echo", b"hello", left).await {
            Ok(_) => return Ok(()),
            // The connection it waited for may be the loser of a simultaneous dial
            // (spec 5.1); the winner follows.
            Err(Error::NotConnected | Error::Closed(_)) => tokio::task::yield_now().await,
            Err(e) => return Err(e),
        }
    }
}

/// Two identities that trust each other, in fresh data directories.
async fn two_identities() -> Result<(NodeConfig, NodeConfig)> {
    let (ca, cb) = (nodes::config(false), nodes::config(false));
    let (a, b) = (
        Node::start(ca.clone()).await?,
        Node::start(cb.clone()).await?,
    );
    nodes::mutual_trust(&a, &b)?;
    a.shutdown().await;
    b.shutdown().await;
    Ok((ca, cb))
}

/// Puts the trust files `two_identities` wrote back (written aside, then renamed over),
/// so every run starts with nothing known but the keys: a run's handshake-confirmed
/// address, remembered in the trust file, would otherwise send the next run's first
/// dial to the previous run's (closed) port — that is `restart_to_call`'s case, not
/// discovery's.
fn reset_trust(saved: &[(std::path::PathBuf, Vec<u8>)]) -> Result<()> {
    for (path, bytes) in saved {
        let tmp = path.with_extension("bench-reset");
        std::fs::write(&tmp, bytes).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::Internal(e.to_string()))?;
    }
    Ok(())
}

/// The trust files of both data directories, as `two_identities` left them.
fn save_trust(dirs: &[&Path]) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    dirs.iter()
        .map(|d| {
            let path = d.join(peernet_core::TRUST_FILE);
            let bytes = std::fs::read(&path).map_err(|e| Error::Internal(e.to_string()))?;
            Ok((path, bytes))
        })
        .collect()
}

/// From starting two nodes that trust each other (identities already on disk, nothing
/// else known) to the first successful call between them: both start at once, with
/// UDP discovery; the one that hears the other's start-up announcement dials.
pub async fn discovery_to_first_call(b: Budget) -> Result<Latency> {
    let (ca, cb) = two_identities().await?;
    let saved = save_trust(&[&ca.data_dir, &cb.data_dir])?;
    let udp = free_udp_port()?;
    let bound = Bound::new(b.time, RUNS);
    let mut samples = Vec::new();
    while bound.go(samples.len() as u64) {
        reset_trust(&saved)?;
        let t = Instant::now();
        let (a, bn) = tokio::try_join!(
            start_echo(config(&ca.data_dir, 0, Some(udp))),
            start_echo(config(&cb.data_dir, 0, Some(udp)))
        )?;
        let r = first_call(&a, &bn.key()).await;
        samples.push(nanos(t.elapsed()));
        a.shutdown().await;
        bn.shutdown().await;
        r?;
    }
    eprintln!("  {} runs in {:.2?}", samples.len(), bound.elapsed());
    Latency::from_nanos(samples).ok_or_else(|| Error::Internal("no samples".into()))
}

/// A UDP port on `[::1]` that was free a moment ago.
fn free_udp_port_v6() -> Result<u16> {
    let s = UdpSocket::bind("[::1]:0").map_err(|e| Error::Internal(e.to_string()))?;
    s.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Node config on `dir` listening on `[::1]:0`, discovery heard on `[::]:mine` and
/// announced to `[::1]:theirs` (unicast: two sockets sharing one port with
/// SO_REUSEPORT would each get only some of the datagrams, and loopback has no
/// multicast to spare).
fn config_v6(dir: &Path, mine: u16, theirs: u16) -> NodeConfig {
    let mut c = NodeConfig::new(dir);
    c.listen = Some(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)));
    c.udp_discovery = Some(UdpDiscoveryConfig {
        port: mine,
        broadcast: vec![SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, theirs))],
        ..UdpDiscoveryConfig::default()
    });
    c
}

/// [`discovery_to_first_call`] over IPv6 loopback (issue 18): listeners on `[::1]`,
/// announcements over the IPv6 discovery socket.
pub async fn discovery_to_first_call_v6(b: Budget) -> Result<Latency> {
    let (ca, cb) = two_identities().await?;
    let saved = save_trust(&[&ca.data_dir, &cb.data_dir])?;
    let (pa, pb) = (free_udp_port_v6()?, free_udp_port_v6()?);
    let bound = Bound::new(b.time, RUNS);
    let mut samples = Vec::new();
    while bound.go(samples.len() as u64) {
        reset_trust(&saved)?;
        let t = Instant::now();
        let (a, bn) = tokio::try_join!(
            start_echo(config_v6(&ca.data_dir, pa, pb)),
            start_echo(config_v6(&cb.data_dir, pb, pa))
        )?;
        let r = first_call(&a, &bn.key()).await;
        samples.push(nanos(t.elapsed()));
        a.shutdown().await;
        bn.shutdown().await;
        r?;
    }
    eprintln!("  {} runs in {:.2?}", samples.len(), bound.elapsed());
    Latency::from_nanos(samples).ok_or_else(|| Error::Internal("no samples".into()))
}

/// From a connected peer's restart (same key, same port) to the next successful call to
/// it: the peer shuts down, the other side sees the disconnect, the peer starts again at
/// once, and the clock runs from that start. Without discovery the other side's dialer
/// finds it after its first backoff step; with discovery, the restart's announcement
/// should bring it back sooner.
pub async fn restart_to_call(b: Budget, discovery: bool) -> Result<Latency> {
    let (ca, cb) = two_identities().await?;
    let udp = if discovery {
        Some(free_udp_port()?)
    } else {
        None
    };
    let a = start_echo(config(&ca.data_dir, 0, udp)).await?;
    let mut peer = start_echo(config(&cb.data_dir, 0, udp)).await?;
    let (key, port) = (peer.key(), peer.port());
    a.connect(&key, nodes::addr(&peer)?, T).await?;
    let bound = Bound::new(b.time, RUNS);
    let mut samples = Vec::new();
    let mut events = a.events();
    while bound.go(samples.len() as u64) {
        first_call(&a, &key).await?;
        peer.shutdown().await;
        drop(peer);
        wait_disconnected(&a, &mut events, &key).await?;
        let t = Instant::now();
        peer = start_echo(config(&cb.data_dir, port, udp)).await?;
        first_call(&a, &key).await?;
        samples.push(nanos(t.elapsed()));
    }
    eprintln!("  {} restarts in {:.2?}", samples.len(), bound.elapsed());
    a.shutdown().await;
    peer.shutdown().await;
    Latency::from_nanos(samples).ok_or_else(|| Error::Internal("no samples".into()))
}

/// Waits until `a` no longer counts `key` as connected.
async fn wait_disconnected(
    a: &Node,
    events: &mut tokio::sync::broadcast::Receiver<peernet_core::Event>,
    key: &Key,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + T;
    while a.is_connected(key) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(_)) => {
                return Err(Error::Closed(CloseReason::Local(
                    "the event stream ended".into(),
                )))
            }
            Err(_) => return Err(Error::Timeout),
        }
    }
    Ok(())
}
