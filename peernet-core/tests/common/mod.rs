//! Helpers shared by the integration tests: nodes on loopback with short timers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use peernet_core::{Event, EventKind, Handler, Key, Node, NodeConfig, Request};
use tokio::sync::broadcast;

pub const T: Duration = Duration::from_secs(5);

/// A data directory under `$TMPDIR/peernet-it-<pid>/`. Nodes own their directories
/// until the process ends, so each test process first removes the trees left by test
/// processes that are gone (the leak is bounded to the last run).
pub fn tempdir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    let tmp = std::env::temp_dir();
    SWEEP.call_once(|| sweep_stale(&tmp));
    let d = tmp
        .join(format!("peernet-it-{}", std::process::id()))
        .join(format!("{tag}-{}", N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn sweep_stale(tmp: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("peernet-it-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

pub fn config(tag: &str) -> NodeConfig {
    let mut c = NodeConfig::new(tempdir(tag));
    c.listen = Some("127.0.0.1:0".parse().unwrap());
    c.heartbeat_interval = Duration::from_millis(200);
    c.heartbeat_timeout = Duration::from_secs(2);
    c.handshake_timeout = Duration::from_secs(2);
    c
}

pub async fn node(tag: &str) -> Node {
    Node::start(config(tag)).await.unwrap()
}

pub fn addr(n: &Node) -> SocketAddr {
    n.local_addr().unwrap()
}

/// Exposes an async `echo` handler.
pub fn echo(n: &Node) {
    n.expose(
        "echo",
        Handler::from_async(|r: Request| async move { Ok(r.body) }),
    )
    .unwrap();
}

/// Exposes `name` like [`expose_slow`], and reports every start of the handler on the
/// returned channel: "the call arrived" as an event (a frame count is no such event:
/// the handshake's confirming Ping is a frame too).
pub fn expose_slow_reporting(
    n: &Node,
    name: &str,
    delay: Duration,
) -> tokio::sync::mpsc::UnboundedReceiver<()> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    n.expose(
        name,
        Handler::from_async(move |r: Request| {
            let _ = tx.send(());
            async move {
                tokio::time::sleep(delay).await;
                Ok(r.body)
            }
        }),
    )
    .unwrap();
    rx
}

/// Waits (up to `T`) until `rx` has reported `n` handler starts.
pub async fn started(rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>, n: usize) {
    for i in 0..n {
        tokio::time::timeout(T, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {i} of {n} handler starts within {T:?}"))
            .expect("the handler was dropped");
    }
}

/// Exposes `name`: an async handler that waits `delay`, then echoes the body.
pub fn expose_slow(n: &Node, name: &str, delay: Duration) {
    n.expose(
        name,
        Handler::from_async(move |r: Request| async move {
            tokio::time::sleep(delay).await;
            Ok(r.body)
        }),
    )
    .unwrap();
}

/// A UDP port for one test: test binaries run at the same time, so the port comes from
/// the pid, a per-binary `salt` and a per-test `tag`.
pub fn udp_port(salt: u16, tag: u16) -> u16 {
    20000
        + ((std::process::id() as u16)
            .wrapping_mul(salt)
            .wrapping_add(tag.wrapping_mul(salt.wrapping_mul(142).wrapping_add(1))))
            % 40000
}

/// Two nodes that trust each other, `a` connected to `b`, with an `echo` handler on both.
pub async fn pair() -> (Node, Node) {
    let a = node("a").await;
    let b = node("b").await;
    a.trust(&b.key(), Some("b")).unwrap();
    b.trust(&a.key(), Some("a")).unwrap();
    for n in [&a, &b] {
        n.expose(
            "echo",
            Handler::from_async(|r: Request| async move { Ok(r.body) }),
        )
        .unwrap();
    }
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    b.wait_connected(&a.key(), T).await.unwrap();
    (a, b)
}

/// Waits for an event of `kind` (about `key` if given), with a deadline.
pub async fn wait_event(
    rx: &mut broadcast::Receiver<Event>,
    kind: EventKind,
    key: Option<Key>,
) -> Event {
    tokio::time::timeout(T, async {
        loop {
            match rx.recv().await {
                Ok(e) if e.kind == kind && (key.is_none() || e.key == key) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind:?} event within {T:?}"))
}

/// Polls `cond` until true or the deadline (for state without an event).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
pub mod raw;
