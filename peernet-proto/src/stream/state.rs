//! One stream's state: its send half (buffer bounded by a cap, credit from the peer)
//! and its receive half (buffer bounded by the window this side granted).

use std::collections::VecDeque;

use super::wire::put_data_header;
use super::Violation;

/// What a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// This many bytes (at least 1) were copied into the buffer.
    Bytes(usize),
    /// Nothing buffered now; [`StreamEvent::Readable`](super::StreamEvent::Readable)
    /// or [`StreamEvent::Finished`](super::StreamEvent::Finished) comes when that
    /// changes. (Also what an empty buffer argument gets.)
    Blocked,
    /// The peer finished and every byte was read: the peer's direction is over.
    End,
}

/// Where this side's direction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fin {
    /// Still writing.
    Open,
    /// `finish` was called; the Fin goes once the buffer is sent.
    Queued,
    /// The Fin was handed to the transmit path.
    Sent,
}

/// This side's direction of a stream.
#[derive(Debug)]
pub(super) struct SendHalf {
    /// Written, not yet transmitted (never more than `cap`).
    buf: VecDeque<u8>,
    cap: usize,
    /// Offset of the next byte to transmit.
    pub(super) sent: u64,
    /// The peer's cumulative credit: bytes with offsets below may be transmitted.
    pub(super) limit: u64,
    pub(super) fin: Fin,
    /// A write was cut short: [`StreamEvent::Writable`](super::StreamEvent::Writable)
    /// is owed once room frees up.
    pub(super) blocked: bool,
}

impl SendHalf {
    pub(super) fn new(cap: usize) -> SendHalf {
        SendHalf {
            buf: VecDeque::new(),
            cap,
            sent: 0,
            limit: 0,
            fin: Fin::Open,
            blocked: false,
        }
    }

    /// Buffers what fits under the cap; returns how much.
    pub(super) fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.cap - self.buf.len());
        if n < data.len() {
            self.blocked = true;
        }
        if n > 0 {
            grow(&mut self.buf, n, self.cap);
            self.buf.extend(&data[..n]);
        }
        n
    }

    pub(super) fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes the credit lets go now.
    fn room(&self) -> usize {
        usize::try_from(self.limit.saturating_sub(self.sent))
            .unwrap_or(usize::MAX)
            .min(self.buf.len())
    }

    /// True when the transmit path has something for this stream: data within credit,
    /// or the Fin after the last byte.
    pub(super) fn ready(&self) -> bool {
        self.room() > 0 || (self.fin == Fin::Queued && self.buf.is_empty())
    }

    /// Raises the credit (cumulative: a lower limit changes nothing).
    pub(super) fn credit(&mut self, limit: u64) {
        self.limit = self.limit.max(limit);
    }

    /// Appends one StreamData of at most `max` bytes within credit to `out` and
    /// returns the data length; 0 when nothing may go.
    pub(super) fn take_chunk(&mut self, id: u64, max: usize, out: &mut Vec<u8>) -> usize {
        let n = self.room().min(max);
        if n == 0 {
            return 0;
        }
        out.reserve(super::wire::DATA_HEADER_LEN + n);
        put_data_header(out, id, self.sent, n);
        let (a, b) = self.buf.as_slices();
        let from_a = n.min(a.len());
        out.extend_from_slice(&a[..from_a]);
        out.extend_from_slice(&b[..n - from_a]);
        self.buf.drain(..n);
        self.sent += n as u64;
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            self.buf = VecDeque::new();
        }
        n
    }

    /// Drops what was not sent (the stream was reset).
    pub(super) fn discard(&mut self) {
        self.buf = VecDeque::new();
    }
}

/// An empty buffer larger than this is freed (an idle stream keeps little).
const KEEP_CAPACITY: usize = 64 * 1024;

/// Reserves room for `n` more bytes, growing at most to `bound` (amortised doubling,
/// but never past what the stream may hold).
fn grow(buf: &mut VecDeque<u8>, n: usize, bound: usize) {
    let need = buf.len() + n;
    if need > buf.capacity() {
        let target = need
            .max(buf.capacity().saturating_mul(2))
            .min(bound.max(need));
        buf.reserve_exact(target - buf.len());
    }
}

/// The peer's direction of a stream.
#[derive(Debug)]
pub(super) struct RecvHalf {
    /// Received, not yet read (never more than `window`).
    buf: VecDeque<u8>,
    window: u64,
    /// Bytes received (the offset the next StreamData must have).
    pub(super) received: u64,
    /// Bytes read by the application.
    read: u64,
    /// The cumulative credit granted to the peer.
    pub(super) limit: u64,
    /// The peer's Fin arrived.
    pub(super) fin: bool,
    /// The application read [`Read::End`].
    pub(super) ended: bool,
    /// Readable was announced and not yet consumed by a read that emptied the buffer.
    pub(super) readable_owed: bool,
}

impl RecvHalf {
    pub(super) fn new(window: u64) -> RecvHalf {
        RecvHalf {
            buf: VecDeque::new(),
            window,
            received: 0,
            read: 0,
            limit: 0,
            fin: false,
            ended: false,
            readable_owed: false,
        }
    }

    pub(super) fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Checks and buffers one StreamData; true when the buffer went from empty to not
    /// (a Readable is due).
    pub(super) fn on_data(
        &mut self,
        id: u64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<bool, Violation> {
        if self.fin {
            return Err(Violation::DataAfterFin { id });
        }
        if offset != self.received {
            return Err(Violation::BadOffset {
                id,
                offset,
                expected: self.received,
            });
        }
        let end = offset.saturating_add(bytes.len() as u64);
        if end > self.limit {
            return Err(Violation::CreditExceeded {
                id,
                end,
                limit: self.limit,
            });
        }
        self.received = end;
        if bytes.is_empty() {
            return Ok(false);
        }
        let was_empty = self.buf.is_empty();
        // Never above the window: received - read <= limit - read <= window.
        let bound = usize::try_from(self.window).unwrap_or(usize::MAX);
        grow(&mut self.buf, bytes.len(), bound);
        self.buf.extend(bytes);
        Ok(was_empty)
    }

    /// The peer's Fin.
    pub(super) fn on_fin(&mut self, id: u64) -> Result<(), Violation> {
        if self.fin {
            return Err(Violation::DataAfterFin { id });
        }
        self.fin = true;
        Ok(())
    }

    /// Copies out what is buffered.
    pub(super) fn read(&mut self, out: &mut [u8]) -> Read {
        if self.buf.is_empty() {
            if self.fin {
                self.ended = true;
                return Read::End;
            }
            self.readable_owed = false;
            return Read::Blocked;
        }
        if out.is_empty() {
            return Read::Blocked;
        }
        let n = out.len().min(self.buf.len());
        let (a, b) = self.buf.as_slices();
        let from_a = n.min(a.len());
        out[..from_a].copy_from_slice(&a[..from_a]);
        out[from_a..n].copy_from_slice(&b[..n - from_a]);
        self.buf.drain(..n);
        self.read += n as u64;
        if self.buf.is_empty() {
            self.readable_owed = false;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = VecDeque::new();
            }
        }
        Read::Bytes(n)
    }

    /// The new cumulative credit to grant, when it is due: the application read at
    /// least half a window since the last grant (so credits are not sent per read; the
    /// first grant, from 0 to a window, is always due), and the peer has not finished.
    pub(super) fn credit_due(&self) -> Option<u64> {
        if self.fin {
            return None;
        }
        let new = self.read.saturating_add(self.window);
        (new.saturating_sub(self.limit) >= (self.window / 2).max(1)).then_some(new)
    }

    /// Records a credit as sent (the peer may send below `limit` from now on).
    pub(super) fn grant(&mut self, limit: u64) {
        self.limit = self.limit.max(limit);
    }

    pub(super) fn discard(&mut self) {
        self.buf = VecDeque::new();
    }
}

/// One stream of the table.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) send: SendHalf,
    pub(super) recv: RecvHalf,
    /// Opened by the peer and not accepted yet: no credit granted, no writes.
    pub(super) pending_accept: bool,
    /// Opened by this side (counts against this side's limit, not the peer's).
    pub(super) local: bool,
    /// In the scheduler's ring.
    pub(super) in_ring: bool,
    /// In the table's queue of credits to send.
    pub(super) credit_queued: bool,
}

impl Stream {
    pub(super) fn new(local: bool, send_cap: usize, window: u64) -> Stream {
        Stream {
            send: SendHalf::new(send_cap),
            recv: RecvHalf::new(window),
            pending_accept: !local,
            local,
            in_ring: false,
            credit_queued: false,
        }
    }

    /// Both directions are over: this side's Fin went and the application read the
    /// peer's end. The table then forgets the stream.
    pub(super) fn is_done(&self) -> bool {
        self.send.fin == Fin::Sent && self.recv.ended
    }
}
