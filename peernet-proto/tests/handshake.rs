//! Full in-memory handshake, then the channel both ways; misuse and garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::envelope::Envelope;
use peernet_proto::frame::HANDSHAKE_FRAME_LIMIT;
use peernet_proto::handshake::Handshake;
use peernet_proto::hello::Hello;
use peernet_proto::keyfile::public_from_private;
use peernet_proto::ProtoError;

const I_KEY: [u8; 32] = [1; 32];
const R_KEY: [u8; 32] = [2; 32];

fn pair() -> (Handshake, Handshake, Hello, Hello) {
    let ih = Hello::new(65_536, 7001);
    let rh = Hello::new(1 << 20, 7002);
    (
        Handshake::initiator(&I_KEY, &ih).unwrap(),
        Handshake::responder(&R_KEY, &rh).unwrap(),
        ih,
        rh,
    )
}

#[test]
fn full_handshake_then_both_directions() {
    let (mut i, mut r, ih, rh) = pair();
    let m1 = i.write_m1().unwrap();
    assert_eq!(m1.len(), 32);
    r.read_m1(&m1).unwrap();
    let m2 = r.write_m2().unwrap();
    assert_eq!(m2.len(), 112);
    let (rkey, rhello) = i.read_m2(&m2).unwrap();
    assert_eq!(rkey, public_from_private(&R_KEY));
    assert_eq!(rhello, rh);
    let m3 = i.write_m3().unwrap();
    assert_eq!(m3.len(), 80);
    let (ikey, ihello) = r.read_m3(&m3).unwrap();
    assert_eq!(ikey, public_from_private(&I_KEY));
    assert_eq!(ihello, ih);
    assert!(i.is_finished() && r.is_finished());
    assert_eq!(i.handshake_hash(), r.handshake_hash());
    assert_eq!(i.remote_static(), Some(rkey));

    let (mut i_tx, mut i_rx) = i.split().unwrap();
    let (mut r_tx, mut r_rx) = r.split().unwrap();

    // Responder confirms with a Ping (spec 3.4); initiator answers with a Pong.
    for round in 0..3u64 {
        let mut buf = Vec::new();
        Envelope::Ping { nonce: round }.encode_into(&mut buf);
        r_tx.seal_in_place(&mut buf, 0).unwrap();
        let plain = i_rx.open_in_place(&mut buf).unwrap();
        assert_eq!(
            Envelope::decode(plain).unwrap(),
            Envelope::Ping { nonce: round }
        );

        let mut buf = Vec::new();
        Envelope::Pong { nonce: round }.encode_into(&mut buf);
        i_tx.seal_in_place(&mut buf, 0).unwrap();
        let plain = r_rx.open_in_place(&mut buf).unwrap();
        assert_eq!(
            Envelope::decode(plain).unwrap(),
            Envelope::Pong { nonce: round }
        );
    }
    // Directions use different keys: a frame can't be reflected back to its sender.
    let mut buf = b"reflect".to_vec();
    i_tx.seal_in_place(&mut buf, 0).unwrap();
    assert_eq!(i_rx.open_in_place(&mut buf), Err(ProtoError::Decrypt));
}

fn is_handshake_err<T: std::fmt::Debug>(r: Result<T, ProtoError>) -> bool {
    matches!(r, Err(ProtoError::Handshake(_)))
}

#[test]
fn out_of_order_calls_error() {
    let (mut i, mut r, _, _) = pair();
    // Wrong role.
    assert!(is_handshake_err(r.write_m1()));
    assert!(is_handshake_err(i.read_m1(&[0; 32])));
    assert!(is_handshake_err(i.write_m2()));
    assert!(is_handshake_err(r.read_m2(&[0; 112])));
    assert!(is_handshake_err(r.write_m3()));
    assert!(is_handshake_err(i.read_m3(&[0; 80])));
    // Right role, wrong step.
    assert!(is_handshake_err(i.write_m3()));
    assert!(is_handshake_err(i.read_m2(&[0; 112])));
    assert!(is_handshake_err(r.write_m2()));
    assert!(is_handshake_err(r.read_m3(&[0; 80])));
    // Generic steps check turns too.
    assert!(is_handshake_err(r.write_message(b"")));
    assert!(is_handshake_err(i.read_message(&[0; 32])));

    // Misuse did not spoil the handshakes: they still complete.
    let m1 = i.write_m1().unwrap();
    assert!(is_handshake_err(i.write_m1()), "M1 twice");
    r.read_m1(&m1).unwrap();
    assert!(is_handshake_err(r.read_m1(&m1)), "M1 read twice");
    let m2 = r.write_m2().unwrap();
    i.read_m2(&m2).unwrap();
    let m3 = i.write_m3().unwrap();
    r.read_m3(&m3).unwrap();
    assert!(is_handshake_err(i.write_m3()));
    assert!(is_handshake_err(r.read_m3(&m3)));
    assert!(is_handshake_err(i.write_message(b"")));
    i.split().unwrap();
    r.split().unwrap();
}

#[test]
fn split_before_finish_errors() {
    let (mut i, r, _, _) = pair();
    assert!(is_handshake_err(r.split()));
    i.write_m1().unwrap();
    assert!(is_handshake_err(i.split()));
}

#[test]
fn non_empty_m1_rejected() {
    let (_, mut r, _, _) = pair();
    let mut i = Handshake::initiator(&I_KEY, &Hello::new(65_536, 0)).unwrap();
    let m1 = i.write_message(b"sneaky").unwrap();
    assert!(is_handshake_err(r.read_m1(&m1)));
    // Poisoned: nothing else works.
    assert!(r.write_m2().is_err());
}

#[test]
fn garbage_m1_m2_m3_error() {
    // M1 shorter than an ephemeral key, and longer than the limit.
    for bad in [vec![], vec![0u8; 31], vec![0u8; HANDSHAKE_FRAME_LIMIT + 1]] {
        let (_, mut r, _, _) = pair();
        assert!(r.read_m1(&bad).is_err(), "len {}", bad.len());
        assert!(r.write_m2().is_err(), "poisoned after a bad M1");
    }
    // Garbage M2.
    let (mut i, mut r, _, _) = pair();
    let m1 = i.write_m1().unwrap();
    r.read_m1(&m1).unwrap();
    let mut m2 = r.write_m2().unwrap();
    m2[40] ^= 1;
    assert!(is_handshake_err(i.read_m2(&m2)));
    assert!(i.write_m3().is_err());
    // Garbage M3: random bytes, truncated, flipped.
    for mangle in 0..3 {
        let (mut i, mut r, _, _) = pair();
        let m1 = i.write_m1().unwrap();
        r.read_m1(&m1).unwrap();
        let m2 = r.write_m2().unwrap();
        i.read_m2(&m2).unwrap();
        let mut m3 = i.write_m3().unwrap();
        match mangle {
            0 => m3 = vec![0x5a; 80],
            1 => m3.truncate(47),
            _ => {
                let last = m3.len() - 1;
                m3[last] ^= 0x80;
            }
        }
        assert!(is_handshake_err(r.read_m3(&m3)), "mangle {mangle}");
        assert!(r.split().is_err());
    }
}

#[test]
fn bad_hello_inside_m2_is_rejected() {
    // A responder whose Hello announces a limit below 65536.
    let mut i = Handshake::initiator(&I_KEY, &Hello::new(65_536, 0)).unwrap();
    let mut r = Handshake::responder(&R_KEY, &Hello::new(1024, 0)).unwrap();
    let m1 = i.write_m1().unwrap();
    r.read_m1(&m1).unwrap();
    let m2 = r.write_m2().unwrap();
    assert!(matches!(i.read_m2(&m2), Err(ProtoError::BadHello(_))));
}

#[test]
fn different_prologue_fails() {
    let h = Hello::new(65_536, 0);
    let mut i = Handshake::with_options(true, &I_KEY, b"peernet/2", None, &h).unwrap();
    let mut r = Handshake::responder(&R_KEY, &h).unwrap();
    let m1 = i.write_m1().unwrap();
    r.read_m1(&m1).unwrap();
    let m2 = r.write_m2().unwrap();
    assert!(i.read_m2(&m2).is_err());
}

#[test]
fn oversize_payload_is_refused() {
    let mut i = Handshake::initiator(&I_KEY, &Hello::new(65_536, 0)).unwrap();
    assert!(i.write_message(&[0; HANDSHAKE_FRAME_LIMIT]).is_err());
}
