//! Pairing over loopback: two nodes with empty trust stores pair by ticket and by short
//! code, then call each other; a guessed code gets one try and dies; expiry; a typo is
//! reported before any traffic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use peernet_core::{Error, EventKind, InviteOptions, Node, NodeConfig, UdpDiscoveryConfig};

fn udp_config(tag: &str, port: u16) -> NodeConfig {
    let mut c = config(tag);
    c.udp_discovery = Some(UdpDiscoveryConfig {
        port,
        interval: Duration::from_millis(500),
        broadcast: vec![SocketAddr::from(([127, 255, 255, 255], port))],
        ..UdpDiscoveryConfig::default()
    });
    c
}

fn opts(name: &str, code: bool) -> InviteOptions {
    InviteOptions {
        name: Some(name.into()),
        code,
        ..InviteOptions::default()
    }
}

/// After pairing: both trust each other under the other's name and can call.
async fn check_paired(a: &Node, b: &Node) {
    let label = |n: &Node, k| {
        n.trusted()
            .into_iter()
            .find(|e| e.key == k)
            .map(|e| e.label)
    };
    assert_eq!(label(a, b.key()).as_deref(), Some("bob"));
    assert_eq!(label(b, a.key()).as_deref(), Some("alice"));
    echo(a);
    echo(b);
    // Each side recorded where the other listens and dials it.
    b.wait_connected(&a.key(), T).await.unwrap();
    a.wait_connected(&b.key(), T).await.unwrap();
    let r = b.call(&a.key(), "echo", b"hi", T).await.unwrap();
    assert_eq!(r, b"hi");
    let r = a.call(&b.key(), "echo", b"yo", T).await.unwrap();
    assert_eq!(r, b"yo");
}

#[tokio::test]
async fn empty_trust_stores_pair_by_ticket_then_call() {
    let a = node("ta").await;
    let b = node("tb").await;
    assert!(a.trusted().is_empty() && b.trusted().is_empty());
    let mut ev = a.events();
    let inv = a.invite(opts("alice", false)).await.unwrap();
    assert!(inv.code().is_none());
    assert!(inv.ticket().starts_with("peernet1-"));
    let joined = b.join(inv.ticket(), Some("bob"), T).await.unwrap();
    let invited = inv.wait(T).await.unwrap();
    assert_eq!(joined.key, a.key());
    assert_eq!(joined.name, "alice");
    assert_eq!(invited.key, b.key());
    assert_eq!(invited.name, "bob");
    assert_eq!(joined.sas, invited.sas, "both screens show the same words");
    wait_event(&mut ev, EventKind::PairingSucceeded, Some(b.key())).await;
    assert!(!inv.is_open(), "the listener closed after the success");
    check_paired(&a, &b).await;
    // Used: a second join with the same ticket cannot reach the closed listener.
    let c = node("tc").await;
    let e = c.join(inv.ticket(), None, T).await.unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(c.trusted().is_empty());
}

#[tokio::test]
async fn empty_trust_stores_pair_by_code_then_call() {
    let port = udp_port(31, 1);
    let a = Node::start(udp_config("ca", port)).await.unwrap();
    let b = Node::start(udp_config("cb", port)).await.unwrap();
    let inv = a.invite(opts("alice", true)).await.unwrap();
    let code = inv.code().unwrap().to_owned();
    let joined = b.join(&code, Some("bob"), T).await.unwrap();
    let invited = inv.wait(T).await.unwrap();
    assert_eq!(joined.key, a.key());
    assert_eq!(invited.key, b.key());
    assert_eq!(joined.sas, invited.sas);
    check_paired(&a, &b).await;
}

#[tokio::test]
async fn a_guessed_code_gets_one_try_and_the_code_dies() {
    let port = udp_port(31, 2);
    let a = Node::start(udp_config("ga", port)).await.unwrap();
    let b = Node::start(udp_config("gb", port)).await.unwrap();
    let m = Node::start(udp_config("gm", port)).await.unwrap();
    let mut ev = a.events();
    let inv = a.invite(opts("alice", true)).await.unwrap();
    let code = inv.code().unwrap().to_owned();
    // The attacker knows the public number and guesses the words.
    let number = code.split('-').next().unwrap();
    let guess = if code.ends_with("-acid-acid") {
        format!("{number}-acid-acorn")
    } else {
        format!("{number}-acid-acid")
    };
    let e = m.join(&guess, Some("mallory"), T).await.unwrap_err();
    assert!(matches!(e, Error::HandshakeFailed(_)), "{e}");
    let failed = wait_event(&mut ev, EventKind::PairingFailed, None).await;
    assert!(failed.detail.contains("burned"), "{}", failed.detail);
    assert!(a.trusted().is_empty() && m.trusted().is_empty());
    // The right code is dead now: no more announcements, so the joiner finds nobody.
    let e = b
        .join(&code, Some("bob"), Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no inviter announced"), "{e}");
    assert!(a.trusted().is_empty());
    // The ticket (128 bits) still works.
    b.join(inv.ticket(), Some("bob"), T).await.unwrap();
    assert_eq!(inv.wait(T).await.unwrap().key, b.key());
}

#[tokio::test]
async fn an_expired_invite_is_refused() {
    let a = node("ea").await;
    let b = node("eb").await;
    let inv = a
        .invite(InviteOptions {
            expiry: Duration::from_secs(1),
            ..opts("alice", false)
        })
        .await
        .unwrap();
    let e = inv.wait(T).await.unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    // Refused by the joiner before any traffic (the ticket carries its expiry).
    let e = b.join(inv.ticket(), None, T).await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("expired"), "{e}");
    assert!(b.trusted().is_empty());
}

#[tokio::test]
async fn a_typo_in_the_ticket_names_its_group_before_any_traffic() {
    let a = node("ya").await;
    let b = node("yb").await;
    let mut ev = a.events();
    let inv = a.invite(opts("alice", false)).await.unwrap();
    let t = inv.ticket();
    // Change one character of the third group.
    let groups: Vec<&str> = t["peernet1-".len()..].split('-').collect();
    let mut g3: Vec<u8> = groups[2].bytes().collect();
    g3[4] = if g3[4] == b'A' { b'B' } else { b'A' };
    let mut bad: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    bad[2] = String::from_utf8(g3).unwrap();
    let bad = format!("peernet1-{}", bad.join("-"));
    let e = b.join(&bad, None, T).await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("group 3"), "{e}");
    // Nothing reached the inviter: had the bad ticket been sent, its attempt would
    // show as a PairingStarted and a PairingFailed before the good one's success.
    b.join(t, Some("bob"), T).await.unwrap();
    inv.wait(T).await.unwrap();
    let mut kinds = Vec::new();
    loop {
        let e = tokio::time::timeout(T, ev.recv()).await.unwrap().unwrap();
        kinds.push(e.kind);
        if e.kind == EventKind::PairingSucceeded {
            break;
        }
    }
    let started = kinds
        .iter()
        .filter(|k| **k == EventKind::PairingStarted)
        .count();
    assert_eq!(started, 1, "{kinds:?}");
    assert!(!kinds.contains(&EventKind::PairingFailed), "{kinds:?}");
    let e = b.join("7-copper-violn", None, T).await.unwrap_err();
    assert!(e.to_string().contains("word 2"), "{e}");
}
