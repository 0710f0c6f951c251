//! The writer task: seals every queued envelope and coalesces them into one socket
//! write (spec 4: the send counter advances in write order).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use peernet_proto::channel::SendCipher;
use peernet_proto::frame::HEADER_LEN;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::{CloseCause, Conn, Out};

/// Envelopes taken from the queue per wake-up.
const BATCH: usize = 256;
/// Write out once this much is sealed, even mid-batch.
const FLUSH_AT: usize = 256 * 1024;
/// Frames at least this large are sealed in their own buffer and written directly.
const DIRECT_AT: usize = 16 * 1024;
/// A write buffer grown past this by a burst is released after `IDLE_SHRINK` without
/// anything to write (not after every burst: bulk transfers would reallocate per batch).
const KEEP_CAPACITY: usize = 16 * 1024;
const IDLE_SHRINK: Duration = Duration::from_secs(1);
/// One batch in this many yields once before writing, to detect load.
const PROBE_EVERY: u32 = 16;

/// Runs until `Out::Close`, the queue closing, or an error (returned as the cause).
pub(super) async fn run(
    conn: Arc<Conn>,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    mut cipher: SendCipher,
) -> Option<CloseCause> {
    let mut batch = Vec::with_capacity(BATCH);
    let mut buf: Vec<u8> = Vec::new();
    let mut last_frames = 0u64;
    let mut batches = 0u32;
    loop {
        let got = if buf.capacity() > KEEP_CAPACITY {
            match tokio::time::timeout(IDLE_SHRINK, rx.recv_many(&mut batch, BATCH)).await {
                Ok(n) => n,
                Err(_) => {
                    buf = Vec::new();
                    rx.recv_many(&mut batch, BATCH).await
                }
            }
        } else {
            rx.recv_many(&mut batch, BATCH).await
        };
        if got == 0 {
            return None;
        }
        // Under load (the last write carried several frames) give the producers one
        // scheduler round to queue more, then take what came: on the multi-thread
        // runtime this turns one write per frame into one write per batch. Every 16th
        // batch probes the same way, so a writer that fell into one-frame writes finds
        // out that more was coming. With one message in flight nothing else waits.
        batches = batches.wrapping_add(1);
        if (last_frames > 1 || batches % PROBE_EVERY == 0) && batch.len() < BATCH {
            tokio::task::yield_now().await;
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(out) => batch.push(out),
                    Err(_) => break,
                }
            }
        }
        let mut close = false;
        let mut frames = 0u64;
        let mut written = 0u64;
        for out in batch.drain(..) {
            match out {
                Out::Frame(plain, _permit) if plain.len() >= DIRECT_AT => {
                    let mut frame = plain.into_frame();
                    // Large: write what is buffered, then seal this frame where it was
                    // encoded and write it as it is (no copy into the buffer).
                    written += frames;
                    if let Err(e) = flush(&conn, &mut wr, &mut buf, &mut frames).await {
                        return Some(e);
                    }
                    if let Err(e) = seal_frame(&mut cipher, &mut frame, 0) {
                        return Some(e);
                    }
                    frames = 1;
                    written += 1;
                    if let Err(e) = flush(&conn, &mut wr, &mut frame, &mut frames).await {
                        return Some(e);
                    }
                }
                Out::Frame(plain, _permit) => {
                    let start = buf.len();
                    buf.extend_from_slice(&plain.into_frame());
                    if let Err(e) = seal_frame(&mut cipher, &mut buf, start) {
                        return Some(e);
                    }
                    frames += 1;
                }
                Out::Close => {
                    close = true;
                    break;
                }
            }
            if buf.len() >= FLUSH_AT {
                written += frames;
                if let Err(e) = flush(&conn, &mut wr, &mut buf, &mut frames).await {
                    return Some(e);
                }
            }
        }
        written += frames;
        if let Err(e) = flush(&conn, &mut wr, &mut buf, &mut frames).await {
            return Some(e);
        }
        last_frames = written;
        if close {
            let _ = wr.shutdown().await;
            return None;
        }
    }
}

/// Seals the frame that starts at `start` of `buf` (header room, then plaintext, up to
/// the end of `buf`) and writes its header.
fn seal_frame(cipher: &mut SendCipher, buf: &mut Vec<u8>, start: usize) -> Result<(), CloseCause> {
    cipher
        .seal_in_place(buf, start + HEADER_LEN)
        .map_err(|e| CloseCause::Protocol(e.to_string()))?;
    let n = (buf.len() - start - HEADER_LEN) as u32;
    buf[start..start + HEADER_LEN].copy_from_slice(&n.to_be_bytes());
    Ok(())
}

async fn flush(
    conn: &Conn,
    wr: &mut OwnedWriteHalf,
    buf: &mut Vec<u8>,
    frames: &mut u64,
) -> Result<(), CloseCause> {
    if buf.is_empty() {
        return Ok(());
    }
    wr.write_all(buf)
        .await
        .map_err(|e| CloseCause::Io(e.to_string()))?;
    conn.stats
        .bytes_out
        .fetch_add(buf.len() as u64, Ordering::Relaxed);
    conn.stats.frames_out.fetch_add(*frames, Ordering::Relaxed);
    *frames = 0;
    buf.clear();
    Ok(())
}
