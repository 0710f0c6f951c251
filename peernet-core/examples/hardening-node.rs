//! A PeerNet node as a process for the hardening tests (kill mid-call, load, idle
//! connections): its memory is measured from outside (`/proc/PID/status`), so the test's
//! own peers do not count.
//!
//! ```text
//! hardening-node --data DIR [--listen ADDR] [--heartbeat-ms N] [--heartbeat-timeout-ms N]
//!                [--max-handshakes N] [--max-calls N] [--trust HEX]...
//! ```
//!
//! No discovery. Keys in `DIR/trusted_peers` (written before the start) are trusted too.
//! Prints `key HEX` and `listening ADDR`. Exposes `echo` (returns the body), `slow`
//! (prints `slow-start`, sleeps the number of milliseconds in the body, returns `done`)
//! and `hold` (waits until the `release` command). Commands on stdin: `count` (prints
//! `connections N`), `inflight` (prints `inflight N`: `hold` calls waiting), `release`
//! (prints `released`), `quit`. End of stdin (the test died) stops the process.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use peernet_core::{Handler, Key, Node, NodeConfig, Request};
use tokio::sync::watch;

fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

fn parse_args() -> Result<(NodeConfig, Vec<Key>), String> {
    let mut args = std::env::args().skip(1);
    let mut data = None;
    let mut listen: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "listen")?;
    let mut trust = Vec::new();
    let mut hb = None;
    let mut hb_timeout = None;
    let mut max_handshakes = None;
    let mut max_calls = None;
    let num = |v: Option<String>| -> Result<u64, String> {
        v.ok_or("missing value")?
            .parse::<u64>()
            .map_err(|e| e.to_string())
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data = args.next(),
            "--listen" => {
                listen = args
                    .next()
                    .ok_or("missing address")?
                    .parse()
                    .map_err(|e| format!("--listen: {e}"))?
            }
            "--heartbeat-ms" => hb = Some(num(args.next())?),
            "--heartbeat-timeout-ms" => hb_timeout = Some(num(args.next())?),
            "--max-handshakes" => max_handshakes = Some(num(args.next())?),
            "--max-calls" => max_calls = Some(num(args.next())?),
            "--trust" => trust.push(
                Key::from_hex(&args.next().ok_or("missing key")?).map_err(|e| e.to_string())?,
            ),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let mut c = NodeConfig::new(data.ok_or("--data is required")?);
    c.listen = Some(listen);
    if let Some(ms) = hb {
        c.heartbeat_interval = Duration::from_millis(ms);
        c.heartbeat_timeout = Duration::from_millis(ms.saturating_mul(3));
    }
    if let Some(ms) = hb_timeout {
        c.heartbeat_timeout = Duration::from_millis(ms);
    }
    if let Some(n) = max_handshakes {
        c.max_handshakes = usize::try_from(n).map_err(|e| e.to_string())?;
    }
    if let Some(n) = max_calls {
        c.max_concurrent_calls = usize::try_from(n).map_err(|e| e.to_string())?;
    }
    Ok((c, trust))
}

fn expose(node: &Node, inflight: Arc<AtomicUsize>, release: watch::Receiver<bool>) {
    let handlers = [
        (
            "echo",
            Handler::from_async(|r: Request| async move { Ok(r.body) }),
        ),
        (
            "slow",
            Handler::from_async(|r: Request| async move {
                let ms = String::from_utf8_lossy(&r.body).parse::<u64>().unwrap_or(0);
                out("slow-start");
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(b"done".to_vec())
            }),
        ),
        (
            "hold",
            Handler::from_async(move |_r: Request| {
                let inflight = Arc::clone(&inflight);
                let mut release = release.clone();
                async move {
                    inflight.fetch_add(1, Ordering::SeqCst);
                    let _ = release.wait_for(|r| *r).await;
                    inflight.fetch_sub(1, Ordering::SeqCst);
                    Ok(b"released".to_vec())
                }
            }),
        ),
    ];
    for (name, h) in handlers {
        if let Err(e) = node.expose(name, h) {
            eprintln!("hardening-node: expose {name}: {e}");
        }
    }
}

#[tokio::main]
async fn main() {
    let (config, trust) = match parse_args() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("hardening-node: {e}");
            std::process::exit(2);
        }
    };
    let node = match Node::start(config).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("hardening-node: {e}");
            std::process::exit(1);
        }
    };
    for k in &trust {
        if let Err(e) = node.trust(k, None) {
            eprintln!("hardening-node: trust: {e}");
        }
    }
    let inflight = Arc::new(AtomicUsize::new(0));
    let (release_tx, release_rx) = watch::channel(false);
    expose(&node, Arc::clone(&inflight), release_rx);
    out(&format!("key {}", node.key().to_hex()));
    out(&format!(
        "listening {}",
        node.local_addr().map_or("-".into(), |a| a.to_string())
    ));
    // Stdin on a thread (tokio's io-std feature is not enabled in this workspace).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        match line.trim() {
            "quit" => break,
            "count" => out(&format!("connections {}", node.connection_count())),
            "inflight" => out(&format!("inflight {}", inflight.load(Ordering::SeqCst))),
            "release" => {
                release_tx.send_replace(true);
                out("released");
            }
            other => out(&format!("error unknown command {other:?}")),
        }
    }
    node.shutdown().await;
}
