//! The stream table of one connection: ids, the streams, the queues between them and
//! the transmit path, and the program's side of the API.

use std::collections::{BTreeMap, VecDeque};

use super::sched::Scheduler;
use super::state::{Fin, Read, Stream};
use super::wire::{cut_utf8, MAX_REASON_LEN};
use super::{StreamConfig, StreamError, StreamEvent, RESET_CANCELLED};
use crate::envelope::validate_name;
use crate::handshake::Side;

/// A small message waiting for the transmit path, ahead of any data.
#[derive(Debug)]
pub(super) enum Control {
    Open { id: u64, name: String },
    Reset { id: u64, code: u32, reason: String },
}

/// Where an id stands.
pub(super) enum Lookup {
    /// In the table.
    Open,
    /// Was opened, is gone (reset, or ended both ways): late messages are dropped.
    Gone,
    /// Never opened.
    Unknown,
}

/// Every stream of one connection (see the module documentation).
#[derive(Debug)]
pub struct StreamTable {
    pub(super) config: StreamConfig,
    pub(super) streams: BTreeMap<u64, Stream>,
    /// The next id this side opens (odd for the initiator, even for the responder).
    pub(super) next_local: u64,
    /// The next id the peer must open.
    pub(super) next_peer: u64,
    /// Streams of each side in the table (bounded by `max_streams`).
    pub(super) local_open: usize,
    pub(super) peer_open: usize,
    pub(super) sched: Scheduler,
    pub(super) control: VecDeque<Control>,
    /// Streams with a credit to send (each once: `Stream::credit_queued`).
    pub(super) credits: VecDeque<u64>,
    pub(super) events: VecDeque<StreamEvent>,
}

impl StreamTable {
    /// The table of a connection on `side` (which decides the id parity: the
    /// initiator opens 1, 3, 5, ..., the responder 2, 4, 6, ...). The configuration is
    /// [`StreamConfig::clamped`].
    pub fn new(side: Side, config: StreamConfig) -> StreamTable {
        let (local, peer) = match side {
            Side::Initiator => (1, 2),
            Side::Responder => (2, 1),
        };
        StreamTable {
            config: config.clamped(),
            streams: BTreeMap::new(),
            next_local: local,
            next_peer: peer,
            local_open: 0,
            peer_open: 0,
            sched: Scheduler::new(),
            control: VecDeque::new(),
            credits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Opens a stream to the peer's stream handler `name`: queues the StreamOpen and
    /// the first credit (this side's window for the peer's direction). Writes are
    /// buffered at once and go when the peer grants credit (on accept).
    pub fn open(&mut self, name: &str) -> Result<u64, StreamError> {
        validate_name(name).map_err(|e| match e {
            crate::ProtoError::Malformed(why) => StreamError::BadName(why),
            _ => StreamError::BadName("invalid"),
        })?;
        if self.local_open >= self.config.max_streams {
            return Err(StreamError::TooManyStreams {
                limit: self.config.max_streams,
            });
        }
        if self.control.len() >= super::MAX_CONTROL_QUEUED {
            return Err(StreamError::Backlog {
                queued: self.control.len(),
            });
        }
        let id = self.next_local;
        if id > u64::MAX - 2 {
            return Err(StreamError::IdsExhausted);
        }
        self.next_local += 2;
        let mut s = Stream::new(
            true,
            self.config.send_buffer,
            u64::from(self.config.initial_window),
        );
        s.credit_queued = true;
        self.streams.insert(id, s);
        self.local_open += 1;
        self.control.push_back(Control::Open {
            id,
            name: name.to_owned(),
        });
        self.credits.push_back(id);
        Ok(id)
    }

    /// Accepts a stream the peer opened ([`StreamEvent::Opened`]): grants its first
    /// window; from now on both directions flow.
    pub fn accept(&mut self, id: u64) -> Result<(), StreamError> {
        let s = self.get(id)?;
        if !s.pending_accept {
            return Err(StreamError::NotPending { id });
        }
        s.pending_accept = false;
        let queue = !s.credit_queued;
        s.credit_queued = true;
        let ready = s.send.ready() && !s.in_ring;
        if queue {
            self.credits.push_back(id);
        }
        if ready {
            self.ring(id);
        }
        Ok(())
    }

    /// Buffers what fits of `data` (up to [`StreamConfig::send_buffer`] buffered) and
    /// returns how many bytes it took; 0 when the buffer is full (a
    /// [`StreamEvent::Writable`] follows when room frees up). The bytes go as the
    /// peer's credit allows.
    pub fn write(&mut self, id: u64, data: &[u8]) -> Result<usize, StreamError> {
        let s = self.get(id)?;
        if s.pending_accept {
            return Err(StreamError::NotAccepted { id });
        }
        if s.send.fin != Fin::Open {
            return Err(StreamError::Finished { id });
        }
        let n = s.send.write(data);
        let ready = s.send.ready() && !s.in_ring;
        if ready {
            self.ring(id);
        }
        Ok(n)
    }

    /// Reads buffered bytes into `buf`. Reading frees window: the peer gets more credit
    /// once half a window was read. After [`Read::End`], and once this side finished
    /// too, the stream leaves the table.
    pub fn read(&mut self, id: u64, buf: &mut [u8]) -> Result<Read, StreamError> {
        let s = self.get(id)?;
        let r = s.recv.read(buf);
        let credit = !s.pending_accept && !s.credit_queued && s.recv.credit_due().is_some();
        if credit {
            s.credit_queued = true;
            self.credits.push_back(id);
        }
        if r == Read::End {
            self.remove_if_done(id);
        }
        Ok(r)
    }

    /// Finishes this side's direction: the Fin goes after the buffered bytes. The
    /// peer's direction stays open until its Fin (or a reset).
    pub fn finish(&mut self, id: u64) -> Result<(), StreamError> {
        let s = self.get(id)?;
        if s.pending_accept {
            return Err(StreamError::NotAccepted { id });
        }
        if s.send.fin != Fin::Open {
            return Err(StreamError::Finished { id });
        }
        s.send.fin = Fin::Queued;
        let ready = s.send.ready() && !s.in_ring;
        if ready {
            self.ring(id);
        }
        Ok(())
    }

    /// Aborts the stream both ways: queues a StreamReset with `code` and `reason` (cut
    /// to [`MAX_REASON_LEN`] bytes on a UTF-8 boundary), drops what is buffered either
    /// way and forgets the stream (what the peer still sends on it is dropped). Also
    /// how an incoming stream is refused ([`super::RESET_REFUSED`]).
    pub fn reset(&mut self, id: u64, code: u32, reason: &str) -> Result<(), StreamError> {
        let mut s = self
            .streams
            .remove(&id)
            .ok_or(StreamError::NoSuchStream { id })?;
        s.send.discard();
        s.recv.discard();
        self.count_removed(s.local);
        self.control.push_back(Control::Reset {
            id,
            code,
            reason: cut_utf8(reason, MAX_REASON_LEN).to_owned(),
        });
        Ok(())
    }

    /// [`StreamTable::reset`] with [`RESET_CANCELLED`] and no reason.
    pub fn cancel(&mut self, id: u64) -> Result<(), StreamError> {
        self.reset(id, RESET_CANCELLED, "")
    }

    /// The connection ended: every stream is dropped with an [`StreamEvent::Aborted`]
    /// (in id order) and nothing more is transmitted.
    pub fn abort(&mut self) {
        for (id, _) in std::mem::take(&mut self.streams) {
            self.events.push_back(StreamEvent::Aborted { id });
        }
        self.local_open = 0;
        self.peer_open = 0;
        self.sched = Scheduler::new();
        self.control.clear();
        self.credits.clear();
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        self.events.pop_front()
    }

    /// Whether the driver should read more input now: false while the control queue
    /// holds [`super::MAX_CONTROL_QUEUED`] messages or [`super::MAX_QUEUED_EVENTS`]
    /// events wait (the connection's own `wants_read` should include this).
    pub fn wants_read(&self) -> bool {
        self.control.len() < super::MAX_CONTROL_QUEUED
            && self.events.len() < super::MAX_QUEUED_EVENTS
    }

    /// Streams in the table (both sides').
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// True when no stream is open.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// True while `id` is in the table.
    pub fn contains(&self, id: u64) -> bool {
        self.streams.contains_key(&id)
    }

    /// Bytes written on `id` and not yet transmitted (0 for no such stream).
    pub fn send_buffered(&self, id: u64) -> usize {
        self.streams.get(&id).map_or(0, |s| s.send.buffered())
    }

    /// Bytes received on `id` and not yet read (0 for no such stream).
    pub fn recv_buffered(&self, id: u64) -> usize {
        self.streams.get(&id).map_or(0, |s| s.recv.buffered())
    }

    /// Allocated bytes of every stream buffer (test hook: memory stays bounded).
    #[doc(hidden)]
    pub fn buffer_capacity(&self) -> usize {
        self.streams
            .values()
            .map(|s| s.send.capacity() + s.recv.capacity())
            .sum()
    }

    /// Bytes the peer may still send on `id` before this side grants more (0 for no
    /// such stream).
    pub fn recv_credit_left(&self, id: u64) -> u64 {
        self.streams
            .get(&id)
            .map_or(0, |s| s.recv.limit.saturating_sub(s.recv.received))
    }

    /// Bytes of `id` transmitted so far, and the peer's credit limit (test hook: the
    /// first never exceeds the second).
    #[doc(hidden)]
    pub fn send_progress(&self, id: u64) -> Option<(u64, u64)> {
        self.streams.get(&id).map(|s| (s.send.sent, s.send.limit))
    }

    pub(super) fn get(&mut self, id: u64) -> Result<&mut Stream, StreamError> {
        self.streams
            .get_mut(&id)
            .ok_or(StreamError::NoSuchStream { id })
    }

    /// Where `id` stands: whose parity it has, and whether its opener got that far.
    pub(super) fn lookup(&self, id: u64) -> Lookup {
        if self.streams.contains_key(&id) {
            return Lookup::Open;
        }
        // Odd ids start at 1, even ones at 2; an opener uses its ids in order.
        let first = if id % 2 == 1 { 1 } else { 2 };
        let next = if id % 2 == self.next_local % 2 {
            self.next_local
        } else {
            self.next_peer
        };
        if id >= first && id < next {
            Lookup::Gone
        } else {
            Lookup::Unknown
        }
    }

    /// Puts `id` in the scheduler's ring.
    pub(super) fn ring(&mut self, id: u64) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.in_ring = true;
            self.sched.push(id);
        }
    }

    pub(super) fn count_removed(&mut self, local: bool) {
        if local {
            self.local_open = self.local_open.saturating_sub(1);
        } else {
            self.peer_open = self.peer_open.saturating_sub(1);
        }
    }

    /// Forgets a stream that ended both ways.
    pub(super) fn remove_if_done(&mut self, id: u64) {
        if self.streams.get(&id).is_some_and(Stream::is_done) {
            if let Some(s) = self.streams.remove(&id) {
                self.count_removed(s.local);
            }
        }
    }
}
