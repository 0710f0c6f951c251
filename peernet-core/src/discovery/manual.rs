//! Manual discovery: the program injects hints (`Node::discovered`, `Node::lost`), e.g.
//! from Bonjour/mDNS or a configuration file. Hints are checked, then handled exactly
//! like UDP ones.

use std::net::SocketAddr;

use peernet_proto::Key;

use super::DiscoveryEvent;
use crate::error::{Error, Result};

/// Checks a manual "discovered" hint: `own` is this node's key.
pub(crate) fn discovered(own: &Key, key: &Key, addr: SocketAddr) -> Result<DiscoveryEvent> {
    if key == own {
        return Err(Error::invalid("that is this node's own key"));
    }
    if addr.port() == 0 {
        return Err(Error::invalid(format!("{addr}: port 0 cannot be dialed")));
    }
    if addr.ip().is_unspecified() || addr.ip().is_multicast() {
        return Err(Error::invalid(format!("{addr} is not a peer's address")));
    }
    Ok(DiscoveryEvent::Discovered { key: *key, addr })
}

/// A manual "lost" hint.
pub(crate) fn lost(key: &Key) -> DiscoveryEvent {
    DiscoveryEvent::Lost { key: *key }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_hints_are_refused() {
        let own = Key([1; 32]);
        let other = Key([2; 32]);
        let ok: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert!(discovered(&own, &own, ok).is_err());
        assert!(discovered(&own, &other, "127.0.0.1:0".parse().unwrap()).is_err());
        assert!(discovered(&own, &other, "0.0.0.0:5000".parse().unwrap()).is_err());
        assert!(discovered(&own, &other, "224.0.0.1:5000".parse().unwrap()).is_err());
        assert_eq!(
            discovered(&own, &other, ok).unwrap(),
            DiscoveryEvent::Discovered {
                key: other,
                addr: ok
            }
        );
        assert_eq!(lost(&other), DiscoveryEvent::Lost { key: other });
    }
}
