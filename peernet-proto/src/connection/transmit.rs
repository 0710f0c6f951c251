//! The transmit queue: frames laid out as they go on the wire (header room,
//! plaintext, tag room), small ones coalesced into shared chunks, each large one in a
//! chunk of its own; sealed in place only when the driver asks for bytes to write (so
//! the send counter advances in write order, spec 4), and written by the driver
//! straight from the chunk. A written chunk is dropped (a small one kept for reuse):
//! no queued byte is ever moved.

use std::collections::VecDeque;

use super::{Connection, ConnectionError, DisconnectReason};
use crate::channel::TAG_LEN;
use crate::envelope::Envelope;
use crate::frame::HEADER_LEN;

/// Small frames share a chunk up to this size (also about what one write takes).
const CHUNK: usize = 256 * 1024;
/// A frame at least this long gets a chunk of its own, allocated to its size.
const OWN_CHUNK: usize = 16 * 1024;
/// Control frames may queue past the budget up to this floor (see `push_control`).
const CONTROL_FLOOR: usize = 64 * 1024;
/// A spare chunk larger than this is freed at a heartbeat tick.
const IDLE_CAPACITY: usize = 16 * 1024;

/// Frames in one buffer: bytes before `sealed` are sealed frames, those after are
/// frames still to seal, of the plaintext lengths in `lens`, in order.
#[derive(Debug, Default)]
struct Chunk {
    buf: Vec<u8>,
    sealed: usize,
    lens: VecDeque<usize>,
    /// Holds one large frame; nothing else is added to it.
    own: bool,
}

/// Frames waiting for the socket.
#[derive(Debug, Default)]
pub(super) struct TxQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    head: usize,
    /// Wire bytes queued and not written yet.
    bytes: usize,
    /// A written small chunk's buffer, reused for the next one.
    spare: Vec<u8>,
}

impl TxQueue {
    /// Bytes these frames take on the wire (header and tag included).
    pub(super) fn wire_bytes(&self) -> usize {
        self.bytes
    }

    /// Frees an idle buffer that a burst grew (at a heartbeat tick).
    pub(super) fn shrink_if_idle(&mut self) {
        if self.spare.capacity() > IDLE_CAPACITY {
            self.spare = Vec::new();
        }
    }

    /// Wire bytes `env` will take.
    pub(super) fn wire_len(env: &Envelope<'_>) -> usize {
        HEADER_LEN + env.encoded_len() + TAG_LEN
    }

    /// Makes sure the back chunk can take a frame of `wire` bytes.
    fn room_for(&mut self, wire: usize) {
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| !c.own && wire < OWN_CHUNK && c.buf.len() + wire <= CHUNK);
        if !fits {
            let own = wire >= OWN_CHUNK;
            let buf = if own {
                Vec::with_capacity(wire)
            } else {
                std::mem::take(&mut self.spare)
            };
            self.chunks.push_back(Chunk {
                buf,
                own,
                ..Chunk::default()
            });
        }
    }

    pub(super) fn push(&mut self, env: &Envelope<'_>) {
        let wire = Self::wire_len(env);
        self.room_for(wire);
        // `room_for` left a back chunk.
        let Some(c) = self.chunks.back_mut() else {
            return;
        };
        c.buf.reserve(wire);
        c.buf.extend_from_slice(&[0; HEADER_LEN]);
        let start = c.buf.len();
        env.encode_into(&mut c.buf);
        c.lens.push_back(c.buf.len() - start);
        c.buf.extend_from_slice(&[0; TAG_LEN]);
        self.bytes += wire;
    }

    /// Puts `env` before everything queued (the dialer's Pong to the confirming Ping
    /// is its first frame, spec 3.4, even when calls were queued before it came; a
    /// dialer seals and writes nothing before that).
    pub(super) fn push_front(&mut self, env: &Envelope<'_>) {
        let wire = Self::wire_len(env);
        let mut buf = Vec::with_capacity(wire);
        buf.extend_from_slice(&[0; HEADER_LEN]);
        env.encode_into(&mut buf);
        let len = buf.len() - HEADER_LEN;
        buf.extend_from_slice(&[0; TAG_LEN]);
        let chunk = Chunk {
            buf,
            sealed: 0,
            lens: VecDeque::from([len]),
            own: true,
        };
        match self.chunks.front() {
            // Something was handed out already: the Pong goes right after it.
            Some(f) if f.sealed > 0 => self.chunks.insert(1, chunk),
            _ => self.chunks.push_front(chunk),
        }
        self.bytes += wire;
    }

    /// Appends one frame whose plaintext `fill` writes (at most `bound` bytes; it
    /// returns how many it wrote, 0 for none: then nothing is queued). The frame goes in
    /// a shared chunk, never one of its own, so stream chunks of any size are laid out
    /// where they are sealed and written, without a copy.
    pub(super) fn push_with(
        &mut self,
        bound: usize,
        fill: impl FnOnce(&mut Vec<u8>) -> usize,
    ) -> usize {
        let wire = HEADER_LEN + bound + TAG_LEN;
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| !c.own && c.buf.len() + wire <= CHUNK.max(wire));
        if !fits {
            let mut buf = std::mem::take(&mut self.spare);
            buf.reserve(CHUNK.max(wire));
            self.chunks.push_back(Chunk {
                buf,
                ..Chunk::default()
            });
        }
        let Some(c) = self.chunks.back_mut() else {
            return 0;
        };
        let mark = c.buf.len();
        c.buf.extend_from_slice(&[0; HEADER_LEN]);
        let n = fill(&mut c.buf);
        if n == 0 {
            c.buf.truncate(mark);
            return 0;
        }
        c.lens.push_back(n);
        c.buf.extend_from_slice(&[0; TAG_LEN]);
        self.bytes += HEADER_LEN + n + TAG_LEN;
        n
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    pub(super) fn clear(&mut self) {
        self.chunks.clear();
        self.head = 0;
        self.bytes = 0;
    }

    /// Drops every frame not sealed yet (what was sealed still goes).
    fn drop_unsealed(&mut self) {
        self.chunks.truncate(1);
        if let Some(c) = self.chunks.front_mut() {
            c.buf.truncate(c.sealed);
            c.lens.clear();
        }
        self.bytes = self.chunks.front().map_or(0, |c| c.buf.len() - self.head);
    }

    /// `n` more bytes of the front chunk were written; a chunk written to its end is
    /// dropped (a small one's buffer kept as the spare).
    fn advance(&mut self, n: usize) {
        let Some(c) = self.chunks.front() else {
            return;
        };
        let n = n.min(c.sealed - self.head);
        self.head += n;
        self.bytes -= n;
        if self.head == c.buf.len() && c.lens.is_empty() {
            if let Some(mut done) = self.chunks.pop_front() {
                if !done.own && done.buf.capacity() <= CHUNK {
                    done.buf.clear();
                    self.spare = done.buf;
                }
            }
            self.head = 0;
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
        let before = out.len();
        while out.len() - before < max {
            let ready = self.transmit_buf(max - (out.len() - before));
            if ready.is_empty() {
                break;
            }
            out.extend_from_slice(ready);
            let n = ready.len();
            self.transmitted(n);
        }
        out.len() - before
    }

    /// The sealed bytes waiting for the socket, sealing queued frames first until
    /// about `max` bytes wait (at least one frame): a driver writes from here without
    /// copying, then reports what the socket took with [`Connection::transmitted`].
    /// Empty when there is nothing to write (or, for a dialer, before confirmation).
    /// The same rules as [`Connection::poll_transmit`] apply.
    pub fn transmit_buf(&mut self, max: usize) -> &[u8] {
        if !self.confirmed {
            return &[];
        }
        self.pull_streams();
        let mut failed = None;
        let head = self.tx.head;
        if let Some(c) = self.tx.chunks.front_mut() {
            while c.sealed - head < max.max(1) {
                let Some(&len) = c.lens.front() else {
                    break;
                };
                let start = c.sealed;
                let end = start + HEADER_LEN + len + TAG_LEN;
                let Some(frame) = c.buf.get_mut(start..end) else {
                    break;
                };
                if let Err(e) = self.send.seal_frame_at(frame) {
                    failed = Some(ConnectionError::from(e));
                    break;
                }
                c.lens.pop_front();
                c.sealed = end;
                self.stats.frames_out += 1;
                self.stats.bytes_out += (end - start) as u64;
            }
        }
        if let Some(e) = failed {
            // Nothing more can be sealed in this direction, not even a Goodbye: what
            // was sealed still goes, the rest is dropped.
            self.finish(DisconnectReason::Error(e), None);
            self.tx.drop_unsealed();
        }
        match self.tx.chunks.front() {
            Some(c) => c.buf.get(head..c.sealed).unwrap_or_default(),
            None => &[],
        }
    }

    /// `n` bytes of [`Connection::transmit_buf`] were written (more than it held counts
    /// as all of it).
    pub fn transmitted(&mut self, n: usize) {
        self.tx.advance(n);
    }

    /// Sealed bytes that [`Connection::transmit_buf`] handed out and the socket has not
    /// taken yet (the driver waits for the socket while there are any).
    pub fn transmit_unwritten(&self) -> usize {
        self.tx
            .chunks
            .front()
            .map_or(0, |c| c.sealed - self.tx.head)
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
            self.tx.clear();
            self.finish(
                DisconnectReason::Error(super::LimitProblem::TransmitQueueFull { queued }.into()),
                None,
            );
        }
    }
}
