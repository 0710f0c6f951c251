//! Hostile trusted and untrusted peers (issue 7): a call flood, a peer that never reads,
//! a handshake flood, a forged announcement of a trusted key, and a replayed session.
//! Each test shows the node keeps serving a polite peer throughout, and prints what it
//! measured (memory, counts, latencies). Memory-measuring tests run one at a time
//! (`SERIAL`), since the tests of one binary share the process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "common/hostile_peer.rs"]
mod hostile_peer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw::*;
use common::*;
use hostile_peer::*;
use peernet_core::{
    AddressSource, EventKind, Handler, Node, NodeConfig, PeerState, Request, UdpDiscoveryConfig,
};
use peernet_proto::envelope::Envelope;
use peernet_proto::handshake::{Handshake, PROLOGUE};
use peernet_proto::hello::Hello;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Generous bound on memory growth under a flood.
const RSS_BOUND_KIB: i64 = 64 * 1024;

fn echo() -> Handler {
    Handler::from_async(|r: Request| async move { Ok(r.body) })
}

/// A server with `cfg`, exposing `echo` and `work` (2 ms per call), and a polite node
/// connected to it.
async fn server_and_polite(cfg: NodeConfig) -> (Node, Node) {
    let server = Node::start(cfg).await.unwrap();
    server.expose("echo", echo()).unwrap();
    server
        .expose(
            "work",
            Handler::from_async(|r: Request| async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                Ok(r.body)
            }),
        )
        .unwrap();
    let polite = node("polite").await;
    server.trust(&polite.key(), Some("polite")).unwrap();
    polite.trust(&server.key(), Some("server")).unwrap();
    polite
        .connect(&server.key(), addr(&server), T)
        .await
        .unwrap();
    server.wait_connected(&polite.key(), T).await.unwrap();
    (server, polite)
}

/// Calls `echo` on `server` from `polite` until `stop` (at most `max` calls), asserting
/// each succeeds; returns the latencies.
async fn polite_calls(
    polite: Arc<Node>,
    server: peernet_core::Key,
    stop: Arc<AtomicBool>,
    max: usize,
) -> Vec<Duration> {
    let mut lat = Vec::new();
    while !stop.load(Ordering::Relaxed) && lat.len() < max {
        let t = Instant::now();
        let r = polite
            .call(&server, "echo", b"polite", Duration::from_secs(10))
            .await;
        assert_eq!(
            r.unwrap(),
            b"polite",
            "a polite call failed during the flood"
        );
        lat.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lat
}

fn latency_summary(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "no calls".into();
    }
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    format!(
        "{} calls, min {:?}, median {:?}, p99 {:?}, max {:?}",
        v.len(),
        v[0],
        p(0.5),
        p(0.99),
        v[v.len() - 1]
    )
}

/// Samples this process's RSS every 20 ms until `stop`; returns the peak (KiB).
fn rss_sampler(stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = rss_kib(None);
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(rss_kib(None));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak.max(rss_kib(None))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_flood_is_answered_overloaded_with_bounded_memory() {
    let _serial = SERIAL.lock().await;
    const CALLS: u64 = 200_000;
    let mut cfg = config("flood");
    cfg.max_concurrent_calls = 32;
    // The flooder answers no pings while it floods.
    cfg.heartbeat_timeout = Duration::from_secs(120);
    let (server, polite) = server_and_polite(cfg).await;
    let polite = Arc::new(polite);
    let evil = RawKeys::new();
    server.trust(&evil.public, Some("flooder")).unwrap();
    let (mut tx, mut rx) = split(RawConn::connect(addr(&server), &evil).await);
    let rss_before = rss_kib(None);

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rss_sampler(Arc::clone(&stop));
    let polite_task = tokio::spawn(polite_calls(
        Arc::clone(&polite),
        server.key(),
        Arc::clone(&stop),
        20_000,
    ));
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let body = [7u8; 16];
        let mut batch = Vec::with_capacity(128 * 1024);
        for id in 1..=CALLS {
            let f = tx.seal_env(&Envelope::Call {
                id,
                name: "work",
                body: &body,
            });
            batch.extend_from_slice(&f);
            if batch.len() >= 64 * 1024 || id == CALLS {
                tx.write(&batch).await.unwrap();
                batch.clear();
            }
        }
        tx
    });
    let (mut ok, mut overloaded, mut other) = (0u64, 0u64, 0u64);
    let got_all = tokio::time::timeout(Duration::from_secs(240), async {
        while ok + overloaded + other < CALLS {
            match rx.recv_env().await {
                Some(EnvOwned::Reply(_, o)) if o.starts_with("Ok") => ok += 1,
                Some(EnvOwned::Reply(_, o)) if o == "Overloaded" => overloaded += 1,
                Some(EnvOwned::Reply(_, o)) => {
                    other += 1;
                    println!("unexpected outcome {o}");
                }
                Some(_) => {}
                None => return false,
            }
        }
        true
    })
    .await;
    let flood_time = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    let lat = polite_task.await.unwrap();
    let _tx = writer.await.unwrap();
    let rss_after = rss_kib(None);
    println!(
        "call flood: {CALLS} calls in {flood_time:?}: {ok} ok, {overloaded} overloaded, \
         {other} other; RSS before {:.1} MiB, peak {:.1} MiB (+{:.1}), after {:.1} MiB (+{:.1}); \
         polite peer during the flood: {}",
        mib(rss_before as i64),
        mib(peak as i64),
        mib(peak as i64 - rss_before as i64),
        mib(rss_after as i64),
        mib(rss_after as i64 - rss_before as i64),
        latency_summary(lat.clone())
    );
    assert_eq!(
        got_all,
        Ok(true),
        "replies missing: {ok} ok + {overloaded} overloaded of {CALLS}"
    );
    assert_eq!(ok + overloaded, CALLS, "every call gets Ok or Overloaded");
    assert!(overloaded > 0, "the bounded queue never said Overloaded");
    assert!(ok > 0, "no flood call was served at all");
    assert!(
        !lat.is_empty(),
        "the polite peer made no call during the flood"
    );
    assert!(
        (peak as i64 - rss_before as i64) < RSS_BOUND_KIB,
        "memory grew by {} MiB",
        mib(peak as i64 - rss_before as i64)
    );
    // The node still serves both.
    assert_eq!(
        polite.call(&server.key(), "echo", b"x", T).await.unwrap(),
        b"x"
    );
    assert!(server.is_connected(&evil.public));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_never_reads_meets_backpressure_and_is_dropped() {
    let _serial = SERIAL.lock().await;
    let mut cfg = config("noread");
    cfg.send_queue_bytes = 64 * 1024;
    cfg.max_concurrent_calls = 64;
    cfg.heartbeat_interval = Duration::from_millis(200);
    cfg.heartbeat_timeout = Duration::from_secs(2);
    let hb_timeout = cfg.heartbeat_timeout;
    let (server, polite) = server_and_polite(cfg).await;
    let polite = Arc::new(polite);
    let evil = RawKeys::new();
    server.trust(&evil.public, Some("deaf")).unwrap();
    let mut events = server.events();
    let (mut tx, rx) = split(RawConn::connect(addr(&server), &evil).await);
    let rss_before = rss_kib(None);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rss_sampler(Arc::clone(&stop));

    // Calls with 1 KiB bodies and 1 KiB replies, plus pings (whose pongs also need
    // queue space), never reading: bounded by count and by a 1 s stall.
    const MAX_FRAMES: u64 = 200_000;
    let body = [1u8; 1024];
    let mut written = 0u64;
    let mut sent_frames = 0u64;
    let started = Instant::now();
    let mut stalled = false;
    let mut batch = Vec::new();
    for id in 1..=MAX_FRAMES {
        let env = if id % 16 == 0 {
            Envelope::Ping { nonce: id }
        } else {
            Envelope::Call {
                id,
                name: "echo",
                body: &body,
            }
        };
        batch.extend_from_slice(&tx.seal_env(&env));
        if batch.len() >= 64 * 1024 {
            match tokio::time::timeout(Duration::from_secs(1), tx.write(&batch)).await {
                Ok(Ok(())) => {
                    written += batch.len() as u64;
                    sent_frames = id;
                    batch.clear();
                }
                Ok(Err(e)) => panic!("the node closed the deaf peer while it wrote: {e}"),
                Err(_) => {
                    stalled = true;
                    break;
                }
            }
        }
    }
    let stall_after = started.elapsed();
    // Other peers are unaffected while the deaf one is stuck.
    let lat = polite_calls(
        Arc::clone(&polite),
        server.key(),
        Arc::new(AtomicBool::new(false)),
        50,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    println!(
        "deaf peer: wrote {:.1} MiB ({sent_frames} frames) before the node stopped reading \
         (stalled: {stalled}, after {stall_after:?}); RSS before {:.1} MiB, peak {:.1} MiB (+{:.1}); \
         polite peer meanwhile: {}",
        mib((written / 1024) as i64),
        mib(rss_before as i64),
        mib(peak as i64),
        mib(peak as i64 - rss_before as i64),
        latency_summary(lat.clone()),
    );
    assert!(
        stalled,
        "the node kept reading {MAX_FRAMES} frames from a peer that reads nothing (no backpressure)"
    );
    assert!(
        (peak as i64 - rss_before as i64) < RSS_BOUND_KIB,
        "memory grew by {} MiB",
        mib(peak as i64 - rss_before as i64)
    );
    assert_eq!(lat.len(), 50);

    // The deaf peer answers no heartbeat: the node must drop it (its reader is blocked
    // on the full send queue, but the heartbeat still has to run).
    let t = Instant::now();
    let dropped = tokio::time::timeout(hb_timeout + Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Ok(e) if e.kind == EventKind::Disconnected && e.key == Some(evil.public) => {
                    return e.detail
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await;
    println!(
        "deaf peer: dropped by the node after {:?}: {dropped:?}",
        t.elapsed()
    );
    drop(rx);
    assert!(
        dropped.is_ok(),
        "a peer that never reads (nor answers pings) is never disconnected: its \
         connection and queues stay allocated for good"
    );
    assert_eq!(
        polite.call(&server.key(), "echo", b"x", T).await.unwrap(),
        b"x"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrust_closes_a_peer_that_never_reads() {
    let _serial = SERIAL.lock().await;
    let mut cfg = config("noread2");
    cfg.send_queue_bytes = 64 * 1024;
    cfg.max_concurrent_calls = 8;
    cfg.heartbeat_timeout = Duration::from_secs(120);
    let (server, polite) = server_and_polite(cfg).await;
    let evil = RawKeys::new();
    server.trust(&evil.public, Some("deaf")).unwrap();
    let (mut tx, _rx) = split(RawConn::connect(addr(&server), &evil).await);
    let body = [1u8; 1024];
    let mut stalled = false;
    for chunk in 0..2000u64 {
        let mut batch = Vec::new();
        for i in 0..64 {
            let id = chunk * 64 + i + 1;
            batch.extend_from_slice(&tx.seal_env(&Envelope::Call {
                id,
                name: "echo",
                body: &body,
            }));
        }
        if tokio::time::timeout(Duration::from_secs(1), tx.write(&batch))
            .await
            .is_err()
        {
            stalled = true;
            break;
        }
    }
    assert!(stalled, "no backpressure");
    let t = Instant::now();
    assert!(server.untrust(&evil.public).unwrap());
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while server.is_connected(&evil.public) || server.connection_count() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    println!(
        "deaf peer untrusted: connection gone: {} after {:?}",
        closed.is_ok(),
        t.elapsed()
    );
    assert!(
        closed.is_ok(),
        "untrust did not close the connection of a peer that never reads"
    );
    assert_eq!(
        polite.call(&server.key(), "echo", b"x", T).await.unwrap(),
        b"x"
    );
}

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
