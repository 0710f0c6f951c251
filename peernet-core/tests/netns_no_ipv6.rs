//! IPv6 switched off (issue 18), inside namespaces this test creates and removes: two
//! namespaces joined by a veth pair with IPv4 addresses only, and
//! `net.ipv6.conf.all.disable_ipv6=1` (and `default`, before the veth exists) in
//! both, so not even `::1` is left. A node started with the default listen address
//! `[::]:0` and UDP discovery on (its IPv6 multicast part included) still starts,
//! listens on IPv4 (a dual-stack `[::]` socket still takes IPv4 there; where the OS has
//! no IPv6 sockets at all it falls back to `0.0.0.0`, see `listen.rs`), is dialed by
//! the other node over its IPv4 address, and answers calls; it sees the caller as
//! plain IPv4.
//!
//! Needs root, iproute2, sysctl and the `peernet-node` example; otherwise prints why
//! and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/netlab.rs"]
mod netlab;
#[path = "common/nodeproc.rs"]
mod nodeproc;

use std::process::Command;

use netlab::{must, sysctl};
use nodeproc::Lab;

/// The IPv6 addresses left in `ns` (`ip -6 addr` output; empty when IPv6 is off).
fn ipv6_addresses(ns: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "-6", "-o", "addr", "show"])
        .output()
        .expect("ip addr");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn setup(lab: &mut Lab) -> Result<(String, String), String> {
    let p = lab.netns("P")?;
    let q = lab.netns("Q")?;
    for ns in [&p, &q] {
        sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1")?;
        sysctl(ns, "net.ipv6.conf.default.disable_ipv6=1")?;
    }
    must(&[
        "-n", &p, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &q,
    ]);
    for (ns, a) in [(&p, "10.79.0.1/24"), (&q, "10.79.0.2/24")] {
        must(&["-n", ns, "addr", "add", a, "brd", "+", "dev", "eth0"]);
        must(&["-n", ns, "link", "set", "eth0", "up"]);
    }
    Ok((p, q))
}

#[test]
fn with_ipv6_disabled_the_default_listener_takes_ipv4_calls() {
    let Some((mut lab, (p, q))) = Lab::or_skip("n6", 2, setup) else {
        return;
    };
    for ns in [&p, &q] {
        let left = ipv6_addresses(ns);
        assert!(left.is_empty(), "IPv6 still on in {ns}: {left}");
    }
    // The node under test: the library's default listen address, discovery on.
    lab.start(
        0,
        &p,
        &[
            "--listen",
            "[::]:0",
            "--discovery-port",
            "4040",
            "--discovery-interval-ms",
            "300",
        ],
    );
    // The caller: no discovery, so the only way the two meet is its IPv4 dial.
    lab.start(1, &q, &["--listen", "0.0.0.0:0", "--no-discovery"]);
    let listen = lab.p(0).listen.clone();
    let port = listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in the listening line {listen}"));
    assert!(
        listen.starts_with("[::]:") || listen.starts_with("0.0.0.0:"),
        "the node listens on {listen}, not on every address"
    );
    let (k0, k1) = (lab.p(0).key.clone(), lab.p(1).key.clone());
    lab.p(0).send(&format!("trust {k1}"));
    lab.p(0)
        .wait_after(0, "trusted", |l| l.starts_with("trusted "));
    lab.p(1).send(&format!("trust {k0}"));
    lab.p(1).send(&format!("addr {k0} 10.79.0.1:{port}"));
    lab.p(1)
        .wait_after(0, "addr-ok", |l| l.starts_with("addr-ok "));
    lab.p(1).wait_after(0, "connected over IPv4", |l| {
        l.starts_with(&format!("event connected {k0} 10.79.0.1:{port}"))
    });
    // The listener's side sees the caller as plain IPv4, not ::ffff:10.79.0.2.
    lab.p(0).wait_after(0, "connected from IPv4", |l| {
        l.starts_with(&format!("event connected {k1} 10.79.0.2:"))
    });
    lab.p(1).call_until_ok(&k0);
    lab.p(0).call_until_ok(&k1);
    println!(
        "netns no-ipv6: with IPv6 disabled the node listened on {listen} and was called over 10.79.0.1:{port}"
    );
}
