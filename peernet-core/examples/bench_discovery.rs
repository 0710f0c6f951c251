//! Discovery benchmark on loopback (broadcast to 127.255.255.255, a random UDP port):
//! time from `start` of two nodes to their first successful call, and time from the
//! restart of a peer (same key, new port) to the next successful call.
//!
//! `cargo run --release -p peernet-core --example bench_discovery [ROUNDS]`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peernet_core::{Handler, Key, Node, NodeConfig, Request, UdpDiscoveryConfig};

fn config(dir: &std::path::Path, name: &str, port: u16) -> NodeConfig {
    let mut c = NodeConfig::new(dir.join(name));
    c.listen = Some("127.0.0.1:0".parse().unwrap());
    c.udp_discovery = Some(UdpDiscoveryConfig {
        port,
        interval: Duration::from_secs(5),
        broadcast: vec![SocketAddr::from(([127, 255, 255, 255], port))],
        ..UdpDiscoveryConfig::default()
    });
    c
}

async fn first_call(a: &Node, b: Key, deadline: Instant) -> Instant {
    loop {
        if a.call(&b, "echo", b"x", Duration::from_secs(1))
            .await
            .is_ok()
        {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "no call within the deadline");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn stats(name: &str, v: &mut [Duration]) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name}: median {:.2} ms, min {:.2} ms, max {:.2} ms ({} rounds)",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1]),
        v.len()
    );
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut first = Vec::new();
    let mut again = Vec::new();
    for r in 0..rounds {
        let dir =
            std::env::temp_dir().join(format!("peernet-bench-disc-{}-{r}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let port = 30000 + (std::process::id() as u16 % 1000) * 20 + r as u16;
        // Identities and trust first (not timed).
        let (ka, kb) = {
            let a = Node::start(NodeConfig::new(dir.join("a"))).await.unwrap();
            let b = Node::start(NodeConfig::new(dir.join("b"))).await.unwrap();
            a.trust(&b.key(), None).unwrap();
            b.trust(&a.key(), None).unwrap();
            let k = (a.key(), b.key());
            a.shutdown().await;
            b.shutdown().await;
            k
        };
        let echo = || Handler::from_async(|r: Request| async move { Ok(r.body) });
        let t0 = Instant::now();
        let a = Node::start(config(&dir, "a", port)).await.unwrap();
        let b = Node::start(config(&dir, "b", port)).await.unwrap();
        b.expose("echo", echo()).unwrap();
        let t1 = first_call(&a, kb, t0 + Duration::from_secs(30)).await;
        first.push(t1 - t0);
        // Restart b: same key, new port.
        b.shutdown().await;
        drop(b);
        let t2 = Instant::now();
        let b = Node::start(config(&dir, "b", port)).await.unwrap();
        b.expose("echo", echo()).unwrap();
        let t3 = first_call(&a, kb, t2 + Duration::from_secs(30)).await;
        again.push(t3 - t2);
        let _ = ka;
        a.shutdown().await;
        b.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
    stats("start of two nodes -> first successful call", &mut first);
    stats(
        "peer restart (new port) -> next successful call",
        &mut again,
    );
}
