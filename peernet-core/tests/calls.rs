//! Calls and sends between real nodes over 127.0.0.1 and ::1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use peernet_core::{Error, Handler, Node, Request};

#[tokio::test]
async fn call_round_trip_ipv4() {
    let (a, b) = pair().await;
    assert_eq!(
        a.call(&b.key(), "echo", b"hello", T).await.unwrap(),
        b"hello"
    );
    // Both directions use the one connection.
    assert_eq!(b.call(&a.key(), "echo", b"back", T).await.unwrap(), b"back");
    assert_eq!(a.connection_count(), 1);
    assert_eq!(a.call(&b.key(), "echo", b"", T).await.unwrap(), b"");
}

#[tokio::test]
async fn call_round_trip_ipv6() {
    let mut ca = config("a6");
    ca.listen = Some("[::1]:0".parse().unwrap());
    let mut cb = config("b6");
    cb.listen = Some("[::1]:0".parse().unwrap());
    let a = Node::start(ca).await.unwrap();
    let b = Node::start(cb).await.unwrap();
    a.trust(&b.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    b.expose("echo", Handler::blocking(|r: Request| Ok(r.body)))
        .unwrap();
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    assert!(addr(&b).is_ipv6());
    assert_eq!(a.call(&b.key(), "echo", b"v6", T).await.unwrap(), b"v6");
}

#[tokio::test]
async fn many_calls_in_flight_complete_out_of_order() {
    let (a, b) = pair().await;
    // The handler sleeps longer for smaller bodies, so replies come back reversed.
    b.expose(
        "slow",
        Handler::from_async(|r: Request| async move {
            let n = r.body[0] as u64;
            tokio::time::sleep(Duration::from_millis(5 * (20 - n))).await;
            Ok(r.body)
        }),
    )
    .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let a = Arc::new(a);
    for i in 0..20u8 {
        let (a, k, order) = (Arc::clone(&a), b.key(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let r = a.call(&k, "slow", &[i], T).await.unwrap();
            assert_eq!(r, vec![i]);
            order.lock().unwrap().push(i);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), 20);
    assert_ne!(
        order,
        (0..20).collect::<Vec<u8>>(),
        "replies should arrive out of order"
    );
}

#[tokio::test]
async fn sends_arrive_in_order() {
    let (a, b) = pair().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let s = Arc::clone(&seen);
    b.expose(
        "chat",
        Handler::blocking(move |r: Request| {
            s.lock()
                .unwrap()
                .push(u32::from_le_bytes(r.body[..4].try_into().unwrap()));
            let _ = tx.send(());
            Ok(vec![])
        }),
    )
    .unwrap();
    for i in 0..200u32 {
        a.send(&b.key(), "chat", &i.to_le_bytes()).await.unwrap();
    }
    for _ in 0..200 {
        tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), (0..200).collect::<Vec<u32>>());
}

#[tokio::test]
async fn blocking_handler_does_not_stall_other_calls() {
    let (a, b) = pair().await;
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    b.expose(
        "block",
        Handler::blocking(move |_r: Request| {
            let _ = release_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            Ok(b"done".to_vec())
        }),
    )
    .unwrap();
    let a = Arc::new(a);
    let (a2, k) = (Arc::clone(&a), b.key());
    let blocked = tokio::spawn(async move { a2.call(&k, "block", b"", T).await });
    // While "block" holds a thread, echo keeps answering.
    for _ in 0..10 {
        assert_eq!(a.call(&b.key(), "echo", b"x", T).await.unwrap(), b"x");
    }
    assert!(!blocked.is_finished());
    release_tx.send(()).unwrap();
    assert_eq!(blocked.await.unwrap().unwrap(), b"done");
}

#[tokio::test]
async fn handler_errors_reach_the_caller() {
    let (a, b) = pair().await;
    let k = b.key();
    b.expose(
        "fail",
        Handler::blocking(|_r: Request| Err("disk on fire".into())),
    )
    .unwrap();
    b.expose(
        "panic",
        Handler::blocking(|_r: Request| panic!("secret stack")),
    )
    .unwrap();
    b.expose(
        "admins",
        Handler::blocking(|r: Request| Ok(r.body)).with_authorize(|_k| false),
    )
    .unwrap();
    b.expose(
        "raising-authorize",
        Handler::blocking(|r: Request| Ok(r.body)).with_authorize(|_k| panic!("oops")),
    )
    .unwrap();
    match a.call(&k, "fail", b"", T).await {
        Err(Error::HandlerFailed(m)) => assert_eq!(m, "disk on fire"),
        other => panic!("{other:?}"),
    }
    match a.call(&k, "panic", b"", T).await {
        Err(Error::HandlerFailed(m)) => {
            assert_eq!(m, "handler panicked");
            assert!(!m.contains("secret"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        a.call(&k, "nope", b"", T).await,
        Err(Error::NoSuchHandler(_))
    ));
    assert!(matches!(
        a.call(&k, "admins", b"", T).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        a.call(&k, "raising-authorize", b"", T).await,
        Err(Error::Forbidden)
    ));
    // The node keeps serving on the same connection.
    assert_eq!(a.call(&k, "echo", b"ok", T).await.unwrap(), b"ok");
    assert_eq!(a.connection_count(), 1);
    b.revoke("fail").unwrap();
    assert!(matches!(
        a.call(&k, "fail", b"", T).await,
        Err(Error::NoSuchHandler(_))
    ));
}

#[tokio::test]
async fn not_connected_fails_at_once() {
    let a = node("a").await;
    let b = node("b").await;
    a.trust(&b.key(), None).unwrap();
    let t0 = std::time::Instant::now();
    let long = Duration::from_secs(30);
    assert!(matches!(
        a.call(&b.key(), "echo", b"", long).await,
        Err(Error::NotConnected)
    ));
    assert!(matches!(
        a.send(&b.key(), "echo", b"").await,
        Err(Error::NotConnected)
    ));
    // "At once" against the 30 s call timeout, with room for a loaded machine.
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn timeout_when_handler_is_slow() {
    let (a, b) = pair().await;
    expose_slow(&b, "never", Duration::from_secs(30));
    let r = a
        .call(&b.key(), "never", b"", Duration::from_millis(100))
        .await;
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    // A late reply (none here) or not, the connection stays usable.
    assert_eq!(a.call(&b.key(), "echo", b"x", T).await.unwrap(), b"x");
}

#[tokio::test]
async fn overloaded_when_too_many_calls_are_served() {
    let a = node("a").await;
    let mut cb = config("b");
    cb.max_concurrent_calls = 2;
    let b = Node::start(cb).await.unwrap();
    a.trust(&b.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&started);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let g = Arc::clone(&gate);
    b.expose(
        "hold",
        Handler::from_async(move |_r: Request| {
            s.fetch_add(1, Ordering::SeqCst);
            let g = Arc::clone(&g);
            async move {
                g.acquire().await.unwrap().forget();
                Ok(b"released".to_vec())
            }
        }),
    )
    .unwrap();
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    let a = Arc::new(a);
    let mut held = Vec::new();
    for _ in 0..2 {
        let (a, k) = (Arc::clone(&a), b.key());
        held.push(tokio::spawn(
            async move { a.call(&k, "hold", b"", T).await },
        ));
    }
    eventually("two calls running", || started.load(Ordering::SeqCst) == 2).await;
    assert!(matches!(
        a.call(&b.key(), "hold", b"", T).await,
        Err(Error::Overloaded)
    ));
    assert_eq!(
        started.load(Ordering::SeqCst),
        2,
        "nothing ran for the refused call"
    );
    gate.add_permits(2);
    for h in held {
        assert_eq!(h.await.unwrap().unwrap(), b"released");
    }
}

#[tokio::test]
async fn payload_too_large_is_local_and_connection_stays_up() {
    let (a, b) = pair().await;
    let big = vec![0u8; 1 << 20];
    match a.call(&b.key(), "echo", &big, T).await {
        Err(Error::PayloadTooLarge { limit, .. }) => assert_eq!(limit, 1 << 20),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        a.send(&b.key(), "echo", &big).await,
        Err(Error::PayloadTooLarge { .. })
    ));
    // Just under the limit goes through (envelope = 4+8+8+4+8 bytes + body, tag 16).
    let fits = vec![7u8; (1 << 20) - 16 - 32 - 1];
    let r = a.call(&b.key(), "echo", &fits, T).await;
    // The echo reply is a few bytes smaller than the call, so it fits too.
    assert_eq!(r.unwrap().len(), fits.len());
    assert_eq!(a.connection_count(), 1);
}

#[tokio::test]
async fn reply_too_large_becomes_handler_failed() {
    let a = node("a").await;
    let b = node("b").await;
    a.trust(&b.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    b.expose(
        "huge",
        Handler::blocking(|_r: Request| Ok(vec![1u8; 2 << 20])),
    )
    .unwrap();
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    match a.call(&b.key(), "huge", b"", T).await {
        Err(Error::HandlerFailed(m)) => assert!(m.starts_with("reply too large"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn peer_vanishing_mid_call_fails_at_once() {
    let (a, b) = pair().await;
    let mut starts = expose_slow_reporting(&b, "never", Duration::from_secs(60));
    let a = Arc::new(a);
    let (a2, k) = (Arc::clone(&a), b.key());
    let call =
        tokio::spawn(async move { a2.call(&k, "never", b"", Duration::from_secs(30)).await });
    started(&mut starts, 1).await;
    let t0 = std::time::Instant::now();
    b.shutdown().await;
    drop(b);
    let r = tokio::time::timeout(T, call).await.unwrap().unwrap();
    assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn reserved_and_bad_names_are_refused_locally() {
    let (a, b) = pair().await;
    let k = b.key();
    for bad in ["", "peernet.rpc", "peernet.other"] {
        assert!(matches!(
            a.call(&k, bad, b"", T).await,
            Err(Error::InvalidArgument(_))
        ));
    }
    let long = "n".repeat(256);
    assert!(matches!(
        a.call(&k, &long, b"", T).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        a.send(&k, &long, b"").await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn inbound_bytes_are_bounded_per_peer() {
    let a = node("a").await;
    let mut cb = config("b");
    cb.max_inbound_bytes = 64 * 1024;
    let b = Node::start(cb).await.unwrap();
    a.trust(&b.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    // A semaphore, not a Notify: a release given before the handler waits is kept.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (Arc::clone(&gate), Arc::clone(&started));
    b.expose(
        "hold",
        Handler::from_async(move |r: Request| {
            s.fetch_add(1, Ordering::SeqCst);
            let g = Arc::clone(&g);
            async move {
                if r.body.len() > 1024 {
                    g.acquire().await.unwrap().forget();
                }
                Ok(vec![])
            }
        }),
    )
    .unwrap();
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    let a = Arc::new(a);
    let (a2, k) = (Arc::clone(&a), b.key());
    let held = tokio::spawn(async move { a2.call(&k, "hold", &[0u8; 40 * 1024], T).await });
    eventually("first call running", || started.load(Ordering::SeqCst) == 1).await;
    // 40 KiB are held: another 40 KiB does not fit the 64 KiB budget; 1 KiB does.
    assert!(matches!(
        a.call(&b.key(), "hold", &[0u8; 40 * 1024], T).await,
        Err(Error::Overloaded)
    ));
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "the refused call did not run"
    );
    a.call(&b.key(), "hold", &[0u8; 1024], T).await.unwrap();
    gate.add_permits(1);
    held.await.unwrap().unwrap();
    // Released: a big call fits again.
    let (a3, k) = (Arc::clone(&a), b.key());
    let again = tokio::spawn(async move { a3.call(&k, "hold", &[0u8; 40 * 1024], T).await });
    eventually("big call running again", || {
        started.load(Ordering::SeqCst) == 3
    })
    .await;
    gate.add_permits(1);
    again.await.unwrap().unwrap();
}
