//! Manual addresses on trust entries (issue 18): `host:port` a user attaches to a
//! trusted peer, kept in the trust file, resolved at dial time and dialed first. This
//! is how peers find each other across routed links and overlay VPNs, where no
//! announcement travels.

use peernet_proto::Key;

use super::Node;
use crate::conn::lock;
use crate::error::Result;

impl Node {
    /// Attaches a manual address to the trusted `key`: `"192.168.1.20:7100"`,
    /// `"[2001:db8::1]:7100"` or `"laptop.example:7100"` (a host name is resolved at
    /// every dial round, so it follows DNS or `/etc/hosts`). Persisted in the trust file
    /// (written atomically) and dialed before any other address of the peer; like every
    /// address only a hint: the handshake still authenticates the key. At most 4 per
    /// peer. Returns the canonical form stored. Errors: `UntrustedPeer` (trust the key
    /// first), `InvalidArgument` (not `host:port`, or 4 already), `Io` (the file).
    /// A disconnected peer is dialed now (auto-connect).
    pub fn add_address(&self, key: &Key, addr: &str) -> Result<String> {
        let stored = lock(&self.shared.trust).add_manual(key, addr)?;
        self.shared.ensure_dialer(*key, true);
        Ok(stored)
    }

    /// Detaches a manual address (compared in canonical form); returns whether it was
    /// attached. Confirmed addresses learnt from handshakes are kept.
    pub fn remove_address(&self, key: &Key, addr: &str) -> Result<bool> {
        lock(&self.shared.trust).remove_manual(key, addr)
    }
}
