//! Reconnect: a dropped peer is redialed with backoff (manual connections too), a
//! restarted peer on a new port is found again through discovery, and untrusting a
//! peer stops its redialing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use peernet_core::{EventKind, Node, NodeConfig, PeerState, UdpDiscoveryConfig};

fn udp_port(tag: u16) -> u16 {
    common::udp_port(13, tag)
}

fn with_udp(mut c: NodeConfig, port: u16) -> NodeConfig {
    c.udp_discovery = Some(UdpDiscoveryConfig {
        port,
        interval: Duration::from_millis(200),
        broadcast: vec![SocketAddr::from(([127, 255, 255, 255], port))],
        ..UdpDiscoveryConfig::default()
    });
    c
}

#[tokio::test]
async fn manual_connection_is_redialed_after_the_peer_restarts_on_its_port() {
    let a = node("ra").await;
    let bcfg = config("rb");
    let b = Node::start(bcfg.clone()).await.unwrap();
    let bkey = b.key();
    a.trust(&bkey, None).unwrap();
    b.trust(&a.key(), None).unwrap();
    a.connect(&bkey, addr(&b), T).await.unwrap();
    let port = b.port();
    let mut ev = a.events();
    b.shutdown().await;
    drop(b);
    wait_event(&mut ev, EventKind::Disconnected, Some(bkey)).await;
    // The supervisor keeps trying (Connecting while it dials).
    eventually("a dial supervisor", || a.has_dialer(&bkey)).await;
    let mut c2 = bcfg;
    c2.listen = Some(SocketAddr::from(([127, 0, 0, 1], port)));
    let b2 = Node::start(c2).await.unwrap();
    echo(&b2);
    wait_event(&mut ev, EventKind::Connected, Some(bkey)).await;
    assert_eq!(a.call(&bkey, "echo", b"back", T).await.unwrap(), b"back");
    eventually("supervisor ends once connected", || !a.has_dialer(&bkey)).await;
}

#[tokio::test]
async fn peer_restarting_on_its_address_is_reconnected_without_a_new_discovered_event() {
    let port = udp_port(2);
    let a = Node::start(with_udp(config("sa"), port)).await.unwrap();
    let bcfg = with_udp(config("sb"), port);
    let b = Node::start(bcfg.clone()).await.unwrap();
    let bkey = b.key();
    a.trust(&bkey, None).unwrap();
    b.trust(&a.key(), None).unwrap();
    a.wait_connected(&bkey, T).await.unwrap();
    let baddr = addr(&b);
    let mut ev = a.events();
    b.shutdown().await;
    drop(b);
    wait_event(&mut ev, EventKind::Disconnected, Some(bkey)).await;
    // Same key, same address: its start-up announcement is "alive", not news.
    let mut c2 = bcfg;
    c2.listen = Some(baddr);
    let b2 = Node::start(c2).await.unwrap();
    echo(&b2);
    let seen = tokio::time::timeout(T, async {
        let mut seen = Vec::new();
        loop {
            match ev.recv().await {
                Ok(e) if e.key == Some(bkey) => {
                    seen.push(e.kind);
                    if e.kind == EventKind::Connected {
                        return seen;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("event stream: {e}"),
            }
        }
    })
    .await
    .expect("reconnected");
    assert_eq!(seen, vec![EventKind::Connected], "{seen:?}");
    assert_eq!(a.call(&bkey, "echo", b"back", T).await.unwrap(), b"back");
}

#[tokio::test]
async fn restarted_peer_on_a_new_port_is_reconnected_through_discovery() {
    let port = udp_port(1);
    let a = Node::start(with_udp(config("da"), port)).await.unwrap();
    let bcfg = with_udp(config("db"), port);
    let b = Node::start(bcfg.clone()).await.unwrap();
    let bkey = b.key();
    a.trust(&bkey, None).unwrap();
    b.trust(&a.key(), None).unwrap();
    a.wait_connected(&bkey, T).await.unwrap();
    let old_port = b.port();
    let mut ev = a.events();
    b.shutdown().await;
    drop(b);
    wait_event(&mut ev, EventKind::Disconnected, Some(bkey)).await;
    // Same data dir (same key), new port (listen on :0).
    let b2 = Node::start(bcfg).await.unwrap();
    assert_ne!(b2.port(), old_port);
    echo(&b2);
    let c = wait_event(&mut ev, EventKind::Connected, Some(bkey)).await;
    assert!(c.address.is_some());
    assert_eq!(a.call(&bkey, "echo", b"new", T).await.unwrap(), b"new");
    // The new address is confirmed; the old one no longer is.
    let info = a.peers().into_iter().find(|p| p.key == bkey).unwrap();
    for k in &info.addresses {
        if k.addr.port() == old_port {
            assert!(!k.confirmed, "stale address still confirmed: {k:?}");
        }
    }
    b2.shutdown().await;
}

#[tokio::test]
async fn untrusting_a_peer_stops_its_redialing() {
    let a = node("ta").await;
    let b = node("tb").await;
    let bkey = b.key();
    a.trust(&bkey, None).unwrap();
    b.trust(&a.key(), None).unwrap();
    a.connect(&bkey, addr(&b), T).await.unwrap();
    let mut ev = a.events();
    b.shutdown().await;
    drop(b);
    wait_event(&mut ev, EventKind::Disconnected, Some(bkey)).await;
    eventually("redialing", || a.has_dialer(&bkey)).await;
    a.untrust(&bkey).unwrap();
    eventually("redialing stopped", || !a.has_dialer(&bkey)).await;
    let info = a.peers().into_iter().find(|p| p.key == bkey).unwrap();
    assert_eq!(info.state, PeerState::Disconnected);
    // Trusting it again resumes (the address is still known).
    a.trust(&bkey, None).unwrap();
    eventually("redialing resumed", || a.has_dialer(&bkey)).await;
}

#[tokio::test]
async fn disconnect_holds_redial_and_a_dead_connection_is_redialed() {
    let (a, b) = pair().await;
    let bkey = b.key();
    let mut ev = a.events();
    a.disconnect(&bkey).await.unwrap();
    wait_event(&mut ev, EventKind::Disconnected, Some(bkey)).await;
    // The program asked: a does not redial.
    assert!(!a.has_dialer(&bkey));
    // b was told Goodbye 0 ("closing"), not asked to stay away: it redials a at the
    // dial-back address a's Hello gave, and the pair is back.
    wait_event(&mut ev, EventKind::Connected, Some(bkey)).await;
    assert_eq!(a.call(&bkey, "echo", b"1", T).await.unwrap(), b"1");
}
