//! The trust boundary while a connection is made and while it runs (issue 14): a key
//! untrusted during a handshake is never registered, nothing of it is dispatched and no
//! handler of it starts after `untrust` returns; one source cannot hold every handshake
//! slot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::raw::*;
use common::*;
use peernet_core::{Error, EventKind, Handler, Node, Request, RequestKind};
use peernet_proto::channel::SendCipher;
use peernet_proto::envelope::Envelope;
use peernet_proto::frame::HEADER_LEN;
use peernet_proto::handshake::{Handshake, PROLOGUE};
use peernet_proto::hello::Hello;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

fn seal(send: &mut SendCipher, env: &Envelope<'_>) -> Vec<u8> {
    let mut v = vec![0u8; HEADER_LEN];
    env.encode_into(&mut v);
    send.seal_in_place(&mut v, HEADER_LEN).unwrap();
    let n = (v.len() - HEADER_LEN) as u32;
    v[..HEADER_LEN].copy_from_slice(&n.to_be_bytes());
    v
}

/// Exposes `name`, counting how often it starts.
fn counting(n: &Node, name: &str) -> Arc<AtomicUsize> {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    n.expose(
        name,
        Handler::from_async(move |req: Request| {
            r.fetch_add(1, Ordering::SeqCst);
            async move { Ok(req.body) }
        }),
    )
    .unwrap();
    ran
}

/// Item 1, outbound: the node dials a hostile responder, which completes M1..M3 (the
/// node's trust check after M2 passes) and then delays its confirming Ping (spec 3.4)
/// until the node has untrusted it; then it confirms and calls a handler at once. The
/// connection must never be registered and the handler must never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrust_while_the_responder_delays_its_confirmation_never_registers() {
    let mut cfg = config("dialer");
    cfg.auto_connect = false;
    cfg.handshake_timeout = Duration::from_secs(10);
    let node = Node::start(cfg).await.unwrap();
    let ran = counting(&node, "echo");
    let keys = RawKeys::new();
    node.trust(&keys.public, Some("delayer")).unwrap();
    let mut events = node.events();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raddr = listener.local_addr().unwrap();
    let (m3_tx, m3_rx) = oneshot::channel::<()>();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let private = keys.private;
    let responder = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let hello = Hello::new(1 << 20, 0);
        let mut hs = Handshake::with_options(false, &private, PROLOGUE, None, &hello).unwrap();
        let mut buf = Vec::new();
        let m1 = read_frame(&mut s, &mut buf).await.expect("M1");
        hs.read_message(&m1).unwrap();
        let m2 = hs.write_message(&hello.encode()).unwrap();
        s.write_all(&framed(&m2)).await.unwrap();
        let m3 = read_frame(&mut s, &mut buf).await.expect("M3");
        hs.read_message(&m3).unwrap();
        let (mut send, _recv) = hs.split().unwrap();
        // The node passed its trust check after M2; hold the confirmation back.
        m3_tx.send(()).unwrap();
        go_rx.await.unwrap();
        let mut out = seal(&mut send, &Envelope::Ping { nonce: 7 });
        out.extend(seal(
            &mut send,
            &Envelope::Call {
                id: 1,
                name: "echo",
                body: b"after untrust",
            },
        ));
        let _ = s.write_all(&out).await;
        closed_within(&mut s, T).await
    });

    let dial = node.connect(&keys.public, raddr, T);
    let untrust = async {
        m3_rx.await.unwrap();
        assert!(node.untrust(&keys.public).unwrap());
        go_tx.send(()).unwrap();
    };
    let (res, ()) = tokio::join!(dial, untrust);
    let closed = responder.await.unwrap();
    let mut connected_events = 0;
    while let Ok(e) = events.try_recv() {
        if e.kind == EventKind::Connected {
            connected_events += 1;
        }
    }
    println!(
        "dial after untrust: {res:?}; Connected events {connected_events}; registered \
         connections {}; handler ran {} times; responder saw the socket closed: {closed}",
        node.connection_count(),
        ran.load(Ordering::SeqCst)
    );
    assert!(
        matches!(res, Err(Error::UntrustedPeer(_))),
        "the dial of a key untrusted during its handshake succeeded: {res:?}"
    );
    assert_eq!(
        connected_events, 0,
        "a Connected event for an untrusted key"
    );
    assert!(!node.is_connected(&keys.public));
    assert_eq!(node.connection_count(), 0);
    assert!(closed, "the socket of the refused connection stayed open");
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "a handler ran for an untrusted key"
    );
}

/// Item 1, inbound: a peer untrusted in the middle of its handshake (after M2, before
/// M3) sends M3 with a call pipelined behind it: it is refused at once, never
/// registered, and the call runs nothing. (The inbound window between the responder's
/// trust check after M3 and registration has no await in it; registration checks trust
/// again under the peer-table lock, the same check the dial path goes through.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrust_during_an_inbound_handshake_never_registers() {
    let node = node("server").await;
    let ran = counting(&node, "echo");
    let keys = RawKeys::new();
    node.trust(&keys.public, None).unwrap();
    let mut events = node.events();
    let mut s = TcpStream::connect(addr(&node)).await.unwrap();
    let hello = Hello::new(1 << 20, 0);
    let mut hs = Handshake::with_options(true, &keys.private, PROLOGUE, None, &hello).unwrap();
    s.write_all(&framed(&hs.write_message(&[]).unwrap()))
        .await
        .unwrap();
    let mut buf = Vec::new();
    let m2 = read_frame(&mut s, &mut buf).await.expect("M2");
    hs.read_message(&m2).unwrap();
    assert!(node.untrust(&keys.public).unwrap());
    let mut out = framed(&hs.write_message(&hello.encode()).unwrap());
    let (mut send, _recv) = hs.split().unwrap();
    out.extend(seal(
        &mut send,
        &Envelope::Call {
            id: 1,
            name: "echo",
            body: b"x",
        },
    ));
    let _ = s.write_all(&out).await;
    assert!(
        closed_within(&mut s, T).await,
        "the untrusted initiator stayed connected"
    );
    while let Ok(e) = events.try_recv() {
        assert_ne!(
            e.kind,
            EventKind::Connected,
            "a Connected event for an untrusted key"
        );
    }
    assert_eq!(node.connection_count(), 0);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

/// Item 1, inbound, and item 2: a trusted peer floods calls and sends; the node untrusts
/// it while sends are queued behind a running one and calls are dispatched (some of
/// their tasks not yet started). After `untrust` returns, no handler of the peer
/// starts: not a queued send, not a call task spawned before, not a frame still
/// buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_handler_starts_after_untrust_returns() {
    const CALLS: u64 = 500;
    const SENDS: usize = 300;
    let node = node("server").await;
    let keys = RawKeys::new();
    node.trust(&keys.public, Some("flooder")).unwrap();

    let starts = Arc::new(AtomicUsize::new(0));
    let late = Arc::new(AtomicUsize::new(0));
    let after = Arc::new(AtomicBool::new(false));
    // Every Handler clone (registry, spawned call tasks, the send worker) keeps the
    // closure, and so this token, alive: no strong reference left = no handler can start.
    let token = Arc::new(());
    let gone = Arc::downgrade(&token);
    let (first_send_tx, mut first_send_rx) = mpsc::channel::<()>(1);
    let (release_tx, release_rx) = watch::channel(false);
    {
        let (starts, late, after) = (starts.clone(), late.clone(), after.clone());
        node.expose(
            "h",
            Handler::from_async(move |r: Request| {
                let token = Arc::clone(&token);
                let (starts, late, after) = (starts.clone(), late.clone(), after.clone());
                let first_send_tx = first_send_tx.clone();
                let mut release_rx = release_rx.clone();
                async move {
                    let _token = token;
                    if after.load(Ordering::SeqCst) {
                        late.fetch_add(1, Ordering::SeqCst);
                    }
                    starts.fetch_add(1, Ordering::SeqCst);
                    if r.kind == RequestKind::Send {
                        // Sends run one at a time: this one holds the others queued
                        // (and then the reader, once the queue is full).
                        let _ = first_send_tx.try_send(());
                        let _ = release_rx.wait_for(|r| *r).await;
                    }
                    Ok(Vec::new())
                }
            }),
        )
        .unwrap();
    }

    let (mut tx, mut rx) = hostile_split(RawConn::connect(addr(&node), &keys).await);
    let mut flood = Vec::new();
    for id in 1..=CALLS {
        flood.extend(seal(
            &mut tx.1,
            &Envelope::Call {
                id,
                name: "h",
                body: b"c",
            },
        ));
    }
    for _ in 0..SENDS {
        flood.extend(seal(
            &mut tx.1,
            &Envelope::Send {
                name: "h",
                body: b"s",
            },
        ));
    }
    let writer = tokio::spawn(async move {
        let _ = tx.0.write_all(&flood).await;
        tx
    });
    // Reads (and drops) everything until the node closes the connection.
    let reader = tokio::spawn(async move { closed_within(&mut rx, T).await });

    tokio::time::timeout(T, first_send_rx.recv())
        .await
        .expect("no send handler started")
        .unwrap();
    assert!(node.untrust(&keys.public).unwrap());
    after.store(true, Ordering::SeqCst);
    let _ = release_tx.send(true);

    assert!(
        reader.await.unwrap(),
        "the untrusted connection stayed open"
    );
    let _ = writer.await;
    node.revoke("h").unwrap();
    eventually("every handler task to end", || gone.strong_count() == 0).await;
    println!(
        "handlers started {} times in all, {} of them after untrust returned",
        starts.load(Ordering::SeqCst),
        late.load(Ordering::SeqCst)
    );
    assert_eq!(
        late.load(Ordering::SeqCst),
        0,
        "handlers of an untrusted peer started after untrust returned"
    );
    assert!(!node.is_connected(&keys.public));
}

/// The stream of a raw connection split, with its send cipher (the receive side is not
/// read: `closed_within` drops what arrives).
fn hostile_split(c: RawConn) -> ((TcpStream, SendCipher), TcpStream) {
    let std = c.stream.into_std().unwrap();
    let rd = TcpStream::from_std(std.try_clone().unwrap()).unwrap();
    let wr = TcpStream::from_std(std).unwrap();
    ((wr, c.send), rd)
}

/// Item 11b: one source opening `max_handshakes` silent connections holds only its
/// share of the slots; a second source (127.0.0.2) still completes a handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_cannot_hold_every_handshake_slot() {
    const MAX_HS: usize = 8;
    let mut cfg = config("server");
    cfg.max_handshakes = MAX_HS;
    // Long enough that the silent ones keep their slots for the whole test.
    cfg.handshake_timeout = Duration::from_secs(20);
    let node = Node::start(cfg).await.unwrap();
    counting(&node, "echo");
    let keys = RawKeys::new();
    node.trust(&keys.public, None).unwrap();

    let mut silent = Vec::new();
    for _ in 0..MAX_HS {
        silent.push(connect_from([127, 0, 0, 1], addr(&node)).await);
    }
    // Accepted in order: all of them have been dealt with before the next source's.
    let other = connect_from([127, 0, 0, 2], addr(&node)).await;
    let conn = tokio::time::timeout(T, try_handshake(other, &keys))
        .await
        .ok()
        .flatten();
    let mut closed = 0;
    for s in silent.iter_mut() {
        if closed_within(s, Duration::from_millis(300)).await {
            closed += 1;
        }
    }
    println!(
        "{MAX_HS} silent connections from 127.0.0.1: {closed} closed at once; a handshake \
         from 127.0.0.2: {}",
        if conn.is_some() {
            "completed"
        } else {
            "refused"
        }
    );
    let mut conn = conn.expect("a second source could not complete a handshake");
    assert!(conn.alive(1).await);
    let share = (MAX_HS / 4).max(1);
    assert_eq!(
        closed,
        MAX_HS - share,
        "the first source held more than its share"
    );
}
