//! Raw tokio TCP ceilings over 127.0.0.1: ping-pong, pipelined small messages, bulk.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::measure::{nanos, rate, Bound, Budget, Latency};

/// Message size of the small-message tests.
pub const MSG: usize = 64;
/// Messages in flight in the pipelined tests.
pub const WINDOW: usize = 64;
/// Write size of the bulk tests.
pub const BULK_WRITE: usize = 64 * 1024;

/// A connected pair of loopback sockets with `TCP_NODELAY`, as PeerNet sets it.
pub async fn pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, (server, _)) = (client?, accepted?);
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

/// Echoes whatever arrives, one write per read, until EOF or an error.
async fn echo(mut s: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// 64-byte round trips, one in flight: percentiles of the round-trip time.
pub async fn ping_pong(b: Budget) -> io::Result<Latency> {
    let (mut c, s) = pair().await?;
    let server = tokio::spawn(echo(s));
    let msg = [7u8; MSG];
    let mut back = [0u8; MSG];
    let warm = Bound::new(b.warmup, b.max_count);
    let mut i = 0;
    while warm.go(i) {
        c.write_all(&msg).await?;
        c.read_exact(&mut back).await?;
        i += 1;
    }
    let bound = Bound::new(b.time, b.max_count);
    let mut samples = Vec::with_capacity(1 << 16);
    while bound.go(samples.len() as u64) {
        let t = Instant::now();
        c.write_all(&msg).await?;
        c.read_exact(&mut back).await?;
        samples.push(nanos(t.elapsed()));
    }
    drop(c);
    let _ = server.await;
    Latency::from_nanos(samples).ok_or_else(|| io::Error::other("no samples"))
}

/// 64-byte messages echoed back, `WINDOW` in flight; the writer sends every free
/// window slot in one write. Returns round trips per second.
pub async fn pipelined(b: Budget) -> io::Result<f64> {
    let (c, s) = pair().await?;
    let server = tokio::spawn(echo(s));
    let (mut rd, mut wr) = c.into_split();
    let window = Arc::new(Semaphore::new(WINDOW));
    let slots = Arc::clone(&window);
    let writer = tokio::spawn(async move {
        let batch = vec![7u8; MSG * WINDOW];
        loop {
            let Ok(first) = slots.acquire().await else {
                return;
            };
            first.forget();
            let mut k = 1;
            while k < WINDOW {
                match slots.try_acquire() {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
                k += 1;
            }
            if wr.write_all(&batch[..k * MSG]).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0usize;
    let count = |bytes: &mut usize, n: usize| {
        let before = *bytes / MSG;
        *bytes += n;
        *bytes / MSG - before
    };
    let warm = Bound::new(b.warmup, u64::MAX);
    while warm.go(0) {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        window.add_permits(count(&mut bytes, n));
    }
    let bound = Bound::new(b.time, b.max_count);
    let mut done = 0u64;
    while bound.go(done) {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let k = count(&mut bytes, n);
        done += k as u64;
        window.add_permits(k);
    }
    let r = rate(done, bound.elapsed());
    window.close();
    writer.abort();
    drop(rd);
    server.abort();
    Ok(r)
}

/// One direction, 64 KiB writes; the receiver counts bytes until the sender closes.
/// Returns bytes per second measured at the receiver.
pub async fn bulk(b: Budget) -> io::Result<f64> {
    let (mut c, mut s) = pair().await?;
    let max_bytes = b.max_count.saturating_mul(BULK_WRITE as u64);
    let time = b.time;
    let sender = tokio::spawn(async move {
        let chunk = vec![7u8; BULK_WRITE];
        let bound = Bound::new(time, max_bytes / BULK_WRITE as u64);
        let mut n = 0;
        while bound.go(n) {
            c.write_all(&chunk).await?;
            n += 1;
        }
        c.shutdown().await
    });
    let start = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let elapsed = start.elapsed();
    sender.await.map_err(io::Error::other)??;
    Ok(total as f64 / elapsed.as_secs_f64().max(1e-9))
}
