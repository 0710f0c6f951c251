//! Same-work ceilings: the bytes and the cryptography PeerNet's protocol requires, over
//! raw tokio TCP, through the protocol layer (`peernet-proto`: frames, the
//! ChaCha20-Poly1305 channel, Noise XX) and nothing of `peernet-core` (no node, no
//! connection tasks, queues, tables or timers). PeerNet against these shows what
//! `peernet-core` adds on top of what the wire work costs on this machine; the issue's
//! goals stay judged against the plain ceilings.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use peernet_proto::channel::{RecvCipher, SendCipher, TAG_LEN};
use peernet_proto::envelope::{Envelope, GoodbyeReason};
use peernet_proto::frame::{parse_header, HANDSHAKE_FRAME_LIMIT, HEADER_LEN};
use peernet_proto::handshake::Handshake;
use peernet_proto::hello::Hello;
use peernet_proto::ProtoError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::measure::{rate, Bound, Budget};
use crate::peernet::HS_CLIENTS;
use crate::tcp::{pair, BULK_WRITE};

fn proto(e: ProtoError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Frame limit of the bulk test (PeerNet's default, 1 MiB).
const BULK_LIMIT: usize = 1 << 20;

/// 64 KiB bodies in one direction, each sealed into one frame by the sender (one write
/// per frame, as PeerNet's writer does for large frames) and opened in place by the
/// receiver, which reads in large chunks. Both ends are tasks on the current runtime,
/// like PeerNet's two nodes. Returns body bytes per second at the receiver.
pub async fn sealed_bulk(b: Budget) -> io::Result<f64> {
    let (mut c, mut s) = pair().await?;
    let time = b.time;
    let max = b.max_count;
    let sender = tokio::spawn(async move {
        let mut seal = SendCipher::new([9; 32]);
        let mut frame = Vec::with_capacity(HEADER_LEN + BULK_WRITE + TAG_LEN);
        let bound = Bound::new(time, max);
        let mut n = 0;
        while bound.go(n) {
            frame.clear();
            frame.resize(HEADER_LEN + BULK_WRITE, 7);
            seal.seal_tail(&mut frame, 0).map_err(proto)?;
            c.write_all(&frame).await?;
            n += 1;
        }
        c.shutdown().await
    });
    let start = Instant::now();
    let mut open = RecvCipher::new([9; 32]);
    let mut buf = vec![0u8; 4 * (BULK_WRITE + HEADER_LEN + TAG_LEN)];
    let (mut have, mut total) = (0usize, 0u64);
    loop {
        let n = s.read(&mut buf[have..]).await?;
        if n == 0 {
            break;
        }
        have += n;
        let mut at = 0;
        while let Some(len) = parse_header(&buf[at..have], BULK_LIMIT).map_err(proto)? {
            let end = at + HEADER_LEN + len;
            if end > have {
                break;
            }
            let plain = open
                .open_in_place(&mut buf[at + HEADER_LEN..end])
                .map_err(proto)?;
            total += plain.len() as u64;
            at = end;
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if have == buf.len() {
            return Err(io::Error::other("frame larger than the read buffer"));
        }
    }
    let elapsed = start.elapsed();
    sender.await.map_err(io::Error::other)??;
    Ok(total as f64 / elapsed.as_secs_f64().max(1e-9))
}

/// Writes one frame.
async fn write_frame(s: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    peernet_proto::frame::encode_frame(body, &mut out);
    s.write_all(&out).await
}

/// Reads one frame of at most `HANDSHAKE_FRAME_LIMIT` bytes.
async fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = [0u8; HEADER_LEN];
    s.read_exact(&mut head).await?;
    let len = parse_header(&head, HANDSHAKE_FRAME_LIMIT)
        .map_err(proto)?
        .ok_or_else(|| io::Error::other("short header"))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok(body)
}

/// Writes an envelope as one sealed frame (the machine's own framing routine).
async fn write_sealed(
    s: &mut TcpStream,
    seal: &mut SendCipher,
    e: &Envelope<'_>,
) -> io::Result<()> {
    let mut plain = Vec::with_capacity(e.encoded_len());
    e.encode_into(&mut plain);
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
    seal.seal_frame(&plain, &mut out).map_err(proto)?;
    s.write_all(&out).await
}

/// Reads until the peer closes.
async fn until_eof(s: &mut TcpStream) -> io::Result<()> {
    let mut sink = [0u8; 64];
    while s.read(&mut sink).await? != 0 {}
    Ok(())
}

/// Opens the frames that arrive until the peer closes.
async fn open_until_eof(s: &mut TcpStream, open: &mut RecvCipher) -> io::Result<()> {
    loop {
        let mut head = [0u8; HEADER_LEN];
        match s.read(&mut head[..1]).await? {
            0 => return Ok(()),
            _ => s.read_exact(&mut head[1..]).await?,
        };
        let len = parse_header(&head, HANDSHAKE_FRAME_LIMIT)
            .map_err(proto)?
            .ok_or_else(|| io::Error::other("short header"))?;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await?;
        open.open_in_place(&mut body).map_err(proto)?;
    }
}

/// The responder side of one connection: XX, the confirming Ping (spec 3.4), then the
/// initiator's frames (its Pong and Goodbye) until it closes, then close.
async fn respond(mut s: TcpStream, key: [u8; 32], hello: Hello) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut hs = Handshake::responder(&key, &hello).map_err(proto)?;
    hs.read_m1(&read_frame(&mut s).await?).map_err(proto)?;
    write_frame(&mut s, &hs.write_m2().map_err(proto)?).await?;
    hs.read_m3(&read_frame(&mut s).await?).map_err(proto)?;
    let (mut seal, mut open) = hs.split().map_err(proto)?;
    write_sealed(&mut s, &mut seal, &Envelope::Ping { nonce: 1 }).await?;
    open_until_eof(&mut s, &mut open).await?;
    s.shutdown().await
}

/// The initiator side: connect, XX, wait for the Ping (connected), answer it; then, as
/// PeerNet's disconnect, a Goodbye, shut down, and wait for the responder's close.
async fn initiate(addr: SocketAddr, key: [u8; 32], hello: Hello) -> io::Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut hs = Handshake::initiator(&key, &hello).map_err(proto)?;
    write_frame(&mut s, &hs.write_m1().map_err(proto)?).await?;
    hs.read_m2(&read_frame(&mut s).await?).map_err(proto)?;
    write_frame(&mut s, &hs.write_m3().map_err(proto)?).await?;
    let (mut seal, mut open) = hs.split().map_err(proto)?;
    let mut ping = read_frame(&mut s).await?;
    open.open_in_place(&mut ping).map_err(proto)?;
    write_sealed(&mut s, &mut seal, &Envelope::Pong { nonce: 1 }).await?;
    let bye = Envelope::Goodbye {
        reason: GoodbyeReason::Closing,
    };
    write_sealed(&mut s, &mut seal, &bye).await?;
    s.shutdown().await?;
    until_eof(&mut s).await
}

/// Authenticated connections per second over raw TCP: `HS_CLIENTS` tasks in a
/// connect + XX + Ping/Pong + close loop against one accept loop, all on the current
/// runtime, as PeerNet's handshake benchmark runs its nodes.
pub async fn handshakes(b: Budget) -> io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let hello = Hello::new(1 << 20, 4000);
    let server = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                a = listener.accept() => {
                    let Ok((s, _)) = a else { return };
                    conns.spawn(respond(s, [13; 32], hello));
                }
                Some(r) = conns.join_next(), if !conns.is_empty() => {
                    if !matches!(r, Ok(Ok(()))) {
                        return;
                    }
                }
            }
        }
    });
    let run = |bound: Bound| async move {
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..HS_CLIENTS {
            let done = Arc::clone(&done);
            tasks.spawn(async move {
                while bound.go(done.load(Ordering::Relaxed)) {
                    initiate(addr, [11; 32], hello).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), io::Error>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.map_err(io::Error::other)??;
        }
        Ok::<u64, io::Error>(done.load(Ordering::Relaxed))
    };
    // TIME_WAIT sockets pile up on the dialing side: keep the count modest, as for PeerNet.
    let cap = b.max_count.min(20_000);
    run(Bound::new(b.warmup, cap)).await?;
    let bound = Bound::new(b.time, cap);
    let n = run(bound).await?;
    server.abort();
    eprintln!("  {n} raw connections in {:.2?}", bound.elapsed());
    Ok(rate(n, bound.elapsed()))
}
