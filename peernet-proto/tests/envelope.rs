//! Envelope rules beyond the vectors: names, bounds, reasons.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::envelope::{validate_name, Envelope, GoodbyeReason, Outcome, MAX_NAME_LEN};
use peernet_proto::ProtoError;

fn encode(e: &Envelope<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    e.encode_into(&mut out);
    out
}

#[test]
fn names_empty_too_long_and_non_utf8_are_rejected() {
    let long = "a".repeat(MAX_NAME_LEN + 1);
    let max = "a".repeat(MAX_NAME_LEN);
    for name in ["", long.as_str()] {
        assert!(validate_name(name).is_err());
        for e in [
            Envelope::Call {
                id: 1,
                name,
                body: b"",
            },
            Envelope::Send { name, body: b"" },
        ] {
            assert!(matches!(
                Envelope::decode(&encode(&e)),
                Err(ProtoError::Malformed(_))
            ));
        }
    }
    validate_name(&max).unwrap();
    let ok = Envelope::Send {
        name: &max,
        body: b"x",
    };
    assert_eq!(Envelope::decode(&encode(&ok)).unwrap(), ok);

    // 255 bytes of 2-byte characters would be 254 or 256: 128 'é' is 256 bytes.
    let long_utf8 = "é".repeat(128);
    assert!(Envelope::decode(&encode(&Envelope::Send {
        name: &long_utf8,
        body: b""
    }))
    .is_err());

    // Non-UTF-8 name in a Call (bytes patched after encoding).
    let mut b = encode(&Envelope::Call {
        id: 9,
        name: "ab",
        body: b"",
    });
    b[4 + 8 + 8] = 0xff;
    assert!(matches!(
        Envelope::decode(&b),
        Err(ProtoError::Malformed(_))
    ));
    // Non-UTF-8 HandlerFailed message.
    let mut b = encode(&Envelope::Reply {
        id: 9,
        outcome: Outcome::HandlerFailed("ab"),
    });
    let last = b.len() - 1;
    b[last] = 0xc3;
    assert!(Envelope::decode(&b).is_err());
}

#[test]
fn huge_length_prefixes_do_not_allocate_or_panic() {
    for len in [u64::MAX, 1 << 63, u64::from(u32::MAX), 1 << 40] {
        let mut b = vec![0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(b"echo");
        assert!(Envelope::decode(&b).is_err());
        let mut r = vec![1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        r.extend_from_slice(&len.to_le_bytes());
        assert!(Envelope::decode(&r).is_err());
    }
}

#[test]
fn every_tag_past_goodbye_is_rejected() {
    for tag in [6u32, 7, 255, u32::MAX] {
        let mut b = tag.to_le_bytes().to_vec();
        b.extend_from_slice(&[0; 16]);
        assert!(Envelope::decode(&b).is_err());
    }
    for outcome in [5u32, u32::MAX] {
        let mut b = vec![1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&outcome.to_le_bytes());
        assert!(Envelope::decode(&b).is_err());
    }
}

#[test]
fn goodbye_reasons() {
    for (v, r) in [
        (0, GoodbyeReason::Closing),
        (1, GoodbyeReason::Duplicate),
        (2, GoodbyeReason::TrustRevoked),
        (3, GoodbyeReason::ProtocolError),
        (4, GoodbyeReason::Closing),
    ] {
        assert_eq!(GoodbyeReason::from_u32(v), r);
        let b = [5, 0, 0, 0, v as u8, 0, 0, 0];
        assert_eq!(
            Envelope::decode(&b).unwrap(),
            Envelope::Goodbye { reason: r }
        );
    }
    assert_eq!(GoodbyeReason::TrustRevoked.as_u32(), 2);
}

#[test]
fn encode_appends_and_borrows_on_decode() {
    let body = vec![0xabu8; 100_000];
    let e = Envelope::Call {
        id: 42,
        name: "bulk",
        body: &body,
    };
    let mut out = vec![1, 2, 3];
    e.encode_into(&mut out);
    assert_eq!(out.len(), 3 + e.encoded_len());
    let decoded = Envelope::decode(&out[3..]).unwrap();
    let Envelope::Call { body: b, .. } = decoded else {
        panic!("not a call")
    };
    // Zero-copy: the body points into the input buffer.
    assert!(std::ptr::eq(
        b.as_ptr(),
        out[3 + 4 + 8 + 8 + 4 + 8..].as_ptr()
    ));
}
