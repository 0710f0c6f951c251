//! Discovery announcement (spec 8): rejects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::announce::{Announcement, ANNOUNCE_LEN};
use peernet_proto::{Key, ProtoError};

#[test]
fn rejects_length_magic_version() {
    let a = Announcement {
        tcp_port: 65535,
        key: Key([9; 32]),
    };
    let good = a.encode();
    assert_eq!(Announcement::decode(&good).unwrap(), a);
    let bad = |b: &[u8]| matches!(Announcement::decode(b), Err(ProtoError::BadAnnouncement(_)));
    assert!(bad(&good[..ANNOUNCE_LEN - 1]));
    assert!(bad(&[good.as_slice(), &[0]].concat()));
    assert!(bad(&[]));
    let mut m = good;
    m[3] = b't';
    assert!(bad(&m));
    for v in [0u8, 2, 0xff] {
        let mut m = good;
        m[4] = v;
        assert!(bad(&m));
    }
}
