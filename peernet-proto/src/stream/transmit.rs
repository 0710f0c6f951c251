//! The transmit side of the table: control messages first, then credits, then the
//! scheduler's turn (calls, or one chunk of one stream).

use super::sched::Turn;
use super::state::Fin;
use super::table::Control;
use super::{StreamEvent, StreamMessage, StreamTable};

/// What [`StreamTable::poll_transmit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transmit {
    /// One stream envelope's plaintext, this many bytes, was appended to the buffer:
    /// seal it as one frame (it fits any peer's frame limit, see
    /// [`MAX_DATA_LEN`](super::MAX_DATA_LEN)), then ask again.
    Message(usize),
    /// The calls' turn: send queued calls, replies and sends (about one quantum of
    /// bytes, at least one envelope), then ask again. Only when `calls_pending`.
    Calls,
    /// Nothing stream-side to send, and no calls pending.
    Idle,
}

impl StreamTable {
    /// True when [`StreamTable::poll_transmit`] may have a message: a control message
    /// or credit is queued, or a stream is in the scheduler's ring (one that stopped
    /// being ready since makes this a harmless false positive: the poll says
    /// [`Transmit::Idle`]). The driver checks it, with the connection's own queue, to
    /// know whether there is anything to write after a `write`, `finish`, `read` or
    /// incoming credit.
    pub fn has_transmit(&self) -> bool {
        !self.control.is_empty() || !self.credits.is_empty() || !self.sched.is_empty()
    }

    /// The next thing to transmit. `calls_pending`: the connection has calls,
    /// replies or sends queued. Control messages (StreamOpen, StreamReset) and due
    /// credits go first, as they come; then the [`Scheduler`](super::Scheduler)
    /// alternates between calls and one chunk (at most
    /// [`StreamConfig::quantum`](super::StreamConfig::quantum) bytes) or the Fin of the
    /// next ready stream, round-robin.
    ///
    /// Appends at most one envelope's plaintext to `out`; nothing for
    /// [`Transmit::Calls`] and [`Transmit::Idle`].
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>, calls_pending: bool) -> Transmit {
        let before = out.len();
        if let Some(c) = self.control.pop_front() {
            match &c {
                Control::Open { id, name } => StreamMessage::Open { id: *id, name },
                Control::Reset { id, code, reason } => StreamMessage::Reset {
                    id: *id,
                    code: *code,
                    reason,
                },
            }
            .encode_into(out);
            return Transmit::Message(out.len() - before);
        }
        while let Some(id) = self.credits.pop_front() {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            s.credit_queued = false;
            if s.pending_accept {
                continue;
            }
            if let Some(limit) = s.recv.credit_due() {
                s.recv.grant(limit);
                StreamMessage::Credit { id, limit }.encode_into(out);
                return Transmit::Message(out.len() - before);
            }
        }
        let streams = &mut self.streams;
        let turn = self
            .sched
            .next(calls_pending, |id| match streams.get_mut(&id) {
                Some(s) => {
                    let ready = s.send.ready();
                    s.in_ring = ready;
                    ready
                }
                None => false,
            });
        let id = match turn {
            Turn::Calls => return Transmit::Calls,
            Turn::Idle => return Transmit::Idle,
            Turn::Stream(id) => id,
        };
        let quantum = self.config.quantum;
        let cap = self.config.send_buffer;
        let Some(s) = self.streams.get_mut(&id) else {
            return Transmit::Idle;
        };
        s.in_ring = false;
        if s.send.take_chunk(id, quantum, out) == 0 {
            StreamMessage::Fin { id }.encode_into(out);
            s.send.fin = Fin::Sent;
        }
        if s.send.blocked && s.send.buffered() < cap {
            s.send.blocked = false;
            self.events.push_back(StreamEvent::Writable { id });
        }
        if s.send.ready() {
            self.ring(id);
        }
        self.remove_if_done(id);
        Transmit::Message(out.len() - before)
    }
}
