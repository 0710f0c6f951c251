//! The default listener (`[::]`, dual stack) takes IPv4 peers (issue 18): a node
//! listening on the default address is dialed by an IPv4-only peer over 127.0.0.1 (an
//! IPv4-mapped connection on its side), answers its call, and records the peer's
//! address as plain IPv4, not `::ffff:127.0.0.1`. On loopback, discovery off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use peernet_core::Node;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv4_only_dialer_reaches_the_default_dual_stack_listener() {
    let mut bc = config("ds-b");
    bc.listen = peernet_core::NodeConfig::new(bc.data_dir.clone()).listen;
    let b = Node::start(bc).await.unwrap();
    echo(&b);
    let local = addr(&b);
    if !local.is_ipv6() {
        // No IPv6 on this host: the listener fell back to 0.0.0.0 (see listen.rs).
        println!("dual stack: no IPv6 here, the node listens on {local} (IPv4 only)");
    } else {
        assert!(local.ip().is_unspecified(), "{local}");
    }
    // A listens on IPv4 only, so everything it does is IPv4.
    let a = node("ds-a").await;
    echo(&a);
    assert!(addr(&a).is_ipv4());
    a.trust(&b.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    let v4 = format!("127.0.0.1:{}", local.port());
    a.add_address(&b.key(), &v4).unwrap();
    a.wait_connected(&b.key(), T)
        .await
        .expect("the IPv4 dialer did not connect to the [::] listener");
    assert_eq!(a.call(&b.key(), "echo", b"v4", T).await.unwrap(), b"v4");
    // B sees A's connection as IPv4 (the mapped form turned back).
    let seen = b
        .peers()
        .into_iter()
        .find(|p| p.key == a.key())
        .and_then(|p| p.address)
        .expect("B has no address for A");
    assert_eq!(seen.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST), "{seen}");
    assert_eq!(b.call(&a.key(), "echo", b"back", T).await.unwrap(), b"back");
    println!(
        "dual stack: an IPv4 dialer reached [::]:{} over {v4}; B sees it as {seen}",
        local.port()
    );
    a.shutdown().await;
    b.shutdown().await;
}
