//! Item 7 of issue 14: what a trusted key can make the node hold. Connections per key
//! are capped (draining duplicates included), and a connection's read buffer grows with
//! the bytes that arrived, not with the length a frame header claims. Own test binary:
//! the RSS figure must not include other tests' nodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/hostile_peer.rs"]
mod hostile_peer;

use std::time::Duration;

use common::raw::*;
use common::*;
use hostile_peer::{mib, rss_kib};
use peernet_core::{Node, DEFAULT_MAX_CONNECTIONS_PER_PEER};
use peernet_proto::envelope::Envelope;

/// One key opening many connections gets at most `max_connections_per_peer` of them
/// registered (the rest are refused before the confirming Ping); the others it already
/// holds keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_holds_at_most_the_connection_cap() {
    const TRIES: usize = 12;
    let node = node("server").await;
    echo(&node);
    let keys = RawKeys::new();
    node.trust(&keys.public, None).unwrap();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..TRIES {
        let s = tokio::net::TcpStream::connect(addr(&node)).await.unwrap();
        match tokio::time::timeout(T, try_handshake(s, &keys)).await {
            Ok(Some(c)) => held.push(c),
            _ => refused += 1,
        }
    }
    println!(
        "one key opened {TRIES} connections: {} registered, {refused} refused; the node \
         holds {} (cap {DEFAULT_MAX_CONNECTIONS_PER_PEER})",
        held.len(),
        node.connection_count()
    );
    assert_eq!(held.len(), DEFAULT_MAX_CONNECTIONS_PER_PEER);
    assert!(node.connection_count() <= DEFAULT_MAX_CONNECTIONS_PER_PEER);
    // The newest one is active (spec 5.1: same initiator, newer wins) and serves.
    let newest = held.last_mut().unwrap();
    assert!(newest.alive(9).await);
}

/// N trusted keys, one connection each, each sending only a 4-byte frame header that
/// claims `max_frame_len`: the node's memory must not grow by the claimed lengths.
/// Prints the figure (`--nocapture`) and asserts a generous bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_claiming_max_frame_cost_only_the_bytes_that_arrived() {
    const N: usize = 100;
    let mut cfg = config("server");
    cfg.heartbeat_interval = Duration::from_millis(100);
    // Pings go unanswered once the headers are out: nothing may die of it here.
    cfg.heartbeat_timeout = Duration::from_secs(60);
    let max_frame = cfg.max_frame_len;
    let node = Node::start(cfg).await.unwrap();
    let base = rss_kib(None);
    let mut conns = Vec::new();
    for _ in 0..N {
        let keys = RawKeys::new();
        node.trust(&keys.public, None).unwrap();
        conns.push(RawConn::connect(addr(&node), &keys).await);
    }
    assert_eq!(node.connection_count(), N);
    let before = rss_kib(None);
    // For each: a Ping round trip (the highest heartbeat nonce seen before it), then
    // the header.
    let mut last_nonce = Vec::new();
    for (i, c) in conns.iter_mut().enumerate() {
        let f = c.seal_env(&Envelope::Ping {
            nonce: 1_000_000 + i as u64,
        });
        c.write(&f).await;
        let mut seen = 0;
        loop {
            match tokio::time::timeout(T, c.recv_env()).await.unwrap() {
                Some(EnvOwned::Pong(n)) if n == 1_000_000 + i as u64 => break,
                Some(EnvOwned::Ping(n)) => {
                    seen = seen.max(n);
                    let f = c.seal_env(&Envelope::Pong { nonce: n });
                    c.write(&f).await;
                }
                Some(_) => {}
                None => panic!("connection {i} closed"),
            }
        }
        last_nonce.push(seen);
        c.write(&max_frame.to_be_bytes()).await;
    }
    // A heartbeat ping two intervals after the round trip was sent after the header
    // had arrived: the reader polls the socket before its timer (biased select), so by
    // then it has read the header.
    for (i, c) in conns.iter_mut().enumerate() {
        loop {
            match tokio::time::timeout(T, c.recv_env()).await.unwrap() {
                Some(EnvOwned::Ping(n)) if n >= last_nonce[i] + 2 => break,
                Some(_) => {}
                None => panic!("connection {i} closed"),
            }
        }
    }
    let after = rss_kib(None);
    let grown = after as i64 - before as i64;
    println!(
        "{N} connections (this process, node and raw peers: {:+.1} MiB for the connections \
         themselves), each then sending a 4-byte header claiming {} KiB: RSS {:.1} -> {:.1} \
         MiB ({:+.1} MiB, {:+.1} KiB per connection)",
        mib(before as i64 - base as i64),
        max_frame / 1024,
        mib(before as i64),
        mib(after as i64),
        mib(grown),
        grown as f64 / N as f64
    );
    assert_eq!(node.connection_count(), N);
    // Generous: a quarter of the claimed length per connection (the old reader
    // allocated twice the claim at once).
    let bound = N as i64 * i64::from(max_frame) / 4 / 1024;
    assert!(
        grown < bound,
        "RSS grew {grown} KiB for {N} 4-byte headers (bound {bound} KiB)"
    );
}
