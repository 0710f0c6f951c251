//! Scale (issue 7): a LAN of 30 hosts — 30 network namespaces on one bridge (the bridge
//! in a namespace of its own, so the host's interfaces are never touched), one
//! `peernet-node` process in each, all trusting each other. Every pair must discover
//! each other by broadcast, connect (435 connections) and answer calls.
//!
//! Prints: time to full mesh, discovery traffic per host (UDP datagrams sent/received,
//! from each namespace's /proc/net/snmp, per announcement interval), and memory per node
//! (VmRSS of each process).
//!
//! Needs root, iproute2 and the example (`cargo build [--release] -p peernet-core
//! --example peernet-node`); without them it prints why and passes without checking
//! (with `PEERNET_REQUIRE_EXAMPLES` set, a missing example fails). Heavy: `#[ignore]`d,
//! run by `scripts/ci/hardening.sh`. Namespaces and processes are removed even when it
//! fails (Drop).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/netlab.rs"]
mod netlab;

use netlab::{ip, must, skip_reason};

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const HOSTS: usize = 30;
const INTERVAL_MS: u64 = 500;
const MESH_DEADLINE: Duration = Duration::from_secs(60);
const STEP_DEADLINE: Duration = Duration::from_secs(20);

struct Host {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<String>,
    key: String,
    pid: u32,
}

impl Host {
    /// The next line satisfying `pred` (earlier lines are dropped), within `within`.
    fn wait(&mut self, what: &str, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) if pred(&l) => return l,
                Ok(_) => {}
                Err(_) => panic!("host {}: no {what} within {within:?}", &self.key[..8]),
            }
        }
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }
}

struct Lan {
    pid: u32,
    hub: String,
    ns: Vec<String>,
    dir: PathBuf,
    hosts: Vec<Host>,
}

impl Lan {
    fn setup(&mut self) -> Result<(), String> {
        ip(&["netns", "add", &self.hub])?;
        must(&["-n", &self.hub, "link", "add", "br0", "type", "bridge"]);
        must(&["-n", &self.hub, "link", "set", "br0", "up"]);
        for i in 0..HOSTS {
            let ns = format!("ps{}n{i}", self.pid);
            must(&["netns", "add", &ns]);
            self.ns.push(ns.clone());
            let v = format!("ps{}h{i}", self.pid % 100_000);
            must(&[
                "link", "add", &v, "netns", &self.hub, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            must(&["-n", &self.hub, "link", "set", &v, "master", "br0"]);
            must(&["-n", &self.hub, "link", "set", &v, "up"]);
            must(&["-n", &ns, "link", "set", "lo", "up"]);
            let a = format!("10.78.0.{}/24", 10 + i);
            must(&["-n", &ns, "addr", "add", &a, "brd", "+", "dev", "eth0"]);
            must(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        Ok(())
    }

    fn start(&mut self, i: usize, bin: &Path) {
        let data = self.dir.join(format!("host{i}"));
        let interval = INTERVAL_MS.to_string();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns[i]])
            .arg(bin)
            .arg("--data")
            .arg(&data)
            .args(["--listen", "0.0.0.0:0", "--discovery-port", "4040"])
            .args(["--discovery-interval-ms", &interval])
            .args(["--heartbeat-ms", "1000", "--heartbeat-timeout-ms", "5000"])
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
        // `ip netns exec` execs the node: same pid.
        let pid = child.id();
        let mut h = Host {
            child,
            stdin,
            rx,
            key: String::new(),
            pid,
        };
        let k = h.wait("key line", STEP_DEADLINE, |l| l.starts_with("key "));
        h.key = k[4..].to_string();
        h.wait("listening line", STEP_DEADLINE, |l| {
            l.starts_with("listening ")
        });
        self.hosts.push(h);
    }

    /// (InDatagrams, OutDatagrams) of UDP in namespace `i`.
    fn udp_counts(&self, i: usize) -> (u64, u64) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns[i], "cat", "/proc/net/snmp"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
        let names: Vec<&str> = udp.next().unwrap_or("").split_whitespace().collect();
        let vals: Vec<&str> = udp.next().unwrap_or("").split_whitespace().collect();
        let get = |n: &str| {
            names
                .iter()
                .position(|x| *x == n)
                .and_then(|p| vals.get(p))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (get("InDatagrams"), get("OutDatagrams"))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            let _ = h.child.kill();
            let _ = h.child.wait();
        }
        for ns in &self.ns {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["netns", "del", &self.hub]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "heavy (30 namespaces and processes): run by scripts/ci/hardening.sh"]
fn lan_of_30_hosts_full_mesh() {
    let exe = std::env::current_exe().unwrap();
    let bin = std::env::var_os("PEERNET_EXAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| exe.parent().unwrap().parent().unwrap().join("examples"))
        .join("peernet-node");
    if let Some(why) = skip_reason(&bin) {
        println!("scale netns test skipped: {why}");
        return;
    }
    let t0 = Instant::now();
    let pid = std::process::id();
    let mut lan = Lan {
        pid,
        hub: format!("ps{pid}hub"),
        ns: Vec::new(),
        dir: std::env::temp_dir().join(format!("peernet-scale-{pid}")),
        hosts: Vec::new(),
    };
    if let Err(e) = lan.setup() {
        println!("scale netns test skipped: cannot create namespaces: {e}");
        return;
    }
    let setup_time = t0.elapsed();
    let udp0: Vec<(u64, u64)> = (0..HOSTS).map(|i| lan.udp_counts(i)).collect();
    let started = Instant::now();
    for i in 0..HOSTS {
        lan.start(i, &bin);
    }
    let keys: Vec<String> = lan.hosts.iter().map(|h| h.key.clone()).collect();
    let rss_alone: Vec<u64> = lan.hosts.iter().map(|h| rss_kib(h.pid)).collect();

    // Everyone trusts everyone; discovery and auto-connect do the rest.
    let trusting = Instant::now();
    for i in 0..HOSTS {
        for (j, k) in keys.iter().enumerate() {
            if i != j {
                lan.hosts[i].send(&format!("trust {k}"));
            }
        }
    }
    let mut missing: Vec<HashSet<String>> = (0..HOSTS)
        .map(|i| {
            keys.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, k)| k.clone())
                .collect()
        })
        .collect();
    let mut history: Vec<Vec<String>> = vec![Vec::new(); HOSTS];
    let deadline = trusting + MESH_DEADLINE;
    while missing.iter().any(|m| !m.is_empty()) {
        assert!(
            Instant::now() < deadline,
            "no full mesh within {MESH_DEADLINE:?}: {} of {} directions missing",
            missing.iter().map(HashSet::len).sum::<usize>(),
            HOSTS * (HOSTS - 1)
        );
        let mut idle = true;
        for (i, h) in lan.hosts.iter_mut().enumerate() {
            while let Ok(l) = h.rx.try_recv() {
                idle = false;
                if l.starts_with("event ") {
                    history[i].push(l.clone());
                }
                if let Some(rest) = l.strip_prefix("event connected ") {
                    let k = rest.split_whitespace().next().unwrap_or("");
                    missing[i].remove(k);
                }
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mesh_time = trusting.elapsed();

    // Every host lists the 29 others as connected: 435 connections.
    let mut connected_pairs = 0;
    for (i, h) in lan.hosts.iter_mut().enumerate() {
        h.send("peers");
        let mut n = 0;
        let mut seen = Vec::new();
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let l =
                h.rx.recv_timeout(left)
                    .unwrap_or_else(|_| panic!("host {i}: no peers-end"));
            if l == "peers-end" {
                break;
            }
            if l.starts_with("peer ") && l.contains(" Connected ") {
                n += 1;
            } else {
                seen.push(l);
            }
        }
        assert_eq!(
            n,
            HOSTS - 1,
            "host {i} has {n} connected peers; other lines: {seen:#?}; its events: {:#?}",
            history[i]
        );
        connected_pairs += n;
    }
    assert_eq!(connected_pairs / 2, HOSTS * (HOSTS - 1) / 2);

    // Calls between every ordered pair.
    let calls = Instant::now();
    let mut ok = 0;
    for h in &mut lan.hosts {
        h.send("callall ping");
    }
    for (i, h) in lan.hosts.iter_mut().enumerate() {
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let l =
                h.rx.recv_timeout(left)
                    .unwrap_or_else(|_| panic!("host {i}: no callall-end"));
            if l == "callall-end" {
                break;
            }
            assert!(!l.starts_with("call-err"), "host {i}: {l}");
            if l.starts_with("call-ok") {
                ok += 1;
            }
        }
    }
    let calls_time = calls.elapsed();
    assert_eq!(ok, HOSTS * (HOSTS - 1));

    // Discovery traffic in steady state: counters over a fixed measurement window of
    // 10 intervals (a measurement, not synchronisation), plus since the start.
    let since_start = started.elapsed();
    let udp1: Vec<(u64, u64)> = (0..HOSTS).map(|i| lan.udp_counts(i)).collect();
    let window = Instant::now();
    std::thread::sleep(Duration::from_millis(10 * INTERVAL_MS));
    let udp2: Vec<(u64, u64)> = (0..HOSTS).map(|i| lan.udp_counts(i)).collect();
    let ran = window.elapsed();
    let intervals = ran.as_secs_f64() * 1000.0 / INTERVAL_MS as f64;
    let mut sent = Vec::new();
    let mut recv = Vec::new();
    for i in 0..HOSTS {
        recv.push((udp2[i].0 - udp1[i].0) as f64 / intervals);
        sent.push((udp2[i].1 - udp1[i].1) as f64 / intervals);
    }
    let total_sent: u64 = (0..HOSTS).map(|i| udp1[i].1 - udp0[i].1).sum();
    let total_recv: u64 = (0..HOSTS).map(|i| udp1[i].0 - udp0[i].0).sum();
    let mut rss: Vec<u64> = lan.hosts.iter().map(|h| rss_kib(h.pid)).collect();
    rss.sort_unstable();
    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let range = |v: &[f64]| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        format!("avg {:.2} (min {min:.2}, max {max:.2})", avg(v))
    };
    println!(
        "scale: {HOSTS} hosts on one bridge (set up in {setup_time:?}); full mesh ({} \
         connections) {mesh_time:?} after the trust commands; {ok} calls (every ordered pair) \
         in {calls_time:?}",
        HOSTS * (HOSTS - 1) / 2
    );
    println!(
        "scale: discovery traffic per host per {INTERVAL_MS} ms interval over {ran:?} \
         ({intervals:.1} intervals): sent {}, received {} UDP datagrams (expected 1 sent, {} \
         received incl. its own broadcast); {} bytes each (39-byte announcement + UDP/IP \
         headers 28); from start to full mesh and calls ({since_start:?}): {total_sent} \
         sent, {total_recv} received in all",
        range(&sent),
        range(&recv),
        HOSTS,
        39 + 28
    );
    println!(
        "scale: RSS per node: alone min {} KiB; with 29 connections min {} KiB, median {} KiB, \
         max {} KiB; total test {:?}",
        rss_alone.iter().min().unwrap(),
        rss[0],
        rss[rss.len() / 2],
        rss[rss.len() - 1],
        t0.elapsed()
    );
    let avg_sent = avg(&sent);
    assert!(
        (0.5..=3.0).contains(&avg_sent),
        "announcements per host per interval: {avg_sent:.2}"
    );
}
