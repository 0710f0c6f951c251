//! Interface choice (issue 18) on real interfaces, inside namespaces this test creates
//! and removes (the host's interfaces are never touched):
//!
//! ```text
//!   ns L (10.77.1.2) ──eth0── [hub bridge] ──eth0── ns H (10.77.1.1)
//!   ns V (10.99.0.2) ──eth0────────vpn0──────────── ns H (10.99.0.1, "VPN-like" veth)
//!   ns D (172.31.0.2) ─eth0───vethd0─[docker0]───── ns H (172.31.0.1, docker-like bridge)
//! ```
//!
//! H runs with `--deny-interface vpn0` (docker0 is skipped by default): L discovers H,
//! H hears V and D (their broadcasts reach it), yet neither V nor D ever hears H. Then
//! an interface added while H runs (`lan1`, to ns E) is announced on at the next
//! announcement (interfaces are re-read every time). Then H restarted with those
//! interfaces allowed is heard by V and D: the control that shows the filter, not the
//! topology, kept them out.
//!
//! Needs root, iproute2 and the `peernet-node` example; otherwise prints why and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/netlab.rs"]
mod netlab;
#[path = "common/nodeproc.rs"]
mod nodeproc;

use std::time::{Duration, Instant};

use netlab::must;
use nodeproc::Lab;

const INTERVAL_MS: u64 = 200;
/// Announcements of H that V and D must not hear (after L heard one).
const QUIET_INTERVALS: u32 = 10;

const L: usize = 0;
const H: usize = 1;
const V: usize = 2;
const D: usize = 3;
const E: usize = 4;

fn node_args(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--listen",
        "0.0.0.0:0",
        "--discovery-port",
        "4040",
        "--discovery-interval-ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(INTERVAL_MS.to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn start(lab: &mut Lab, slot: usize, ns: &str, extra: &[&str]) {
    let a = node_args(extra);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    lab.start(slot, ns, &refs);
}

/// Builds the topology; returns the namespaces [L, H, V, D, hub].
fn setup(lab: &mut Lab) -> Result<Vec<String>, String> {
    let hub = lab.netns("hub")?;
    let l = lab.netns("L")?;
    let h = lab.netns("H")?;
    let v = lab.netns("V")?;
    let d = lab.netns("D")?;
    must(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
    must(&["-n", &hub, "link", "set", "br0", "up"]);
    for (ns, port, addr) in [(&l, "pl", "10.77.1.2/24"), (&h, "ph", "10.77.1.1/24")] {
        must(&[
            "-n", &hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        must(&["-n", &hub, "link", "set", port, "master", "br0"]);
        must(&["-n", &hub, "link", "set", port, "up"]);
        must(&["-n", ns, "addr", "add", addr, "brd", "+", "dev", "eth0"]);
        must(&["-n", ns, "link", "set", "eth0", "up"]);
    }
    // The "VPN": a veth straight from H to V, a subnet of its own.
    must(&[
        "-n", &h, "link", "add", "vpn0", "type", "veth", "peer", "name", "eth0", "netns", &v,
    ]);
    must(&[
        "-n",
        &h,
        "addr",
        "add",
        "10.99.0.1/24",
        "brd",
        "+",
        "dev",
        "vpn0",
    ]);
    must(&["-n", &h, "link", "set", "vpn0", "up"]);
    must(&[
        "-n",
        &v,
        "addr",
        "add",
        "10.99.0.2/24",
        "brd",
        "+",
        "dev",
        "eth0",
    ]);
    must(&["-n", &v, "link", "set", "eth0", "up"]);
    // The "docker" bridge in H with a container (D) on it.
    must(&["-n", &h, "link", "add", "docker0", "type", "bridge"]);
    must(&[
        "-n",
        &h,
        "addr",
        "add",
        "172.31.0.1/24",
        "brd",
        "+",
        "dev",
        "docker0",
    ]);
    must(&["-n", &h, "link", "set", "docker0", "up"]);
    must(&[
        "-n", &h, "link", "add", "vethd0", "type", "veth", "peer", "name", "eth0", "netns", &d,
    ]);
    must(&["-n", &h, "link", "set", "vethd0", "master", "docker0"]);
    must(&["-n", &h, "link", "set", "vethd0", "up"]);
    must(&[
        "-n",
        &d,
        "addr",
        "add",
        "172.31.0.2/24",
        "brd",
        "+",
        "dev",
        "eth0",
    ]);
    must(&["-n", &d, "link", "set", "eth0", "up"]);
    Ok(vec![l, h, v, d, hub])
}

/// Waits until V and D have heard from... nothing of H for `QUIET_INTERVALS`
/// announcement intervals after `since`; panics if either discovered H.
fn assert_not_heard(lab: &mut Lab, h_key: &str, marks: [usize; 2], since: Instant) {
    let until = since + Duration::from_millis(INTERVAL_MS) * QUIET_INTERVALS;
    while Instant::now() < until {
        for (slot, m) in [(V, marks[0]), (D, marks[1])] {
            assert!(
                !lab.p(slot).discovered_since(m, h_key),
                "slot {slot} heard H through an interface the filter should skip:\n{}",
                lab.p(slot).lines.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn deny_list_and_default_skip_keep_vpn_and_docker_addresses_out_of_announcements() {
    let Some((mut lab, ns)) = Lab::or_skip("ifc", 5, setup) else {
        return;
    };
    let (l, h, v, d) = (ns[0].clone(), ns[1].clone(), ns[2].clone(), ns[3].clone());
    start(&mut lab, L, &l, &[]);
    start(&mut lab, V, &v, &[]);
    start(&mut lab, D, &d, &[]);
    start(&mut lab, H, &h, &["--deny-interface", "vpn0"]);
    let h_key = lab.p(H).key.clone();
    let (v_key, d_key) = (lab.p(V).key.clone(), lab.p(D).key.clone());

    // 1. L hears H over the LAN; H hears V and D (the links work both ways) ...
    lab.p(L).wait_after(0, "H discovered over the LAN", |x| {
        x.starts_with(&format!("event discovered {h_key} 10.77.1.1:"))
    });
    let heard_at = Instant::now();
    for k in [&v_key, &d_key] {
        lab.p(H).wait_after(0, "V and D discovered by H", |x| {
            x.starts_with(&format!("event discovered {k}"))
        });
    }
    // ... but neither V (denied by name) nor D (docker0, skipped by default) hears H.
    assert_not_heard(&mut lab, &h_key, [0, 0], heard_at);
    println!("netns: H announced on eth0 only (vpn0 denied, docker0 skipped by default)");

    // 2. An interface added while H runs is announced on (interfaces are re-read).
    let e = lab.netns("E").unwrap();
    must(&[
        "-n", &h, "link", "add", "lan1", "type", "veth", "peer", "name", "eth0", "netns", &e,
    ]);
    must(&[
        "-n",
        &h,
        "addr",
        "add",
        "10.88.0.1/24",
        "brd",
        "+",
        "dev",
        "lan1",
    ]);
    must(&["-n", &h, "link", "set", "lan1", "up"]);
    must(&[
        "-n",
        &e,
        "addr",
        "add",
        "10.88.0.2/24",
        "brd",
        "+",
        "dev",
        "eth0",
    ]);
    must(&["-n", &e, "link", "set", "eth0", "up"]);
    start(&mut lab, E, &e, &[]);
    lab.p(E)
        .wait_after(0, "H discovered over the new interface", |x| {
            x.starts_with(&format!("event discovered {h_key} 10.88.0.1:"))
        });
    println!("netns: an interface added at run time is announced on");

    // 3. Control: H restarted with both allowed is heard by V and D.
    lab.kill(H);
    let marks = [lab.p(V).mark(), lab.p(D).mark()];
    start(
        &mut lab,
        H,
        &h,
        &[
            "--allow-interface",
            "eth0",
            "--allow-interface",
            "vpn*",
            "--allow-interface",
            "docker0",
        ],
    );
    lab.p(V)
        .wait_after(marks[0], "H heard over vpn0 once allowed", |x| {
            x.starts_with(&format!("event discovered {h_key} 10.99.0.1:"))
        });
    lab.p(D)
        .wait_after(marks[1], "H heard over docker0 once allowed", |x| {
            x.starts_with(&format!("event discovered {h_key} 172.31.0.1:"))
        });
    println!("netns: allowed by name, vpn0 and docker0 are announced on (control)");
}
