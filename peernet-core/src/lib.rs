//! PeerNet node: default-deny, authenticated peer-to-peer messaging.
//!
//! A [`Node`] has an X25519 identity, trusts an explicit list of peer keys, authenticates
//! every connection with Noise XX and encrypts everything after it. Programs expose named
//! [`Handler`]s; trusted peers [`call`](Node::call) them or [`send`](Node::send) to them.
//! The wire protocol lives in the sans-IO crate [`peernet_proto`]; this crate adds
//! sockets, tasks and the public API.

mod admission;
pub mod blocking;
mod config;
mod conn;
mod datadir;
mod dialer;
mod discovery;
mod error;
mod events;
mod files;
mod fsutil;
mod handlers;
mod identity;
mod listen;
mod manager;
mod metrics;
mod metrics_node;
mod metrics_peer;
mod metrics_text;
mod net;
mod netmon;
mod node;
mod pairing;
mod peers;
mod rpc;
mod shared;
mod sources;
#[allow(unsafe_code)]
mod sys;
mod trust;

pub use config::{MdnsConfig, NodeConfig, UdpDiscoveryConfig, DEFAULT_MAX_CONNECTIONS_PER_PEER};
pub use conn::{Stream, StreamHandler};
pub use datadir::LOCK_FILE;
pub use error::{CloseReason, Error, Result};
pub use events::{Event, EventKind};
pub use files::{
    check_file_name, Authorize, OnReceived, Progress, ReceiveOptions, ReceiveProgress,
    ReceivedFile, SendOptions, SendReport, DEFAULT_FILE_TIMEOUT, DEFAULT_MAX_FILE_SIZE,
    FILE_STREAM, MAX_FILE_NAME,
};
pub use handlers::{Caller, Handler, HandlerFuture, HandlerResult, Request, RequestKind};
pub use identity::{Identity, IDENTITY_FILE};
pub use metrics::{HandlerMetrics, NodeMetrics, LATENCY_BUCKETS_US};
pub use node::Node;
pub use pairing::{Invite, InviteOptions, PairedPeer};
pub use peernet_proto::trustfile::TrustEntry;
pub use peernet_proto::Key;
pub use peers::{AddressSource, DialAttempt, KnownAddress, PeerInfo, PeerState, PeerStats};
pub use rpc::{RpcCall, RpcDispatcher};
pub use trust::TRUST_FILE;

/// The library version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
