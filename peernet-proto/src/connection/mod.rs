//! One authenticated connection as a deterministic sans-IO state machine (the
//! quinn-proto model): bytes, timeouts and commands in; bytes to write, the next
//! timeout and events out. No sockets, no clock (every `now` is an argument), no tasks.
//!
//! ```text
//!  driver                                   Connection
//!  socket bytes ───────── handle_bytes(now, &[u8]) ──▶ frames reassembled, opened,
//!  socket EOF / error ─── handle_eof / handle_transport_error   decoded, dispatched
//!  timer fired ────────── handle_timeout(now) ───────▶ call deadlines, heartbeat,
//!                                                      confirmation, drain deadline
//!  program ────────────── call / send / reply / ping / close / drain
//!  socket write ◀──────── poll_transmit(&mut Vec<u8>)  every queued frame, sealed
//!  timer to arm ◀──────── poll_timeout()               earliest deadline
//!  program, handlers ◀─── poll_event()                 Event::CallArrived, ...
//! ```
//!
//! The rules it owns (spec sections): framing against this side's `max_frame_len` (2),
//! the peer's `max_frame_len` for what it sends (2, 3.2), the dialer's confirmation (3.4),
//! the channel's counters (4), call ids, the pending table and per-call deadlines, the
//! heartbeat, Goodbye (5), and the duplicate drain (5.1). What it does not own: trust,
//! handler lookup, authorisation, RPC dispatch, serving limits (the driver's, which
//! answers through [`Connection::reply`]).
//!
//! Build one from a finished [`Handshake`] with [`Connection::from_handshake`], feed it
//! any bytes read past the handshake, then loop: feed input, drain `poll_event`, write
//! `poll_transmit`, arm `poll_timeout`.

mod commands;
mod error;
mod pending;
mod recv;
mod streams;
mod timers;
mod transmit;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use error::{
    ConnectionError, CryptoProblem, DisconnectReason, LimitProblem, MalformedProblem, StateProblem,
};

use crate::channel::{RecvCipher, SendCipher};
use crate::envelope::{Envelope, GoodbyeReason, Outcome};
use crate::frame::DEFAULT_MAX_FRAME_LEN;
use crate::handshake::Handshake;
pub use crate::handshake::Side;
use crate::heartbeat::Heartbeat;
use crate::hello::Hello;
use crate::stream::{StreamConfig, StreamEvent, StreamTable, FEATURE_STREAMS};
use crate::{Key, ProtoError};
use pending::{Pending, Serving};
use recv::RecvBuf;
use transmit::TxQueue;

/// Longest `HandlerFailed` message sent; [`Connection::reply`] cuts longer ones (on a
/// UTF-8 boundary).
pub const MAX_ERROR_MESSAGE: usize = 4096;
/// The message a reply too large for the caller's frame limit is replaced with (spec 2).
pub const REPLY_TOO_LARGE: &str = "reply too large";
/// Events waiting in the queue above which [`Connection::wants_read`] turns false.
pub const MAX_QUEUED_EVENTS: usize = 4096;

/// Spec 5.1: of two authenticated connections between the same two nodes, whether
/// the newer one is kept (true) or the older one (false). Both sides keep the one whose
/// initiator has the bytewise-smaller static key; between two dialed by the same side
/// (a redial while the old one is not yet known dead) the newer. The other one is
/// drained ([`Connection::drain`]) on both sides.
pub fn keep_new(new_initiator: &Key, old_initiator: &Key) -> bool {
    new_initiator <= old_initiator
}

/// A call id: for calls this side starts, chosen by the machine (1, 2, 3, ...); for
/// calls that arrive, the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// Limits and timers of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Largest frame body this side accepts: what its Hello announced (spec 2;
    /// [`Connection::from_handshake`] takes it from the handshake's Hello).
    pub max_frame_len: u32,
    /// A Ping every this long (spec 5; default 15 s).
    pub heartbeat_interval: Duration,
    /// A Ping unanswered this long closes the connection (default 45 s).
    pub heartbeat_timeout: Duration,
    /// Dialer: how long to wait for the responder's confirmation (default 5 s, the
    /// handshake timeout).
    pub confirm_timeout: Duration,
    /// Calls this side may have outstanding (default 65,536).
    pub max_pending_calls: usize,
    /// Calls the peer may have outstanding here; beyond, a Call is answered
    /// `Overloaded` by the machine without an event (default 65,536; the driver's own
    /// serving limit is normally lower and answers first).
    pub max_serving: usize,
    /// Budget of queued wire bytes for calls, sends and replies (default 8 MiB).
    pub transmit_queue_bytes: usize,
    /// Streams (docs/protocol.md, "Streams"): `Some` when this side speaks them (its
    /// Hello must then carry [`FEATURE_STREAMS`]); they are used on a connection only
    /// when the peer's Hello carries the bit too. Default `None`.
    pub streams: Option<StreamConfig>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            heartbeat_interval: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(45),
            confirm_timeout: Duration::from_secs(5),
            max_pending_calls: 65_536,
            max_serving: 65_536,
            transmit_queue_bytes: 8 << 20,
            streams: None,
        }
    }
}

/// The result of a call, owned (a [`Outcome`] that outlives the frame it came in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The handler's result.
    Ok(Vec<u8>),
    /// No such handler (or not visible to the caller).
    NoSuchHandler,
    /// The caller may not call it.
    Forbidden,
    /// The handler failed, with its message.
    HandlerFailed(String),
    /// The peer's queue was full; nothing ran.
    Overloaded,
}

impl CallOutcome {
    /// Copies a decoded outcome.
    pub fn from_wire(o: Outcome<'_>) -> CallOutcome {
        match o {
            Outcome::Ok(b) => CallOutcome::Ok(b.to_vec()),
            Outcome::NoSuchHandler => CallOutcome::NoSuchHandler,
            Outcome::Forbidden => CallOutcome::Forbidden,
            Outcome::HandlerFailed(m) => CallOutcome::HandlerFailed(m.to_owned()),
            Outcome::Overloaded => CallOutcome::Overloaded,
        }
    }

    /// Borrows it as a wire outcome (for [`Connection::reply`]).
    pub fn as_wire(&self) -> Outcome<'_> {
        match self {
            CallOutcome::Ok(b) => Outcome::Ok(b),
            CallOutcome::NoSuchHandler => Outcome::NoSuchHandler,
            CallOutcome::Forbidden => Outcome::Forbidden,
            CallOutcome::HandlerFailed(m) => Outcome::HandlerFailed(m),
            CallOutcome::Overloaded => Outcome::Overloaded,
        }
    }
}

/// What the machine tells its driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Dialer: the responder's confirming Ping opened (spec 3.4). Only now is the
    /// connection established; what was queued before it is transmitted from now on.
    Confirmed,
    /// The peer called `name`; answer with [`Connection::reply`] and this id.
    CallArrived {
        /// The peer's call id.
        id: CallId,
        /// Handler name (1..=255 bytes).
        name: String,
        /// Request body.
        body: Vec<u8>,
    },
    /// The peer sent to `name` (fire-and-forget, never answered).
    SendArrived {
        /// Handler name.
        name: String,
        /// Body.
        body: Vec<u8>,
    },
    /// A Reply to one of this side's calls.
    ReplyArrived {
        /// The id [`Connection::call`] returned.
        id: CallId,
        /// What the peer answered.
        outcome: CallOutcome,
    },
    /// The call's deadline passed without a Reply; a late Reply is dropped.
    CallExpired {
        /// The call.
        id: CallId,
    },
    /// The connection closed before the call's Reply (one per outstanding call, just
    /// before [`Event::Closed`]).
    CallAborted {
        /// The call.
        id: CallId,
    },
    /// The peer said Goodbye 1 (spec 5.1): it starts no more calls here; its answers
    /// to ours still come.
    PeerDraining,
    /// Something happened on a stream (only when streams were negotiated); the
    /// stream events of one input come in order, between the other events.
    Stream(StreamEvent),
    /// The connection is over: always the last event. Write what `poll_transmit` still
    /// yields, then close the socket.
    Closed {
        /// Why.
        reason: DisconnectReason,
    },
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames opened.
    pub frames_in: u64,
    /// Frames sealed.
    pub frames_out: u64,
    /// Bytes of whole frames received (headers included).
    pub bytes_in: u64,
    /// Bytes handed out by `poll_transmit`.
    pub bytes_out: u64,
}

/// Spec 5.1 drain progress of a losing duplicate.
#[derive(Debug, Clone, Copy)]
struct Drain {
    deadline: Instant,
    goodbye_sent: bool,
}

/// One authenticated connection (see the module documentation).
#[derive(Debug)]
pub struct Connection {
    side: Side,
    config: Config,
    /// Largest body the peer accepts (its Hello).
    peer_max: usize,
    send: SendCipher,
    recv: RecvCipher,
    /// Dialer: false until the confirming Ping; responder: always true.
    confirmed: bool,
    confirm_deadline: Instant,
    /// Started at confirmation (dialer) or creation (responder).
    heartbeat: Option<Heartbeat>,
    rx: RecvBuf,
    tx: TxQueue,
    pending: Pending,
    serving: Serving,
    next_id: u64,
    drain: Option<Drain>,
    peer_draining: bool,
    /// The streams, when both Hellos announced them.
    streams: Option<StreamTable>,
    events: VecDeque<Event>,
    closed: Option<DisconnectReason>,
    stats: Stats,
}

impl Connection {
    /// A connection over a channel that a handshake produced. `peer_hello` is the
    /// peer's Hello (its frame limit bounds what this side sends). A responder queues
    /// the confirming Ping (nonce 0) at once; a dialer waits for it until
    /// `now + confirm_timeout`.
    pub fn new(
        now: Instant,
        side: Side,
        send: SendCipher,
        recv: RecvCipher,
        peer_hello: &Hello,
        config: Config,
    ) -> Connection {
        let responder = side == Side::Responder;
        let mut c = Connection {
            side,
            config,
            peer_max: usize::try_from(peer_hello.max_frame_len).unwrap_or(usize::MAX),
            send,
            recv,
            confirmed: responder,
            confirm_deadline: timers::add(now, config.confirm_timeout),
            heartbeat: None,
            rx: RecvBuf::default(),
            tx: TxQueue::default(),
            pending: Pending::default(),
            serving: Serving::default(),
            next_id: 1,
            drain: None,
            peer_draining: false,
            streams: config
                .streams
                .filter(|_| peer_hello.features & FEATURE_STREAMS != 0)
                .map(|sc| StreamTable::new(side, sc)),
            events: VecDeque::new(),
            closed: None,
            stats: Stats::default(),
        };
        if responder {
            // Spec 3.4: the responder's first transport frame confirms its trust check.
            c.tx.push(&Envelope::Ping { nonce: 0 });
            c.start_heartbeat(now);
        }
        c
    }

    /// [`Connection::new`] from a finished handshake (its `split`, its side). The
    /// receive limit is the one this side's Hello announced (it replaces
    /// `config.max_frame_len`), so both limits come from the two Hellos.
    pub fn from_handshake(
        now: Instant,
        handshake: Handshake,
        peer_hello: &Hello,
        mut config: Config,
    ) -> Result<Connection, ProtoError> {
        config.max_frame_len = handshake.local_hello().max_frame_len;
        if handshake.local_hello().features & FEATURE_STREAMS == 0 {
            config.streams = None;
        }
        let side = if handshake.is_initiator() {
            Side::Initiator
        } else {
            Side::Responder
        };
        let (send, recv) = handshake.split()?;
        Ok(Connection::new(now, side, send, recv, peer_hello, config))
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// This connection's side.
    pub fn side(&self) -> Side {
        self.side
    }

    /// True once established: always for a responder, after [`Event::Confirmed`] for a
    /// dialer.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// Why it closed, once [`Event::Closed`] was queued.
    pub fn closed(&self) -> Option<&DisconnectReason> {
        self.closed.as_ref()
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// True while draining as a losing duplicate (spec 5.1).
    pub fn is_draining(&self) -> bool {
        self.drain.is_some()
    }

    /// Calls this side started that wait for a Reply.
    pub fn pending_calls(&self) -> usize {
        self.pending.len()
    }

    /// Calls the peer started here that wait for this side's reply.
    pub fn serving_calls(&self) -> usize {
        self.serving.len()
    }

    /// The round-trip time of the last answered heartbeat Ping.
    pub fn rtt(&self) -> Option<Duration> {
        self.heartbeat.as_ref().and_then(Heartbeat::rtt)
    }

    /// Frame and byte counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Capacity of the receive buffer (test hook: it follows the bytes that arrived,
    /// never a frame header's claim).
    #[doc(hidden)]
    pub fn receive_buffer_capacity(&self) -> usize {
        self.rx.capacity()
    }

    /// The largest frame body the peer accepts (from its Hello).
    pub fn peer_max_frame_len(&self) -> usize {
        self.peer_max
    }

    /// Whether the driver should read more from the socket now: false once closed,
    /// while the transmit queue is over its budget (the peer does not read what this
    /// side answers: backpressure, as a reader that waits for queue space) or while
    /// [`MAX_QUEUED_EVENTS`] events wait to be polled.
    pub fn wants_read(&self) -> bool {
        self.closed.is_none()
            && self.tx.wire_bytes() < self.config.transmit_queue_bytes
            && self.events.len() < MAX_QUEUED_EVENTS
            && self.streams.as_ref().map_or(true, StreamTable::wants_read)
    }

    fn start_heartbeat(&mut self, now: Instant) {
        self.heartbeat = Some(Heartbeat::new(
            self.config.heartbeat_interval,
            self.config.heartbeat_timeout,
            now,
        ));
    }

    /// Ends the connection: an optional Goodbye is queued (only once confirmed: before
    /// that, nothing is ever sent), every outstanding call is aborted, then
    /// [`Event::Closed`]. Idempotent.
    fn finish(&mut self, reason: DisconnectReason, goodbye: Option<GoodbyeReason>) {
        if self.closed.is_some() {
            return;
        }
        if !self.confirmed {
            // A refused or failed dialer sends nothing; what waited is dropped.
            self.tx.clear();
        } else if let Some(reason) = goodbye {
            self.tx.push(&Envelope::Goodbye { reason });
        }
        for id in self.pending.drain() {
            self.events.push_back(Event::CallAborted { id: CallId(id) });
        }
        self.serving.clear();
        if let Some(t) = self.streams.as_mut() {
            t.abort();
        }
        self.move_stream_events();
        self.drain = None;
        self.heartbeat = None;
        self.rx.release();
        self.closed = Some(reason.clone());
        self.events.push_back(Event::Closed { reason });
    }

    /// Closes for an error of the peer's: envelopes that break a rule of spec 5 are
    /// answered with Goodbye 3; frame and channel failures close silently (spec 4).
    fn fail(&mut self, e: ConnectionError) {
        let goodbye = match &e {
            ConnectionError::Malformed(MalformedProblem::EmptyFrame)
            | ConnectionError::Crypto(_)
            | ConnectionError::Limit(_)
            | ConnectionError::State(_) => None,
            ConnectionError::Malformed(_) => Some(GoodbyeReason::ProtocolError),
        };
        self.finish(DisconnectReason::Error(e), goodbye);
    }

    /// Spec 5.1 progress: Goodbye 1 once this side's calls are done; closed once the
    /// peer said Goodbye 1 too and every call it made here is answered.
    fn progress_drain(&mut self) {
        let Some(mut d) = self.drain else {
            return;
        };
        // Open streams count like outstanding calls: the drain waits for them.
        let streams_done = self.streams.as_ref().map_or(true, StreamTable::is_empty);
        if !d.goodbye_sent && self.pending.is_empty() && streams_done {
            self.push_control(&Envelope::Goodbye {
                reason: GoodbyeReason::Duplicate,
            });
            d.goodbye_sent = true;
            if self.closed.is_some() {
                return;
            }
            self.drain = Some(d);
        }
        if d.goodbye_sent && self.peer_draining && self.serving.is_empty() && streams_done {
            self.finish(DisconnectReason::Drained, None);
        }
    }
}
