//! Streams (issue 16) on the same work as the bulk ceiling: one stream of 64 KiB
//! writes, and the latency of calls while such a stream keeps the link busy.

use std::time::Instant;

use peernet_core::{Error, Node, Result, Stream, StreamHandler};
use tokio::sync::watch;

use crate::measure::{nanos, Bound, Budget, Latency};
use crate::nodes::{self, T};
use crate::tcp::{BULK_WRITE, MSG};

/// Two nodes, `a` connected to `srv`, which exposes "echo" and a stream handler
/// "sink" that reads and counts (the count published on the returned channel).
async fn sink_pair() -> Result<(Node, Node, watch::Receiver<u64>)> {
    let (a, srv) = nodes::echo_pair().await?;
    let (seen_tx, seen) = watch::channel(0u64);
    let seen_tx = std::sync::Arc::new(seen_tx);
    srv.expose_stream(
        "sink",
        StreamHandler::from_async(move |mut s: Stream| {
            let seen_tx = std::sync::Arc::clone(&seen_tx);
            async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut n = 0u64;
                while let Ok(k) = s.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                    seen_tx.send_replace(n);
                }
            }
        }),
    )?;
    Ok((a, srv, seen))
}

async fn wait_for(seen: &mut watch::Receiver<u64>, target: u64) -> Result<()> {
    match tokio::time::timeout(T, seen.wait_for(|&n| n >= target)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(Error::Internal("the stream reader went away".into())),
        Err(_) => Err(Error::Timeout),
    }
}

/// One stream, 64 KiB writes from one task, the receiver reading into a 256 KiB
/// buffer; timed from the first write to the last byte read. Bytes per second.
pub async fn stream_throughput(b: Budget) -> Result<f64> {
    let (a, srv, mut seen) = sink_pair().await?;
    let mut s = a.open_stream(&srv.key(), "sink").await?;
    let chunk = vec![7u8; BULK_WRITE];
    let mut sent = 0u64;
    let warm = Bound::new(b.warmup, b.max_count);
    while warm.go(sent / BULK_WRITE as u64) {
        s.write_all(&chunk).await?;
        sent += BULK_WRITE as u64;
    }
    wait_for(&mut seen, sent).await?;
    let start = Instant::now();
    let before = sent;
    let bound = Bound::new(b.time, b.max_count);
    while bound.go((sent - before) / BULK_WRITE as u64) {
        s.write_all(&chunk).await?;
        sent += BULK_WRITE as u64;
    }
    wait_for(&mut seen, sent).await?;
    let elapsed = start.elapsed();
    eprintln!("  {} bytes in {elapsed:.2?}", sent - before);
    drop(s);
    a.shutdown().await;
    srv.shutdown().await;
    Ok((sent - before) as f64 / elapsed.as_secs_f64().max(1e-9))
}

/// 64 B call round trips, one in flight: first on an idle connection, then while a
/// stream of 64 KiB writes saturates the same connection. (idle, loaded).
pub async fn call_latency_under_stream(b: Budget) -> Result<(Latency, Latency)> {
    let (a, srv, mut seen) = sink_pair().await?;
    let key = srv.key();
    let idle = rtt_samples(&a, &key, b).await?;
    let mut s = a.open_stream(&key, "sink").await?;
    let (stop_tx, mut stop) = watch::channel(false);
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; BULK_WRITE];
        // Bounded in time by the measurement below (it stops us), and in count.
        for _ in 0..10_000_000u64 {
            tokio::select! {
                r = s.write_all(&chunk) => r?,
                _ = stop.changed() => break,
            }
        }
        Ok::<Stream, Error>(s)
    });
    // The stream is at full speed once a few MiB went through.
    let loaded = match wait_for(&mut seen, 4 << 20).await {
        Ok(()) => rtt_samples(&a, &key, b).await,
        Err(e) => Err(e),
    };
    let _ = stop_tx.send(true);
    let s = writer.await.map_err(|e| Error::Internal(e.to_string()))??;
    drop(s);
    a.shutdown().await;
    srv.shutdown().await;
    let loaded = loaded?;
    eprintln!(
        "  call RTT idle p50 {:.1?} p99 {:.1?}; under the stream p50 {:.1?} p99 {:.1?}",
        idle.p50, idle.p99, loaded.p50, loaded.p99
    );
    Ok((idle, loaded))
}

async fn rtt_samples(a: &Node, key: &peernet_core::Key, b: Budget) -> Result<Latency> {
    let body = [7u8; MSG];
    let bound = Bound::new(b.time, b.max_count);
    let mut samples = Vec::with_capacity(1 << 14);
    while bound.go(samples.len() as u64) {
        let t = Instant::now();
        a.call(key, "echo", &body, T).await?;
        samples.push(nanos(t.elapsed()));
    }
    Latency::from_nanos(samples).ok_or_else(|| Error::Internal("no samples".into()))
}
