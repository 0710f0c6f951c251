//! Channel (spec 4): round trip, tampering, replay, reorder, wrong key, exhaustion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::channel::{RecvCipher, SendCipher, TAG_LEN};
use peernet_proto::ProtoError;

const KEY: [u8; 32] = [7; 32];

fn seal(tx: &mut SendCipher, msg: &[u8]) -> Vec<u8> {
    let mut buf = msg.to_vec();
    tx.seal_in_place(&mut buf, 0).unwrap();
    buf
}

#[test]
fn round_trip_with_prefix_and_counters() {
    let mut tx = SendCipher::new(KEY);
    let mut rx = RecvCipher::new(KEY);
    // Over 64 KiB (Noise's message limit); smaller under Miri, which is ~1000x slower.
    #[cfg(not(miri))]
    const BIG: usize = 200_000;
    #[cfg(miri)]
    const BIG: usize = 2_000;
    for (i, msg) in [&b""[..], b"hello", &[0x55; BIG]].iter().enumerate() {
        // Seal after a 4-byte frame header already in the buffer.
        let mut buf = vec![0xaa; 4];
        buf.extend_from_slice(msg);
        tx.seal_in_place(&mut buf, 4).unwrap();
        assert_eq!(buf.len(), 4 + msg.len() + TAG_LEN);
        assert_eq!(&buf[..4], &[0xaa; 4]);
        assert_eq!(tx.counter(), i as u64 + 1);
        let plain = rx.open_in_place(&mut buf[4..]).unwrap();
        assert_eq!(plain, *msg);
        assert_eq!(rx.counter(), i as u64 + 1);
    }
}

#[test]
fn seal_start_past_end_is_an_error() {
    let mut tx = SendCipher::new(KEY);
    let mut buf = vec![1, 2];
    assert!(tx.seal_in_place(&mut buf, 3).is_err());
    assert_eq!(buf, [1, 2]);
    assert_eq!(tx.counter(), 0);
    tx.seal_in_place(&mut buf, 2).unwrap();
    assert_eq!(buf.len(), 2 + TAG_LEN);
}

#[test]
fn tampering_any_byte_fails() {
    let mut tx = SendCipher::new(KEY);
    let sealed = seal(&mut tx, b"tamper me");
    for i in 0..sealed.len() {
        let mut rx = RecvCipher::new(KEY);
        let mut t = sealed.clone();
        t[i] ^= 0x01;
        assert_eq!(
            rx.open_in_place(&mut t),
            Err(ProtoError::Decrypt),
            "byte {i}"
        );
        assert_eq!(rx.counter(), 0);
        // The counter did not move: the genuine frame still opens.
        let mut g = sealed.clone();
        assert_eq!(rx.open_in_place(&mut g).unwrap(), b"tamper me");
    }
    let mut rx = RecvCipher::new(KEY);
    let mut truncated = sealed[..sealed.len() - 1].to_vec();
    assert_eq!(rx.open_in_place(&mut truncated), Err(ProtoError::Decrypt));
    for n in 0..TAG_LEN {
        assert_eq!(rx.open_in_place(&mut vec![0; n]), Err(ProtoError::Decrypt));
    }
}

#[test]
fn replay_and_reorder_fail() {
    let mut tx = SendCipher::new(KEY);
    let a = seal(&mut tx, b"a");
    let b = seal(&mut tx, b"b");
    let mut rx = RecvCipher::new(KEY);
    assert_eq!(
        rx.open_in_place(&mut b.clone()),
        Err(ProtoError::Decrypt),
        "reorder"
    );
    assert_eq!(rx.open_in_place(&mut a.clone()).unwrap(), b"a");
    assert_eq!(
        rx.open_in_place(&mut a.clone()),
        Err(ProtoError::Decrypt),
        "replay"
    );
    assert_eq!(rx.open_in_place(&mut b.clone()).unwrap(), b"b");
}

#[test]
fn wrong_key_fails() {
    let mut tx = SendCipher::new(KEY);
    let mut rx = RecvCipher::new([8; 32]);
    assert_eq!(
        rx.open_in_place(&mut seal(&mut tx, b"x")),
        Err(ProtoError::Decrypt)
    );
}

#[test]
fn exhaustion_at_u64_max() {
    let mut tx = SendCipher::new(KEY);
    let mut rx = RecvCipher::new(KEY);
    tx.set_counter(u64::MAX - 1);
    rx.set_counter(u64::MAX - 1);
    // The last usable nonce is 2^64 - 2.
    let mut last = seal(&mut tx, b"last");
    assert_eq!(tx.counter(), u64::MAX);
    assert_eq!(rx.open_in_place(&mut last).unwrap(), b"last");
    assert_eq!(rx.counter(), u64::MAX);
    let mut buf = b"never".to_vec();
    assert_eq!(
        tx.seal_in_place(&mut buf, 0),
        Err(ProtoError::NonceExhausted)
    );
    assert_eq!(buf, b"never", "nothing encrypted with nonce 2^64-1");
    assert_eq!(
        rx.open_in_place(&mut [0; 32]),
        Err(ProtoError::NonceExhausted)
    );
}

#[test]
fn debug_hides_keys() {
    let tx = SendCipher::new([0x42; 32]);
    let rx = RecvCipher::new([0x42; 32]);
    let s = format!("{tx:?} {rx:?}");
    assert!(s.contains("counter"));
    assert!(!s.contains("42") && !s.contains("66"), "{s}");
}

#[test]
fn the_backend_is_the_one_the_features_select() {
    let want = if cfg!(feature = "rustcrypto") {
        "rustcrypto"
    } else {
        "ring"
    };
    assert_eq!(peernet_proto::channel::BACKEND, want);
}
