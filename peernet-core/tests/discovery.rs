//! Discovery: manual hints (`Node::discovered` / `Node::lost`), auto-connect of trusted
//! peers, and UDP discovery between nodes of one process over 127.255.255.255.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use peernet_core::{AddressSource, EventKind, Node, NodeConfig, PeerState, UdpDiscoveryConfig};

fn udp_port(tag: u16) -> u16 {
    common::udp_port(7, tag)
}

fn udp_config(tag: &str, port: u16) -> NodeConfig {
    let mut c = config(tag);
    c.udp_discovery = Some(UdpDiscoveryConfig {
        port,
        interval: Duration::from_millis(200),
        broadcast: vec![SocketAddr::from(([127, 255, 255, 255], port))],
        ..UdpDiscoveryConfig::default()
    });
    c
}

#[tokio::test]
async fn manual_hint_auto_connects_a_trusted_peer() {
    let a = node("ma").await;
    let b = node("mb").await;
    a.trust(&b.key(), Some("b")).unwrap();
    b.trust(&a.key(), Some("a")).unwrap();
    echo(&b);
    let mut ev = a.events();
    a.discovered(&b.key(), addr(&b)).unwrap();
    let d = wait_event(&mut ev, EventKind::Discovered, Some(b.key())).await;
    assert_eq!(d.address, Some(addr(&b)));
    wait_event(&mut ev, EventKind::Connected, Some(b.key())).await;
    assert_eq!(a.call(&b.key(), "echo", b"hi", T).await.unwrap(), b"hi");
    let info = a.peers().into_iter().find(|p| p.key == b.key()).unwrap();
    assert_eq!(info.state, PeerState::Connected);
    let known = info.addresses.iter().find(|k| k.addr == addr(&b)).unwrap();
    assert_eq!(known.source, AddressSource::Discovery);
    assert!(
        known.confirmed,
        "the handshake confirmed the hinted address"
    );
    // The same hint again is not reported again.
    a.discovered(&b.key(), addr(&b)).unwrap();
    a.lost(&b.key());
    let l = wait_event(&mut ev, EventKind::Lost, Some(b.key())).await;
    assert_eq!(l.address, Some(addr(&b)));
    // Lost is a discovery fact: the live connection stays up.
    assert!(a.is_connected(&b.key()));
}

#[tokio::test]
async fn untrusted_hints_are_listed_but_never_dialed_until_trusted() {
    let a = node("ua").await;
    let b = node("ub").await;
    b.trust(&a.key(), None).unwrap();
    a.discovered(&b.key(), addr(&b)).unwrap();
    let info = a.peers().into_iter().find(|p| p.key == b.key()).unwrap();
    assert!(!info.trusted);
    assert_eq!(info.state, PeerState::Disconnected);
    assert!(!a.has_dialer(&b.key()));
    assert_eq!(a.connection_count(), 0);
    // Trusting it later connects at once: the hint was kept.
    let mut ev = a.events();
    a.trust(&b.key(), None).unwrap();
    wait_event(&mut ev, EventKind::Connected, Some(b.key())).await;
}

#[tokio::test]
async fn bad_hints_are_refused() {
    let a = node("ba").await;
    let other = node("bb").await;
    assert!(a
        .discovered(&a.key(), "127.0.0.1:9".parse().unwrap())
        .is_err());
    assert!(a
        .discovered(&other.key(), "127.0.0.1:0".parse().unwrap())
        .is_err());
    assert!(a
        .discovered(&other.key(), "0.0.0.0:9".parse().unwrap())
        .is_err());
    // Lost of an unknown key is harmless.
    a.lost(&other.key());
    assert!(a.peers().iter().all(|p| p.key != other.key()));
}

#[tokio::test]
async fn nodes_in_one_process_discover_each_other_over_loopback_broadcast() {
    let port = udp_port(1);
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(
            Node::start(udp_config(&format!("u{i}"), port))
                .await
                .unwrap(),
        );
    }
    for n in &nodes {
        echo(n);
        for m in &nodes {
            if n.key() != m.key() {
                n.trust(&m.key(), None).unwrap();
            }
        }
    }
    for n in &nodes {
        for m in &nodes {
            if n.key() != m.key() {
                n.wait_connected(&m.key(), T).await.unwrap();
                let r = n.call(&m.key(), "echo", b"x", T).await.unwrap();
                assert_eq!(r, b"x");
            }
        }
    }
    // One connection per pair, on both sides, once duplicates have drained.
    for n in &nodes {
        eventually("one connection per pair", || n.connection_count() == 2).await;
    }
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn discovery_reports_lost_after_three_silent_intervals() {
    let port = udp_port(2);
    let a = Node::start(udp_config("la", port)).await.unwrap();
    let b = Node::start(udp_config("lb", port)).await.unwrap();
    let mut ev = a.events();
    // Untrusted: discovered and listed, not connected.
    let d = wait_event(&mut ev, EventKind::Discovered, Some(b.key())).await;
    assert_eq!(d.address.map(|x| x.port()), Some(b.port()));
    assert_eq!(a.connection_count(), 0);
    b.shutdown().await;
    drop(b);
    wait_event(&mut ev, EventKind::Lost, None).await;
}
