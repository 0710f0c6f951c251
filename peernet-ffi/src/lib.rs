//! C ABI for PeerNet (work in progress: see issue 4).
