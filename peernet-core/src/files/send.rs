//! The sending side of [`Node::send_file`].

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use peernet_proto::Key;

use crate::error::{Error, Result};
use crate::node::Node;
use crate::Stream;

use super::io::{read_exact, sha256_of, write_all, CHUNK};
use super::recv::RESET_BASE;
use super::wire::{check_file_name, Header, Reply, Status, MAX_REPLY_MESSAGE, REPLY_PREFIX};
use super::{SendOptions, SendReport, FILE_STREAM};

/// Extra wait for the last answer, per byte of the file (the receiver hashes it all):
/// one second per 64 MiB.
const HASH_BYTES_PER_SEC: u64 = 64 << 20;

/// One attempt's outcome.
enum Attempt {
    Done {
        resumed_from: u64,
        sent: u64,
    },
    /// The receiver resumed from `resumed_from`, and the whole file's hash was wrong.
    BadHash {
        resumed_from: u64,
        sent: u64,
        message: String,
    },
}

pub(crate) async fn send_file(
    node: &Node,
    key: &Key,
    path: &Path,
    options: SendOptions,
) -> Result<SendReport> {
    let name = match &options.name {
        Some(n) => n.clone(),
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{} has no UTF-8 file name to send it under; give one (SendOptions::name)",
                    path.display()
                ))
            })?
            .to_owned(),
    };
    check_file_name(&name)?;
    let size = regular_file_size(path)?;
    let sha256 = sha256_of(path, size).await?;
    let header = Header { name, size, sha256 };
    let mut sent = 0;
    let mut restarted = false;
    loop {
        match attempt(node, key, path, &header, &options).await? {
            Attempt::Done {
                resumed_from,
                sent: s,
            } => {
                return Ok(SendReport {
                    name: header.name,
                    size,
                    resumed_from,
                    sent: sent + s,
                    restarted,
                    sha256,
                })
            }
            // The receiver's partial copy was damaged; it threw it away, so the next
            // attempt starts from nothing. Once only: a bad hash from the start means
            // the file changed while it was read, or the data was damaged.
            Attempt::BadHash {
                resumed_from,
                sent: s,
                message,
            } => {
                sent += s;
                if resumed_from == 0 || restarted {
                    return Err(Error::HandlerFailed(format!(
                        "file receiver: {message} (did {} change while it was sent? \
                         send it again)",
                        path.display()
                    )));
                }
                tracing::info!(name = %header.name, resumed_from, "partial copy damaged; sending it all again");
                restarted = true;
            }
        }
    }
}

fn regular_file_size(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::io(format!("the file to send, {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "{} is not a regular file (only files are sent)",
            path.display()
        )));
    }
    Ok(meta.len())
}

async fn attempt(
    node: &Node,
    key: &Key,
    path: &Path,
    h: &Header,
    options: &SendOptions,
) -> Result<Attempt> {
    let t = options.timeout;
    let mut s = node.open_stream(key, FILE_STREAM).await?;
    let r = async {
        write_all(&mut s, &h.encode(), t).await?;
        let ready = read_reply(&mut s, t).await?;
        if ready.status != Status::Ready {
            return Err(refused(ready));
        }
        let offset = ready.value;
        if offset > h.size {
            return Err(Error::HandlerFailed(format!(
                "the file receiver resumes at byte {offset} of a {}-byte file",
                h.size
            )));
        }
        let sent = send_data(&mut s, path, h.size, offset, options).await?;
        s.finish()?;
        let extra = Duration::from_secs(h.size / HASH_BYTES_PER_SEC);
        let last = read_reply(&mut s, t + extra).await?;
        match last.status {
            Status::Done => Ok(Attempt::Done {
                resumed_from: offset,
                sent,
            }),
            Status::BadHash => Ok(Attempt::BadHash {
                resumed_from: offset,
                sent,
                message: last.message,
            }),
            _ => Err(refused(last)),
        }
    }
    .await;
    r.map_err(|e| match e {
        // Refused at open: the peer exposes no file receiver (or not to us).
        Error::StreamReset { code: 1, .. } => Error::NoSuchHandler(FILE_STREAM.to_owned()),
        // Refused while the data still flowed (its disk, more data than announced).
        Error::StreamReset { code, reason } if (RESET_BASE..RESET_BASE + 256).contains(&code) => {
            Error::HandlerFailed(format!("file receiver refused the file: {reason}"))
        }
        e => e,
    })
}

/// Sends bytes `offset..size` of the file; returns how many.
async fn send_data(
    s: &mut Stream,
    path: &Path,
    size: u64,
    offset: u64,
    options: &SendOptions,
) -> Result<u64> {
    let ctx = |what: &str| format!("{what} {}", path.display());
    let mut f = File::open(path).map_err(|e| Error::io(ctx("opening"), e))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io(ctx("seeking in"), e))?;
    let mut f = f.take(size - offset);
    let mut buf = vec![0u8; CHUNK];
    let mut done = offset;
    if let Some(p) = &options.progress {
        p(done, size);
    }
    while done < size {
        let n = f.read(&mut buf).map_err(|e| Error::io(ctx("reading"), e))?;
        if n == 0 {
            return Err(Error::io(
                ctx("reading"),
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("it ended at byte {done} of {size} (did it change?)"),
                ),
            ));
        }
        write_all(s, &buf[..n], options.timeout).await?;
        done += n as u64;
        if let Some(p) = &options.progress {
            p(done, size);
        }
    }
    Ok(done - offset)
}

async fn read_reply(s: &mut Stream, t: Duration) -> Result<Reply> {
    let mut p = [0u8; REPLY_PREFIX];
    read_exact(s, &mut p, t, "the file receiver's answer").await?;
    let (status, value, len) = Reply::decode_prefix(&p)?;
    debug_assert!(len <= MAX_REPLY_MESSAGE);
    let mut msg = vec![0u8; len];
    read_exact(s, &mut msg, t, "the file receiver's answer").await?;
    Ok(Reply {
        status,
        value,
        message: String::from_utf8_lossy(&msg).into_owned(),
    })
}

/// A refusal of the receiver as the caller's error.
fn refused(r: Reply) -> Error {
    match r.status {
        Status::Exists => Error::AlreadyExists(format!("file receiver: {}", r.message)),
        _ => Error::HandlerFailed(format!("file receiver refused the file: {}", r.message)),
    }
}
