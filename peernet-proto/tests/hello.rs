//! Hello acceptance rules (spec 3.2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::hello::{Hello, HELLO_LEN, PROTOCOL_VERSION};
use peernet_proto::ProtoError;

#[test]
fn rejects_short_version_zero_and_small_limit() {
    let good = Hello::new(65_536, 7100).encode();
    for n in 0..HELLO_LEN {
        assert!(matches!(
            Hello::decode(&good[..n]),
            Err(ProtoError::BadHello(_))
        ));
    }
    let mut v0 = Hello::new(1 << 20, 1);
    v0.protocol_version = 0;
    assert!(matches!(
        Hello::decode(&v0.encode()),
        Err(ProtoError::BadHello(_))
    ));
    let small = Hello::new(65_535, 1);
    assert!(matches!(
        Hello::decode(&small.encode()),
        Err(ProtoError::BadHello(_))
    ));
    assert!(Hello::decode(&Hello::new(0, 1).encode()).is_err());
}

#[test]
fn accepts_longer_and_higher_version() {
    let h = Hello::new(65_536, 7100);
    let mut long = h.encode().to_vec();
    long.extend_from_slice(b"future fields");
    assert_eq!(Hello::decode(&long).unwrap(), h);

    let mut v9 = Hello::new(u32::MAX, 65535);
    v9.protocol_version = 9;
    v9.features = u64::MAX;
    assert_eq!(Hello::decode(&v9.encode()).unwrap(), v9);
    assert_eq!(Hello::new(1, 2).protocol_version, PROTOCOL_VERSION);
}
