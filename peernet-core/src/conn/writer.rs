//! The writer task: seals every queued envelope and coalesces them into one socket
//! write (spec 4: the send counter advances in write order).

use std::sync::atomic::Ordering;
use std::sync::Arc;

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
/// A write buffer grown past this by a burst is released once the burst is written.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Runs until `Out::Close`, the queue closing, or an error (returned as the cause).
pub(super) async fn run(
    conn: Arc<Conn>,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    mut cipher: SendCipher,
) -> Option<CloseCause> {
    let mut batch = Vec::with_capacity(BATCH);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if rx.recv_many(&mut batch, BATCH).await == 0 {
            return None;
        }
        let mut close = false;
        let mut frames = 0u64;
        for out in batch.drain(..) {
            match out {
                Out::Frame(plain, _permit) => {
                    let start = buf.len();
                    buf.extend_from_slice(&[0; HEADER_LEN]);
                    buf.extend_from_slice(&plain);
                    if let Err(e) = cipher.seal_in_place(&mut buf, start + HEADER_LEN) {
                        return Some(CloseCause::Protocol(e.to_string()));
                    }
                    let n = (buf.len() - start - HEADER_LEN) as u32;
                    buf[start..start + HEADER_LEN].copy_from_slice(&n.to_be_bytes());
                    frames += 1;
                }
                Out::Close => {
                    close = true;
                    break;
                }
            }
            if buf.len() >= FLUSH_AT {
                if let Err(e) = flush(&conn, &mut wr, &mut buf, &mut frames).await {
                    return Some(e);
                }
            }
        }
        if let Err(e) = flush(&conn, &mut wr, &mut buf, &mut frames).await {
            return Some(e);
        }
        if buf.capacity() > KEEP_CAPACITY {
            buf = Vec::new();
        }
        if close {
            let _ = wr.shutdown().await;
            return None;
        }
    }
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
