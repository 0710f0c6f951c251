//! PeerNet on the same work as the ceilings, through the public `peernet-core` API:
//! two nodes (or many) in this process over 127.0.0.1.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peernet_core::{CloseReason, Error, Handler, Node, Request, Result};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::measure::{nanos, rate, Bound, Budget, Latency};
use crate::nodes::{self, T};
use crate::tcp::{BULK_WRITE, MSG, WINDOW};

/// `call` round trips with a 64-byte body, one in flight.
pub async fn call_rtt(b: Budget) -> Result<Latency> {
    let (a, srv) = nodes::echo_pair().await?;
    let key = srv.key();
    let body = [7u8; MSG];
    let warm = Bound::new(b.warmup, b.max_count);
    let mut i = 0;
    while warm.go(i) {
        a.call(&key, "echo", &body, T).await?;
        i += 1;
    }
    let bound = Bound::new(b.time, b.max_count);
    let mut samples = Vec::with_capacity(1 << 16);
    while bound.go(samples.len() as u64) {
        let t = Instant::now();
        a.call(&key, "echo", &body, T).await?;
        samples.push(nanos(t.elapsed()));
    }
    eprintln!("  {} calls in {:.2?}", samples.len(), bound.elapsed());
    a.shutdown().await;
    srv.shutdown().await;
    Latency::from_nanos(samples).ok_or_else(|| Error::Internal("no samples".into()))
}

/// Runs `WINDOW` tasks that each call in a loop until the bound; returns the calls made.
async fn call_window(a: &Arc<Node>, key: peernet_core::Key, bound: Bound) -> Result<u64> {
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..WINDOW {
        let (a, done) = (Arc::clone(a), Arc::clone(&done));
        tasks.spawn(async move {
            let body = [7u8; MSG];
            while bound.go(done.load(Ordering::Relaxed)) {
                a.call(&key, "echo", &body, T).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| Error::Internal(e.to_string()))??;
    }
    Ok(done.load(Ordering::Relaxed))
}

/// `call` with 64-byte bodies, `WINDOW` in flight: calls per second.
pub async fn call_rate(b: Budget) -> Result<f64> {
    let (a, srv) = nodes::echo_pair().await?;
    let a = Arc::new(a);
    let key = srv.key();
    call_window(&a, key, Bound::new(b.warmup, b.max_count)).await?;
    let bound = Bound::new(b.time, b.max_count);
    let n = call_window(&a, key, bound).await?;
    let r = rate(n, bound.elapsed());
    eprintln!("  {n} calls in {:.2?}", bound.elapsed());
    a.shutdown().await;
    srv.shutdown().await;
    Ok(r)
}

/// Pipelined calls as in `call_rate`, on one pair of nodes, with the metrics counting
/// switched off and on (`Node::set_metrics`, both nodes) in alternating slices of a
/// tenth of the time budget, twenty of each. Returns (on, off) calls per second over
/// all the slices of each. One pair for both settings: on the multi-thread runtime the
/// placement of the nodes' tasks moves the rate of a fresh pair by up to ±30%, which
/// alternating fresh pairs (the method before) could not tell from the cost of
/// counting; here it is the same for both, and short slices keep the machine's drift
/// (a pair's rate wanders by as much over a few seconds) out of each off/on pair.
pub async fn metrics_cost(b: Budget) -> Result<(f64, f64)> {
    const SLICES: usize = 20;
    let (a, srv) = nodes::echo_pair().await?;
    let a = Arc::new(a);
    let key = srv.key();
    call_window(&a, key, Bound::new(b.warmup, b.max_count)).await?;
    let (mut calls, mut time) = ([0u64; 2], [Duration::ZERO; 2]);
    for i in 0..2 * SLICES {
        let on = i % 2 == 1;
        a.set_metrics(on);
        srv.set_metrics(on);
        let bound = Bound::new(b.time / 10, b.max_count);
        let n = call_window(&a, key, bound).await?;
        calls[usize::from(on)] += n;
        time[usize::from(on)] += bound.elapsed();
    }
    let (on, off) = (rate(calls[1], time[1]), rate(calls[0], time[0]));
    eprintln!(
        "  metrics off: {} calls in {:.2?}; on: {} calls in {:.2?}; on/off {:.3}",
        calls[0],
        time[0],
        calls[1],
        time[1],
        on / off
    );
    a.shutdown().await;
    srv.shutdown().await;
    Ok((on, off))
}

/// `send` of 64 KiB bodies from one task; the receiver's handler counts bytes. Timed
/// from the first send until the last byte reached the handler. Bytes per second.
pub async fn send_throughput(b: Budget) -> Result<f64> {
    let a = nodes::start(true).await?;
    let srv = nodes::start(true).await?;
    nodes::mutual_trust(&a, &srv)?;
    let (seen_tx, mut seen) = watch::channel(0u64);
    let total = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&total);
    srv.expose(
        "sink",
        Handler::from_async(move |r: Request| {
            let n = counter.fetch_add(r.body.len() as u64, Ordering::Relaxed) + r.body.len() as u64;
            seen_tx.send_replace(n);
            async { Ok(Vec::new()) }
        }),
    )?;
    a.connect(&srv.key(), nodes::addr(&srv)?, T).await?;
    let key = srv.key();
    let body = vec![7u8; BULK_WRITE];
    let warm_sent = send_loop(&a, &key, &body, Bound::new(b.warmup, b.max_count)).await?;
    wait_for(&mut seen, warm_sent).await?;
    let start = Instant::now();
    let sent = send_loop(&a, &key, &body, Bound::new(b.time, b.max_count)).await?;
    let target = warm_sent + sent;
    wait_for(&mut seen, target).await?;
    let elapsed = start.elapsed();
    eprintln!("  {sent} bytes in {elapsed:.2?}");
    a.shutdown().await;
    srv.shutdown().await;
    Ok(sent as f64 / elapsed.as_secs_f64().max(1e-9))
}

/// Sends `body` until the bound; returns the bytes sent.
async fn send_loop(a: &Node, key: &peernet_core::Key, body: &[u8], bound: Bound) -> Result<u64> {
    let mut i = 0;
    while bound.go(i) {
        a.send(key, "sink", body).await?;
        i += 1;
    }
    Ok(i * body.len() as u64)
}

async fn wait_for(seen: &mut watch::Receiver<u64>, target: u64) -> Result<()> {
    match tokio::time::timeout(T, seen.wait_for(|&n| n >= target)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(Error::Closed(CloseReason::Local(
            "the receiver went away".into(),
        ))),
        Err(_) => Err(Error::Timeout),
    }
}

/// Clients connecting in parallel to one server, each in a connect + disconnect loop.
pub const HS_CLIENTS: usize = 8;

/// Authenticated connections established per second (connect returns once the
/// responder confirmed; the disconnect is inside the loop, outside the count's cost).
pub async fn handshake_rate(b: Budget) -> Result<f64> {
    let srv = nodes::start(true).await?;
    let saddr = nodes::addr(&srv)?;
    let skey = srv.key();
    let mut clients = Vec::new();
    for _ in 0..HS_CLIENTS {
        let c = nodes::start(false).await?;
        nodes::mutual_trust(&c, &srv)?;
        clients.push(Arc::new(c));
    }
    let run = |bound: Bound| {
        let clients = clients.clone();
        async move {
            let done = Arc::new(AtomicU64::new(0));
            let mut tasks = JoinSet::new();
            for c in clients {
                let done = Arc::clone(&done);
                tasks.spawn(async move {
                    while bound.go(done.load(Ordering::Relaxed)) {
                        c.connect(&skey, saddr, T).await?;
                        done.fetch_add(1, Ordering::Relaxed);
                        c.disconnect(&skey).await?;
                    }
                    Ok::<(), Error>(())
                });
            }
            while let Some(r) = tasks.join_next().await {
                r.map_err(|e| Error::Internal(e.to_string()))??;
            }
            Ok::<u64, Error>(done.load(Ordering::Relaxed))
        }
    };
    // TIME_WAIT sockets pile up on the dialing side: keep the count modest.
    let cap = b.max_count.min(20_000);
    run(Bound::new(b.warmup, cap)).await?;
    let bound = Bound::new(b.time, cap);
    let n = run(bound).await?;
    let r = rate(n, bound.elapsed());
    eprintln!("  {n} connections in {:.2?}", bound.elapsed());
    for c in &clients {
        c.shutdown().await;
    }
    srv.shutdown().await;
    Ok(r)
}
