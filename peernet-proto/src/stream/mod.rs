//! Streams: byte streams of any length between two peers, multiplexed on one
//! connection, with per-stream credit flow control and a scheduler that keeps calls
//! and other streams moving while one stream is busy (docs/protocol.md, "Streams").
//!
//! Sans-IO and self-contained, embedded in the connection machine
//! (`peernet_proto::connection`, which depends on this module, not the other way
//! round): one [`StreamTable`] per connection, driven like the machine itself, with no
//! clock (the stream layer has no timer: a dead peer is the heartbeat's
//! business).
//!
//! ```text
//!  connection machine                          StreamTable
//!  decoded stream envelope ── handle(msg) / handle_envelope(bytes) ─▶ Err(v): v.response()
//!  program ────────────────── open / accept / write / read / finish / reset
//!  transmit path ◀─────────── poll_transmit(&mut plain, calls_pending) ─ one message or a Turn
//!  program ◀───────────────── poll_event()   Opened, Readable, Writable, Finished, Reset
//!  connection closed ──────── abort()        Aborted for every stream
//! ```
//!
//! Only when both Hellos carry [`FEATURE_STREAMS`] ([`negotiated`]); otherwise the peer
//! would answer the first stream envelope with Goodbye 3.
//!
//! # Embedding it in the connection machine
//!
//! 1. Hello: set [`FEATURE_STREAMS`] in the local Hello's `features` when streams are
//!    enabled; at `from_handshake`, make a table only if [`negotiated`] (with the
//!    connection's [`Side`](crate::handshake::Side) and a `StreamConfig` in the
//!    machine's `Config`).
//! 2. Receive: for an opened plaintext with [`stream_tag`] `Some` and a table, call
//!    [`StreamTable::handle_envelope`] instead of `Envelope::decode`; on `Err(v)` with
//!    [`Response::CloseConnection`] fail with Goodbye 3 (a new `MalformedProblem`
//!    variant carrying `v`); [`Response::ResetStream`] needs nothing more. Without a
//!    table, keep `Envelope::decode` (unknown tag: Goodbye 3, as today).
//! 3. Events: after every `handle_*` and program call, move
//!    [`StreamTable::poll_event`] into the machine's event queue in order.
//! 4. Transmit: loop on [`StreamTable::poll_transmit`] with `calls_pending` = the
//!    machine's own queue is not empty: seal each [`Transmit::Message`] as one frame;
//!    on [`Transmit::Calls`] seal queued envelopes up to about `config().quantum`
//!    bytes (at least one); stop on [`Transmit::Idle`] or the driver's `max`. "Has
//!    something to write" includes [`StreamTable::has_transmit`].
//! 5. Close: call [`StreamTable::abort`] when the connection ends, before `Closed`;
//!    include [`StreamTable::wants_read`] in the machine's `wants_read`; a draining
//!    duplicate opens no stream and counts open ones like outstanding calls.

mod error;
mod handle;
mod sched;
mod state;
mod table;
mod transmit;
mod wire;

#[cfg(test)]
mod tests;

pub use error::{Response, StreamError, Violation};
pub use sched::{Scheduler, Turn};
pub use state::Read;
pub use table::StreamTable;
pub use transmit::Transmit;
pub use wire::{
    stream_tag, StreamMessage, DATA_HEADER_LEN, MAX_DATA_LEN, MAX_REASON_LEN, TAG_STREAM_CREDIT,
    TAG_STREAM_DATA, TAG_STREAM_FIN, TAG_STREAM_OPEN, TAG_STREAM_RESET,
};

use crate::hello::Hello;

/// Hello feature bit 0: the sender speaks streams (tags 16 to 20). The bit lives in the
/// Hello's existing `features` field, which v1 receivers ignore bit by bit, so the
/// Hello keeps its 16 bytes and every existing vector stays as it is.
pub const FEATURE_STREAMS: u64 = 1 << 0;

/// True when both sides announced [`FEATURE_STREAMS`]: only then may either send a
/// stream message (a peer without it decodes tags 16 to 20 as unknown and closes with
/// Goodbye 3; a machine that did not negotiate treats them exactly so).
pub fn negotiated(local: &Hello, peer: &Hello) -> bool {
    local.features & peer.features & FEATURE_STREAMS != 0
}

/// Reset code: the application gave up on the stream (what `reset` sends unless told).
pub const RESET_CANCELLED: u32 = 0;
/// Reset code: no stream handler of that name, or the opener may not open it
/// (default deny; the handler's `authorize` decides).
pub const RESET_REFUSED: u32 = 1;
/// Reset code: the receiver had [`StreamConfig::max_streams`] of the opener's streams
/// open; the opener may retry once one of its streams ended.
pub const RESET_TOO_MANY_STREAMS: u32 = 2;

/// Control messages (resets of refused opens, opens, resets) queued beyond which the
/// table stops wanting input ([`StreamTable::wants_read`]); at twice this the peer is
/// cut off ([`Violation::Backlog`]).
pub const MAX_CONTROL_QUEUED: usize = 1024;
/// Events queued beyond which [`StreamTable::wants_read`] turns false.
pub const MAX_QUEUED_EVENTS: usize = 4096;

/// Limits of the streams of one connection.
///
/// Memory per connection is bounded by `2 * max_streams * (initial_window +
/// send_buffer)` (each side's own streams and the peer's), plus the queues above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Streams the peer may have open here at once (an Open beyond is reset with
    /// [`RESET_TOO_MANY_STREAMS`]), and streams this side may have open (`open`
    /// refuses beyond). Default 16.
    pub max_streams: usize,
    /// Receive window per stream: the credit granted at open or accept, and what the
    /// receive buffer never exceeds. Default 256 KiB.
    pub initial_window: u32,
    /// Bytes a stream buffers on this side before they are transmitted (`write`
    /// accepts no more). Default 256 KiB.
    pub send_buffer: usize,
    /// Largest chunk one scheduler turn sends (1..=[`MAX_DATA_LEN`]; default
    /// [`MAX_DATA_LEN`], 65,492 bytes).
    pub quantum: usize,
}

impl Default for StreamConfig {
    fn default() -> StreamConfig {
        StreamConfig {
            max_streams: 16,
            initial_window: 256 * 1024,
            send_buffer: 256 * 1024,
            quantum: MAX_DATA_LEN,
        }
    }
}

impl StreamConfig {
    /// The same configuration with every field in range: a window and a send buffer
    /// of at least 1 byte, a quantum in 1..=[`MAX_DATA_LEN`].
    pub fn clamped(self) -> StreamConfig {
        StreamConfig {
            max_streams: self.max_streams,
            initial_window: self.initial_window.max(1),
            send_buffer: self.send_buffer.max(1),
            quantum: self.quantum.clamp(1, MAX_DATA_LEN),
        }
    }
}

/// What the table tells its driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The peer opened stream `id` to handler `name`. Authorise it, then
    /// [`StreamTable::accept`] (grants the peer its first window) or
    /// [`StreamTable::reset`] with [`RESET_REFUSED`]. Nothing arrives before accept.
    Opened {
        /// The stream.
        id: u64,
        /// The handler name (1..=255 bytes).
        name: String,
    },
    /// Bytes arrived on a stream whose buffer was empty (once until a read empties it).
    Readable {
        /// The stream.
        id: u64,
    },
    /// A `write` was cut short, and room freed up since.
    Writable {
        /// The stream.
        id: u64,
    },
    /// The peer finished its direction: read the rest, then [`Read::End`].
    Finished {
        /// The stream.
        id: u64,
    },
    /// The peer reset the stream; it is gone from the table (buffered bytes dropped).
    Reset {
        /// The stream.
        id: u64,
        /// The peer's code (`RESET_*` or the application's).
        code: u32,
        /// The peer's reason (at most [`MAX_REASON_LEN`] bytes).
        reason: String,
    },
    /// The connection ended with the stream open (from [`StreamTable::abort`]).
    Aborted {
        /// The stream.
        id: u64,
    },
}
