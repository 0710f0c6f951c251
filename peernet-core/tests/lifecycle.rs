//! Node lifecycle: identity and trust persist, untrust cuts live connections, shutdown
//! releases everything, several nodes share a process in isolation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use peernet_core::{CloseReason, Error, EventKind, Handler, Node, Request};

#[tokio::test]
async fn identity_and_trust_survive_a_restart() {
    let cfg = config("persist");
    let other = node("other").await;
    let (key, port) = {
        let n = Node::start(cfg.clone()).await.unwrap();
        n.trust(&other.key(), Some("the other one")).unwrap();
        n.grant_rpc(&other.key(), true).unwrap();
        let k = n.key();
        n.shutdown().await;
        (k, n.port())
    };
    assert_ne!(port, 0);
    let n = Node::start(cfg).await.unwrap();
    assert_eq!(n.key(), key);
    let t = n.trusted();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].key, other.key());
    assert_eq!(t[0].label, "the other one");
    assert!(t[0].rpc);
}

#[tokio::test]
async fn corrupt_files_stop_the_start_with_a_clear_error() {
    let cfg = config("corrupt");
    Node::start(cfg.clone()).await.unwrap().shutdown().await;
    let path = cfg.data_dir.join(peernet_core::TRUST_FILE);
    std::fs::write(&path, "# PeerNet trust store, format 1\nzz 1 - x\n").unwrap();
    match Node::start(cfg.clone()).await {
        Err(Error::CorruptFile { path: p, detail }) => {
            assert_eq!(p, path);
            assert!(detail.contains("line 2"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Never replaced.
    assert!(std::fs::read_to_string(&path).unwrap().contains("zz 1"));
    std::fs::remove_file(&path).unwrap();
    let key_path = cfg.data_dir.join(peernet_core::IDENTITY_FILE);
    std::fs::write(&key_path, [0u8; 71]).unwrap();
    // Private to us (a key others can read is refused before it is parsed).
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    assert!(matches!(
        Node::start(cfg).await,
        Err(Error::CorruptFile { .. })
    ));
}

#[tokio::test]
async fn untrusted_peer_is_refused_in_both_directions() {
    let a = node("a").await;
    let b = node("b").await;
    // a does not trust b: connect refuses before dialing.
    assert!(matches!(
        a.connect(&b.key(), addr(&b), T).await,
        Err(Error::UntrustedPeer(_))
    ));
    // Initiator check after M2: a trusts c's key but dials b's address.
    let c = node("c").await;
    a.trust(&c.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    match a.connect(&c.key(), addr(&b), T).await {
        Err(Error::UntrustedPeer(m)) => assert!(m.contains("expected"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Responder check after M3: a trusts b, b no longer trusts a.
    a.trust(&b.key(), None).unwrap();
    b.untrust(&a.key()).unwrap();
    match a.connect(&b.key(), addr(&b), T).await {
        Err(Error::UntrustedPeer(m)) => assert!(m.contains("refused"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(!a.is_connected(&b.key()));
    assert!(!b.is_connected(&a.key()));
    assert_eq!(b.connection_count(), 0);
}

#[tokio::test]
async fn untrust_closes_the_live_connection_with_goodbye_2() {
    let (a, b) = pair().await;
    let mut a_events = a.events();
    let mut b_events = b.events();
    assert!(b.untrust(&a.key()).unwrap());
    let e = wait_event(&mut a_events, EventKind::Disconnected, Some(b.key())).await;
    assert!(e.detail.contains("TrustRevoked"), "{}", e.detail);
    // The typed cause: the peer's Goodbye on one side, our own untrust on the other.
    assert!(
        matches!(&e.close_reason, Some(CloseReason::PeerGoodbye(r)) if r.contains("no longer trusts")),
        "{:?}",
        e.close_reason
    );
    let e = wait_event(&mut b_events, EventKind::Disconnected, Some(a.key())).await;
    assert_eq!(e.close_reason, Some(CloseReason::TrustRevoked));
    assert_eq!(e.close_reason.map(|r| r.code()), Some("trust_revoked"));
    assert!(matches!(
        a.call(&b.key(), "echo", b"", T).await,
        Err(Error::NotConnected)
    ));
    assert!(!b.untrust(&a.key()).unwrap(), "already untrusted");
}

#[tokio::test]
async fn disconnect_closes_both_sides() {
    let (a, b) = pair().await;
    let mut b_events = b.events();
    a.disconnect(&b.key()).await.unwrap();
    assert!(!a.is_connected(&b.key()));
    let e = wait_event(&mut b_events, EventKind::Disconnected, Some(a.key())).await;
    assert!(e.detail.contains("Closing"), "{}", e.detail);
    assert!(
        matches!(&e.close_reason, Some(CloseReason::PeerGoodbye(r)) if r == "closing"),
        "{:?}",
        e.close_reason
    );
    assert!(matches!(
        a.disconnect(&b.key()).await,
        Err(Error::NotConnected)
    ));
}

#[tokio::test]
async fn shutdown_releases_port_and_fails_calls_in_flight() {
    let (a, b) = pair().await;
    let mut starts = expose_slow_reporting(&a, "never", Duration::from_secs(60));
    let b = std::sync::Arc::new(b);
    let (b2, ak) = (std::sync::Arc::clone(&b), a.key());
    let call = tokio::spawn(async move { b2.call(&ak, "never", b"", T).await });
    started(&mut starts, 1).await;
    let local = a.local_addr().unwrap();
    a.shutdown().await;
    assert_eq!(a.connection_count(), 0);
    assert!(matches!(call.await.unwrap(), Err(Error::Closed(_))));
    // The port is free again: nothing of the node is left listening.
    std::net::TcpListener::bind(local).expect("port still bound after shutdown");
    // The handler was released (it held nothing, but the registry is empty).
    assert!(matches!(
        b.call(&a.key(), "echo", b"", T).await,
        Err(Error::NotConnected)
    ));
}

#[tokio::test]
async fn three_nodes_in_one_process_are_isolated() {
    let a = node("a").await;
    let b = node("b").await;
    let c = node("c").await;
    for (x, y) in [(&a, &b), (&b, &a), (&b, &c), (&c, &b)] {
        x.trust(&y.key(), None).unwrap();
    }
    b.expose(
        "who",
        Handler::blocking(|r: Request| Ok(r.from.as_bytes().to_vec())),
    )
    .unwrap();
    c.expose("who", Handler::blocking(|_r: Request| Ok(b"c".to_vec())))
        .unwrap();
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    c.connect(&b.key(), addr(&b), T).await.unwrap();
    // b sees each caller's own key.
    assert_eq!(
        a.call(&b.key(), "who", b"", T).await.unwrap(),
        a.key().as_bytes()
    );
    assert_eq!(
        c.call(&b.key(), "who", b"", T).await.unwrap(),
        c.key().as_bytes()
    );
    // a and c do not trust each other and are not connected.
    assert!(matches!(
        a.connect(&c.key(), addr(&c), T).await,
        Err(Error::UntrustedPeer(_))
    ));
    assert_eq!(b.connection_count(), 2);
    assert_eq!(a.connection_count(), 1);
}

#[tokio::test]
async fn heartbeat_measures_rtt() {
    let (a, b) = pair().await;
    eventually("rtt from heartbeat", || {
        a.peers()
            .iter()
            .any(|p| p.key == b.key() && p.rtt.is_some())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_methods_work_from_threads_outside_the_runtime() {
    let a = std::sync::Arc::new(node("a").await);
    let b = node("b").await;
    let (a2, bk, baddr) = (std::sync::Arc::clone(&a), b.key(), addr(&b));
    // trust and discovered start dial tasks; from a plain thread that must not panic.
    std::thread::spawn(move || {
        a2.trust(&bk, Some("from a thread")).unwrap();
        a2.discovered(&bk, baddr).unwrap();
    })
    .join()
    .expect("trust/discovered panicked outside the runtime");
    b.trust(&a.key(), None).unwrap();
    a.wait_connected(&b.key(), T).await.unwrap();
}

#[tokio::test]
async fn shutdown_waits_for_background_tasks() {
    let a = node("a").await;
    // A trusted peer at an address where nobody listens keeps a dial supervisor busy.
    let ghost = peernet_proto::Key::from_bytes([9; 32]);
    a.trust(&ghost, None).unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    a.discovered(&ghost, dead_addr).unwrap();
    eventually("dialer running", || a.has_dialer(&ghost)).await;
    assert!(
        a.background_tasks() >= 2,
        "listener and dialer: {}",
        a.background_tasks()
    );
    a.shutdown().await;
    assert_eq!(
        a.background_tasks(),
        0,
        "a background task outlived shutdown"
    );
}

/// `shutdown` returns only once the listening socket is closed: a node restarted on the
/// same port right away (as a program restarting would) can bind it. Several rounds on
/// the multi-thread runtime, where the listener's task runs on another thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_port_is_free_when_shutdown_returns() {
    let first = config("portfree");
    let mut n = Node::start(first.clone()).await.unwrap();
    let port = n.port();
    for _ in 0..50 {
        n.shutdown().await;
        drop(n);
        let mut again = first.clone();
        again.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        n = Node::start(again).await.expect("port free after shutdown");
    }
    n.shutdown().await;
}

#[tokio::test]
async fn both_ends_show_the_same_verification_words_and_a_new_connection_new_ones() {
    let (a, b) = pair().await;
    let wa = a.verification_words(&b.key()).expect("connected");
    let wb = b.verification_words(&a.key()).expect("connected");
    assert_eq!(wa, wb);
    assert_eq!(wa.split(' ').count(), 5, "{wa}");
    let mut b_events = b.events();
    a.disconnect(&b.key()).await.unwrap();
    wait_event(&mut b_events, EventKind::Disconnected, Some(a.key())).await;
    assert!(a.verification_words(&b.key()).is_none());
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    b.wait_connected(&a.key(), T).await.unwrap();
    let again = a.verification_words(&b.key()).unwrap();
    assert_eq!(Some(again.clone()), b.verification_words(&a.key()));
    assert_ne!(again, wa, "a new handshake has new words");
}
