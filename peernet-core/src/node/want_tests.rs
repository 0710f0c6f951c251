//! Trusting a peer no source has heard of asks the discovery sources for it
//! (`Shared::want_address`); a peer already heard of is dialed instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use peernet_proto::Key;

use super::Node;
use crate::config::NodeConfig;
use crate::conn::lock;
use crate::discovery::{Discovery, DiscoveryEvent};

/// A discovery source that counts the wishes it gets.
struct Counting(Arc<AtomicUsize>);

impl Discovery for Counting {
    fn network_changed(&self) {}
    fn peer_wanted(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn trusting_a_peer_with_no_address_asks_the_discovery_sources() {
    let dir = std::env::temp_dir().join(format!("peernet-want-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = NodeConfig::new(&dir);
    c.listen = None;
    let node = Node::start(c).await.unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    lock(&node.shared.discovery).push(Box::new(Counting(Arc::clone(&asked))));

    node.trust(&Key([2; 32]), None).unwrap();
    assert_eq!(asked.load(Ordering::Relaxed), 1, "not asked for");

    // Heard of before it is trusted: dialed, not asked for.
    let heard = Key([3; 32]);
    node.shared.apply_discovery(DiscoveryEvent::Discovered {
        key: heard,
        addr: "127.0.0.1:9".parse().unwrap(),
    });
    node.trust(&heard, None).unwrap();
    assert_eq!(asked.load(Ordering::Relaxed), 1, "asked for a known peer");
    // A manual address is one too.
    let manual = Key([4; 32]);
    node.trust(&manual, None).unwrap();
    assert_eq!(asked.load(Ordering::Relaxed), 2);
    node.add_address(&manual, "127.0.0.1:9").unwrap();
    assert!(!node.shared.want_address(&manual));

    node.shutdown().await;
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
