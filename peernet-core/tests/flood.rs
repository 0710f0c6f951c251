//! Hostile peers flooding traffic (issue 7): a call flood, a peer that never reads, and
//! untrusting such a peer. The handshake-level attacks (handshake flood, forged
//! announcement, replayed session) are in `flood_handshake.rs`; the shared helpers in
//! `common/flood_kit.rs`. Each test shows the node keeps serving a polite peer throughout,
//! and prints what it measured (memory, counts, latencies).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "common/flood_kit.rs"]
mod flood_kit;
#[path = "common/hostile_peer.rs"]
mod hostile_peer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw::*;
use common::*;
use flood_kit::{
    latency_summary, polite_calls, rss_sampler, server_and_polite, RSS_BOUND_KIB, SERIAL,
};
use hostile_peer::*;
use peernet_core::EventKind;
use peernet_proto::envelope::Envelope;

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
