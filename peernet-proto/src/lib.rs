//! PeerNet wire protocol v1, sans-IO.
