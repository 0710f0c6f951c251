//! Which bytes go next: calls, or one chunk of one stream (deficit round-robin).
//!
//! Every stream with something to send waits in a ring; a turn gives the stream at the
//! front one quantum of bytes (one StreamData of at most `quantum` bytes, which is
//! deficit round-robin with a quantum of `quantum` and packets that can be cut
//! anywhere, so no deficit is ever carried over), then it goes to the back if it still
//! has something. Calls are one more participant: while calls are pending, a stream
//! turn is always followed by a calls turn (the connection's transmit path then sends
//! its queued calls, replies and sends, up to about one quantum of bytes and at least
//! one envelope). So with k streams busy, a byte queued on any stream goes out after at
//! most k - 1 other chunks, and a call after at most one chunk; a bulk stream gets at
//! least half the link when calls saturate it too.
//!
//! Pure: no clock, no I/O, no knowledge of what a stream holds (the table tells it
//! which streams are ready).

use std::collections::VecDeque;

/// The transmit path's next move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Send queued calls/replies/sends: about one quantum of bytes, at least one
    /// envelope, then ask again.
    Calls,
    /// Send one chunk (or the Fin) of this stream, then ask again.
    Stream(u64),
    /// Nothing to send.
    Idle,
}

/// The round-robin of ready streams, and the alternation with calls.
#[derive(Debug, Default)]
pub struct Scheduler {
    ring: VecDeque<u64>,
    /// The last turn was a stream's: the calls class goes next if it has anything.
    last_was_stream: bool,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// Puts a stream that became ready at the back of the ring. The caller makes sure
    /// a stream is in the ring at most once (the table keeps a flag per stream).
    pub fn push(&mut self, id: u64) {
        self.ring.push_back(id);
    }

    /// Streams in the ring (some may have stopped being ready since; the caller skips
    /// them, see [`Scheduler::next`]).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True when no stream waits.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The next turn. `calls_pending`: the connection has calls, replies or sends
    /// queued. `ready(id)` says whether a stream from the ring still has something to
    /// send; those that do not are dropped from the ring (the caller clears their
    /// flag: `ready` is called once for each). A stream returned in
    /// [`Turn::Stream`] has left the ring: the caller pushes it back after its chunk if
    /// it is still ready.
    pub fn next(&mut self, calls_pending: bool, mut ready: impl FnMut(u64) -> bool) -> Turn {
        if calls_pending && self.last_was_stream {
            self.last_was_stream = false;
            return Turn::Calls;
        }
        while let Some(id) = self.ring.pop_front() {
            if ready(id) {
                self.last_was_stream = true;
                return Turn::Stream(id);
            }
        }
        self.last_was_stream = false;
        if calls_pending {
            Turn::Calls
        } else {
            Turn::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_take_turns_and_calls_come_after_every_chunk() {
        let mut s = Scheduler::new();
        s.push(1);
        s.push(3);
        let mut turns = Vec::new();
        for i in 0..8 {
            let t = s.next(i < 5, |_| true);
            if let Turn::Stream(id) = t {
                s.push(id);
            }
            turns.push(t);
        }
        use Turn::*;
        assert_eq!(
            turns,
            [
                Stream(1),
                Calls,
                Stream(3),
                Calls,
                Stream(1),
                Stream(3),
                Stream(1),
                Stream(3)
            ]
        );
    }

    #[test]
    fn streams_that_are_no_longer_ready_leave_the_ring() {
        let mut s = Scheduler::new();
        s.push(1);
        s.push(3);
        assert_eq!(s.next(false, |id| id == 3), Turn::Stream(3));
        assert!(s.is_empty());
        assert_eq!(s.next(false, |_| true), Turn::Idle);
        assert_eq!(s.next(true, |_| true), Turn::Calls);
        assert_eq!(s.next(true, |_| true), Turn::Calls);
    }
}
