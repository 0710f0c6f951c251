//! The per-source share of the handshake slots: one host cannot take every slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::conn::lock;

/// Handshake slots held per source IP address: each source gets at most `share` of the
/// node's `max_handshakes` at once.
#[derive(Debug)]
pub(crate) struct SourceShares {
    share: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl SourceShares {
    /// A quarter of `max_handshakes` per source, at least one.
    pub(crate) fn new(max_handshakes: usize) -> Arc<SourceShares> {
        Arc::new(SourceShares {
            share: (max_handshakes / 4).max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `ip` if it holds fewer than its share (an IPv4-mapped IPv6 address
    /// counts as its IPv4 address). The map holds only sources with a slot, so it is
    /// bounded by `max_handshakes`.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let ip = ip.to_canonical();
        let mut held = lock(&self.held);
        let n = held.entry(ip).or_insert(0);
        if *n >= self.share {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            shares: Arc::clone(self),
            ip,
        })
    }
}

/// One handshake slot of a source; released on drop.
pub(crate) struct SourceSlot {
    shares: Arc<SourceShares>,
    ip: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut held = lock(&self.shares.held);
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_source_gets_a_quarter_of_the_handshake_slots() {
        let s = SourceShares::new(8);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = s.try_acquire(a).unwrap();
        let _second = s.try_acquire(mapped).unwrap();
        assert!(s.try_acquire(a).is_none(), "a third slot for one source");
        let _other = s.try_acquire(b).unwrap();
        drop(first);
        assert!(s.try_acquire(a).is_some(), "a released slot is free again");
        assert_eq!(SourceShares::new(3).share, 1);
    }
}
