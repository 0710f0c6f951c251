//! Hostile peers at the handshake level (issue 7): a handshake flood, a forged
//! announcement of a trusted key, and a replayed session. The traffic floods are in
//! `flood.rs`; the shared helpers in `common/flood_kit.rs`. Each test shows the node keeps
//! serving a polite peer (or legit peers) and prints what it measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "common/flood_kit.rs"]
mod flood_kit;
#[path = "common/hostile_peer.rs"]
mod hostile_peer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw::*;
use common::*;
// `echo` here is the kit's handler (it shadows the glob's `common::echo(&Node)`).
use flood_kit::{echo, server_and_polite, SERIAL};
use hostile_peer::*;
use peernet_core::{
    AddressSource, EventKind, Handler, Node, PeerState, Request, UdpDiscoveryConfig,
};
use peernet_proto::handshake::{Handshake, PROLOGUE};
use peernet_proto::hello::Hello;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_flood_is_bounded_and_legit_peers_connect_after() {
    let _serial = SERIAL.lock().await;
    const SOCKETS: usize = 300;
    const MAX_HS: usize = 32;
    let mut cfg = config("hsflood");
    cfg.max_handshakes = MAX_HS;
    cfg.handshake_timeout = Duration::from_secs(2);
    let hs_timeout = cfg.handshake_timeout;
    let (server, polite) = server_and_polite(cfg).await;
    let late = node("late").await;
    late.trust(&server.key(), None).unwrap();
    server.trust(&late.key(), None).unwrap();

    // 300 sockets; every second one sends a valid M1 and then stalls.
    let junk = RawKeys::new();
    let mut tasks = Vec::new();
    let opened = Instant::now();
    for i in 0..SOCKETS {
        let mut s = TcpStream::connect(addr(&server)).await.unwrap();
        if i % 2 == 0 {
            let mut hs = Handshake::with_options(
                true,
                &junk.private,
                PROLOGUE,
                None,
                &Hello::new(1 << 20, 0),
            )
            .unwrap();
            let _ = s.write_all(&framed(&hs.write_message(&[]).unwrap())).await;
        }
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let mut got = 0usize;
            let mut buf = [0u8; 1024];
            let closed = tokio::time::timeout(Duration::from_secs(15), async {
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got += n,
                    }
                }
            })
            .await
            .is_ok();
            (got > 0, closed, t.elapsed())
        }));
    }
    let open_time = opened.elapsed();
    // While the bound is full, the connected peer is served.
    assert_eq!(
        polite
            .call(&server.key(), "echo", b"during", T)
            .await
            .unwrap(),
        b"during"
    );
    let during = late.connect(&server.key(), addr(&server), T).await;
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let answered = results.iter().filter(|r| r.0).count();
    let all_closed = results.iter().all(|r| r.1);
    let refused = results
        .iter()
        .filter(|r| !r.0 && r.2 < hs_timeout / 2)
        .count();
    // Held by a handshake slot until the handshake timeout closed it.
    let held = results.iter().filter(|r| r.2 >= hs_timeout / 2).count();
    let held_max = results
        .iter()
        .filter(|r| r.2 >= hs_timeout / 2)
        .map(|r| r.2)
        .max();
    println!(
        "handshake flood: {SOCKETS} sockets opened in {open_time:?}; {answered} got an M2 \
         (bound {MAX_HS}), {refused} closed at once, {held} held until the handshake timeout \
         (slowest close {held_max:?}, timeout {hs_timeout:?}); a new peer connecting during the flood: {:?}",
        during
            .as_ref()
            .map(|_| "connected")
            .map_err(|e| e.to_string())
    );
    assert!(all_closed, "some hostile sockets were never closed");
    assert!(
        answered <= MAX_HS,
        "{answered} handshakes ran at once (bound {MAX_HS})"
    );
    assert!(
        held <= MAX_HS,
        "{held} sockets held handshake slots (bound {MAX_HS})"
    );
    assert!(
        refused >= SOCKETS - MAX_HS - 1,
        "only {refused} connections beyond the bound were closed at once"
    );
    // The bound has freed: a legitimate peer connects.
    if during.is_err() {
        late.connect(&server.key(), addr(&server), T).await.unwrap();
    }
    server.wait_connected(&late.key(), T).await.unwrap();
    assert_eq!(
        late.call(&server.key(), "echo", b"late", T).await.unwrap(),
        b"late"
    );
}

/// A responder with its own key on a listener: counts handshake attempts and whether an
/// initiator ever sent an M3 (it must not: the key in M2 is not the one it expects).
async fn fake_responder(
    listener: TcpListener,
    keys: RawKeys,
    attempts: Arc<AtomicUsize>,
    m3s: Arc<AtomicUsize>,
) {
    for _ in 0..50 {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        attempts.fetch_add(1, Ordering::SeqCst);
        let mut hs = Handshake::with_options(
            false,
            &keys.private,
            PROLOGUE,
            None,
            &Hello::new(1 << 20, 0),
        )
        .unwrap();
        let mut buf = Vec::new();
        let Some(m1) = read_frame(&mut s, &mut buf).await else {
            continue;
        };
        if hs.read_message(&m1).is_err() {
            continue;
        }
        let m2 = hs.write_message(&Hello::new(1 << 20, 0).encode()).unwrap();
        if s.write_all(&framed(&m2)).await.is_err() {
            continue;
        }
        if tokio::time::timeout(Duration::from_secs(3), read_frame(&mut s, &mut buf))
            .await
            .ok()
            .flatten()
            .is_some()
        {
            m3s.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_announcement_displaces_nothing_and_its_dial_fails() {
    let port = free_udp_port();
    let udp = |tag: &str| {
        let mut c = config(tag);
        c.udp_discovery = Some(UdpDiscoveryConfig {
            port,
            interval: Duration::from_millis(200),
            broadcast: vec![SocketAddr::from(([127, 255, 255, 255], port))],
            ..UdpDiscoveryConfig::default()
        });
        c
    };
    // A (discovery on) is connected to B (discovery off); C (discovery on) trusts B but
    // has no connection to it, so it will dial whatever address it hears for B.
    let a = Node::start(udp("a")).await.unwrap();
    let b = node("b").await;
    let c = Node::start(udp("c")).await.unwrap();
    b.expose("echo", echo()).unwrap();
    a.trust(&b.key(), Some("b")).unwrap();
    b.trust(&a.key(), Some("a")).unwrap();
    c.trust(&b.key(), Some("b")).unwrap();
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    let before = a.active_connection(&b.key()).unwrap();
    let mut a_events = a.events();

    let evil = RawKeys::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = listener.local_addr().unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let m3s = Arc::new(AtomicUsize::new(0));
    let responder = tokio::spawn(fake_responder(
        listener,
        evil,
        Arc::clone(&attempts),
        Arc::clone(&m3s),
    ));

    // Forge "B listens at fake_addr" until A reported it and C dialed it (bounded).
    let mut a_heard = false;
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(a_heard && attempts.load(Ordering::SeqCst) > 0) && Instant::now() < deadline {
        forge_announcement(b.key(), fake_addr.port(), port);
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Ok(e) = a_events.try_recv() {
            if e.kind == EventKind::Discovered && e.key == Some(b.key()) {
                assert_eq!(e.address, Some(fake_addr));
                a_heard = true;
            }
            assert!(
                !(e.kind == EventKind::Disconnected && e.key == Some(b.key())),
                "the real connection dropped: {e:?}"
            );
        }
    }
    println!(
        "forged announcement: {sent} sent; A heard it: {a_heard}; dials to the fake address: {}",
        attempts.load(Ordering::SeqCst)
    );
    assert!(a_heard, "A never heard the forged announcement");
    assert!(
        attempts.load(Ordering::SeqCst) > 0,
        "C never dialed the fake address"
    );
    // C's dial failed at the handshake: no M3 was sent to the impostor, no connection.
    eventually("C's dial to end", || {
        c.peers()
            .iter()
            .all(|p| p.key != b.key() || p.state != PeerState::Connecting)
    })
    .await;
    assert_eq!(
        m3s.load(Ordering::SeqCst),
        0,
        "an initiator finished a handshake with the wrong key"
    );
    assert!(!c.is_connected(&b.key()));
    // A's real connection was not displaced and still carries calls.
    assert_eq!(a.active_connection(&b.key()), Some(before));
    for i in 0..20u8 {
        assert_eq!(a.call(&b.key(), "echo", &[i], T).await.unwrap(), vec![i]);
    }
    let info = a.peers().into_iter().find(|p| p.key == b.key()).unwrap();
    assert_eq!(info.address, Some(addr(&b)));
    let fake = info.addresses.iter().find(|x| x.addr == fake_addr).unwrap();
    assert!(
        !fake.confirmed && fake.source == AddressSource::Discovery,
        "{fake:?}"
    );
    while let Ok(e) = a_events.try_recv() {
        assert!(
            !(e.kind == EventKind::Disconnected && e.key == Some(b.key())),
            "the real connection dropped: {e:?}"
        );
    }
    responder.abort();
}

#[tokio::test]
async fn replayed_session_is_rejected_and_delivers_nothing() {
    let server = node("replay").await;
    let count = Arc::new(AtomicU64::new(0));
    let c2 = Arc::clone(&count);
    server
        .expose(
            "count",
            Handler::from_async(move |r: Request| {
                let c = Arc::clone(&c2);
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    Ok(r.body)
                }
            }),
        )
        .unwrap();
    let legit = RawKeys::new();
    server.trust(&legit.public, Some("legit")).unwrap();
    let rec = record_session(
        addr(&server),
        &legit,
        &[(1, "count", b"one"), (2, "count", b"two")],
    )
    .await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
    let recorded: usize = rec.written.iter().map(Vec::len).sum();
    drop(rec.conn);
    eventually("the recorded session to close", || {
        !server.is_connected(&legit.public)
    })
    .await;

    // Step by step: the recorded M1, the node's fresh M2, the recorded M3.
    let mut s = TcpStream::connect(addr(&server)).await.unwrap();
    s.write_all(&rec.written[0]).await.unwrap();
    let mut buf = Vec::new();
    let m2 = read_frame(&mut s, &mut buf).await.expect("M2");
    let _ = s.write_all(&rec.written[1]).await;
    for f in &rec.written[2..] {
        let _ = s.write_all(f).await;
    }
    assert!(
        closed_within(&mut s, Duration::from_secs(3)).await,
        "replayed M3 accepted"
    );
    // All at once.
    let mut s = TcpStream::connect(addr(&server)).await.unwrap();
    let _ = s.write_all(&rec.written.concat()).await;
    assert!(
        closed_within(&mut s, Duration::from_secs(3)).await,
        "replayed session accepted"
    );
    println!(
        "replay: recorded {} chunks ({recorded} bytes); replayed twice: both closed, the \
         node's M2 ({} bytes) was fresh, handler ran {} times (2 from the real session)",
        rec.written.len(),
        m2.len(),
        count.load(Ordering::SeqCst)
    );
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "a replayed call reached the handler"
    );
    assert!(!server.is_connected(&legit.public));
    assert_eq!(server.connection_count(), 0);
}
