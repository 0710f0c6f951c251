//! The program's end of one stream ([`Stream`]) and the state it shares with the
//! connection's driver. The driver owns the stream in the connection machine; between
//! the two sit two small bounded buffers (what the program wrote and the driver has
//! not handed to the machine yet, what the machine received and the program has not
//! read yet). A change on either side wakes the other: the program pokes the driver
//! with a command, the driver wakes the program's task (or a blocked thread).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use peernet_proto::stream::RESET_CANCELLED;
use peernet_proto::Key;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use super::stream_buf::Inbox;
use super::{lock, Cmd};
use crate::error::{CloseReason, Error, Result};

/// Bytes the program may have written that the driver has not taken yet.
pub(crate) const OUTBOX_CAP: usize = 64 * 1024;
/// Bytes the driver moves out of the machine ahead of the program's reads.
pub(crate) const INBOX_CAP: usize = 64 * 1024;
/// Longest reset reason sent (longer ones are cut on a character boundary).
const MAX_REASON: usize = 255;

/// How a stream ended abnormally.
#[derive(Debug, Clone)]
pub(crate) enum Ended {
    /// Reset by the peer (or refused), with its code and reason.
    Reset { code: u32, reason: String },
    /// Reset by this side: nothing more flows.
    ResetHere,
    /// The connection ended with the stream open.
    Closed(CloseReason),
}

impl Ended {
    fn error(&self) -> Error {
        match self {
            Ended::Reset { code, reason } => Error::StreamReset {
                code: *code,
                reason: reason.clone(),
            },
            Ended::ResetHere => Error::InvalidArgument("the stream was reset by this side".into()),
            Ended::Closed(r) => Error::Closed(r.clone()),
        }
    }
}

/// Both ends' view of a stream, under one lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Written by the program, not yet in the machine.
    pub outbox: VecDeque<u8>,
    /// Received by the machine, not yet read by the program.
    pub inbox: Inbox,
    /// The program finished its direction; `fin_sent` once the machine has it.
    pub fin_requested: bool,
    pub fin_sent: bool,
    /// Every byte of the peer's direction is in `inbox` (it finished).
    pub remote_end: bool,
    /// The stream may flow: opened here, or accepted by the handler runner.
    pub accepted: bool,
    pub accept_requested: bool,
    /// A reset this side asked for, for the driver to send.
    pub reset_requested: Option<(u32, String)>,
    pub ended: Option<Ended>,
    /// The stream ended normally both ways and left the machine.
    pub done: bool,
    /// The program dropped its handle: what arrives is discarded.
    pub dropped: bool,
    /// A poke is on its way to the driver (so one is not sent per write).
    pub poked: bool,
    /// The driver left bytes in the machine because `inbox` was full: a read that
    /// frees room pokes it.
    pub inbox_full: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl State {
    /// Wakes whoever waits on this stream (tasks and threads).
    pub(crate) fn wake(&mut self, shared: &Shared) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
        shared.cond.notify_all();
    }
}

/// The state and the way to poke the driver.
#[derive(Debug)]
pub(crate) struct Shared {
    pub id: u64,
    pub state: Mutex<State>,
    pub cond: Condvar,
    cmds: mpsc::UnboundedSender<Cmd>,
}

impl Shared {
    pub(crate) fn new(id: u64, accepted: bool, cmds: mpsc::UnboundedSender<Cmd>) -> Arc<Shared> {
        Arc::new(Shared {
            id,
            state: Mutex::new(State {
                accepted,
                ..State::default()
            }),
            cond: Condvar::new(),
            cmds,
        })
    }

    /// Asks the driver to look at this stream (at most one poke in flight). A driver
    /// that is gone ends the stream as closed.
    fn poke(&self, st: &mut State) {
        if st.poked || st.ended.is_some() || st.done {
            return;
        }
        st.poked = true;
        if self.cmds.send(Cmd::StreamPoke(self.id)).is_err() {
            st.ended = Some(Ended::Closed(CloseReason::Local(
                "connection closed".into(),
            )));
            st.wake(self);
        }
    }
}

/// One byte stream between this node and a trusted peer, to or from a stream handler
/// (see [`Node::open_stream`](crate::Node::open_stream) and
/// [`Node::expose_stream`](crate::Node::expose_stream)). Both directions are
/// independent: [`Stream::finish`] ends this side's, a read returning 0 means the
/// peer ended its own. Flow control is per stream: a writer waits while the peer's
/// reader is behind, and memory stays bounded on both sides.
///
/// Dropping a stream before [`Stream::finish`] resets it (code 0, cancelled); after
/// `finish`, what was written is still delivered and what arrives later is discarded.
/// Implements tokio's `AsyncRead` and `AsyncWrite` (`poll_shutdown` finishes); the
/// `*_blocking` methods serve threads outside the runtime (the C and Python bindings).
#[derive(Debug)]
pub struct Stream {
    shared: Arc<Shared>,
    peer: Key,
    name: String,
}

impl Stream {
    pub(crate) fn new(shared: Arc<Shared>, peer: Key, name: String) -> Stream {
        Stream { shared, peer, name }
    }

    /// The stream's id on its connection (odd when the dialer opened it).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The peer at the other end.
    pub fn peer(&self) -> Key {
        self.peer
    }

    /// The stream handler name it was opened to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The handler runner's yes: the stream may flow (the peer gets its window).
    pub(crate) fn request_accept(&self) {
        let mut st = self.state();
        st.accept_requested = true;
        self.shared.poke(&mut st);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// One read attempt: `Some` when it is over (bytes, the end, an error).
    fn try_read(&self, st: &mut State, buf: &mut [u8]) -> Option<Result<usize>> {
        if buf.is_empty() {
            return Some(Ok(0));
        }
        if !st.inbox.is_empty() {
            let n = st.inbox.take(buf);
            if st.inbox_full {
                st.inbox_full = false;
                self.shared.poke(st);
            }
            return Some(Ok(n));
        }
        if st.remote_end {
            return Some(Ok(0));
        }
        st.ended.as_ref().map(|e| Err(e.error()))
    }

    /// One write attempt: `Some` when it is over (bytes taken, an error).
    fn try_write(&self, st: &mut State, data: &[u8]) -> Option<Result<usize>> {
        if let Some(e) = &st.ended {
            return Some(Err(e.error()));
        }
        if st.fin_requested || st.done {
            return Some(Err(Error::InvalidArgument(
                "the stream was finished: nothing more can be written".into(),
            )));
        }
        if data.is_empty() {
            return Some(Ok(0));
        }
        let room = OUTBOX_CAP.saturating_sub(st.outbox.len());
        if room == 0 {
            return None;
        }
        let n = room.min(data.len());
        // A slice iterator of a `Copy` type: std extends a VecDeque with memcpy.
        st.outbox.extend(data.get(..n).unwrap_or_default().iter());
        self.shared.poke(st);
        Some(Ok(n))
    }

    /// Reads up to `buf.len()` bytes, waiting for at least one. `Ok(0)`: the peer
    /// finished its direction and everything was read (or `buf` is empty).
    /// `Err(StreamReset)` when the peer reset (or refused) the stream, `Err(Closed)`
    /// when the connection ended first.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        poll_fn(|cx| self.poll_read_bytes(cx, buf)).await
    }

    fn poll_read_bytes(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        let mut st = self.state();
        match self.try_read(&mut st, buf) {
            Some(r) => Poll::Ready(r),
            None => {
                st.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Writes some of `data`, waiting for room; returns how many bytes it took (at
    /// least 1 unless `data` is empty). Fails after [`Stream::finish`], on a reset or a
    /// closed connection.
    pub async fn write(&mut self, data: &[u8]) -> Result<usize> {
        poll_fn(|cx| self.poll_write_bytes(cx, data)).await
    }

    fn poll_write_bytes(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<Result<usize>> {
        let mut st = self.state();
        match self.try_write(&mut st, data) {
            Some(r) => Poll::Ready(r),
            None => {
                st.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Writes all of `data` (waiting for room as often as needed).
    pub async fn write_all(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = self.write(data).await?;
            data = data.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// Ends this side's direction: the peer reads the end after everything written.
    /// The peer's direction stays open. A second finish is a no-op.
    pub fn finish(&self) -> Result<()> {
        let mut st = self.state();
        if let Some(e) = &st.ended {
            return Err(e.error());
        }
        if !st.fin_requested {
            st.fin_requested = true;
            self.shared.poke(&mut st);
        }
        Ok(())
    }

    /// Aborts the stream both ways: the peer's reads and writes fail with
    /// `StreamReset { code, reason }` (the reason is cut to 255 bytes); what is
    /// buffered either way is dropped. Codes 0 to 15 are PeerNet's (0 = cancelled,
    /// 1 = refused, 2 = too many streams); applications use 16 and up.
    pub fn reset(&self, code: u32, reason: &str) {
        let mut st = self.state();
        self.reset_locked(&mut st, code, reason);
    }

    fn reset_locked(&self, st: &mut State, code: u32, reason: &str) {
        if st.ended.is_some() || st.done {
            return;
        }
        let mut cut = reason.len().min(MAX_REASON);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        st.reset_requested = Some((code, reason.get(..cut).unwrap_or_default().to_owned()));
        st.ended = Some(Ended::ResetHere);
        st.outbox.clear();
        st.inbox.clear();
        // A poke already on its way finds the reset; else one goes now (`poke` skips
        // an ended stream). A driver that is gone has nothing left to reset.
        if !st.poked
            && self
                .shared
                .cmds
                .send(Cmd::StreamPoke(self.shared.id))
                .is_ok()
        {
            st.poked = true;
        }
        st.wake(&self.shared);
    }

    /// Waits until everything written was handed to the connection (not that the
    /// peer read it).
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.poll_flush_bytes(cx)).await
    }

    fn poll_flush_bytes(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut st = self.state();
        if let Some(e) = &st.ended {
            return Poll::Ready(Err(e.error()));
        }
        if st.outbox.is_empty() {
            return Poll::Ready(Ok(()));
        }
        st.write_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// [`Stream::read`] for a thread outside the runtime: waits up to `timeout`
    /// (`None`: no limit), then `Err(Timeout)`.
    pub fn read_blocking(&self, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize> {
        self.blocking(timeout, |st| self.try_read(st, buf))
    }

    /// [`Stream::write`] for a thread outside the runtime: takes at least one byte
    /// within `timeout` (`None`: no limit), else `Err(Timeout)`.
    pub fn write_blocking(&self, data: &[u8], timeout: Option<Duration>) -> Result<usize> {
        self.blocking(timeout, |st| self.try_write(st, data))
    }

    /// [`Stream::write_all`] for a thread outside the runtime, within one `timeout`
    /// for all of it; on `Err(Timeout)` some bytes may have been taken.
    pub fn write_all_blocking(&self, mut data: &[u8], timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        while !data.is_empty() {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let n = self.write_blocking(data, left)?;
            data = data.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    fn blocking<T>(
        &self,
        timeout: Option<Duration>,
        mut attempt: impl FnMut(&mut State) -> Option<Result<T>>,
    ) -> Result<T> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.state();
        loop {
            if let Some(r) = attempt(&mut st) {
                return r;
            }
            st = match deadline {
                None => self.shared.cond.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Timeout);
                    }
                    let (g, _) = self
                        .shared
                        .cond
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner());
                    g
                }
            };
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut st = self.state();
        st.dropped = true;
        st.inbox.clear();
        if st.fin_requested || st.done || st.ended.is_some() {
            // Finished: what was written still goes; the driver discards input.
            self.shared.poke(&mut st);
        } else {
            self.reset_locked(&mut st, RESET_CANCELLED, "");
        }
    }
}

fn io_error(e: Error) -> io::Error {
    let kind = match &e {
        Error::StreamReset { .. } => io::ErrorKind::ConnectionReset,
        Error::Closed(_) => io::ErrorKind::ConnectionAborted,
        Error::Timeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let dst = buf.initialize_unfilled();
        match self.poll_read_bytes(cx, dst) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(io_error(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_bytes(cx, data).map_err(io_error)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_bytes(cx).map_err(io_error)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(e) = self.finish() {
            return Poll::Ready(Err(io_error(e)));
        }
        self.poll_flush_bytes(cx).map_err(io_error)
    }
}
