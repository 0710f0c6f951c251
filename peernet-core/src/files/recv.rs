//! The receiving side: the stream handler behind [`Node::expose_files`](crate::Node).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peernet_proto::Key;
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::{Stream, StreamHandler};

use super::io::{read_exact, read_some, sha256_of, write_all, CHUNK};
use super::part::{Partial, Placed};
use super::wire::{Header, Refusal, Reply, Status, HEADER_PREFIX, HEADER_SUFFIX};
use super::{ReceiveOptions, ReceivedFile};

/// How long a transfer waits for an earlier one of the same name to end (a sender
/// that resends at once after a dropped connection finds the old transfer still
/// noticing the drop) before it is refused as busy.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// State shared by every transfer into one directory.
struct Receiver {
    dir: PathBuf,
    options: ReceiveOptions,
    /// Names being received now: a second transfer of one of them is refused (two
    /// writers on one partial file would interleave).
    busy: Mutex<HashSet<String>>,
    /// Notified whenever a name leaves `busy`.
    freed: Notify,
}

/// Takes a name out of [`Receiver::busy`] when the transfer ends, however it ends.
struct BusyGuard<'a>(&'a Receiver, String);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0
            .busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
        self.0.freed.notify_waiters();
    }
}

/// The stream handler receiving into `dir`.
pub(crate) fn handler(dir: PathBuf, options: ReceiveOptions) -> Result<StreamHandler> {
    let meta = std::fs::metadata(&dir)
        .map_err(|e| Error::io(format!("the receive directory {}", dir.display()), e))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "{} is not a directory: give the directory received files go to",
            dir.display()
        )));
    }
    let authorize = options.authorize.clone();
    let r = Arc::new(Receiver {
        dir,
        options,
        busy: Mutex::new(HashSet::new()),
        freed: Notify::new(),
    });
    let h = StreamHandler::from_async(move |s: Stream| {
        let r = Arc::clone(&r);
        async move { r.serve(s).await }
    });
    Ok(match authorize {
        Some(a) => h.with_authorize(move |k: &Key| a(k)),
        None => h,
    })
}

/// What ended a transfer before an answer could be given.
enum Outcome {
    /// Answer this and end.
    Answer(Reply),
    /// Refused while the sender is still sending data: a reply would wait behind
    /// data nobody reads, so the stream is reset with this status (as the code
    /// [`RESET_BASE`] + status) and the message as its reason.
    Abort(Refusal),
    /// The stream or connection is gone (or the sender silent): no answer possible.
    Gone(Error),
}

/// Reset codes of a refusal during the data: `RESET_BASE + status` (applications'
/// codes start at 16).
pub(crate) const RESET_BASE: u32 = 256;

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Outcome {
        Outcome::Answer(r.reply())
    }
}

fn storage(e: &Error) -> Refusal {
    Refusal::new(
        Status::Storage,
        format!("the receiver could not store it: {e}"),
    )
}

fn store_failed(e: &Error) -> Outcome {
    storage(e).into()
}

impl Receiver {
    async fn serve(&self, mut s: Stream) {
        let peer = s.peer();
        let answer = match self.transfer(&mut s, &peer).await {
            Ok(reply) => reply,
            Err(Outcome::Answer(reply)) => reply,
            Err(Outcome::Abort(r)) => {
                tracing::info!(peer = %peer.fingerprint(), status = ?r.status,
                               message = %r.message, "file transfer aborted");
                s.reset(RESET_BASE + r.status as u32, &r.message);
                return;
            }
            Err(Outcome::Gone(e)) => {
                tracing::info!(peer = %peer.fingerprint(), error = %e, "file transfer ended early");
                return;
            }
        };
        if answer.status != Status::Done {
            tracing::info!(peer = %peer.fingerprint(), status = ?answer.status,
                           message = %answer.message, "file refused");
        }
        if write_all(&mut s, &answer.encode(), self.options.timeout)
            .await
            .is_ok()
        {
            let _ = s.finish();
        }
    }

    async fn transfer(&self, s: &mut Stream, peer: &Key) -> Result<Reply, Outcome> {
        let t = self.options.timeout;
        let mut prefix = [0u8; HEADER_PREFIX];
        read_exact(s, &mut prefix, t, "the file header")
            .await
            .map_err(Outcome::Gone)?;
        let name_len = Header::name_len(&prefix)?;
        let mut rest = vec![0u8; name_len + HEADER_SUFFIX];
        read_exact(s, &mut rest, t, "the file header")
            .await
            .map_err(Outcome::Gone)?;
        let h = Header::decode_rest(&rest)?;
        let max = self.options.max_size;
        if h.size > max {
            return Err(Refusal {
                status: Status::TooLarge,
                value: max,
                message: format!(
                    "{:?} is {} bytes, over this receiver's limit of {max} bytes \
                     (its max_size; send a smaller file, or raise the limit there)",
                    h.name, h.size
                ),
            }
            .into());
        }
        let dest = self.dir.join(&h.name);
        if !self.options.overwrite && std::fs::symlink_metadata(&dest).is_ok() {
            return Err(exists(&h.name));
        }
        let _busy = self.claim(&h.name).await?;
        let mut part = Partial::open(&self.dir, &h).map_err(|e| store_failed(&e))?;
        let offset = part.len;
        write_all(s, &Reply::new(Status::Ready, offset).encode(), t)
            .await
            .map_err(Outcome::Gone)?;
        self.progress(peer, &h, offset);
        let received = self.receive_data(s, peer, &h, &mut part).await;
        // What arrived is kept durable for a resume, whatever ended the transfer.
        let synced = part.sync();
        received?;
        synced.map_err(|e| store_failed(&e))?;
        let sha = sha256_of(part.path(), h.size)
            .await
            .map_err(|e| store_failed(&e))?;
        if sha != h.sha256 {
            part.discard();
            return Err(Outcome::Answer(Reply {
                status: Status::BadHash,
                value: 0,
                message: format!(
                    "the SHA-256 of the {} bytes received is not the one announced; \
                     nothing was kept",
                    h.size
                ),
            }));
        }
        match part
            .place(&h.name, self.options.overwrite)
            .map_err(|e| store_failed(&e))?
        {
            Placed::Exists => Err(exists(&h.name)),
            Placed::Done(path) => {
                tracing::info!(peer = %peer.fingerprint(), name = %h.name, size = h.size,
                               resumed_from = offset, "file received");
                if let Some(cb) = &self.options.on_received {
                    cb(&ReceivedFile {
                        peer: *peer,
                        name: h.name.clone(),
                        path,
                        size: h.size,
                        resumed_from: offset,
                    });
                }
                Ok(Reply::new(Status::Done, h.size))
            }
        }
    }

    /// Reads the rest of the file into `part`, then the end of the sender's direction.
    async fn receive_data(
        &self,
        s: &mut Stream,
        peer: &Key,
        h: &Header,
        part: &mut Partial,
    ) -> Result<(), Outcome> {
        let t = self.options.timeout;
        let mut buf = vec![0u8; CHUNK];
        while part.len < h.size {
            let want = usize::try_from(h.size - part.len).map_or(CHUNK, |w| w.min(CHUNK));
            let n = read_some(s, &mut buf[..want], t, "file data")
                .await
                .map_err(Outcome::Gone)?;
            if n == 0 {
                return Err(Refusal::new(
                    Status::Protocol,
                    format!(
                        "the sender ended after {} of {} bytes; the partial file is kept \
                         for a resume",
                        part.len, h.size
                    ),
                )
                .into());
            }
            part.write(&buf[..n])
                .map_err(|e| Outcome::Abort(storage(&e)))?;
            self.progress(peer, h, part.len);
        }
        let mut extra = [0u8; 1];
        match read_some(s, &mut extra, t, "the end of the data").await {
            Ok(0) => Ok(()),
            Ok(_) => Err(Outcome::Abort(Refusal::new(
                Status::Protocol,
                format!("the sender sent more than the {} bytes announced", h.size),
            ))),
            Err(e) => Err(Outcome::Gone(e)),
        }
    }

    /// Marks `name` as being received, waiting up to [`BUSY_WAIT`] for another
    /// transfer of it to end.
    async fn claim(&self, name: &str) -> Result<BusyGuard<'_>, Outcome> {
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        loop {
            // Created before the check: a name freed in between still wakes it.
            let freed = self.freed.notified();
            let claimed = self
                .busy
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.to_owned());
            if claimed {
                return Ok(BusyGuard(self, name.to_owned()));
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(Refusal::new(
                    Status::Busy,
                    format!(
                        "{name:?} is being received from another transfer right now; \
                         try again once it ended"
                    ),
                )
                .into());
            }
        }
    }

    fn progress(&self, peer: &Key, h: &Header, done: u64) {
        if let Some(p) = &self.options.progress {
            p(peer, &h.name, done, h.size);
        }
    }
}

fn exists(name: &str) -> Outcome {
    Refusal::new(
        Status::Exists,
        format!(
            "{name:?} exists on the receiver, which does not overwrite files; rename or \
             remove it there, or send it under another name"
        ),
    )
    .into()
}
