//! Routed links (issue 18 items 2 and 3), inside namespaces this test creates and
//! removes: A and B on two subnets joined only through a router namespace, so no
//! broadcast ever travels between them.
//!
//! ```text
//!   ns A (10.1.0.2/24) ──eth0──ra── ns R (forwarding) ──rb──eth0── ns B (10.2.0.2/24)
//! ```
//!
//! - `manual_address_then_remembered_addresses_across_a_router`: discovery off. A
//!   reaches B through a manual address only (`addr KEY 10.2.0.2:7100`); the manual
//!   address is detached, both are restarted, and they reconnect from the address
//!   remembered in A's trust file.
//! - `unicast_reannounce_finds_a_peer_restarted_on_new_ports_across_a_router`:
//!   discovery on (broadcast cannot cross R). Both restart on new ports, so every
//!   remembered address is stale; A's unicast re-announcement to B's remembered IP
//!   tells B where A listens now, and B dials A.
//!
//! Needs root, iproute2 and the `peernet-node` example; otherwise prints why and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/netlab.rs"]
mod netlab;
#[path = "common/nodeproc.rs"]
mod nodeproc;

use std::process::Command;

use netlab::must;
use nodeproc::Lab;

const A: usize = 0;
const B: usize = 1;

/// Builds the topology; returns the namespaces of A and B.
fn setup(lab: &mut Lab) -> Result<(String, String), String> {
    let a = lab.netns("A")?;
    let r = lab.netns("R")?;
    let b = lab.netns("B")?;
    for (ns, port, mine, gw) in [
        (&a, "ra", "10.1.0.2/24", "10.1.0.1"),
        (&b, "rb", "10.2.0.2/24", "10.2.0.1"),
    ] {
        must(&[
            "-n", &r, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        let router_ip = format!("{gw}/24");
        must(&["-n", &r, "addr", "add", &router_ip, "brd", "+", "dev", port]);
        must(&["-n", &r, "link", "set", port, "up"]);
        must(&["-n", ns, "addr", "add", mine, "brd", "+", "dev", "eth0"]);
        must(&["-n", ns, "link", "set", "eth0", "up"]);
        must(&["-n", ns, "route", "add", "default", "via", gw]);
    }
    let fwd = Command::new("ip")
        .args([
            "netns",
            "exec",
            &r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .status()
        .map_err(|e| format!("sysctl: {e}"))?;
    if !fwd.success() {
        return Err("sysctl net.ipv4.ip_forward=1 failed in the router namespace".into());
    }
    Ok((a, b))
}

fn lab_or_skip(tag: &str) -> Option<(Lab, String, String)> {
    Lab::or_skip(tag, 2, setup).map(|(lab, (a, b))| (lab, a, b))
}

/// Starts slot `i` in `ns` listening on `listen`, with `extra` arguments.
fn start(lab: &mut Lab, i: usize, ns: &str, listen: &str, extra: &[&str]) {
    let mut args = vec!["--listen", listen, "--heartbeat-ms", "300"];
    args.extend_from_slice(extra);
    lab.start(i, ns, &args);
}

fn connected(lab: &mut Lab, i: usize, mark: usize, key: &str, what: &str) {
    lab.p(i).wait_after(mark, what, |l| {
        l.starts_with(&format!("event connected {key}"))
    });
}

#[test]
fn manual_address_then_remembered_addresses_across_a_router() {
    let Some((mut lab, na, nb)) = lab_or_skip("rt") else {
        return;
    };
    // Fresh nodes, discovery off; each learns the other's key, and nothing else.
    start(&mut lab, B, &nb, "0.0.0.0:7100", &["--no-discovery"]);
    start(&mut lab, A, &na, "0.0.0.0:7100", &["--no-discovery"]);
    let (ka, kb) = (lab.p(A).key.clone(), lab.p(B).key.clone());
    lab.p(B).send(&format!("trust {ka}"));
    lab.p(B)
        .wait_after(0, "trusted", |l| l.starts_with("trusted "));
    lab.p(A).send(&format!("trust {kb}"));
    lab.p(A)
        .wait_after(0, "trusted", |l| l.starts_with("trusted "));

    // 1. A manual address only: attaching it dials it, across the router.
    lab.p(A).send(&format!("addr {kb} 10.2.0.2:7100"));
    lab.p(A)
        .wait_after(0, "addr-ok", |l| l == "addr-ok 10.2.0.2:7100");
    connected(&mut lab, A, 0, &kb, "connected through the manual address");
    connected(&mut lab, B, 0, &ka, "A's connection");
    lab.p(A).call_until_ok(&kb);
    lab.p(B).call_until_ok(&ka);
    println!("netns routed: connected through a manual address only (discovery off)");

    // 2. The manual address detached, both restarted: the remembered (confirmed)
    //    address in A's trust file reconnects them.
    let m = lab.p(A).mark();
    lab.p(A).send(&format!("unaddr {kb} 10.2.0.2:7100"));
    lab.p(A)
        .wait_after(m, "unaddr-ok", |l| l == "unaddr-ok true");
    lab.kill(A);
    lab.kill(B);
    let file = std::fs::read_to_string(format!("{}/trusted_peers", lab.data(A))).unwrap();
    assert!(
        file.contains(&format!("{kb} ")) && file.contains(" 10.2.0.2:7100"),
        "A's trust file does not remember B's address:\n{file}"
    );
    // No manual address is left: the file is format 2 again.
    assert!(
        file.starts_with("# PeerNet trust store, format 2"),
        "{file}"
    );
    start(&mut lab, B, &nb, "0.0.0.0:7100", &["--no-discovery"]);
    start(&mut lab, A, &na, "0.0.0.0:7100", &["--no-discovery"]);
    connected(&mut lab, A, 0, &kb, "reconnect from the remembered address");
    connected(&mut lab, B, 0, &ka, "A's reconnection");
    lab.p(A).call_until_ok(&kb);
    lab.p(B).call_until_ok(&ka);
    println!("netns routed: both restarted, reconnected from the remembered address");
}

#[test]
fn unicast_reannounce_finds_a_peer_restarted_on_new_ports_across_a_router() {
    let Some((mut lab, na, nb)) = lab_or_skip("ru") else {
        return;
    };
    let disc = ["--discovery-port", "4040", "--discovery-interval-ms", "300"];
    start(&mut lab, B, &nb, "0.0.0.0:7100", &disc);
    start(&mut lab, A, &na, "0.0.0.0:7100", &disc);
    let (ka, kb) = (lab.p(A).key.clone(), lab.p(B).key.clone());
    lab.p(B).send(&format!("trust {ka}"));
    lab.p(B)
        .wait_after(0, "trusted", |l| l.starts_with("trusted "));
    lab.p(A).send(&format!("trust {kb}"));
    lab.p(A)
        .wait_after(0, "trusted", |l| l.starts_with("trusted "));
    // Broadcast does not cross the router: A reaches B through a manual address, and
    // remembers the confirmed one; B (which accepted) remembers nothing of A.
    lab.p(A).send(&format!("addr {kb} 10.2.0.2:7100"));
    connected(&mut lab, A, 0, &kb, "connected through the manual address");
    lab.p(A).call_until_ok(&kb);
    let m = lab.p(A).mark();
    lab.p(A).send(&format!("unaddr {kb} 10.2.0.2:7100"));
    lab.p(A)
        .wait_after(m, "unaddr-ok", |l| l == "unaddr-ok true");
    lab.kill(A);
    lab.kill(B);

    // Both restart on new ports: every address either remembers is stale. A's
    // announcement, sent by unicast to B's remembered IP, tells B where A is now.
    start(&mut lab, B, &nb, "0.0.0.0:0", &disc);
    start(&mut lab, A, &na, "0.0.0.0:0", &disc);
    let a_listen = lab.p(A).listen.clone();
    let a_port = a_listen.rsplit(':').next().unwrap().to_string();
    assert_ne!(a_port, "7100");
    lab.p(B).wait_after(0, "A's unicast announcement", |l| {
        l.starts_with(&format!("event discovered {ka} 10.1.0.2:{a_port}"))
    });
    connected(&mut lab, B, 0, &ka, "B dialing A at its new port");
    connected(&mut lab, A, 0, &kb, "B's connection");
    lab.p(B).call_until_ok(&ka);
    lab.p(A).call_until_ok(&kb);
    println!(
        "netns routed: both restarted on new ports; B heard A's unicast re-announce and dialed {a_listen}"
    );
}
