//! Streams (issue 16): byte streams of any length to a peer's stream handler,
//! multiplexed on the connection with per-stream flow control, fair with calls.

use std::sync::Arc;

use peernet_proto::Key;

use super::Node;
use crate::conn::{Stream, StreamHandler};
use crate::error::Result;

impl Node {
    /// Opens a stream to the trusted peer's stream handler `name`, on the live
    /// connection. Returns once the open is queued: writes are buffered at once and
    /// flow when the peer accepts. A refusal — no stream handler of that name, its
    /// predicate said no, the peer's limit of open streams, a peer without streams —
    /// comes back as `Err(StreamReset { code: 1 or 2, .. })` from a read or write (or at
    /// once for a peer without streams). Errors here: `UntrustedPeer`, `NotConnected`,
    /// `InvalidArgument` (the name is not 1..=255 bytes), `Overloaded` (16 streams of
    /// this node are open on that connection: finish or reset one).
    pub async fn open_stream(&self, key: &Key, name: &str) -> Result<Stream> {
        let conn: Arc<crate::conn::Conn> = self.shared.route(key)?;
        conn.open_stream(name).await
    }

    /// Exposes a stream handler as `name`: every stream a trusted peer opens to it runs
    /// `handler` (its authorize predicate first). `AlreadyExists` if the name is taken,
    /// `InvalidArgument` if it is not 1..=255 bytes. The names are separate from those
    /// of call handlers.
    pub fn expose_stream(&self, name: &str, handler: StreamHandler) -> Result<()> {
        self.shared.stream_registry.expose(name, handler)
    }

    /// Stops serving streams to `name` (streams already open go on).
    pub fn revoke_stream(&self, name: &str) -> Result<()> {
        self.shared.stream_registry.revoke(name)
    }
}
