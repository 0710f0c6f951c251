//! PeerNet node.
