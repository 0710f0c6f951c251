//! Rust-API counterpart of `tests/c/bench.c`: the same two nodes on 127.0.0.1, the same
//! echo handler, the same measurements (sequential call RTT p50/p99, then pipelined
//! calls with a window of outstanding calls), through `peernet-core` directly. Prints
//! one machine-readable line: `rust rtt_p50_us=… rtt_p99_us=… rate=…`.
//!
//! `cargo run --release -p peernet-ffi --example rust_bench -- [RTT_CALLS] [PIPELINED_CALLS] [WINDOW]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use peernet_core::blocking::block_on;
use peernet_core::{Handler, Node, NodeConfig, Request};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rtt_calls = arg(1, 2000);
    let total = arg(2, 20000);
    let window = arg(3, 64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("peernet-rust-bench-{}", std::process::id()));
    let mk = |name: &str| {
        let mut c = NodeConfig::new(dir.join(name));
        c.listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.auto_connect = false;
        c
    };
    let (a, b) = rt.block_on(async {
        let a = Node::start(mk("a")).await.expect("start a");
        let b = Node::start(mk("b")).await.expect("start b");
        (Arc::new(a), b)
    });
    a.trust(&b.key(), None).expect("trust");
    b.trust(&a.key(), None).expect("trust");
    b.expose(
        "echo",
        Handler::from_async(|req: Request| async move { Ok(req.body) }),
    )
    .expect("expose");
    let kb = b.key();
    let addr = b.local_addr().expect("addr");
    rt.block_on(a.connect(&kb, addr, Duration::from_secs(5)))
        .expect("connect");
    let body = [7u8; 32];

    // Sequential RTT, each call driven from this (non-runtime) thread like a C caller,
    // with the same blocking wait the C API uses.
    for _ in 0..200 {
        block_on(
            rt.handle(),
            a.call(&kb, "echo", &body, Duration::from_secs(5)),
        )
        .expect("warm-up");
    }
    let mut rtts = Vec::with_capacity(rtt_calls);
    for _ in 0..rtt_calls {
        let t = Instant::now();
        block_on(
            rt.handle(),
            a.call(&kb, "echo", &body, Duration::from_secs(5)),
        )
        .expect("call");
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rtts.sort_by(|x, y| x.partial_cmp(y).expect("no NaN"));

    // Pipelined: `window` tasks, each issuing calls back to back.
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..window {
            let a = Arc::clone(&a);
            let n = total / window + usize::from(w < total % window);
            tasks.push(tokio::spawn(async move {
                for _ in 0..n {
                    a.call(&kb, "echo", &body, Duration::from_secs(30))
                        .await
                        .expect("call");
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
    });
    let rate = total as f64 / t.elapsed().as_secs_f64();
    println!(
        "rust rtt_p50_us={:.1} rtt_p99_us={:.1} rate={:.0}",
        percentile(&rtts, 0.50),
        percentile(&rtts, 0.99),
        rate
    );
    rt.block_on(async {
        a.shutdown().await;
        b.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
