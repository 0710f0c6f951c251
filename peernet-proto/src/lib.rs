//! PeerNet wire protocol v1, sans-IO.
//!
//! Bytes in, bytes or events out: no sockets, no clocks (time is passed in), no
//! tasks. The protocol is written down in the repository's `docs/protocol.md`
//! (section numbers below), with its golden vectors.
//!
//! | module | spec | what |
//! |---|---|---|
//! | [`frame`] | 2 | `u32 BE length ‖ body` |
//! | [`handshake`], [`hello`] | 3 | Noise XX over snow, the Hello payload |
//! | [`channel`] | 4 | ChaCha20-Poly1305 per direction |
//! | [`envelope`], [`heartbeat`] | 5 | Call/Reply/Send/Ping/Pong/Goodbye, ping schedule |
//! | [`connection`] | 3.4, 4, 5, 5.1 | one authenticated connection as a state machine |
//! | [`rpc`] | 6 | the `peernet.rpc` body |
//! | [`stream`] | — | streams: messages (tags 16–20), credit flow control, the scheduler (not used by the node yet) |
//! | [`keyfile`], [`key`] | 7 | identity keyfile, public keys |
//! | [`announce`] | 8 | the UDP discovery announcement |
//! | [`pairing`] | — | invite tickets, short codes (SPAKE2), Noise XXpsk3 pairing, SAS |
//! | [`trustfile`], [`peer_addr`], [`backoff`] | — | trust store file format, manual peer addresses, reconnect delays |

#![forbid(unsafe_code)]

mod aead;
mod codec;

pub mod announce;
pub mod backoff;
pub mod channel;
pub mod connection;
pub mod envelope;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod heartbeat;
pub mod hello;
pub mod key;
pub mod keyfile;
pub mod pairing;
pub mod peer_addr;
pub mod rpc;
pub mod stream;
pub mod trustfile;

pub use error::ProtoError;
pub use key::Key;
