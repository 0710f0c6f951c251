//! Spec 5.1: both nodes dial each other at once, repeatedly, with calls in flight both
//! ways: exactly one connection survives, the same one on both sides, and no call fails.
//! And a peer's own duplicates (it dialed twice: a redial, or two addresses raced):
//! the peer decides which one stays, and this node follows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::raw::{closed_within, EnvOwned, RawConn, RawKeys};
use common::*;
use peernet_core::{EventKind, Handler, Node, PeerState, Request};
use peernet_proto::envelope::{Envelope, GoodbyeReason};

const ROUNDS: usize = 10;
const MIN_CALLS: u64 = 50;

/// Calls `to` in a loop, at least `MIN_CALLS` times and until `stop`; every call must
/// succeed. Returns calls made.
async fn caller(n: Arc<Node>, to: peernet_core::Key, stop: Arc<AtomicBool>) -> u64 {
    let mut made = 0u64;
    while made < MIN_CALLS || !stop.load(Ordering::Relaxed) {
        let body = made.to_le_bytes();
        let r = n.call(&to, "echo", &body, T).await;
        assert_eq!(r.unwrap(), body, "call {made} failed");
        made += 1;
    }
    made
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_with_calls_in_flight_leave_one_connection_and_lose_no_call() {
    let mut ca = config("dup-a");
    let mut cb = config("dup-b");
    ca.auto_connect = false;
    cb.auto_connect = false;
    let a = Arc::new(Node::start(ca).await.unwrap());
    let b = Arc::new(Node::start(cb).await.unwrap());
    a.trust(&b.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    let served = Arc::new(AtomicU64::new(0));
    for n in [&a, &b] {
        let served = Arc::clone(&served);
        n.expose(
            "echo",
            Handler::from_async(move |r: Request| {
                served.fetch_add(1, Ordering::Relaxed);
                async move { Ok(r.body) }
            }),
        )
        .unwrap();
    }
    let (akey, bkey) = (a.key(), b.key());
    let mut total = 0;
    let mut duplicates = 0;
    for round in 0..ROUNDS {
        // Both dial at once.
        let (ra, rb) = tokio::join!(a.connect(&bkey, addr(&b), T), b.connect(&akey, addr(&a), T));
        ra.unwrap();
        rb.unwrap();
        if a.connection_count() > 1 || b.connection_count() > 1 {
            duplicates += 1;
        }
        // Calls both ways while the duplicate is being resolved and drained.
        let stop = Arc::new(AtomicBool::new(false));
        let t1 = tokio::spawn(caller(Arc::clone(&a), bkey, Arc::clone(&stop)));
        let t2 = tokio::spawn(caller(Arc::clone(&b), akey, Arc::clone(&stop)));
        eventually("one connection on each side", || {
            a.connection_count() == 1 && b.connection_count() == 1
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        let made = t1.await.unwrap() + t2.await.unwrap();
        assert!(made > 0, "round {round}: no call ran");
        total += made;
        // The survivor is the same connection on both sides.
        let (al, ar) = a.active_connection(&bkey).unwrap();
        let (bl, br) = b.active_connection(&akey).unwrap();
        assert_eq!(
            (al, ar),
            (br, bl),
            "round {round}: the sides kept different connections"
        );
        // Start the next round from scratch.
        a.disconnect(&bkey).await.unwrap();
        eventually("both sides closed", || {
            a.connection_count() == 0 && b.connection_count() == 0
        })
        .await;
    }
    assert_eq!(served.load(Ordering::Relaxed), total);
    // Issue 19: each duplicate seen was resolved (and counted) by a side that held
    // both; every round after the first is a reconnect.
    let (ma, mb) = (a.metrics(), b.metrics());
    assert!(ma.duplicates + mb.duplicates >= duplicates, "{ma:?} {mb:?}");
    assert!(ma.reconnects >= ROUNDS as u64 - 1, "{ma:?}");
    println!("{duplicates} of {ROUNDS} rounds produced a duplicate connection; {total} calls");
}

/// A trusted raw peer that dialed `node` twice; both are registered, the newer active.
async fn dialed_twice(node: &Node, keys: &RawKeys) -> (RawConn, RawConn) {
    let c1 = RawConn::connect(addr(node), keys).await;
    let c2 = RawConn::connect(addr(node), keys).await;
    eventually("both connections registered", || {
        node.connection_count() == 2
    })
    .await;
    assert_eq!(
        via(node, keys),
        c2.stream.local_addr().unwrap(),
        "newer routes"
    );
    (c1, c2)
}

/// The peer-side address of the connection `node` routes calls to `keys` on.
fn via(node: &Node, keys: &RawKeys) -> std::net::SocketAddr {
    node.active_connection(&keys.public).expect("connected").1
}

/// Reads until a Goodbye (its reason) or the end of the stream (None).
async fn goodbye(c: &mut RawConn) -> Option<u32> {
    loop {
        match tokio::time::timeout(T, c.recv_env())
            .await
            .expect("no goodbye")
        {
            Some(EnvOwned::Goodbye(r)) => return Some(r),
            Some(_) => {}
            None => return None,
        }
    }
}

fn no_disconnect(events: &mut tokio::sync::broadcast::Receiver<peernet_core::Event>) {
    while let Ok(e) = events.try_recv() {
        assert_ne!(e.kind, EventKind::Disconnected, "{e:?}");
    }
}

/// A dial the peer abandoned after its last handshake message (it lost a race between
/// two of the peer's addresses): this node had registered it, and it was the newer.
/// Its end hands the calls back to the older connection; the peer never looks
/// disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_an_abandoned_dial_leaves_the_older_connection_in_charge() {
    let node = node("dup-abandon").await;
    let keys = RawKeys::new();
    node.trust(&keys.public, None).unwrap();
    let mut events = node.events();
    let (mut c1, c2) = dialed_twice(&node, &keys).await;
    drop(c2);
    eventually("the abandoned connection gone", || {
        node.connection_count() == 1
    })
    .await;
    assert_eq!(via(&node, &keys), c1.stream.local_addr().unwrap());
    assert_eq!(node.peer(&keys.public).unwrap().state, PeerState::Connected);
    assert!(c1.alive(7).await, "the older connection was closed");
    no_disconnect(&mut events);
}

/// The peer keeps its newer connection and drains the older (Goodbye 1): this node
/// drains it too at once, instead of holding it until the peer's drain timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_draining_its_older_connection_closes_it_here_too() {
    let node = node("dup-older").await;
    let keys = RawKeys::new();
    node.trust(&keys.public, None).unwrap();
    let mut events = node.events();
    let (mut c1, mut c2) = dialed_twice(&node, &keys).await;
    let bye = c1.seal_env(&Envelope::Goodbye {
        reason: GoodbyeReason::Duplicate,
    });
    c1.write(&bye).await;
    assert_eq!(
        goodbye(&mut c1).await,
        Some(GoodbyeReason::Duplicate.as_u32())
    );
    assert!(
        closed_within(&mut c1.stream, T).await,
        "drained, not closed"
    );
    eventually("one connection left", || node.connection_count() == 1).await;
    assert_eq!(via(&node, &keys), c2.stream.local_addr().unwrap());
    assert!(c2.alive(8).await);
    no_disconnect(&mut events);
}

/// The peer keeps its older connection and drains the newer, which this node routes
/// calls on: the older takes over here too, and the newer drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_draining_the_newer_connection_moves_calls_to_the_older() {
    let node = node("dup-newer").await;
    let keys = RawKeys::new();
    node.trust(&keys.public, None).unwrap();
    let mut events = node.events();
    let (mut c1, mut c2) = dialed_twice(&node, &keys).await;
    let bye = c2.seal_env(&Envelope::Goodbye {
        reason: GoodbyeReason::Duplicate,
    });
    c2.write(&bye).await;
    assert_eq!(
        goodbye(&mut c2).await,
        Some(GoodbyeReason::Duplicate.as_u32())
    );
    assert_eq!(via(&node, &keys), c1.stream.local_addr().unwrap());
    assert!(
        closed_within(&mut c2.stream, T).await,
        "drained, not closed"
    );
    eventually("one connection left", || node.connection_count() == 1).await;
    assert!(c1.alive(9).await);
    assert_eq!(node.peer(&keys.public).unwrap().state, PeerState::Connected);
    no_disconnect(&mut events);
}
