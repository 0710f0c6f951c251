//! mDNS / DNS-SD (issue 18 item 5), inside namespaces this test creates and removes:
//! three namespaces on a bridge whose nftables rules drop every IPv4 broadcast frame
//! and our IPv6 discovery group (so UDP discovery hears nothing) but pass mDNS
//! multicast (224.0.0.251, ff02::fb). Two nodes with `--mdns` still find each other
//! and call; the rule's counter shows their broadcasts were sent and dropped. In the
//! third namespace Python `zeroconf` (PyPI) lists our `_peernet._tcp` service with the
//! node's key in its TXT record.
//!
//! Needs root, iproute2, nftables (`nft`) and the `peernet-node` example; the zeroconf
//! part needs a Python with `zeroconf` (`PEERNET_ZEROCONF_PYTHON`, else `python3`).
//! Whatever is missing is printed and that part passes without checking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/netlab.rs"]
mod netlab;
#[path = "common/nodeproc.rs"]
mod nodeproc;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use netlab::must;
use nodeproc::{Lab, WAIT};

const RULES: &str = "table bridge pnfilter {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ether type ip ether daddr ff:ff:ff:ff:ff:ff counter drop comment \"ipv4-broadcast\"
    ip6 daddr ff02::504e:4554 counter drop comment \"peernet-ipv6-group\"
  }
}
";

fn nft(ns: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft"])
        .args(args)
        .output()
        .map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "nft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn setup(lab: &mut Lab) -> Result<(String, Vec<String>), String> {
    if Command::new("nft").arg("--version").output().is_err() {
        return Err("no `nft` command (apt-get install nftables)".into());
    }
    let hub = lab.netns("hub")?;
    must(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
    must(&["-n", &hub, "link", "set", "br0", "up"]);
    let rules = std::env::temp_dir().join(format!("peernet-mdns-{}.nft", std::process::id()));
    std::fs::write(&rules, RULES).map_err(|e| e.to_string())?;
    let loaded = nft(&hub, &["-f", &rules.display().to_string()]);
    let _ = std::fs::remove_file(&rules);
    loaded?;
    let mut ns = Vec::new();
    for i in 0..3 {
        let n = lab.netns(&format!("m{i}"))?;
        let port = format!("pm{i}");
        must(&[
            "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &n,
        ]);
        must(&["-n", &hub, "link", "set", &port, "master", "br0"]);
        must(&["-n", &hub, "link", "set", &port, "up"]);
        let a = format!("10.78.0.{}/24", 11 + i);
        must(&["-n", &n, "addr", "add", &a, "brd", "+", "dev", "eth0"]);
        must(&["-n", &n, "link", "set", "eth0", "up"]);
        ns.push(n);
    }
    Ok((hub, ns))
}

/// Packets the rule with `comment` counted.
fn dropped(hub: &str, comment: &str) -> u64 {
    let text = nft(hub, &["list", "table", "bridge", "pnfilter"]).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(comment))
        .unwrap_or_else(|| panic!("no rule {comment} in:\n{text}"));
    let after = line.split("packets ").nth(1).unwrap_or("0");
    after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

const BROWSE: &str = r#"
import sys, time
from zeroconf import ServiceBrowser, ServiceListener, Zeroconf
class L(ServiceListener):
    def add_service(self, zc, t, name):
        info = zc.get_service_info(t, name, timeout=3000)
        key = info.properties.get(b"key") if info else None
        print("found", name, key.decode() if key else "-", flush=True)
    def update_service(self, zc, t, name):
        self.add_service(zc, t, name)
    def remove_service(self, zc, t, name):
        pass
zc = Zeroconf()
ServiceBrowser(zc, "_peernet._tcp.local.", L())
deadline = time.time() + float(sys.argv[1])
while time.time() < deadline:
    time.sleep(0.1)
zc.close()
"#;

/// Runs the zeroconf browser in `ns` until a line names `key` (or `WAIT`).
fn zeroconf_lists(ns: &str, key: &str) -> Option<String> {
    let py = std::env::var("PEERNET_ZEROCONF_PYTHON").unwrap_or_else(|_| "python3".into());
    let has = Command::new(&py)
        .args(["-c", "import zeroconf"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        println!("netns mdns: zeroconf part skipped: {py} has no `zeroconf` (pip install zeroconf, or set PEERNET_ZEROCONF_PYTHON)");
        return None;
    }
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, &py, "-c", BROWSE])
        .arg(WAIT.as_secs().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting python");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l.ends_with(key) => break Some(l),
            Ok(l) => seen.push(l),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        found.is_some(),
        "zeroconf did not list a _peernet._tcp service with key {key}; it saw: {seen:?}"
    );
    found
}

#[test]
fn nodes_find_each_other_by_mdns_when_the_bridge_drops_broadcast() {
    let Some((mut lab, (hub, ns))) = Lab::or_skip("mdn", 2, setup) else {
        return;
    };
    let args = [
        "--listen",
        "[::]:0",
        "--discovery-port",
        "4040",
        "--discovery-interval-ms",
        "300",
        "--mdns",
    ];
    lab.start(0, &ns[0], &args);
    lab.start(1, &ns[1], &args);
    let (k0, k1) = (lab.p(0).key.clone(), lab.p(1).key.clone());
    // The figures printed below, over mDNS alone: from trusting to the first call
    // (made as soon as node 0 is connected: one side hearing the other is enough), and
    // to each node having heard of the other.
    let trusted_at = Instant::now();
    lab.p(0).send(&format!("trust {k1}"));
    lab.p(1).send(&format!("trust {k0}"));
    lab.p(0).wait_after(0, "connected", |l| {
        l.starts_with(&format!("event connected {k1}"))
    });
    lab.p(0).call_until_ok(&k1);
    let first_call = trusted_at.elapsed();
    let mut heard = Vec::new();
    for (i, k, ip) in [(0, &k1, "10.78.0.12"), (1, &k0, "10.78.0.11")] {
        let (_, at) = lab.p(i).wait_after_at(0, "discovered by mDNS", |l| {
            l.starts_with(&format!("event discovered {k} {ip}:"))
        });
        heard.push(at.saturating_duration_since(trusted_at));
        lab.p(i).wait_after(0, "connected", |l| {
            l.starts_with(&format!("event connected {k}"))
        });
    }
    lab.p(1).call_until_ok(&k0);
    // The broadcasts were sent, and the bridge dropped them: mDNS did it.
    let b = dropped(&hub, "ipv4-broadcast");
    assert!(
        b > 0,
        "no IPv4 broadcast was dropped: the filter did not work"
    );
    println!(
        "netns mdns: found each other by mDNS and called ({b} broadcast frames dropped); \
         trust to first call {first_call:?}; trust to each having heard of the other \
         {:?} / {:?}",
        heard[0], heard[1]
    );

    if let Some(line) = zeroconf_lists(&ns[2], &k0) {
        println!("netns mdns: Python zeroconf lists our service: {line}");
    }
}
