//! `Node::call_with`: calls without a task per call, completed by callback exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use peernet_core::{Error, Result};
use tokio::sync::mpsc;

type Outcome = (usize, Result<Vec<u8>>);

/// A callback that reports `(tag, outcome)` on `tx`.
fn report(tx: &mpsc::UnboundedSender<Outcome>, tag: usize) -> impl FnOnce(Result<Vec<u8>>) {
    let tx = tx.clone();
    move |r| {
        let _ = tx.send((tag, r));
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Outcome>) -> Outcome {
    tokio::time::timeout(T, rx.recv())
        .await
        .expect("a callback within the deadline")
        .expect("sender alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reach_the_callback_once_each() {
    let (a, b) = pair().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    for i in 0..1000usize {
        let body = i.to_le_bytes();
        a.call_with(&b.key(), "echo", &body, T, report(&tx, i))
            .unwrap();
    }
    let mut seen = vec![false; 1000];
    for _ in 0..1000 {
        let (i, r) = next(&mut rx).await;
        assert_eq!(r.unwrap(), i.to_le_bytes());
        assert!(!seen[i], "callback {i} ran twice");
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s));
    // Nothing else arrives.
    drop(tx);
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn errors_arrive_through_the_callback_never_before_returning() {
    let (a, b) = pair().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let returned = Arc::new(AtomicBool::new(false));
    let cases: Vec<(&str, [u8; 32])> = vec![
        ("missing", b.key().0),     // NoSuchHandler, from the peer
        ("echo", [9u8; 32]),        // UntrustedPeer, local
        ("peernet.rpc", b.key().0), // reserved name, local
        ("", b.key().0),            // bad name, local
    ];
    for (i, (name, key)) in cases.iter().enumerate() {
        returned.store(false, Ordering::SeqCst);
        let (tx, returned2) = (tx.clone(), Arc::clone(&returned));
        a.call_with(&peernet_core::Key(*key), name, b"x", T, move |r| {
            let _ = tx.send((
                i,
                r.map(|_| vec![u8::from(returned2.load(Ordering::SeqCst))]),
            ));
        })
        .unwrap();
        returned.store(true, Ordering::SeqCst);
        let (j, r) = next(&mut rx).await;
        assert_eq!(i, j);
        match (i, r) {
            (0, Err(Error::NoSuchHandler(_))) => {}
            (1, Err(Error::UntrustedPeer(_))) => {}
            (2, Err(Error::InvalidArgument(_))) | (3, Err(Error::InvalidArgument(_))) => {}
            other => panic!("case {i}: {other:?}"),
        }
    }
    // A reply on this current-thread runtime also runs after call_with returned.
    let (tx2, returned2) = (tx.clone(), Arc::clone(&returned));
    returned.store(false, Ordering::SeqCst);
    a.call_with(&b.key(), "echo", b"y", T, move |r| {
        assert!(returned2.load(Ordering::SeqCst));
        let _ = tx2.send((9, r));
    })
    .unwrap();
    returned.store(true, Ordering::SeqCst);
    assert_eq!(next(&mut rx).await.1.unwrap(), b"y");
}

#[tokio::test]
async fn a_slow_handler_times_out_at_the_deadline() {
    let (a, b) = pair().await;
    expose_slow(&b, "slow", Duration::from_millis(400));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let t0 = Instant::now();
    // Deadlines out of order: the expiry timer must move up for the earlier one.
    a.call_with(
        &b.key(),
        "slow",
        b"3",
        Duration::from_millis(300),
        report(&tx, 3),
    )
    .unwrap();
    a.call_with(
        &b.key(),
        "slow",
        b"1",
        Duration::from_millis(100),
        report(&tx, 1),
    )
    .unwrap();
    a.call_with(
        &b.key(),
        "slow",
        b"9",
        Duration::from_secs(5),
        report(&tx, 9),
    )
    .unwrap();
    let (i, r) = next(&mut rx).await;
    assert_eq!(i, 1);
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert!(t0.elapsed() >= Duration::from_millis(100));
    let (i, r) = next(&mut rx).await;
    assert_eq!(i, 3);
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert!(t0.elapsed() >= Duration::from_millis(300));
    let (i, r) = next(&mut rx).await;
    assert_eq!(i, 9);
    assert_eq!(r.unwrap(), b"9");
    // The late replies of the timed-out calls were dropped, the connection is fine.
    assert_eq!(a.call(&b.key(), "echo", b"ok", T).await.unwrap(), b"ok");
}

#[tokio::test]
async fn calls_in_flight_fail_with_closed_when_the_peer_goes() {
    let (a, b) = pair().await;
    let mut starts = expose_slow_reporting(&b, "never", Duration::from_secs(60));
    let (tx, mut rx) = mpsc::unbounded_channel();
    for i in 0..10 {
        a.call_with(
            &b.key(),
            "never",
            b"",
            Duration::from_secs(30),
            report(&tx, i),
        )
        .unwrap();
    }
    started(&mut starts, 10).await;
    b.shutdown().await;
    drop(b);
    let mut seen = [false; 10];
    for _ in 0..10 {
        let (i, r) = next(&mut rx).await;
        assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
        assert!(!seen[i]);
        seen[i] = true;
    }
}

#[test]
fn outside_a_runtime_it_refuses_and_drops_the_callback() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (a, b) = rt.block_on(pair());
    let ran = Arc::new(AtomicBool::new(false));
    let ran2 = Arc::clone(&ran);
    let r = a.call_with(&b.key(), "echo", b"x", T, move |_| {
        ran2.store(true, Ordering::SeqCst);
    });
    assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
    assert!(!ran.load(Ordering::SeqCst));
    rt.block_on(async {
        a.shutdown().await;
        b.shutdown().await;
    });
}
