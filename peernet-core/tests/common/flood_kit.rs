//! Helpers of the flood tests (`flood.rs`, `flood_handshake.rs`): a server exposing
//! `echo` and `work` with a polite peer connected, the polite peer's call loop, a latency
//! summary and an RSS sampler. Memory-measuring tests run one at a time (`SERIAL`), since
//! the tests of one binary share the process.
//!
//! Include with `#[path = "common/flood_kit.rs"] mod flood_kit;` next to `mod common;`
//! and `#[path = "common/hostile_peer.rs"] mod hostile_peer;` (it uses both).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::hostile_peer::rss_kib;
use peernet_core::{Handler, Node, NodeConfig, Request};

pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Generous bound on memory growth under a flood.
pub const RSS_BOUND_KIB: i64 = 64 * 1024;

pub fn echo() -> Handler {
    Handler::from_async(|r: Request| async move { Ok(r.body) })
}

/// A server with `cfg`, exposing `echo` and `work` (2 ms per call), and a polite node
/// connected to it.
pub async fn server_and_polite(cfg: NodeConfig) -> (Node, Node) {
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
pub async fn polite_calls(
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

pub fn latency_summary(mut v: Vec<Duration>) -> String {
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
pub fn rss_sampler(stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = rss_kib(None);
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(rss_kib(None));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak.max(rss_kib(None))
    })
}
