//! The C ABI of PeerNet: `libpeernet.so` / `libpeernet.a` and `include/peernet.h`
//! (generated from this crate by cbindgen; see `docs/c-api.md`).
//!
//! A thin adapter over `peernet-core`: opaque handles, status codes, a thread-local
//! last error, and C callbacks run on library threads. Every export wraps its body in
//! the one guard of [`guard`] (panics become `PEERNET_ERR_INTERNAL`; NULL, bad UTF-8 and
//! oversize arguments become `PEERNET_ERR_INVALID_ARGUMENT`); `tests/guard.rs` checks
//! that none lacks it.
#![allow(non_camel_case_types)]

mod guard;
mod types;

mod addresses;
mod basics;
mod callbacks;
mod config;
mod events;
mod handle;
mod logger;
mod messages;
mod metrics;
mod node;
mod pairing;
mod peers;
mod responders;
mod runtime;
mod signal;
mod streams;
mod streams_callbacks;

pub use addresses::*;
pub use basics::*;
pub use config::*;
pub use messages::*;
pub use metrics::*;
pub use node::*;
pub use pairing::*;
pub use peers::*;
pub use streams::*;
pub use streams_callbacks::*;
pub use types::*;
