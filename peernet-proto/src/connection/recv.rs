//! The receive path: frames reassembled from any split of the byte stream, each
//! header checked against this side's limit before its body is buffered, each body
//! opened in order (spec 4), decoded (spec 5) and dispatched.

use std::time::Instant;

use super::{CallId, CallOutcome, Connection, Event, MalformedProblem};
use crate::envelope::{Envelope, GoodbyeReason, Outcome};
use crate::frame::{self, HEADER_LEN};

/// A receive buffer grown past this by a large frame is released when it is empty at
/// a heartbeat tick (so bulk transfers keep theirs).
const KEEP_CAPACITY: usize = 64 * 1024;

/// The bytes of the frame being received: its header, then as much of its body as
/// arrived. Never more than one frame; it grows only with bytes that arrived, never to
/// the length a header claims.
#[derive(Debug, Default)]
pub(super) struct RecvBuf {
    buf: Vec<u8>,
}

impl RecvBuf {
    /// Frees a large buffer that holds nothing.
    pub(super) fn shrink_if_idle(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub(super) fn release(&mut self) {
        self.buf = Vec::new();
    }
}

/// Moves up to `want - buf.len()` bytes from the front of `data` into `buf`; true when
/// `buf` then holds `want` bytes.
fn fill(buf: &mut Vec<u8>, data: &mut &[u8], want: usize) -> bool {
    let take = want.saturating_sub(buf.len()).min(data.len());
    let (head, rest) = data.split_at(take);
    buf.extend_from_slice(head);
    *data = rest;
    buf.len() >= want
}

impl Connection {
    /// Feeds bytes read from the socket, split anywhere (part of a frame, many frames).
    /// Every whole frame is opened and dispatched at once; the events it produces wait
    /// in [`Connection::poll_event`]. A frame header over this side's `max_frame_len`,
    /// an empty frame, a frame that fails to open, or an envelope that breaks spec 5
    /// closes the connection. Once closed, input is ignored.
    pub fn handle_bytes(&mut self, now: Instant, mut data: &[u8]) {
        while !data.is_empty() && self.closed.is_none() {
            self.fill_one(now, &mut data);
        }
    }

    /// [`Connection::handle_bytes`] for bytes the caller no longer needs: a frame that
    /// lies whole in `data` is opened right there, without being copied into the
    /// machine's receive buffer (only a frame split across reads is). `data` is left
    /// scrambled. The same rules apply.
    pub fn handle_bytes_mut(&mut self, now: Instant, mut data: &mut [u8]) {
        let limit = self.recv_limit();
        while !data.is_empty() && self.closed.is_none() {
            if self.rx.buf.is_empty() {
                let n = match frame::parse_header(data, limit) {
                    Ok(n) => n,
                    Err(e) => return self.fail(e.into()),
                };
                if let Some(n) = n.filter(|&n| HEADER_LEN + n <= data.len()) {
                    let (whole, rest) = std::mem::take(&mut data).split_at_mut(HEADER_LEN + n);
                    self.on_frame(now, whole);
                    data = rest;
                    continue;
                }
            }
            // A frame that started in an earlier read, or does not end in this one.
            let mut shared: &[u8] = data;
            self.fill_one(now, &mut shared);
            let used = data.len() - shared.len();
            data = std::mem::take(&mut data)
                .get_mut(used..)
                .unwrap_or_default();
        }
    }

    fn recv_limit(&self) -> usize {
        usize::try_from(self.config.max_frame_len).unwrap_or(usize::MAX)
    }

    /// Moves the bytes of at most one frame from the front of `data` into the receive
    /// buffer, and opens and dispatches that frame once it is whole.
    fn fill_one(&mut self, now: Instant, data: &mut &[u8]) {
        if !fill(&mut self.rx.buf, data, HEADER_LEN) {
            return;
        }
        let n = match frame::parse_header(&self.rx.buf, self.recv_limit()) {
            Ok(Some(n)) => n,
            Ok(None) => return,
            Err(e) => return self.fail(e.into()),
        };
        if !fill(&mut self.rx.buf, data, HEADER_LEN + n) {
            return;
        }
        let mut buf = std::mem::take(&mut self.rx.buf);
        self.on_frame(now, &mut buf);
        buf.clear();
        if self.closed.is_none() {
            self.rx.buf = buf;
        }
    }

    /// Opens and dispatches the whole frame in `buf` (header included).
    fn on_frame(&mut self, now: Instant, buf: &mut [u8]) {
        let total = buf.len();
        let Some(body) = buf.get_mut(HEADER_LEN..) else {
            return;
        };
        let plain = match self.recv.open_in_place(body) {
            Ok(p) => p,
            Err(e) => return self.fail(e.into()),
        };
        self.stats.frames_in += 1;
        self.stats.bytes_in += total as u64;
        if self.confirmed && self.streams.is_some() && crate::stream::stream_tag(plain).is_some() {
            return self.on_stream_message(plain);
        }
        match Envelope::decode(plain) {
            Ok(env) if !self.confirmed => self.on_confirmation(now, env),
            Ok(env) => self.on_envelope(now, env),
            Err(e) => self.fail(e.into()),
        }
    }

    /// Dialer, first frame: it must be the responder's Ping (spec 3.4).
    fn on_confirmation(&mut self, now: Instant, env: Envelope<'_>) {
        let Envelope::Ping { nonce } = env else {
            return self.fail(MalformedProblem::ConfirmationNotPing.into());
        };
        self.confirmed = true;
        // The Pong is the dialer's first frame, before anything queued meanwhile.
        self.tx.push_front(&Envelope::Pong { nonce });
        self.start_heartbeat(now);
        self.events.push_back(Event::Confirmed);
    }

    fn on_envelope(&mut self, now: Instant, env: Envelope<'_>) {
        match env {
            Envelope::Call { id, name, body } => self.on_call(id, name, body),
            Envelope::Reply { id, outcome } => self.on_reply(id, outcome),
            Envelope::Send { name, body } => self.events.push_back(Event::SendArrived {
                name: name.to_owned(),
                body: body.to_vec(),
            }),
            Envelope::Ping { nonce } => self.push_control(&Envelope::Pong { nonce }),
            Envelope::Pong { nonce } => {
                if let Some(hb) = self.heartbeat.as_mut() {
                    hb.on_pong(nonce, now);
                }
            }
            Envelope::Goodbye {
                reason: GoodbyeReason::Duplicate,
            } => {
                if !self.peer_draining {
                    self.peer_draining = true;
                    self.events.push_back(Event::PeerDraining);
                }
                self.progress_drain();
            }
            // Anything after it in the stream is never opened.
            Envelope::Goodbye { reason } => {
                self.finish(super::DisconnectReason::Peer(reason), None)
            }
        }
    }

    fn on_call(&mut self, id: u64, name: &str, body: &[u8]) {
        if id == 0 {
            return self.fail(MalformedProblem::ZeroCallId.into());
        }
        if self.serving.contains(id) {
            return self.fail(MalformedProblem::DuplicateCallId { id }.into());
        }
        if self.serving.len() >= self.config.max_serving {
            // Nothing runs; the answer goes through the budget like a Pong.
            return self.push_control(&Envelope::Reply {
                id,
                outcome: Outcome::Overloaded,
            });
        }
        self.serving.insert(id);
        self.events.push_back(Event::CallArrived {
            id: CallId(id),
            name: name.to_owned(),
            body: body.to_vec(),
        });
    }

    /// A Reply completes its call. One with an id that is not pending — a call that
    /// expired (replies race deadlines), or an id never issued — is dropped (spec 5:
    /// "replies with unknown ids are dropped"; a conforming peer is never closed for it).
    fn on_reply(&mut self, id: u64, outcome: Outcome<'_>) {
        if self.pending.remove(id) {
            self.events.push_back(Event::ReplyArrived {
                id: CallId(id),
                outcome: CallOutcome::from_wire(outcome),
            });
            self.progress_drain();
        }
    }
}
