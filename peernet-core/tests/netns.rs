//! Several hosts for real: four network namespaces on a bridge (itself in a fifth
//! namespace, so the host's own interfaces are never touched), one `peernet-node`
//! process in each, discovery by directed broadcast inside 10.77.0.0/24.
//!
//! Shows: all discover and connect, calls work between every pair; a node killed and
//! restarted on a new port is reconnected; a namespace whose IP address changes is
//! noticed by the network monitor and reconnected; a node whose traffic is silently
//! dropped (`ip link set down` on its bridge port) is declared dead by heartbeat, and
//! comes back when the link does.
//!
//! Needs root and iproute2, and the example binary (`cargo build -p peernet-core
//! --example peernet-node`; `cargo test` builds it). Without them it prints why and
//! passes without checking anything. Namespaces are removed even when it fails (Drop).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/netlab.rs"]
mod netlab;

use netlab::{ip, must, skip_reason};

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const NODES: usize = 4;
const WAIT: Duration = Duration::from_secs(25);

/// One node process and everything it printed.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<String>,
    lines: Vec<String>,
    key: String,
    listen: String,
}

impl Proc {
    fn mark(&self) -> usize {
        self.lines.len()
    }

    /// The first line after `mark` that satisfies `pred`, waiting up to `WAIT`.
    fn wait_after(&mut self, mark: usize, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.lines[mark..].iter().find(|l| pred(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    self.lines.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "node {}: no {what} within {WAIT:?}; last lines:\n{}",
                    &self.key[..8.min(self.key.len())],
                    self.lines[self.lines.len().saturating_sub(30)..].join("\n")
                ),
            }
        }
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Calls `key` until it answers (a connection may be mid-replacement), bounded.
    fn call_until_ok(&mut self, key: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.mark();
            self.send(&format!("call {key} ping"));
            let l = self.wait_after(m, "call result", |l| {
                l.starts_with(&format!("call-ok {key}"))
                    || l.starts_with(&format!("call-err {key}"))
            });
            if l.starts_with("call-ok") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "calls to {key} keep failing: {l}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

struct Lab {
    pid: u32,
    hub: String,
    ns: Vec<String>,
    dir: PathBuf,
    bin: PathBuf,
    procs: Vec<Option<Proc>>,
}

impl Lab {
    fn veth(&self, i: usize) -> String {
        format!("pv{}h{i}", self.pid % 100_000)
    }

    fn setup(&mut self) -> Result<(), String> {
        ip(&["netns", "add", &self.hub])?;
        must(&["-n", &self.hub, "link", "add", "br0", "type", "bridge"]);
        must(&["-n", &self.hub, "link", "set", "br0", "up"]);
        for i in 0..NODES {
            let ns = format!("pn{}n{i}", self.pid);
            must(&["netns", "add", &ns]);
            self.ns.push(ns.clone());
            let v = self.veth(i);
            must(&[
                "link", "add", &v, "netns", &self.hub, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            must(&["-n", &self.hub, "link", "set", &v, "master", "br0"]);
            must(&["-n", &self.hub, "link", "set", &v, "up"]);
            must(&["-n", &ns, "link", "set", "lo", "up"]);
            let a = format!("10.77.0.{}/24", 10 + i);
            must(&["-n", &ns, "addr", "add", &a, "brd", "+", "dev", "eth0"]);
            must(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        Ok(())
    }

    fn start(&mut self, i: usize) {
        let data = self.dir.join(format!("node{i}"));
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns[i]])
            .arg(&self.bin)
            .arg("--data")
            .arg(&data)
            .args(["--listen", "0.0.0.0:0", "--discovery-port", "4040"])
            .args(["--discovery-interval-ms", "300", "--heartbeat-ms", "300"])
            .args(["--heartbeat-timeout-ms", "1500", "--netmon-ms", "300"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting a node");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut p = Proc {
            child,
            stdin,
            rx,
            lines: Vec::new(),
            key: String::new(),
            listen: String::new(),
        };
        let k = p.wait_after(0, "key line", |l| l.starts_with("key "));
        p.key = k[4..].to_string();
        let l = p.wait_after(0, "listening line", |l| l.starts_with("listening "));
        p.listen = l[10..].to_string();
        self.procs[i] = Some(p);
    }

    fn p(&mut self, i: usize) -> &mut Proc {
        self.procs[i].as_mut().expect("node running")
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    fn keys(&self) -> Vec<String> {
        self.procs
            .iter()
            .map(|p| p.as_ref().map(|p| p.key.clone()).unwrap_or_default())
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill(i);
        }
        for ns in &self.ns {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["netns", "del", &self.hub]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn four_namespaces_discover_connect_survive_restart_ip_change_and_silent_drop() {
    let bin = netlab::node_bin();
    if let Some(why) = skip_reason(&bin) {
        println!("netns test skipped: {why}");
        return;
    }
    let pid = std::process::id();
    let mut lab = Lab {
        pid,
        hub: format!("pn{pid}hub"),
        ns: Vec::new(),
        dir: std::env::temp_dir().join(format!("peernet-netns-{pid}")),
        bin,
        procs: (0..NODES).map(|_| None).collect(),
    };
    if let Err(e) = lab.setup() {
        println!("netns test skipped: cannot create namespaces: {e}");
        return;
    }

    // 1. All discover each other by broadcast and connect; calls work between every pair.
    for i in 0..NODES {
        lab.start(i);
    }
    let keys = lab.keys();
    for i in 0..NODES {
        for (j, k) in keys.iter().enumerate() {
            if i != j {
                lab.p(i).send(&format!("trust {k}"));
            }
        }
    }
    for i in 0..NODES {
        for (j, k) in keys.iter().enumerate() {
            if i != j {
                lab.p(i).wait_after(0, "connected", |l| {
                    l.starts_with(&format!("event connected {k}"))
                });
            }
        }
    }
    for i in 0..NODES {
        for (j, k) in keys.iter().enumerate() {
            if i != j {
                lab.p(i).call_until_ok(k);
            }
        }
    }
    println!("netns: {NODES} nodes connected, calls between every pair work");

    // 2. A node killed and restarted on a new port is reconnected.
    let marks: Vec<usize> = (0..NODES).map(|i| lab.p(i).mark()).collect();
    let old = lab.p(2).listen.clone();
    lab.kill(2);
    lab.start(2);
    assert_ne!(lab.p(2).listen, old, "restart should pick a new port");
    for i in [0, 1, 3] {
        let k2 = keys[2].clone();
        lab.p(i)
            .wait_after(marks[i], "reconnect to the restarted node", |l| {
                l.starts_with(&format!("event connected {k2}"))
            });
        lab.p(i).call_until_ok(&k2);
    }
    for j in [0, 1, 3] {
        lab.p(2).call_until_ok(&keys[j]);
    }
    println!(
        "netns: restarted node ({old} -> {}) reconnected",
        lab.p(2).listen
    );

    // 3. An IP address change is noticed by the network monitor and reconnected.
    let marks: Vec<usize> = (0..NODES).map(|i| lab.p(i).mark()).collect();
    let ns1 = lab.ns[1].clone();
    must(&["-n", &ns1, "addr", "del", "10.77.0.11/24", "dev", "eth0"]);
    must(&[
        "-n",
        &ns1,
        "addr",
        "add",
        "10.77.0.61/24",
        "brd",
        "+",
        "dev",
        "eth0",
    ]);
    // The monitor may poll between the two commands (a loaded machine): the loss and
    // the gain then come as two events. Wait until both were reported, in any split.
    let (gained, lost) = (std::cell::Cell::new(false), std::cell::Cell::new(false));
    lab.p(1).wait_after(
        marks[1],
        "network_changed (10.77.0.61 gained, 10.77.0.11 lost)",
        |l| {
            if let Some(rest) = l.strip_prefix("event network_changed") {
                let (g, x) = rest.split_once("; lost:").unwrap_or((rest, ""));
                gained.set(gained.get() || g.contains("10.77.0.61"));
                lost.set(lost.get() || x.contains("10.77.0.11"));
            }
            gained.get() && lost.get()
        },
    );
    for j in [0, 2, 3] {
        let k = keys[j].clone();
        lab.p(1)
            .wait_after(marks[1], "reconnect after the address change", |l| {
                l.starts_with(&format!("event connected {k}"))
            });
        lab.p(1).call_until_ok(&k);
        let k1 = keys[1].clone();
        lab.p(j).call_until_ok(&k1);
    }
    println!("netns: address change 10.77.0.11 -> 10.77.0.61 noticed and reconnected");

    // 4. Silently dropped traffic: heartbeat declares the peer dead.
    let marks: Vec<usize> = (0..NODES).map(|i| lab.p(i).mark()).collect();
    let hub = lab.hub.clone();
    let v3 = lab.veth(3);
    must(&["-n", &hub, "link", "set", &v3, "down"]);
    for i in [0, 1, 2] {
        let k3 = keys[3].clone();
        lab.p(i).wait_after(marks[i], "heartbeat timeout", |l| {
            l.starts_with(&format!("event disconnected {k3}")) && l.contains("heartbeat timeout")
        });
    }
    let marks: Vec<usize> = (0..NODES).map(|i| lab.p(i).mark()).collect();
    must(&["-n", &hub, "link", "set", &v3, "up"]);
    for i in [0, 1, 2] {
        let k3 = keys[3].clone();
        lab.p(i)
            .wait_after(marks[i], "reconnect after the link came back", |l| {
                l.starts_with(&format!("event connected {k3}"))
            });
        lab.p(i).call_until_ok(&k3);
    }
    println!("netns: silent drop detected by heartbeat, reconnected when the link came back");
}
