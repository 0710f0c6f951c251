//! Pairing between real hosts: three network namespaces on a bridge (in a fourth, so the
//! host's interfaces are never touched), one `peernet-node` process in each, every
//! trust store empty, the short-code rendezvous by directed broadcast in 10.78.0.0/24.
//!
//! Shows: a third host guessing a code gets one try and the code dies (the right code
//! then finds nobody); two hosts pair by code and call each other both ways; pairing by
//! ticket; an expired ticket and a ticket with a typo are refused before any traffic; a
//! host in the middle that steers the joiner to itself (with the real ticket's key and
//! secret) is refused.
//!
//! Needs root, iproute2 and the example binary (`cargo test` builds it); without them it
//! prints why and passes without checking anything. Namespaces are removed even when it
//! fails (Drop).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/netlab.rs"]
mod netlab;

use netlab::{ip, must, skip_reason};

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
const HOSTS: usize = 3;

struct Proc {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<String>,
    key: String,
}

impl Proc {
    /// The next line starting with one of `prefixes`, waiting up to `WAIT`.
    fn next(&mut self, prefixes: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) if prefixes.iter().any(|p| l.starts_with(p)) => return l,
                Ok(_) => {}
                Err(_) => panic!("no line starting with {prefixes:?} within {WAIT:?}"),
            }
        }
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn call(&mut self, key: &str) -> String {
        self.send(&format!("call {key} hi"));
        self.next(&["call-ok", "call-err"])
    }

    /// Calls `key` until it answers (the connection the pairing starts may still be
    /// in its handshake), bounded by `WAIT`.
    fn call_until_ok(&mut self, key: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let r = self.call(key);
            if r.starts_with("call-ok") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "calls to {key} keep failing: {r}"
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
    procs: Vec<Proc>,
}

impl Lab {
    fn setup(&mut self) -> Result<(), String> {
        ip(&["netns", "add", &self.hub])?;
        must(&["-n", &self.hub, "link", "add", "br0", "type", "bridge"]);
        must(&["-n", &self.hub, "link", "set", "br0", "up"]);
        for i in 0..HOSTS {
            let ns = format!("pp{}n{i}", self.pid);
            must(&["netns", "add", &ns]);
            self.ns.push(ns.clone());
            let v = format!("pp{}h{i}", self.pid % 100_000);
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

    fn start(&mut self, bin: &PathBuf, i: usize) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns[i]])
            .arg(bin)
            .arg("--data")
            .arg(self.dir.join(format!("host{i}")))
            .args(["--listen", "0.0.0.0:0", "--discovery-port", "4040"])
            .args(["--discovery-interval-ms", "500"])
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
            key: String::new(),
        };
        p.key = p.next(&["key "])[4..].to_string();
        self.procs.push(p);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        for ns in &self.ns {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["netns", "del", &self.hub]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `a`'s invite: (code if asked, ticket).
fn invite(p: &mut Proc, secs: u32, code: bool) -> (Option<String>, String) {
    p.send(&format!(
        "invite {secs} {}",
        if code { "code" } else { "ticket" }
    ));
    let c = code.then(|| p.next(&["invite-code "])[12..].to_string());
    let t = p.next(&["invite-ticket "])[14..].to_string();
    (c, t)
}

#[test]
fn three_hosts_pair_by_code_and_ticket_a_guess_burns_the_code() {
    let bin = netlab::node_bin();
    if let Some(why) = skip_reason(&bin) {
        println!("pairing netns test skipped: {why}");
        return;
    }
    let pid = std::process::id();
    let mut lab = Lab {
        pid,
        hub: format!("pp{pid}hub"),
        ns: Vec::new(),
        dir: std::env::temp_dir().join(format!("peernet-pair-netns-{pid}")),
        procs: Vec::new(),
    };
    if let Err(e) = lab.setup() {
        println!("pairing netns test skipped: cannot create namespaces: {e}");
        return;
    }
    for i in 0..HOSTS {
        lab.start(&bin, i);
    }
    let keys: Vec<String> = lab.procs.iter().map(|p| p.key.clone()).collect();
    let (a, b, m) = (0, 1, 2);

    // 1. Host m guesses the words of a's code (the number is public): one try, and the
    //    code is dead; a is told. The right code then finds no inviter.
    let (code, ticket) = invite(&mut lab.procs[a], 120, true);
    let code = code.unwrap();
    let number = code.split('-').next().unwrap();
    let guess = if code.ends_with("-acid-acid") {
        format!("{number}-acid-acorn")
    } else {
        format!("{number}-acid-acid")
    };
    lab.procs[m].send(&format!("join {guess}"));
    let r = lab.procs[m].next(&["joined", "join-err"]);
    assert!(r.starts_with("join-err"), "{r}");
    let ev = lab.procs[a].next(&["event pairing_failed"]);
    assert!(ev.contains("burned"), "{ev}");
    lab.procs[b].send(&format!("join {code}"));
    let r = lab.procs[b].next(&["joined", "join-err"]);
    assert!(r.contains("no inviter announced"), "{r}");

    // 2. The ticket of that invite still pairs b (the code's failure did not burn it).
    lab.procs[b].send(&format!("join {ticket}"));
    let r = lab.procs[b].next(&["joined", "join-err"]);
    assert!(r.starts_with(&format!("joined {}", keys[a])), "{r}");
    let p = lab.procs[a].next(&["paired"]);
    assert!(p.starts_with(&format!("paired {}", keys[b])), "{p}");
    // Same verification words on both screens.
    assert_eq!(
        r.split(' ').skip(3).collect::<Vec<_>>(),
        p.split(' ').skip(3).collect::<Vec<_>>()
    );
    lab.procs[b].call_until_ok(&keys[a]);
    lab.procs[a].call_until_ok(&keys[b]);

    // 3. A fresh invite: m pairs with a by short code, then they call each other.
    let (code, _) = invite(&mut lab.procs[a], 120, true);
    lab.procs[m].send(&format!("join {}", code.unwrap()));
    let r = lab.procs[m].next(&["joined", "join-err"]);
    assert!(r.starts_with(&format!("joined {}", keys[a])), "{r}");
    let p = lab.procs[a].next(&["paired"]);
    assert!(p.starts_with(&format!("paired {}", keys[m])), "{p}");
    lab.procs[m].call_until_ok(&keys[a]);
    lab.procs[a].call_until_ok(&keys[m]);

    // 4. Expiry, and a typo: refused by the joiner before any traffic.
    let (_, ticket) = invite(&mut lab.procs[b], 1, false);
    let ended = lab.procs[b].next(&["invite-ended"]);
    assert!(ended.contains("expired"), "{ended}");
    lab.procs[m].send(&format!("join {ticket}"));
    let r = lab.procs[m].next(&["joined", "join-err"]);
    assert!(r.contains("expired"), "{r}");
    let (_, ticket) = invite(&mut lab.procs[b], 120, false);
    let mut bad = ticket.into_bytes();
    let i = "peernet1-".len() + 14 + 2; // group 2
    bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
    lab.procs[m].send(&format!("join {}", String::from_utf8(bad).unwrap()));
    let r = lab.procs[m].next(&["joined", "join-err"]);
    assert!(r.contains("group 2"), "{r}");
    // 5. A man in the middle who read b's ticket (so knows its secret) and steers the
    //    joiner to its own host: it answers with its own static key, and the joiner
    //    refuses it before proving anything (M3 is never sent).
    let (_, real) = invite(&mut lab.procs[b], 120, false);
    let (_, own) = invite(&mut lab.procs[m], 120, false);
    let mut forged = peernet_proto::pairing::Ticket::parse(&real).unwrap();
    forged.addrs = peernet_proto::pairing::Ticket::parse(&own)
        .unwrap()
        .addrs
        .clone();
    lab.procs[a].send(&format!("join {}", forged.encode()));
    let r = lab.procs[a].next(&["joined", "join-err"]);
    assert!(r.contains("not the one in the ticket"), "{r}");
    println!("pairing netns test: all checks passed");
}
