//! The connection's streams (docs/protocol.md, "Streams"): the stream table embedded
//! in the machine. Stream messages from the peer go to the table, its events join the
//! machine's, and the transmit path pulls the table's messages into the transmit
//! queue only when little is queued ahead, so that a call queued behind a busy stream
//! waits for at most about one chunk (the table itself round-robins its streams).

use super::{Connection, Event, MalformedProblem};
use crate::stream::{
    Read, Response, StreamError, StreamTable, Transmit, DATA_HEADER_LEN, MAX_DATA_LEN,
};

/// Stream bytes pulled into the transmit queue only while less than this is queued
/// and unwritten: about one chunk ahead of the socket, so calls interleave.
const PULL_AHEAD: usize = 128 * 1024;
/// Largest plaintext of one stream message: a full data chunk (an Open, at most
/// 275 bytes, and a Reset, at most 1,048, are shorter; checked by a test).
pub(super) const MAX_STREAM_PLAIN: usize = DATA_HEADER_LEN + MAX_DATA_LEN;

impl Connection {
    /// True when streams were negotiated on this connection (both Hellos carry the
    /// feature bit and this side's config enables them).
    pub fn streams_negotiated(&self) -> bool {
        self.streams.is_some()
    }

    /// The stream table, for queries (buffered bytes, credit left, the number open).
    pub fn streams(&self) -> Option<&StreamTable> {
        self.streams.as_ref()
    }

    fn table(&mut self) -> Result<&mut StreamTable, StreamError> {
        if self.closed.is_some() {
            return Err(StreamError::ConnectionClosed);
        }
        self.streams.as_mut().ok_or(StreamError::NotNegotiated)
    }

    /// Opens a stream to the peer's stream handler `name` (see
    /// [`StreamTable::open`]); refused while draining (spec 5.1: no new work on the
    /// losing duplicate).
    pub fn open_stream(&mut self, name: &str) -> Result<u64, StreamError> {
        if self.drain.is_some() {
            return Err(StreamError::Draining);
        }
        self.table()?.open(name)
    }

    /// Accepts the peer's stream `id` ([`crate::stream::StreamEvent::Opened`]).
    pub fn accept_stream(&mut self, id: u64) -> Result<(), StreamError> {
        self.table()?.accept(id)
    }

    /// Buffers what fits of `data` on stream `id` ([`StreamTable::write`]).
    pub fn stream_write(&mut self, id: u64, data: &[u8]) -> Result<usize, StreamError> {
        self.table()?.write(id, data)
    }

    /// Reads what stream `id` buffered ([`StreamTable::read`]); may free window, so
    /// a credit may be queued. The events it produces (none today) follow in order.
    pub fn stream_read(&mut self, id: u64, buf: &mut [u8]) -> Result<Read, StreamError> {
        let r = self.table()?.read(id, buf);
        self.after_stream_call();
        r
    }

    /// Finishes this side's direction of stream `id` ([`StreamTable::finish`]).
    pub fn stream_finish(&mut self, id: u64) -> Result<(), StreamError> {
        let r = self.table()?.finish(id);
        self.after_stream_call();
        r
    }

    /// Resets stream `id` both ways with `code` and `reason` ([`StreamTable::reset`]).
    pub fn stream_reset(&mut self, id: u64, code: u32, reason: &str) -> Result<(), StreamError> {
        let r = self.table()?.reset(id, code, reason);
        self.after_stream_call();
        r
    }

    /// A stream ending may be what a drain waits for.
    fn after_stream_call(&mut self) {
        self.move_stream_events();
        self.progress_drain();
    }

    /// The table's events, in order, into the machine's queue.
    pub(super) fn move_stream_events(&mut self) {
        if let Some(t) = self.streams.as_mut() {
            while let Some(ev) = t.poll_event() {
                self.events.push_back(Event::Stream(ev));
            }
        }
    }

    /// One stream message from the peer (its tag is 16 to 20 and streams were
    /// negotiated).
    pub(super) fn on_stream_message(&mut self, plain: &[u8]) {
        let Some(t) = self.streams.as_mut() else {
            return;
        };
        let r = t.handle_envelope(plain);
        self.move_stream_events();
        match r {
            Ok(()) => self.progress_drain(),
            Err(v) => match v.response() {
                // The table queued the stream's reset; the connection stays up.
                Response::ResetStream => {}
                Response::CloseConnection => self.fail(MalformedProblem::Stream(v).into()),
            },
        }
    }

    /// Tops up the transmit queue with the table's messages while less than
    /// `PULL_AHEAD` bytes wait: control messages and credits first, then chunks of the
    /// ready streams, round-robin. Calls queued before are sealed first (the queue is
    /// in order); calls queued after wait behind at most about `PULL_AHEAD`.
    pub(super) fn pull_streams(&mut self) {
        if self.closed.is_some() {
            return;
        }
        let Some(t) = self.streams.as_mut() else {
            return;
        };
        let mut pulled = false;
        while self.tx.wire_bytes() < PULL_AHEAD && t.has_transmit() {
            let mut turn = Transmit::Idle;
            self.tx.push_with(MAX_STREAM_PLAIN, |out| {
                turn = t.poll_transmit(out, false);
                match turn {
                    Transmit::Message(n) => n,
                    Transmit::Calls | Transmit::Idle => 0,
                }
            });
            match turn {
                Transmit::Message(_) => pulled = true,
                Transmit::Calls | Transmit::Idle => break,
            }
        }
        if pulled {
            // A finished stream may leave the table here; Writable may be due.
            self.move_stream_events();
            self.progress_drain();
        }
    }
}
