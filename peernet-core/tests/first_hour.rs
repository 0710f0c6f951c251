//! Issue 20, "the first hour": `connect` waits for a peer that is not up yet, and every
//! error says what happened and what to do (who closed, which handler, which key, which
//! sizes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use peernet_core::{CloseReason, Error, Handler, Node, Request};
use socket2::{Domain, Socket, Type};

/// A port of 127.0.0.1 held by a socket that is bound but never listens: a dial to it
/// is refused (RST) for as long as the socket lives, and once it is dropped the port is
/// free for the node that starts there (it never listened or connected, so nothing
/// lingers in TIME_WAIT). This orders the test without guessing a free port or a delay:
/// refused while held, listening once released.
fn reserve_port() -> (Socket, SocketAddr) {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let a = s.local_addr().unwrap().as_socket().unwrap();
    (s, a)
}

#[tokio::test]
async fn connect_waits_for_a_peer_that_starts_later() {
    // b's identity first (a must trust its key), then b is stopped until the port opens.
    let cb = config("b-later");
    let dir = cb.data_dir.clone();
    let b = Node::start(cb).await.unwrap();
    let kb = b.key();
    b.shutdown().await;
    drop(b);

    let a = Arc::new(node("a-early").await);
    a.trust(&kb, None).unwrap();
    let (held, at) = reserve_port();
    let a2 = Arc::clone(&a);
    let connect = tokio::spawn(async move { a2.connect(&kb, at, Duration::from_secs(20)).await });
    // The old `connect` returned `Connection refused` here, before b existed.
    eventually("two refused dials", || {
        a.refused_dials() >= 2 || connect.is_finished()
    })
    .await;
    assert!(
        !connect.is_finished(),
        "connect gave up while the peer was not up yet: {:?}",
        connect.await.unwrap()
    );
    drop(held);
    let mut cb = config("b-later");
    cb.data_dir = dir;
    cb.listen = Some(at);
    let b = Node::start(cb).await.unwrap();
    b.trust(&a.key(), None).unwrap();
    echo(&b);
    tokio::time::timeout(T * 4, connect)
        .await
        .expect("connect returned once b listened")
        .unwrap()
        .unwrap();
    assert_eq!(a.call(&kb, "echo", b"up", T).await.unwrap(), b"up");
}

#[tokio::test]
async fn connect_gives_up_at_its_timeout_saying_what_it_tried() {
    let a = node("a-alone").await;
    let b = node("b-absent").await;
    a.trust(&b.key(), None).unwrap();
    let (_held, at) = reserve_port();
    let e = a
        .connect(&b.key(), at, Duration::from_millis(400))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(msg.contains(&at.to_string()), "{msg}");
    assert!(msg.contains("is the peer running"), "{msg}");
    assert!(a.refused_dials() >= 2, "{}", a.refused_dials());
}

#[tokio::test]
async fn connect_refused_by_the_peers_trust_fails_at_once() {
    let a = node("a-unknown").await;
    let b = node("b-strict").await;
    a.trust(&b.key(), None).unwrap();
    // b does not trust a: the handshake is refused; dialing again would not help.
    let t0 = std::time::Instant::now();
    let r = a.connect(&b.key(), addr(&b), Duration::from_secs(30)).await;
    assert!(matches!(r, Err(Error::UntrustedPeer(_))), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(a.refused_dials(), 0);
}

/// Starts a call to b's `never` handler (it does not answer) and waits until the
/// handler runs (so the call is in flight on the connection).
async fn call_in_flight(
    a: &Arc<Node>,
    b: &Node,
) -> tokio::task::JoinHandle<peernet_core::Result<Vec<u8>>> {
    let entered = Arc::new(AtomicBool::new(false));
    let e2 = Arc::clone(&entered);
    b.expose(
        "never",
        Handler::from_async(move |r: Request| {
            e2.store(true, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(r.body)
            }
        }),
    )
    .unwrap();
    let (a2, k) = (Arc::clone(a), b.key());
    let call =
        tokio::spawn(async move { a2.call(&k, "never", b"", Duration::from_secs(30)).await });
    eventually("the handler runs", || entered.load(Ordering::SeqCst)).await;
    call
}

#[tokio::test]
async fn closed_says_the_peer_said_goodbye() {
    let (a, b) = pair().await;
    let a = Arc::new(a);
    let call = call_in_flight(&a, &b).await;
    b.shutdown().await;
    let e = tokio::time::timeout(T, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Closed(CloseReason::PeerGoodbye(r)) if r == "closing"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "closed: the peer closed the connection (Goodbye: closing)"
    );
}

// Multi-thread: the peer's reaction to our Goodbye can reach the reader before the
// close is recorded (it did in Python, where the runtime has worker threads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_says_this_node_shut_down() {
    let (a, b) = pair().await;
    let a = Arc::new(a);
    let call = call_in_flight(&a, &b).await;
    a.shutdown().await;
    let e = tokio::time::timeout(T, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e, Error::Closed(CloseReason::LocalShutdown)),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "closed: this node is shutting down or stopped"
    );
}

// Multi-thread: the peer's reaction to our Goodbye can reach the reader before the
// close is recorded (it did in Python, where the runtime has worker threads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_says_trust_was_revoked() {
    let (a, b) = pair().await;
    let a = Arc::new(a);
    let call = call_in_flight(&a, &b).await;
    a.untrust(&b.key()).unwrap();
    let e = tokio::time::timeout(T, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e, Error::Closed(CloseReason::TrustRevoked)),
        "{e:?}"
    );
    assert!(e.to_string().contains("revoked its trust"), "{e}");
}

#[tokio::test]
async fn no_such_handler_names_the_handler() {
    let (a, b) = pair().await;
    let e = a.call(&b.key(), "nope", b"", T).await.unwrap_err();
    assert!(
        matches!(&e, Error::NoSuchHandler(n) if n == "nope"),
        "{e:?}"
    );
    assert!(e.to_string().contains("\"nope\""), "{e}");
    // The same through the callback path.
    let (tx, rx) = tokio::sync::oneshot::channel();
    a.call_with(&b.key(), "missing.too", b"", T, move |r| {
        let _ = tx.send(r);
    })
    .unwrap();
    let e = rx.await.unwrap().unwrap_err();
    assert!(
        matches!(&e, Error::NoSuchHandler(n) if n == "missing.too"),
        "{e:?}"
    );
}

#[tokio::test]
async fn call_and_send_to_an_untrusted_key_name_the_key_and_the_fix() {
    let a = node("a-lonely").await;
    let b = node("b-stranger").await;
    let fp = b.key().fingerprint();
    let e = a.call(&b.key(), "echo", b"", T).await.unwrap_err();
    assert!(matches!(e, Error::UntrustedPeer(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&fp) && msg.contains("trust it first"), "{msg}");
    let e = a.send(&b.key(), "echo", b"").await.unwrap_err();
    assert!(matches!(e, Error::UntrustedPeer(_)), "{e:?}");
    // Trusted but not connected is still NotConnected.
    a.trust(&b.key(), None).unwrap();
    let r = a.call(&b.key(), "echo", b"", T).await;
    assert!(matches!(r, Err(Error::NotConnected)), "{r:?}");
}

#[tokio::test]
async fn payload_too_large_names_the_size_sent_and_the_peers_limit() {
    let a = node("a-big").await;
    let mut cb = config("b-small");
    cb.max_frame_len = 64 * 1024;
    let b = Node::start(cb).await.unwrap();
    a.trust(&b.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r2 = Arc::clone(&ran);
    b.expose(
        "echo",
        Handler::blocking(move |r: Request| {
            r2.store(true, Ordering::SeqCst);
            Ok(r.body)
        }),
    )
    .unwrap();
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    // a's own limit is 1 MiB; b's 64 KiB (from its Hello) bounds what a sends it.
    let e = a
        .call(&b.key(), "echo", &vec![0u8; 100_000], T)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::PayloadTooLarge { len: 100_000, limit: 65_536, overhead } if overhead > 0),
        "{e:?}"
    );
    assert!(
        msg.contains("100000 bytes") && msg.contains("65536"),
        "{msg}"
    );
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(a.connection_count(), 1);
}

#[tokio::test]
async fn reply_too_large_names_the_size_and_the_callers_limit() {
    let mut ca = config("a-small");
    ca.max_frame_len = 64 * 1024;
    let a = Node::start(ca).await.unwrap();
    let b = node("b-huge").await;
    a.trust(&b.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    b.expose(
        "huge",
        Handler::blocking(|_r: Request| Ok(vec![1u8; 100_000])),
    )
    .unwrap();
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    match a.call(&b.key(), "huge", b"", T).await {
        Err(Error::HandlerFailed(m)) => {
            assert!(m.starts_with("reply too large"), "{m}");
            assert!(m.contains("100000 bytes") && m.contains("65536"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // The connection stays.
    assert_eq!(a.connection_count(), 1);
}
