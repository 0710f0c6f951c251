//! `Node::invite` and `Node::join` (the work is in `crate::pairing`).

use std::time::Duration;

use super::Node;
use crate::error::Result;
use crate::pairing::{Invite, InviteOptions, PairedPeer};

impl Node {
    /// Opens an invite: a one-time ticket (and, by default, a short code) another
    /// node passes to [`join`](Node::join). The node opens its own short-lived TCP
    /// pairing listener for it (on its listen IP, a free port: the ticket names it),
    /// which accepts only pairing handshakes, one attempt at a time, and closes at
    /// expiry (default 10 minutes), after a success, or when the [`Invite`] is
    /// dropped. One attempt on the short code, right or wrong, burns the code (a
    /// `PairingFailed` event says so); the ticket's 128-bit secret survives failed
    /// attempts. On success both nodes trust each other (label = the other's name).
    pub async fn invite(&self, options: InviteOptions) -> Result<Invite> {
        crate::pairing::inviter::open(&self.shared, options).await
    }

    /// Pairs with an invite: `code_or_ticket` is a short code (`7-copper-violin`,
    /// found on the LAN through the discovery port) or a ticket (`peernet1-…`, which
    /// names the inviter's key and addresses). A typo is `InvalidArgument` naming the
    /// part that is wrong, before any traffic; so is an expired ticket. On success this
    /// node trusts the inviter's key (the one its handshake proved), labelled with its
    /// name, and dials it. `name` is what the inviter will call this node (`None`: the
    /// host name).
    pub async fn join(
        &self,
        code_or_ticket: &str,
        name: Option<&str>,
        timeout: Duration,
    ) -> Result<PairedPeer> {
        crate::pairing::joiner::join(&self.shared, code_or_ticket, name, timeout).await
    }
}
