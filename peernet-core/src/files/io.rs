//! Small I/O helpers of the file transfer: exact reads from a stream with a deadline,
//! and SHA-256 of a file off the runtime threads.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::Stream;

/// Bytes read or written per step (one stream chunk).
pub(crate) const CHUNK: usize = 64 * 1024;

/// Fills `buf` from the stream, each read within `timeout`. `what` names the piece in
/// the errors. The end of the stream before `buf` is full is an error.
pub(crate) async fn read_exact(
    s: &mut Stream,
    buf: &mut [u8],
    timeout: Duration,
    what: &str,
) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let n = read_some(s, &mut buf[got..], timeout, what).await?;
        if n == 0 {
            // The peer broke the protocol (or gave up): its fault, not a bug here.
            return Err(Error::HandlerFailed(format!(
                "the peer ended the stream after {got} of the {} bytes of {what}",
                buf.len()
            )));
        }
        got += n;
    }
    Ok(())
}

/// One read within `timeout` (`Ok(0)`: the peer finished its direction).
pub(crate) async fn read_some(
    s: &mut Stream,
    buf: &mut [u8],
    timeout: Duration,
    what: &str,
) -> Result<usize> {
    match tokio::time::timeout(timeout, s.read(buf)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::debug!(what, ?timeout, "file stream: peer silent");
            Err(Error::Timeout)
        }
    }
}

/// Writes all of `data` within `timeout`.
pub(crate) async fn write_all(s: &mut Stream, data: &[u8], timeout: Duration) -> Result<()> {
    match tokio::time::timeout(timeout, s.write_all(data)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout),
    }
}

/// SHA-256 of the first `len` bytes of the file at `path` (on the blocking pool: a big
/// file takes seconds). An error if the file is shorter.
pub(crate) async fn sha256_of(path: &Path, len: u64) -> Result<[u8; 32]> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let ctx = |what: &str| format!("{what} {} to hash it", path.display());
        let f = File::open(&path).map_err(|e| Error::io(ctx("opening"), e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut r = f.take(len);
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf).map_err(|e| Error::io(ctx("reading"), e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            total += n as u64;
        }
        if total != len {
            return Err(Error::io(
                ctx("reading"),
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("it has {total} bytes, not {len} (did it change?)"),
                ),
            ));
        }
        Ok(h.finalize().into())
    })
    .await
    .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))?
}

/// Lower-case hex of a hash.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
