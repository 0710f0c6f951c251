//! The four rows, the same work as peernet-bench's `rtt`, `pipe`, `send` and `hs` rows
//! (peernet-bench/src/peernet.rs): sizes, in-flight counts and what is timed match.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::node::{self, Handle, Serve, T};

/// Body of the small-message rows.
pub const MSG: usize = 64;
/// Calls in flight in the pipelined row.
pub const WINDOW: usize = 64;
/// Body of the bulk row.
pub const BULK: usize = 64 * 1024;
/// Requests in flight in the bulk row (each 64 KiB request is a Yamux stream).
pub const BULK_WINDOW: usize = 64;
/// Clients dialing in parallel in the connections row (peernet-bench's `HS_CLIENTS`).
pub const HS_CLIENTS: usize = 8;

/// How long and how many times one measurement may run (peernet-bench's `Budget`).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Untimed warm-up.
    pub warmup: Duration,
    /// Measured time.
    pub time: Duration,
    /// Most iterations.
    pub max_count: u64,
}

impl Budget {
    /// peernet-bench's budgets: full 0.4 s + 2.5 s, `--quick` 0.1 s + 0.4 s.
    pub fn new(quick: bool) -> Budget {
        let (w, t) = if quick { (100, 400) } else { (400, 2_500) };
        Budget {
            warmup: Duration::from_millis(w),
            time: Duration::from_millis(t),
            max_count: if quick { 5_000_000 } else { 50_000_000 },
        }
    }

    fn capped(self, max: u64) -> Budget {
        Budget {
            max_count: self.max_count.min(max),
            ..self
        }
    }
}

/// A deadline and an iteration cap, checked together.
#[derive(Debug, Clone, Copy)]
struct Bound {
    start: Instant,
    end: Instant,
    max: u64,
}

impl Bound {
    fn new(time: Duration, max: u64) -> Bound {
        let start = Instant::now();
        Bound {
            start,
            end: start + time,
            max,
        }
    }

    fn go(&self, done: u64) -> bool {
        done < self.max && Instant::now() < self.end
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// A client node connected to a server node that answers with `serve`.
async fn pair(serve: Serve) -> Result<(Handle, Handle), String> {
    let (srv, addr) = node::start(true, serve).await?;
    let addr = addr.ok_or("the server has no address")?;
    let (a, _) = node::start(false, Serve::Echo).await?;
    a.dial(srv.peer, addr).await?;
    Ok((a, srv))
}

/// Round trips of 64-byte requests, one in flight: (p50, p99) in seconds.
pub async fn rtt(b: Budget) -> Result<(f64, f64), String> {
    let (a, srv) = pair(Serve::Echo).await?;
    let warm = Bound::new(b.warmup, b.max_count);
    let mut i = 0;
    while warm.go(i) {
        a.call(srv.peer, vec![7u8; MSG]).await?;
        i += 1;
    }
    let bound = Bound::new(b.time, b.max_count);
    let mut samples: Vec<u64> = Vec::with_capacity(1 << 16);
    while bound.go(samples.len() as u64) {
        let t = Instant::now();
        a.call(srv.peer, vec![7u8; MSG]).await?;
        samples.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    eprintln!("  {} calls in {:.2?}", samples.len(), bound.elapsed());
    if samples.is_empty() {
        return Err("no samples".into());
    }
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize] as f64 * 1e-9;
    Ok((at(0.50), at(0.99)))
}

async fn window(a: &Handle, srv: &Handle, bound: Bound) -> Result<u64, String> {
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..WINDOW {
        let (a, peer, done) = (a.clone(), srv.peer, Arc::clone(&done));
        tasks.spawn(async move {
            while bound.go(done.load(Ordering::Relaxed)) {
                a.call(peer, vec![7u8; MSG]).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(done.load(Ordering::Relaxed))
}

/// 64-byte requests, `WINDOW` tasks each with one in flight: calls per second.
pub async fn pipelined(b: Budget) -> Result<f64, String> {
    let (a, srv) = pair(Serve::Echo).await?;
    window(&a, &srv, Bound::new(b.warmup, b.max_count)).await?;
    let bound = Bound::new(b.time, b.max_count);
    let n = window(&a, &srv, bound).await?;
    eprintln!("  {n} calls in {:.2?}", bound.elapsed());
    Ok(rate(n, bound.elapsed()))
}

/// 64 KiB requests from one task, `BULK_WINDOW` in flight, empty responses; the
/// server counts bytes. Timed from the first request until the last byte reached the
/// server's handler. Bytes per second.
pub async fn bulk(b: Budget) -> Result<f64, String> {
    let b = b.capped(1_000_000);
    let total = Arc::new(AtomicU64::new(0));
    let (seen_tx, mut seen) = watch::channel(0u64);
    let (a, srv) = pair(Serve::Sink(Arc::clone(&total), Arc::new(seen_tx))).await?;
    let slots = Arc::new(Semaphore::new(BULK_WINDOW));
    let fails = Arc::new(AtomicU64::new(0));
    let body = vec![7u8; BULK];
    let send_loop = |bound: Bound| {
        let (a, slots, fails, body) = (
            a.clone(),
            Arc::clone(&slots),
            Arc::clone(&fails),
            body.clone(),
        );
        async move {
            let mut i = 0u64;
            while bound.go(i) {
                let p = Arc::clone(&slots)
                    .acquire_owned()
                    .await
                    .map_err(|e| e.to_string())?;
                a.send(srv.peer, body.clone(), p, Arc::clone(&fails))
                    .await?;
                i += 1;
            }
            Ok::<u64, String>(i * BULK as u64)
        }
    };
    let warm = send_loop(Bound::new(b.warmup, b.max_count)).await?;
    wait_for(&mut seen, warm).await?;
    let start = Instant::now();
    let sent = send_loop(Bound::new(b.time, b.max_count)).await?;
    wait_for(&mut seen, warm + sent).await?;
    let elapsed = start.elapsed();
    eprintln!("  {sent} bytes in {elapsed:.2?}");
    match fails.load(Ordering::Relaxed) {
        0 => Ok(sent as f64 / elapsed.as_secs_f64().max(1e-9)),
        n => Err(format!("{n} bulk requests failed")),
    }
}

async fn wait_for(seen: &mut watch::Receiver<u64>, target: u64) -> Result<(), String> {
    match tokio::time::timeout(T, seen.wait_for(|&n| n >= target)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err("the server went away".into()),
        Err(_) => Err(format!(
            "the server saw fewer than {target} bytes within {T:?}"
        )),
    }
}

/// `HS_CLIENTS` client nodes each in a loop: dial (TCP, multistream-select, Noise XX,
/// Yamux), one 64-byte request and its response, disconnect (awaited). The count is
/// taken after the response, as peernet-bench counts once `connect` returns (after the
/// responder's confirming Ping/Pong). Connections per second.
pub async fn connections(b: Budget) -> Result<f64, String> {
    let (srv, addr) = node::start(true, Serve::Echo).await?;
    let addr = addr.ok_or("the server has no address")?;
    let mut clients = Vec::new();
    for _ in 0..HS_CLIENTS {
        clients.push(node::start(false, Serve::Echo).await?.0);
    }
    let run = |bound: Bound| {
        let (clients, addr, peer) = (clients.clone(), addr.clone(), srv.peer);
        async move {
            let done = Arc::new(AtomicU64::new(0));
            let mut tasks = JoinSet::new();
            for c in clients {
                let (done, addr) = (Arc::clone(&done), addr.clone());
                tasks.spawn(async move {
                    while bound.go(done.load(Ordering::Relaxed)) {
                        c.dial(peer, addr.clone()).await?;
                        c.call(peer, vec![7u8; MSG]).await?;
                        done.fetch_add(1, Ordering::Relaxed);
                        c.disconnect(peer).await?;
                    }
                    Ok::<(), String>(())
                });
            }
            while let Some(r) = tasks.join_next().await {
                r.map_err(|e| e.to_string())??;
            }
            Ok::<u64, String>(done.load(Ordering::Relaxed))
        }
    };
    // TIME_WAIT sockets pile up on the dialing side: the same cap as peernet-bench.
    let cap = b.max_count.min(20_000);
    run(Bound::new(b.warmup, cap)).await?;
    let bound = Bound::new(b.time, cap);
    let n = run(bound).await?;
    eprintln!("  {n} connections in {:.2?}", bound.elapsed());
    Ok(rate(n, bound.elapsed()))
}
