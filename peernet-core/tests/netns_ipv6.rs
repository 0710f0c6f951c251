//! IPv6 only (issue 18 item 4), inside namespaces this test creates and removes: two
//! namespaces joined by a veth pair with no IPv4 address at all, only the link-local
//! IPv6 addresses the kernel gives them. The nodes listen on `[::]` (the default, dual
//! stack), announce to the link-local multicast group `ff02::504e:4554`, learn each
//! other's link-local address with its scope id from the announcement, dial it, and
//! call.
//!
//! Needs root, iproute2 and the `peernet-node` example; otherwise prints why and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/netlab.rs"]
mod netlab;
#[path = "common/nodeproc.rs"]
mod nodeproc;

use std::process::Command;

use netlab::{must, sysctl};
use nodeproc::Lab;

fn setup(lab: &mut Lab) -> Result<(String, String), String> {
    let p = lab.netns("P")?;
    let q = lab.netns("Q")?;
    for ns in [&p, &q] {
        // No duplicate address detection: the link-local address is usable at once.
        sysctl(ns, "net.ipv6.conf.all.accept_dad=0")?;
        sysctl(ns, "net.ipv6.conf.default.accept_dad=0")?;
    }
    must(&[
        "-n", &p, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &q,
    ]);
    for ns in [&p, &q] {
        must(&["-n", ns, "link", "set", "eth0", "up"]);
    }
    Ok((p, q))
}

#[test]
fn an_ipv6_only_pair_discovers_by_multicast_and_calls_over_link_local() {
    let Some((mut lab, (p, q))) = Lab::or_skip("v6", 2, setup) else {
        return;
    };
    let args = [
        "--listen",
        "[::]:0",
        "--discovery-port",
        "4040",
        "--discovery-interval-ms",
        "300",
    ];
    lab.start(0, &p, &args);
    lab.start(1, &q, &args);
    let (kp, kq) = (lab.p(0).key.clone(), lab.p(1).key.clone());
    assert!(lab.p(0).listen.starts_with("[::]:"), "{}", lab.p(0).listen);
    lab.p(0).send(&format!("trust {kq}"));
    lab.p(1).send(&format!("trust {kp}"));
    for (i, k) in [(0, &kq), (1, &kp)] {
        let l = lab
            .p(i)
            .wait_after(0, "discovered over IPv6 multicast", |l| {
                l.starts_with(&format!("event discovered {k} [fe80::"))
            });
        assert!(
            l.contains('%'),
            "a link-local address without its scope id: {l}"
        );
        lab.p(i).wait_after(0, "connected over IPv6", |l| {
            l.starts_with(&format!("event connected {k} [fe80::"))
        });
    }
    lab.p(0).call_until_ok(&kq);
    lab.p(1).call_until_ok(&kp);
    println!("netns ipv6: an IPv6-only pair discovered each other by multicast and called over link-local");
}

/// The link-local address of `eth0` in `ns` (as `ip` prints it, without the prefix).
fn link_local(ns: &str) -> String {
    let out = Command::new("ip")
        .args([
            "-n", ns, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
        ])
        .output()
        .expect("ip addr");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no link-local address on eth0 in {ns}: {text}"))
        .to_string()
}

#[test]
fn a_manual_link_local_address_with_an_interface_name_is_dialed() {
    let Some((mut lab, (p, q))) = Lab::or_skip("v6m", 2, setup) else {
        return;
    };
    let args = ["--listen", "[::]:7100", "--no-discovery"];
    lab.start(0, &p, &args);
    lab.start(1, &q, &args);
    let (kp, kq) = (lab.p(0).key.clone(), lab.p(1).key.clone());
    lab.p(1).send(&format!("trust {kp}"));
    lab.p(1)
        .wait_after(0, "trusted", |l| l.starts_with("trusted "));
    lab.p(0).send(&format!("trust {kq}"));
    let manual = format!("[{}%eth0]:7100", link_local(&q));
    lab.p(0).send(&format!("addr {kq} {manual}"));
    lab.p(0)
        .wait_after(0, "addr-ok", |l| l == format!("addr-ok {manual}"));
    lab.p(0)
        .wait_after(0, "connected over the manual link-local address", |l| {
            l.starts_with(&format!("event connected {kq} [fe80::"))
        });
    lab.p(0).call_until_ok(&kq);
    lab.p(1).call_until_ok(&kp);
    println!("netns ipv6: a manual {manual} (interface by name) was dialed, discovery off");

    // Detached and both restarted: the remembered link-local address, kept with its
    // scope id in the trust file, reconnects them.
    let m = lab.p(0).mark();
    lab.p(0).send(&format!("unaddr {kq} {manual}"));
    lab.p(0)
        .wait_after(m, "unaddr-ok", |l| l == "unaddr-ok true");
    lab.kill(0);
    lab.kill(1);
    let file = std::fs::read_to_string(format!("{}/trusted_peers", lab.data(0))).unwrap();
    assert!(
        file.contains("%"),
        "the remembered link-local address lost its scope id:\n{file}"
    );
    lab.start(1, &q, &args);
    lab.start(0, &p, &args);
    lab.p(0)
        .wait_after(0, "reconnect from the remembered link-local address", |l| {
            l.starts_with(&format!("event connected {kq} [fe80::"))
        });
    lab.p(0).call_until_ok(&kq);
    println!("netns ipv6: both restarted, reconnected from the remembered [fe80::..%N] address");
}
