//! Per-peer diagnostics: the last dial attempt and the next one (why a peer is not
//! connected), kept in the peer table and read through `Node::peer`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use peernet_proto::Key;

use crate::conn::{lock, Conn};
use crate::error::Result;
use crate::peers::DialAttempt;
use crate::shared::Shared;

/// Records the outcome of a dial of `key` at `addr`.
pub(crate) fn note_dial(shared: &Shared, key: Key, addr: SocketAddr, r: &Result<Arc<Conn>>) {
    let attempt = DialAttempt {
        at: SystemTime::now(),
        address: addr,
        error: r.as_ref().err().map(|e| e.to_string()),
    };
    lock(&shared.peers).entry(key).last_dial = Some(attempt);
}

/// The dial supervisor of `key` waits `delay` before its next attempt (`None`: it is
/// dialing now, or it stopped).
pub(crate) fn note_next_dial(shared: &Shared, key: &Key, delay: Option<Duration>) {
    let at = delay.map(|d| SystemTime::now() + d);
    if let Some(e) = lock(&shared.peers).entry_mut(key) {
        e.next_dial = at;
    }
}
