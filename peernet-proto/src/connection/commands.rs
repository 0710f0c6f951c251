//! What the program asks of a connection: call, send, reply, ping, close, drain, and
//! the driver's reports about the socket (EOF, errors).

use std::time::{Duration, Instant};

use super::{
    timers, CallId, Connection, ConnectionError, DisconnectReason, Drain, LimitProblem,
    StateProblem, MAX_ERROR_MESSAGE, REPLY_TOO_LARGE,
};
use crate::envelope::{validate_name, Envelope, GoodbyeReason, Outcome};

impl Connection {
    fn check_open(&self) -> Result<(), ConnectionError> {
        if self.closed.is_some() {
            return Err(StateProblem::Closed.into());
        }
        Ok(())
    }

    /// Starts a call of `name` with `body`, failing with [`Event::CallExpired`] at
    /// `now + timeout` if no Reply came. Returns its id.
    ///
    /// Refused, with nothing queued: closed or draining ([`StateProblem`]), a bad name
    /// ([`MalformedProblem::Envelope`](super::MalformedProblem)), a frame over the
    /// peer's limit ([`LimitProblem::PayloadTooLarge`]), a full transmit queue
    /// ([`LimitProblem::Overloaded`]: retry once `poll_transmit` drained it) or pending
    /// table ([`LimitProblem::TooManyCalls`]). A dialer may queue calls before the
    /// confirmation: they leave with it, or are aborted if the peer refuses.
    ///
    /// [`Event::CallExpired`]: super::Event::CallExpired
    pub fn call(
        &mut self,
        now: Instant,
        name: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<CallId, ConnectionError> {
        self.check_open()?;
        if self.drain.is_some() {
            return Err(StateProblem::Draining.into());
        }
        validate_name(name)?;
        let id = self.next_id;
        if id == u64::MAX {
            return Err(StateProblem::CallIdsExhausted.into());
        }
        let env = Envelope::Call { id, name, body };
        self.check_room(&env)?;
        if self.pending.len() >= self.config.max_pending_calls {
            return Err(LimitProblem::TooManyCalls {
                limit: self.config.max_pending_calls,
            }
            .into());
        }
        self.next_id += 1;
        self.pending.insert(id, timers::add(now, timeout));
        self.tx.push(&env);
        Ok(CallId(id))
    }

    /// Queues a fire-and-forget Send (also while draining: it needs no answer).
    /// Refused like [`Connection::call`], for the same reasons except the pending table.
    pub fn send(&mut self, name: &str, body: &[u8]) -> Result<(), ConnectionError> {
        self.check_open()?;
        validate_name(name)?;
        let env = Envelope::Send { name, body };
        self.check_room(&env)?;
        self.tx.push(&env);
        Ok(())
    }

    /// Answers the peer's call `id` (from [`Event::CallArrived`]). A `HandlerFailed`
    /// message is cut to [`MAX_ERROR_MESSAGE`] bytes; a reply over the caller's frame
    /// limit is replaced with `HandlerFailed("reply too large")` (spec 2).
    ///
    /// [`StateProblem::UnknownCall`] when `id` is not being served (never arrived,
    /// already answered); [`LimitProblem::Overloaded`] when the transmit queue is full:
    /// the call stays served, retry once `poll_transmit` drained the queue.
    ///
    /// [`Event::CallArrived`]: super::Event::CallArrived
    pub fn reply(&mut self, id: CallId, outcome: Outcome<'_>) -> Result<(), ConnectionError> {
        self.check_open()?;
        if !self.serving.contains(id.0) {
            return Err(StateProblem::UnknownCall { id: id.0 }.into());
        }
        let outcome = match outcome {
            Outcome::HandlerFailed(m) if m.len() > MAX_ERROR_MESSAGE => {
                let mut cut = MAX_ERROR_MESSAGE;
                while !m.is_char_boundary(cut) {
                    cut -= 1;
                }
                Outcome::HandlerFailed(m.get(..cut).unwrap_or_default())
            }
            o => o,
        };
        let mut env = Envelope::Reply { id: id.0, outcome };
        match self.check_room(&env) {
            Err(ConnectionError::Limit(LimitProblem::PayloadTooLarge { .. })) => {
                env = Envelope::Reply {
                    id: id.0,
                    outcome: Outcome::HandlerFailed(REPLY_TOO_LARGE),
                };
                self.check_room(&env)?;
            }
            r => r?,
        }
        self.serving.remove(id.0);
        self.tx.push(&env);
        self.progress_drain();
        Ok(())
    }

    /// Sends a heartbeat Ping now, outside the schedule (its Pong updates the RTT).
    /// [`StateProblem::NotConfirmed`] before a dialer's confirmation; `Ok(false)` when
    /// 64 pings are already unanswered (nothing sent).
    pub fn ping(&mut self, now: Instant) -> Result<bool, ConnectionError> {
        self.check_open()?;
        let Some(hb) = self.heartbeat.as_mut() else {
            return Err(StateProblem::NotConfirmed.into());
        };
        match hb.ping_now(now) {
            Some(nonce) => {
                self.push_control(&Envelope::Ping { nonce });
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Closes the connection after a Goodbye with `reason` (spec 5): outstanding calls
    /// are aborted, then [`Event::Closed`] with [`DisconnectReason::Local`]. Flush
    /// `poll_transmit` before closing the socket. A dialer not yet confirmed sends
    /// nothing.
    ///
    /// [`Event::Closed`]: super::Event::Closed
    pub fn close(&mut self, reason: GoodbyeReason) -> Result<(), ConnectionError> {
        self.check_open()?;
        self.finish(DisconnectReason::Local(reason), Some(reason));
        Ok(())
    }

    /// Spec 5.1, on the losing one of two connections to the same peer: no new calls
    /// start here; this side's outstanding calls finish or expire; then Goodbye 1. The
    /// connection closes ([`DisconnectReason::Drained`]) once the peer said Goodbye 1
    /// too and every call it made here is answered, or at `now + timeout`
    /// ([`DisconnectReason::DrainTimeout`], nothing more sent). A second drain is a
    /// no-op.
    pub fn drain(&mut self, now: Instant, timeout: Duration) -> Result<(), ConnectionError> {
        self.check_open()?;
        if self.drain.is_none() {
            self.drain = Some(Drain {
                deadline: timers::add(now, timeout),
                goodbye_sent: false,
            });
            self.progress_drain();
        }
        Ok(())
    }

    /// The driver read EOF: the peer closed the stream. Before a dialer's confirmation
    /// that means the peer refused it ([`DisconnectReason::Refused`], spec 3.4); after,
    /// [`DisconnectReason::PeerEof`]. Bytes of a partial frame are discarded.
    pub fn handle_eof(&mut self) {
        let reason = if self.confirmed {
            DisconnectReason::PeerEof
        } else {
            DisconnectReason::Refused
        };
        self.finish(reason, None);
    }

    /// The driver's socket failed: closes with [`DisconnectReason::Transport`].
    pub fn handle_transport_error(&mut self, message: &str) {
        self.finish(DisconnectReason::Transport(message.to_owned()), None);
    }
}
