//! Observability (issue 19): the node's counters move for the events they name, the
//! OpenMetrics text carries them, and `Node::peer` says why a peer is not connected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use peernet_core::{AddressSource, Error, Handler, Node, Request, UdpDiscoveryConfig};

/// A call's time runs from this node reading it to queuing its answer, on the driver's
/// clock: a handler that takes 40 ms lands in the 50 ms bucket (not in the first one,
/// as it would if the driver used the clock it read before waiting for the answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_is_timed_from_read_to_answer() {
    let (a, b) = pair().await;
    b.expose(
        "slow",
        Handler::from_async(|r: Request| async move {
            tokio::time::sleep(Duration::from_millis(40)).await;
            Ok(r.body)
        }),
    )
    .unwrap();
    a.call(&b.key(), "slow", b"x", T).await.unwrap();
    let m = b.metrics();
    let slow = m.handlers.iter().find(|h| h.name == "slow").unwrap();
    let at_most = |us: u64| {
        let i = peernet_core::LATENCY_BUCKETS_US
            .iter()
            .position(|&b| b == us)
            .unwrap();
        slow.latency_buckets[i]
    };
    assert_eq!(slow.calls, 1);
    assert_eq!(at_most(25_000), 0, "{slow:?}");
    assert_eq!(slow.latency_buckets.last(), Some(&1), "{slow:?}");
    assert!(slow.latency_sum >= Duration::from_millis(40), "{slow:?}");
    assert!(slow.latency_sum < T, "{slow:?}");
}

/// An untrusted dial is counted as `untrusted` by the node that refuses it (and by the
/// dialer, which learns it was refused), never as `ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_dial_counts_as_untrusted_on_the_refusing_node() {
    let a = node("ua").await;
    let b = node("ub").await;
    a.trust(&b.key(), None).unwrap(); // b does not trust a
    let r = a.connect(&b.key(), addr(&b), T).await;
    assert!(matches!(r, Err(Error::UntrustedPeer(_))), "{r:?}");
    eventually("b counts the refused handshake", || {
        b.metrics().handshakes_untrusted == 1
    })
    .await;
    let m = b.metrics();
    assert_eq!((m.handshakes_ok, m.connections_open), (0, 0));
    assert_eq!(a.metrics().handshakes_untrusted, 1);
    assert!(b
        .metrics_text()
        .contains("peernet_handshakes_total{result=\"untrusted\"} 1\n"));
}

/// After 10 calls and 3 sends the caller counts 10 calls out and the callee 10 in, the
/// handler 10 calls timed in its histogram; a call to an unknown name counts under
/// `unknown`, and creates no entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_sends_and_handlers_are_counted_on_both_sides() {
    let (a, b) = pair().await;
    for _ in 0..10 {
        a.call(&b.key(), "echo", b"0123456789", T).await.unwrap();
    }
    for _ in 0..3 {
        a.send(&b.key(), "echo", b"s").await.unwrap();
    }
    for name in ["nope-1", "nope-2"] {
        let r = a.call(&b.key(), name, b"", T).await;
        assert!(matches!(r, Err(Error::NoSuchHandler(_))), "{r:?}");
    }
    let ma = a.metrics();
    assert_eq!((ma.calls_out, ma.sends_out, ma.calls_in), (12, 3, 0));
    assert_eq!(
        (ma.handshakes_ok, ma.connections_open, ma.peers_connected),
        (1, 1, 1)
    );
    eventually("b handled the sends", || {
        let h = b.metrics().handlers;
        h.iter().any(|h| h.name == "echo" && h.sends == 3)
    })
    .await;
    let mb = b.metrics();
    assert_eq!((mb.calls_in, mb.sends_in), (12, 3));
    assert!(mb.bytes_in > 0 && mb.bytes_out > 0 && mb.frames_in >= 15);
    let names: Vec<&str> = mb.handlers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["echo", "peernet.rpc", "unknown"]);
    let echo = &mb.handlers[0];
    assert_eq!(echo.calls, 10);
    assert_eq!(echo.latency_buckets.last(), Some(&10));
    let unknown = &mb.handlers[2];
    assert_eq!((unknown.calls, unknown.no_such_handler), (2, 2));
    // Per peer: the same calls, read through the API.
    let pa = a.peer(&b.key()).unwrap();
    assert_eq!(pa.stats.calls_out, 12);
    let pb = b.peer(&a.key()).unwrap();
    assert_eq!((pb.stats.calls_in, pb.stats.sends_in), (12, 3));
    let text = b.metrics_text();
    assert!(
        text.contains("peernet_calls_total{direction=\"in\"} 12\n"),
        "{text}"
    );
    assert!(text.contains("peernet_handler_latency_seconds_count{handler=\"echo\"} 10\n"));
    assert!(
        !text.contains(&a.key().to_string()),
        "a peer key in the exported text"
    );
    // Traffic of a closed connection is kept.
    a.disconnect(&b.key()).await.unwrap();
    eventually("b sees the close", || b.metrics().connections_open == 0).await;
    assert_eq!(a.metrics().calls_out, 12);
    assert_eq!(b.metrics().calls_in, 12);
}

/// With `NodeConfig::metrics` off nothing new is counted.
#[tokio::test]
async fn metrics_off_counts_nothing_new() {
    let mut ca = config("offa");
    ca.metrics = false;
    let a = Node::start(ca).await.unwrap();
    let b = node("offb").await;
    a.trust(&b.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    echo(&b);
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    a.call(&b.key(), "echo", b"x", T).await.unwrap();
    let m = a.metrics();
    assert!(!m.enabled);
    assert_eq!((m.calls_out, m.handshakes_ok), (0, 0));
    assert_eq!(b.metrics().calls_in, 1);
}

/// Junk datagrams to a node's discovery socket are counted as dropped, by reason: the
/// first as malformed, those past the source's burst as rate-limited.
#[tokio::test]
async fn junk_discovery_datagrams_count_as_dropped() {
    let port = udp_port(19, 1);
    let mut c = config("junk");
    c.udp_discovery = Some(UdpDiscoveryConfig {
        port,
        interval: Duration::from_secs(60),
        broadcast: vec![SocketAddr::from(([127, 255, 255, 255], port))],
        ..UdpDiscoveryConfig::default()
    });
    let n = Node::start(c).await.unwrap();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    const JUNK: u64 = 100;
    for i in 0..JUNK {
        sock.send_to(&[i as u8; 10], ("127.0.0.1", port))
            .await
            .unwrap();
    }
    eventually("every junk datagram counted", || {
        let m = n.metrics();
        m.discovery_dropped_malformed + m.discovery_dropped_rate_limited >= JUNK
    })
    .await;
    let m = n.metrics();
    assert!(m.discovery_dropped_malformed > 0, "{m:?}");
    assert!(m.discovery_dropped_rate_limited > 0, "{m:?}");
    assert!(m.discovery_in >= JUNK);
    assert!(m.discovery_out >= 1, "the announcement at start");
    let text = n.metrics_text();
    assert!(text.contains("peernet_discovery_dropped_total{reason=\"malformed\"}"));
}

/// Why a peer is not connected: the last dial with its error, the next attempt, the
/// addresses with their source.
#[tokio::test]
async fn peer_says_why_it_is_not_connected() {
    let a = node("wa").await;
    // A port nothing listens on: bound, read back, closed.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let ghost = node("wghost").await.key();
    a.trust(&ghost, Some("ghost")).unwrap();
    a.discovered(&ghost, dead).unwrap();
    eventually("a failed dial and a next one scheduled", || {
        a.peer(&ghost)
            .is_some_and(|p| p.last_dial.is_some() && p.next_dial.is_some())
    })
    .await;
    let p = a.peer(&ghost).unwrap();
    let d = p.last_dial.unwrap();
    assert_eq!(d.address, dead);
    let err = d.error.unwrap();
    assert!(err.contains(&dead.to_string()), "{err}");
    assert!(p.next_dial.unwrap() > d.at);
    assert_eq!(p.addresses.len(), 1);
    assert_eq!(p.addresses[0].source, AddressSource::Discovery);
    // A key the node never heard of.
    assert!(a.peer(&node("wother").await.key()).is_none());
}

/// Junk TCP "handshakes" (a frame header claiming more than a handshake frame may
/// hold) count as failed, never as ok.
#[tokio::test]
async fn junk_tcp_handshakes_count_as_failed() {
    use tokio::io::AsyncWriteExt;
    let n = node("tcpjunk").await;
    const JUNK: u64 = 5;
    for _ in 0..JUNK {
        let mut s = tokio::net::TcpStream::connect(addr(&n)).await.unwrap();
        s.write_all(&[0xff; 64]).await.unwrap();
    }
    eventually("every junk handshake counted", || {
        n.metrics().handshakes_failed == JUNK
    })
    .await;
    let m = n.metrics();
    assert_eq!((m.handshakes_ok, m.connections_open), (0, 0));
}

/// An address confirmed before a restart is reported as `Remembered` after it.
#[tokio::test]
async fn a_confirmed_address_is_remembered_across_a_restart() {
    let ca = config("rema");
    let dir = ca.data_dir.clone();
    let a = Node::start(ca).await.unwrap();
    let b = node("remb").await;
    a.trust(&b.key(), None).unwrap();
    b.trust(&a.key(), None).unwrap();
    a.connect(&b.key(), addr(&b), T).await.unwrap();
    a.shutdown().await;
    drop(a);
    let mut c = config("rema2");
    c.data_dir = dir;
    c.auto_connect = false;
    let a = Node::start(c).await.unwrap();
    let p = a.peer(&b.key()).unwrap();
    assert_eq!(p.addresses.len(), 1, "{p:?}");
    assert_eq!(p.addresses[0].addr, addr(&b));
    assert_eq!(p.addresses[0].source, AddressSource::Remembered);
}

/// `set_metrics` turns counting off and on again on a live connection, on both sides:
/// what was counted stays, nothing is counted while off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_metrics_stops_and_resumes_counting_on_a_live_connection() {
    let (a, b) = pair().await;
    let calls = |n: &Node| {
        let m = n.metrics();
        let echo = m
            .handlers
            .iter()
            .find(|h| h.name == "echo")
            .map(|h| h.calls);
        (m.enabled, m.calls_out, m.calls_in, echo.unwrap_or(0))
    };
    for _ in 0..3 {
        a.call(&b.key(), "echo", b"x", T).await.unwrap();
    }
    a.set_metrics(false);
    b.set_metrics(false);
    for _ in 0..5 {
        a.call(&b.key(), "echo", b"x", T).await.unwrap();
    }
    assert_eq!(calls(&a), (false, 3, 0, 0));
    assert_eq!(calls(&b), (false, 0, 3, 3));
    a.set_metrics(true);
    b.set_metrics(true);
    for _ in 0..2 {
        a.call(&b.key(), "echo", b"x", T).await.unwrap();
    }
    assert_eq!(calls(&a), (true, 5, 0, 0));
    assert_eq!(calls(&b), (true, 0, 5, 5));
    assert!(b
        .metrics_text()
        .contains("peernet_handler_calls_total{handler=\"echo\"} 5\n"));
}
