//! The transmit queue: envelopes encoded back to back, sealed and framed only when the
//! driver takes them (so the send counter advances in write order, spec 4), all of
//! them coalesced into the driver's one buffer.

use std::collections::VecDeque;

use super::{Connection, ConnectionError, DisconnectReason};
use crate::channel::TAG_LEN;
use crate::envelope::Envelope;
use crate::frame::HEADER_LEN;

/// A plaintext buffer grown past this by a burst is released once drained (smaller
/// ones are kept, so bulk transfers do not reallocate per batch; the heartbeat tick
/// frees an idle one, see `shrink_if_idle`).
const KEEP_CAPACITY: usize = 1 << 20;
/// Control frames may queue past the budget up to this floor (see `push_control`).
const CONTROL_FLOOR: usize = 64 * 1024;
/// An idle plaintext buffer larger than this is freed at a heartbeat tick.
const IDLE_CAPACITY: usize = 16 * 1024;

/// Encoded envelopes waiting for `poll_transmit`.
#[derive(Debug, Default)]
pub(super) struct TxQueue {
    /// Every queued envelope's plaintext, back to back, from `head` on (what was
    /// transmitted before `head` is dropped once the queue empties).
    plain: Vec<u8>,
    head: usize,
    /// Length of each, in order.
    lens: VecDeque<usize>,
}

impl TxQueue {
    /// Bytes these frames take on the wire (header and tag included).
    pub(super) fn wire_bytes(&self) -> usize {
        self.plain.len() - self.head + self.lens.len() * (HEADER_LEN + TAG_LEN)
    }

    /// Frees an idle buffer that a burst grew (at a heartbeat tick).
    pub(super) fn shrink_if_idle(&mut self) {
        if self.lens.is_empty() && self.plain.capacity() > IDLE_CAPACITY {
            self.plain = Vec::new();
            self.head = 0;
        }
    }

    /// Wire bytes `env` will take.
    pub(super) fn wire_len(env: &Envelope<'_>) -> usize {
        HEADER_LEN + env.encoded_len() + TAG_LEN
    }

    pub(super) fn push(&mut self, env: &Envelope<'_>) {
        let start = self.plain.len();
        env.encode_into(&mut self.plain);
        self.lens.push_back(self.plain.len() - start);
    }

    /// Puts `env` before everything queued (the dialer's Pong to the confirming Ping
    /// is its first frame, spec 3.4, even when calls were queued before it came).
    pub(super) fn push_front(&mut self, env: &Envelope<'_>) {
        let mut front = Vec::with_capacity(env.encoded_len());
        env.encode_into(&mut front);
        self.lens.push_front(front.len());
        self.plain.splice(self.head..self.head, front);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.plain.clear();
        self.head = 0;
        self.lens.clear();
    }

    /// Drops everything queued, and a buffer a burst grew past `KEEP_CAPACITY`.
    fn release(&mut self) {
        self.clear();
        if self.plain.capacity() > KEEP_CAPACITY {
            self.plain = Vec::new();
        }
    }
}

impl Connection {
    /// Seals every queued envelope into a frame and appends them all to `out` (one
    /// write for the driver); returns the number of bytes appended.
    ///
    /// A dialer transmits nothing until the responder's confirmation arrived (spec
    /// 3.4); what was queued meanwhile waits. After [`Event::Closed`](super::Event::Closed)
    /// this still yields what was queued before the close (a Goodbye among it), once;
    /// the driver writes it, then closes the socket.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.poll_transmit_max(out, usize::MAX)
    }

    /// [`Connection::poll_transmit`], stopping once about `max` bytes were appended
    /// (at least one frame; the rest stays queued, in order, for the next call). A
    /// driver that writes in chunks keeps its write buffer small whatever the budget.
    pub fn poll_transmit_max(&mut self, out: &mut Vec<u8>, max: usize) -> usize {
        if !self.confirmed || self.tx.is_empty() {
            return 0;
        }
        let before = out.len();
        out.reserve(
            self.tx
                .wire_bytes()
                .min(max.saturating_add(HEADER_LEN + TAG_LEN)),
        );
        let mut failed = None;
        while out.len() - before < max {
            let Some(len) = self.tx.lens.pop_front() else {
                break;
            };
            let off = self.tx.head;
            let Some(plain) = self.tx.plain.get(off..off + len) else {
                break;
            };
            self.tx.head += len;
            if let Err(e) = self.send.seal_frame(plain, out) {
                failed = Some(ConnectionError::from(e));
                break;
            }
            self.stats.frames_out += 1;
        }
        if self.tx.is_empty() {
            self.tx.release();
        }
        let n = out.len() - before;
        self.stats.bytes_out += n as u64;
        if let Some(e) = failed {
            // Nothing more can be sealed in this direction, not even a Goodbye.
            self.tx.release();
            self.finish(DisconnectReason::Error(e), None);
        }
        n
    }

    /// Wire bytes waiting for [`Connection::poll_transmit`] (counted against
    /// [`Config::transmit_queue_bytes`](super::Config)).
    pub fn transmit_queued(&self) -> usize {
        self.tx.wire_bytes()
    }

    /// Checks that `env` fits the peer's frame limit and the transmit budget (a frame
    /// larger than the whole budget still goes when the queue is empty).
    pub(super) fn check_room(&self, env: &Envelope<'_>) -> Result<(), ConnectionError> {
        let sealed = env.encoded_len() + TAG_LEN;
        if sealed > self.peer_max {
            return Err(super::LimitProblem::PayloadTooLarge {
                len: sealed,
                limit: self.peer_max,
            }
            .into());
        }
        let queued = self.tx.wire_bytes();
        let limit = self.config.transmit_queue_bytes;
        if !self.tx.is_empty() && queued + TxQueue::wire_len(env) > limit {
            return Err(super::LimitProblem::Overloaded { queued, limit }.into());
        }
        Ok(())
    }

    /// Queues a control envelope (Ping, Pong, Goodbye), which is not refused for the
    /// budget; past twice the budget the connection closes (the driver ignored
    /// [`Connection::wants_read`]).
    pub(super) fn push_control(&mut self, env: &Envelope<'_>) {
        self.tx.push(env);
        let queued = self.tx.wire_bytes();
        if queued > 2 * self.config.transmit_queue_bytes.max(CONTROL_FLOOR) {
            self.tx.release();
            self.finish(
                DisconnectReason::Error(super::LimitProblem::TransmitQueueFull { queued }.into()),
                None,
            );
        }
    }
}
