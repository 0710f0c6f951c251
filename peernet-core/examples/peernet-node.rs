//! A PeerNet node as a process, for multi-host tests (network namespaces) and demos.
//!
//! ```text
//! peernet-node --data DIR [--listen ADDR] [--discovery-port P] [--discovery-interval-ms N]
//!              [--broadcast ADDR]... [--no-discovery] [--heartbeat-ms N]
//!              [--heartbeat-timeout-ms N] [--netmon-ms N] [--trust HEX]...
//!              [--allow-interface PAT]... [--deny-interface PAT]... [--mdns]
//! ```
//!
//! Prints `key HEX` and `listening ADDR`, then one line per event:
//! `event KIND KEY|- ADDR|- DETAIL`. Exposes `echo`. Reads commands on stdin:
//! `trust HEX`, `addr HEX HOST:PORT` / `unaddr HEX HOST:PORT` (a manual address on
//! the trust entry; prints `addr-ok ADDR` / `unaddr-ok BOOL` or `error ...`), `call HEX BODY` (prints `call-ok HEX BODY` or `call-err HEX ERROR`),
//! `callall BODY` (calls every trusted peer), `peers` (`peer HEX STATE ADDR` lines, then
//! `peers-end`), `invite SECS code|ticket` (prints `invite-code CODE` if any and
//! `invite-ticket TICKET`, later `paired HEX NAME SAS…` or `invite-ended REASON`),
//! `join CODE|TICKET` (`joined HEX NAME SAS…` or `join-err ERROR`), `quit`. The pairing
//! name is the first 8 hex digits of the key.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peernet_core::{Handler, Key, Node, NodeConfig, Request, UdpDiscoveryConfig};

fn out(line: String) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

fn parse_args() -> Result<(NodeConfig, Vec<Key>), String> {
    let mut args = std::env::args().skip(1);
    let mut data = None;
    let mut listen: SocketAddr = "0.0.0.0:0".parse().map_err(|_| "listen")?;
    let mut disc = Some(UdpDiscoveryConfig::default());
    let mut hb: Option<u64> = None;
    let mut hb_timeout: Option<u64> = None;
    let mut netmon = None;
    let mut mdns = false;
    let mut trust = Vec::new();
    let ms = |v: Option<String>| -> Result<u64, String> {
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
            "--no-discovery" => disc = None,
            "--mdns" => mdns = true,
            "--discovery-port" => {
                let p = ms(args.next())?;
                if let Some(d) = disc.as_mut() {
                    d.port = u16::try_from(p).map_err(|e| e.to_string())?;
                }
            }
            "--discovery-interval-ms" => {
                let v = ms(args.next())?;
                if let Some(d) = disc.as_mut() {
                    d.interval = Duration::from_millis(v);
                }
            }
            "--broadcast" => {
                let b: SocketAddr = args
                    .next()
                    .ok_or("missing address")?
                    .parse()
                    .map_err(|e| format!("--broadcast: {e}"))?;
                if let Some(d) = disc.as_mut() {
                    d.broadcast.push(b);
                }
            }
            "--allow-interface" | "--deny-interface" => {
                let p = args.next().ok_or("missing interface pattern")?;
                if let Some(d) = disc.as_mut() {
                    if a == "--allow-interface" {
                        d.allow_interfaces.push(p);
                    } else {
                        d.deny_interfaces.push(p);
                    }
                }
            }
            "--heartbeat-ms" => hb = Some(ms(args.next())?),
            "--heartbeat-timeout-ms" => hb_timeout = Some(ms(args.next())?),
            "--netmon-ms" => netmon = Some(Duration::from_millis(ms(args.next())?)),
            "--trust" => trust.push(
                Key::from_hex(&args.next().ok_or("missing key")?).map_err(|e| e.to_string())?,
            ),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let mut c = NodeConfig::new(data.ok_or("--data is required")?);
    c.listen = Some(listen);
    c.udp_discovery = disc;
    c.mdns = mdns.then(peernet_core::MdnsConfig::default);
    if let Some(ms) = hb {
        c.heartbeat_interval = Duration::from_millis(ms);
        c.heartbeat_timeout = Duration::from_millis(ms * 3);
    }
    if let Some(ms) = hb_timeout {
        c.heartbeat_timeout = Duration::from_millis(ms);
    }
    c.network_monitor = netmon;
    Ok((c, trust))
}

async fn call(node: &Node, key: Key, body: &str) {
    match node
        .call(&key, "echo", body.as_bytes(), Duration::from_secs(5))
        .await
    {
        Ok(r) => out(format!(
            "call-ok {} {}",
            key.to_hex(),
            String::from_utf8_lossy(&r)
        )),
        Err(e) => out(format!("call-err {} {e}", key.to_hex())),
    }
}

async fn command(node: &Arc<Node>, line: &str) -> bool {
    let mut w = line.split_whitespace();
    match (w.next(), w.next(), w.next()) {
        (Some("quit"), ..) => return false,
        (Some("trust"), Some(k), _) => match Key::from_hex(k) {
            Ok(k) => match node.trust(&k, None) {
                Ok(()) => out(format!("trusted {}", k.to_hex())),
                Err(e) => out(format!("error {e}")),
            },
            Err(e) => out(format!("error {e}")),
        },
        (Some(cmd @ ("addr" | "unaddr")), Some(k), Some(a)) => match Key::from_hex(k) {
            Ok(k) if cmd == "addr" => match node.add_address(&k, a) {
                Ok(stored) => out(format!("addr-ok {stored}")),
                Err(e) => out(format!("error {e}")),
            },
            Ok(k) => match node.remove_address(&k, a) {
                Ok(was) => out(format!("unaddr-ok {was}")),
                Err(e) => out(format!("error {e}")),
            },
            Err(e) => out(format!("error {e}")),
        },
        (Some("call"), Some(k), body) => match Key::from_hex(k) {
            Ok(k) => call(node, k, body.unwrap_or("")).await,
            Err(e) => out(format!("error {e}")),
        },
        (Some("callall"), body, _) => {
            for e in node.trusted() {
                call(node, e.key, body.unwrap_or("")).await;
            }
            out("callall-end".into());
        }
        (Some("peers"), ..) => {
            for p in node.peers() {
                let addr = p.address.map_or("-".into(), |a| a.to_string());
                out(format!("peer {} {:?} {addr}", p.key.to_hex(), p.state));
            }
            out("peers-end".into());
        }
        (Some("invite"), Some(secs), mode) => invite(node, secs, mode == Some("code")).await,
        (Some("join"), Some(text), _) => join(node, text).await,
        _ => out(format!("error unknown command {line:?}")),
    }
    true
}

fn pair_name(node: &Node) -> String {
    node.key().to_hex()[..8].to_owned()
}

async fn invite(node: &Arc<Node>, secs: &str, code: bool) {
    let opts = peernet_core::InviteOptions {
        expiry: Duration::from_secs(secs.parse().unwrap_or(600)),
        name: Some(pair_name(node)),
        code,
        ..Default::default()
    };
    match node.invite(opts).await {
        Ok(inv) => {
            if let Some(c) = inv.code() {
                out(format!("invite-code {c}"));
            }
            out(format!("invite-ticket {}", inv.ticket()));
            tokio::spawn(async move {
                match inv.wait(Duration::from_secs(3600)).await {
                    Ok(p) => out(format!("paired {} {} {}", p.key.to_hex(), p.name, p.sas)),
                    Err(e) => out(format!("invite-ended {e}")),
                }
            });
        }
        Err(e) => out(format!("invite-err {e}")),
    }
}

async fn join(node: &Arc<Node>, text: &str) {
    let name = pair_name(node);
    match node.join(text, Some(&name), Duration::from_secs(8)).await {
        Ok(p) => out(format!("joined {} {} {}", p.key.to_hex(), p.name, p.sas)),
        Err(e) => out(format!("join-err {e}")),
    }
}

#[tokio::main]
async fn main() {
    let (config, trust) = match parse_args() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("peernet-node: {e}");
            std::process::exit(2);
        }
    };
    let node = match Node::start(config).await {
        Ok(n) => Arc::new(n),
        Err(e) => {
            eprintln!("peernet-node: {e}");
            std::process::exit(1);
        }
    };
    for k in &trust {
        if let Err(e) = node.trust(k, None) {
            eprintln!("peernet-node: trust: {e}");
        }
    }
    let _ = node.expose(
        "echo",
        Handler::from_async(|r: Request| async move { Ok(r.body) }),
    );
    let mut events = node.events();
    out(format!("key {}", node.key().to_hex()));
    out(format!(
        "listening {}",
        node.local_addr().map_or("-".into(), |a| a.to_string())
    ));
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => out(format!(
                    "event {} {} {} {}",
                    e.kind.as_str(),
                    e.key.map_or("-".into(), |k| k.to_hex()),
                    e.address.map_or("-".into(), |a| a.to_string()),
                    e.detail
                )),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
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
        if !command(&node, line.trim()).await {
            break;
        }
    }
    node.shutdown().await;
}
