//! The plain C types of the API: status codes, keys, buffers, peer and event records,
//! callback signatures and constants.

use std::ffi::{c_char, c_int, c_void};

/// Result of every fallible function. 0 is success; on anything else
/// `peernet_last_error()` describes what went wrong on the calling thread.
/// Values are stable; new codes are only ever appended.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum peernet_status {
    /// Success.
    PEERNET_OK = 0,
    /// NULL where a pointer is required, bad hex, invalid UTF-8, a length or value out
    /// of range, a name that is reserved or unknown, a responder already answered.
    PEERNET_ERR_INVALID_ARGUMENT = 1,
    /// An operating-system I/O error (listening, connecting, the data directory).
    PEERNET_ERR_IO = 2,
    /// The identity or trust file exists but does not parse; it is never replaced.
    PEERNET_ERR_CORRUPT_FILE = 3,
    /// No live connection to that peer.
    PEERNET_ERR_NOT_CONNECTED = 4,
    /// The deadline passed (or, for `peernet_next_event`, no event came).
    PEERNET_ERR_TIMEOUT = 5,
    /// The peer exposes no handler of that name.
    PEERNET_ERR_NO_SUCH_HANDLER = 6,
    /// The peer's handler refused this caller (its authorize callback said no).
    PEERNET_ERR_FORBIDDEN = 7,
    /// The peer's handler answered with an error; its text is in the result buffer.
    PEERNET_ERR_HANDLER_FAILED = 8,
    /// A queue was full; nothing ran.
    PEERNET_ERR_OVERLOADED = 9,
    /// The peer's key is not trusted (here, or the peer does not trust us).
    PEERNET_ERR_UNTRUSTED_PEER = 10,
    /// The authenticated handshake failed.
    PEERNET_ERR_HANDSHAKE_FAILED = 11,
    /// The message exceeds the receiver's frame limit; the connection stays up.
    PEERNET_ERR_PAYLOAD_TOO_LARGE = 12,
    /// A handler of that name is already exposed.
    PEERNET_ERR_ALREADY_EXISTS = 13,
    /// The connection or the node closed before the operation completed; or the call a
    /// responder belongs to is gone.
    PEERNET_ERR_CLOSED = 14,
    /// A bug inside libpeernet (a contained panic); the node stays usable.
    PEERNET_ERR_INTERNAL = 15,
    /// Another node (in this process or another) holds the data directory; the last
    /// error names it and the holder's pid. Stop that node or use another directory.
    PEERNET_ERR_BUSY = 16,
    /// The stream was reset: by the peer (its code and reason are in the last error
    /// and in `peernet_stream_reset_info`), or refused when it was opened (no stream
    /// handler of that name, not authorized: code `PEERNET_STREAM_RESET_REFUSED`; too
    /// many streams: `PEERNET_STREAM_RESET_TOO_MANY_STREAMS`). Nothing more can be read
    /// or written on it; free it.
    PEERNET_ERR_STREAM_RESET = 17,
}

/// Number of status codes (one past the largest value).
pub const PEERNET_STATUS_COUNT: i32 = 18;

/// An X25519 public key: a node's identity. Plain bytes; copy it freely.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct peernet_key {
    /// The 32 raw key bytes.
    pub bytes: [u8; 32],
}

/// Bytes of `peernet_key_to_hex`'s output buffer: 64 hex digits and a NUL.
pub const PEERNET_KEY_HEX_SIZE: usize = 65;

/// Bytes of `peernet_key_fingerprint`'s output buffer: 16 hex digits and a NUL.
pub const PEERNET_FINGERPRINT_SIZE: usize = 17;

/// Bytes returned by the library (a call's reply, or a handler's error text).
/// `data` is followed by one extra NUL byte not counted in `len` (so text replies can
/// be printed directly); `data` is NULL when `len` is 0. Free with `peernet_buffer_free`.
#[repr(C)]
#[derive(Debug)]
pub struct peernet_buffer {
    /// The bytes (owned by the library until `peernet_buffer_free`).
    pub data: *mut u8,
    /// Number of bytes.
    pub len: usize,
}

/// Connection state of a peer.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum peernet_peer_state {
    /// No connection and no dial in progress.
    PEERNET_PEER_DISCONNECTED = 0,
    /// A dial is in progress.
    PEERNET_PEER_CONNECTING = 1,
    /// At least one authenticated connection is up.
    PEERNET_PEER_CONNECTED = 2,
}

/// Bytes of `peernet_peer_info.label` and `.address`, NUL included.
pub const PEERNET_PEER_TEXT_SIZE: usize = 64;

/// What the node knows about one peer (a snapshot from `peernet_peers`).
/// Fields are only ever appended (with an ABI version bump).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct peernet_peer_info {
    /// The peer's key.
    pub key: peernet_key,
    /// Connection state.
    pub state: peernet_peer_state,
    /// In the trust store.
    pub trusted: bool,
    /// Granted RPC rights.
    pub rpc: bool,
    /// Label from the trust store, NUL-terminated; longer labels are cut at a UTF-8
    /// character boundary.
    pub label: [c_char; 64],
    /// "ip:port" of the live connection, else the last confirmed address, else the last
    /// seen one; "" if none.
    pub address: [c_char; 64],
    /// When the peer was last heard from, Unix time in ms; 0 = never.
    pub last_seen_ms: u64,
    /// Heartbeat round-trip time of the live connection in microseconds; 0 = unknown.
    pub rtt_us: u32,
}

/// What happened (see `peernet_event_fn` and `peernet_next_event`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum peernet_event_kind {
    /// Discovery heard of a peer; detail = its address.
    PEERNET_EVENT_DISCOVERED = 0,
    /// Discovery has not heard of a peer for 3 intervals (live connections stay up).
    PEERNET_EVENT_LOST = 1,
    /// The first authenticated connection to a peer is up; detail = its address.
    PEERNET_EVENT_CONNECTED = 2,
    /// The last connection to a peer closed; detail = the reason.
    PEERNET_EVENT_DISCONNECTED = 3,
    /// The set of local addresses changed; no key.
    PEERNET_EVENT_NETWORK_CHANGED = 4,
    /// A pairing attempt began (inviter: a joiner connected, detail = its address;
    /// joiner: `peernet_join` started).
    PEERNET_EVENT_PAIRING_STARTED = 5,
    /// A pairing succeeded; key = the peer now trusted, detail = its name.
    PEERNET_EVENT_PAIRING_SUCCEEDED = 6,
    /// A pairing attempt failed or an invite ended unused; detail = why (and whether
    /// the short code is burned).
    PEERNET_EVENT_PAIRING_FAILED = 7,
}

/// Why a connection closed (`peernet_event.close_reason`), the typed form of the
/// reason text; the same kinds as the `Closed` errors of its calls.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum peernet_close_reason {
    /// Not a disconnected event.
    PEERNET_CLOSE_NONE = 0,
    /// The peer said Goodbye (detail names its reason).
    PEERNET_CLOSE_PEER_GOODBYE = 1,
    /// The peer closed the socket without a Goodbye (it exited or crashed).
    PEERNET_CLOSE_PEER_EOF = 2,
    /// A socket error (reset by the peer, ...).
    PEERNET_CLOSE_IO = 3,
    /// This node stopped or is stopping.
    PEERNET_CLOSE_LOCAL_SHUTDOWN = 4,
    /// This program disconnected the peer (`peernet_disconnect`).
    PEERNET_CLOSE_LOCAL_DISCONNECT = 5,
    /// This node revoked its trust in the peer (`peernet_untrust`).
    PEERNET_CLOSE_TRUST_REVOKED = 6,
    /// The peer answered no heartbeat within the heartbeat timeout.
    PEERNET_CLOSE_HEARTBEAT_TIMEOUT = 7,
    /// The connection lost to a newer duplicate between the same two nodes.
    PEERNET_CLOSE_DUPLICATE = 8,
    /// A frame failed to open or an envelope failed to decode.
    PEERNET_CLOSE_PROTOCOL = 9,
    /// This node closed it for another reason (detail says which).
    PEERNET_CLOSE_LOCAL = 10,
}

/// Bytes of `peernet_event.detail`, NUL included.
pub const PEERNET_EVENT_DETAIL_SIZE: usize = 128;

/// One event from `peernet_next_event`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct peernet_event {
    /// What happened.
    pub kind: peernet_event_kind,
    /// The peer concerned (all zero when `has_key` is false).
    pub key: peernet_key,
    /// Whether `key` is set.
    pub has_key: bool,
    /// Address or reason, NUL-terminated, cut at a UTF-8 boundary to fit.
    pub detail: [c_char; 128],
    /// For `PEERNET_EVENT_DISCONNECTED`: why, typed; `PEERNET_CLOSE_NONE` otherwise.
    /// (Appended in ABI 1.)
    pub close_reason: peernet_close_reason,
}

/// Capacity of each node's event queue (`peernet_next_event`). When it is full the
/// oldest event is dropped to make room (a warning is logged), so memory stays bounded
/// even if nobody polls.
pub const PEERNET_EVENT_QUEUE_CAPACITY: usize = 1024;

/// Log levels of `peernet_set_logger` and `peernet_log_fn`.
pub const PEERNET_LOG_OFF: c_int = 0;
/// Errors.
pub const PEERNET_LOG_ERROR: c_int = 1;
/// Warnings.
pub const PEERNET_LOG_WARN: c_int = 2;
/// Information.
pub const PEERNET_LOG_INFO: c_int = 3;
/// Debugging.
pub const PEERNET_LOG_DEBUG: c_int = 4;
/// Tracing (very verbose).
pub const PEERNET_LOG_TRACE: c_int = 5;

/// Opaque: one pending call to answer with `peernet_respond` or `peernet_respond_error`,
/// exactly once, from any thread, now or later. Answering consumes it; answering it
/// again (or after its node was freed) gives `PEERNET_ERR_INVALID_ARGUMENT`, never
/// undefined behaviour, because the pointer is a token the library looks up, not memory.
pub struct peernet_responder {
    _private: [u8; 0],
}

/// Releases a `user_data` pointer; called exactly once by the library (see
/// `peernet_expose`).
pub type peernet_free_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// A handler: runs on a library thread, which it may block (other peers are not
/// stalled) unless the node was started with `peernet_config_set_inline_callbacks`
/// (then it must be quick); it may call any `peernet_*` function, including blocking
/// ones. `body` is
/// valid only during the call. For a call, answer `responder` exactly once (now or later, from any thread);
/// for a send, `responder` is NULL.
pub type peernet_handler_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        from: *const peernet_key,
        body: *const u8,
        body_len: usize,
        responder: *mut peernet_responder,
    ),
>;

/// An authorize predicate: true lets `from` call the handler, false answers
/// `PEERNET_ERR_FORBIDDEN`. Runs on a runtime thread before the handler: it must return
/// quickly and not block.
pub type peernet_authorize_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, from: *const peernet_key) -> bool>;

/// Completion of `peernet_call_async`: runs exactly once on a library thread (it may
/// block, unless the node has inline callbacks, and may call `peernet_*`). On `PEERNET_OK` `data` is the reply; on
/// `PEERNET_ERR_HANDLER_FAILED` the handler's error text; otherwise NULL (see
/// `peernet_last_error()` inside the callback). `data` is valid only during the call.
pub type peernet_call_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        status: peernet_status,
        data: *const u8,
        len: usize,
    ),
>;

/// The RPC dispatcher: like a handler, for `module.function(args)` calls from peers
/// granted RPC; always gets a responder.
pub type peernet_rpc_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        from: *const peernet_key,
        module: *const c_char,
        function: *const c_char,
        args: *const u8,
        args_len: usize,
        responder: *mut peernet_responder,
    ),
>;

/// An event callback: runs on the node's event thread, one event at a time in order
/// (it may block, but then delays later events). `key` is NULL for events about no peer.
/// `key` and `detail` are valid only during the call.
pub type peernet_event_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        kind: peernet_event_kind,
        key: *const peernet_key,
        detail: *const c_char,
    ),
>;

/// A log sink: runs on whichever library thread logged (often a runtime thread), so it
/// must be quick and must not block. Records logged from inside it are dropped.
pub type peernet_log_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: c_int,
        target: *const c_char,
        message: *const c_char,
    ),
>;

/// Copies `s` into a fixed NUL-terminated field, cut at a UTF-8 character boundary.
pub(crate) fn fill_text(dst: &mut [c_char], s: &str) {
    let max = dst.len().saturating_sub(1);
    let mut end = s.len().min(max);
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    for (d, &b) in dst.iter_mut().zip(s.as_bytes()[..end].iter()) {
        *d = b as c_char;
    }
    for d in dst.iter_mut().skip(end) {
        *d = 0;
    }
}

/// Wraps a core key.
pub(crate) fn key_out(k: &peernet_core::Key) -> peernet_key {
    peernet_key {
        bytes: *k.as_bytes(),
    }
}
