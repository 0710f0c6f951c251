//! The receive side of the table: one decoded stream message at a time, checked
//! against the stream's state (docs/protocol.md, "Streams", bad input).

use super::state::Stream;
use super::table::{Control, Lookup};
use super::RESET_TOO_MANY_STREAMS;
use super::{StreamEvent, StreamMessage, StreamTable, Violation, MAX_CONTROL_QUEUED};

impl StreamTable {
    /// Decodes and handles the plaintext of one stream envelope (tags 16 to 20, see
    /// [`super::stream_tag`]). A decode failure is [`Violation::Malformed`].
    pub fn handle_envelope(&mut self, bytes: &[u8]) -> Result<(), Violation> {
        let msg = StreamMessage::decode(bytes)?;
        self.handle(msg)
    }

    /// Handles one stream message from the peer; its effects wait in
    /// [`StreamTable::poll_event`] and the transmit queue. On `Err(v)` the connection
    /// does what [`Violation::response`] says: for
    /// [`Response::CloseConnection`](super::Response::CloseConnection) it sends Goodbye 3,
    /// closes, and calls [`StreamTable::abort`]; the table is not to be fed more input.
    pub fn handle(&mut self, msg: StreamMessage<'_>) -> Result<(), Violation> {
        match msg {
            StreamMessage::Open { id, name } => self.on_open(id, name),
            StreamMessage::Data { id, offset, bytes } => {
                let Some(s) = self.known(id)? else {
                    return Ok(());
                };
                let was_empty = s.recv.on_data(id, offset, bytes)?;
                if was_empty && !s.recv.readable_owed {
                    s.recv.readable_owed = true;
                    self.events.push_back(StreamEvent::Readable { id });
                }
                Ok(())
            }
            StreamMessage::Credit { id, limit } => {
                let Some(s) = self.known(id)? else {
                    return Ok(());
                };
                s.send.credit(limit);
                if s.send.ready() && !s.in_ring {
                    self.ring(id);
                }
                Ok(())
            }
            StreamMessage::Fin { id } => {
                let Some(s) = self.known(id)? else {
                    return Ok(());
                };
                s.recv.on_fin(id)?;
                self.events.push_back(StreamEvent::Finished { id });
                Ok(())
            }
            StreamMessage::Reset { id, code, reason } => {
                if self.known(id)?.is_none() {
                    return Ok(());
                }
                if let Some(s) = self.streams.remove(&id) {
                    self.count_removed(s.local);
                }
                self.events.push_back(StreamEvent::Reset {
                    id,
                    code,
                    reason: reason.to_owned(),
                });
                Ok(())
            }
        }
    }

    /// The stream `id` names: `Some` when open, `None` when it existed and is gone (a
    /// late message, dropped), [`Violation::UnknownStream`] when it never existed.
    fn known(&mut self, id: u64) -> Result<Option<&mut Stream>, Violation> {
        match self.lookup(id) {
            Lookup::Open => Ok(self.streams.get_mut(&id)),
            Lookup::Gone => Ok(None),
            Lookup::Unknown => Err(Violation::UnknownStream { id }),
        }
    }

    fn on_open(&mut self, id: u64, name: &str) -> Result<(), Violation> {
        let expected = self.next_peer;
        if id != expected {
            return Err(Violation::BadStreamId { id, expected });
        }
        self.next_peer = expected
            .checked_add(2)
            .ok_or(Violation::BadStreamId { id, expected })?;
        let limit = self.config.max_streams;
        if self.peer_open >= limit {
            if self.control.len() >= 2 * MAX_CONTROL_QUEUED {
                return Err(Violation::Backlog {
                    queued: self.control.len(),
                });
            }
            self.control.push_back(Control::Reset {
                id,
                code: RESET_TOO_MANY_STREAMS,
                reason: format!("too many streams (limit {limit})"),
            });
            return Err(Violation::TooManyStreams { id, limit });
        }
        let s = Stream::new(
            false,
            self.config.send_buffer,
            u64::from(self.config.initial_window),
        );
        self.streams.insert(id, s);
        self.peer_open += 1;
        self.events.push_back(StreamEvent::Opened {
            id,
            name: name.to_owned(),
        });
        Ok(())
    }
}
