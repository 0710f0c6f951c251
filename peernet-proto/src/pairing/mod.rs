//! Pairing: two devices come to trust each other's static key without anyone copying
//! 64 hex digits (docs/protocol.md, "Pairing"). Sans-IO like the rest of the crate.
//!
//! Two ways to carry the shared secret from the inviter to the joiner:
//!
//! - an invite [`ticket`] (copy-paste or QR): `peernet1-…`, holding the inviter's static
//!   key, where to dial it, a one-time 128-bit secret and an expiry; every group of
//!   characters has a check character, so a typo is reported, naming the group, before
//!   any traffic;
//! - a short [`code`] `N-word-word` a person reads aloud: only `N` travels on the LAN (to
//!   find the inviter); the words go through SPAKE2 (RustCrypto `spake2`) with key
//!   confirmation, so each connection tests one guess, and a wrong one burns the code.
//!
//! Either secret becomes the pre-shared key of a Noise `XXpsk3` handshake under the
//! prologue [`PROLOGUE`]; after it both sides exchange a [`PairHello`] (name, listen
//! port) inside the encrypted session and each trusts exactly the static key the
//! handshake authenticated. [`sas`] derives verification words from the handshake hash.
//!
//! [`JoinerSession`] and [`InviterSession`] drive one attempt; [`Invitation`] keeps the
//! inviter's one-time state (expiry, used, code burned).

mod error;
mod inviter;
mod joiner;
mod kdf;
mod messages;
mod words;

pub mod code;
pub mod rendezvous;
pub mod sas;
pub mod session;
pub mod ticket;

pub use code::ShortCode;
pub use error::PairError;
pub use inviter::{Invitation, InviterSession};
pub use joiner::JoinerSession;
pub use kdf::{code_confirm_keys, code_psk, confirm_tag, ticket_psk, CONFIRM_LEN};
pub use messages::{Mode, Open, PairHello, MAX_NAME_LEN};
pub use rendezvous::PairAnnounce;
pub use session::{Output, Paired, SPAKE_ID_INVITER, SPAKE_ID_JOINER};
pub use ticket::Ticket;
pub use words::WORDS;

/// The Noise prologue of every pairing handshake (distinct from the connection
/// handshake's `peernet/1`, so a pairing transcript is never a valid connection one).
pub const PROLOGUE: &[u8] = b"peernet-pair-v1";
/// The Noise protocol name of the pairing handshake.
pub const NOISE_PARAMS: &str = "Noise_XXpsk3_25519_ChaChaPoly_SHA256";
/// The largest pairing message (every one is one frame body, spec 2).
pub const MAX_MESSAGE_LEN: usize = crate::frame::HANDSHAKE_FRAME_LIMIT;
/// Default lifetime of an invite: 10 minutes.
pub const DEFAULT_EXPIRY_SECS: u64 = 600;
