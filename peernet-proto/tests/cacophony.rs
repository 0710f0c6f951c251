//! The cacophony Noise_XX_25519_ChaChaPoly_SHA256 vector, through the production
//! handshake, split and channel code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use peernet_proto::handshake::{Handshake, NOISE_PARAMS};
use peernet_proto::hello::Hello;

#[test]
fn cacophony_xx_vector() {
    let v = cacophony();
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    assert_eq!(s("protocol_name"), NOISE_PARAMS);
    let hello = Hello::new(65_536, 0); // unused by the generic steps
    let i_prologue = hex(&s("init_prologue"));
    let r_prologue = hex(&s("resp_prologue"));
    let i_e = hex32(&s("init_ephemeral"));
    let r_e = hex32(&s("resp_ephemeral"));
    let mut i = Handshake::with_options(
        true,
        &hex32(&s("init_static")),
        &i_prologue,
        Some(&i_e),
        &hello,
    )
    .unwrap();
    let mut r = Handshake::with_options(
        false,
        &hex32(&s("resp_static")),
        &r_prologue,
        Some(&r_e),
        &hello,
    )
    .unwrap();

    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 6);
    let payload = |n: usize| hex(msgs[n]["payload"].as_str().unwrap());
    let cipher = |n: usize| hex(msgs[n]["ciphertext"].as_str().unwrap());

    // Handshake: initiator, responder, initiator.
    for n in 0..3 {
        let (w, rd) = if n % 2 == 0 {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let ct = w.write_message(&payload(n)).unwrap();
        assert_eq!(to_hex(&ct), to_hex(&cipher(n)), "handshake message {n}");
        assert_eq!(rd.read_message(&ct).unwrap(), payload(n));
    }
    assert!(i.is_finished() && r.is_finished());
    assert_eq!(to_hex(&i.handshake_hash()), s("handshake_hash"));
    assert_eq!(i.handshake_hash(), r.handshake_hash());

    // Transport: responder (k2), initiator (k1), responder (k2).
    let (mut i_tx, mut i_rx) = i.split().unwrap();
    let (mut r_tx, mut r_rx) = r.split().unwrap();
    for n in 3..6 {
        let mut buf = payload(n);
        let plain = if n % 2 == 1 {
            r_tx.seal_in_place(&mut buf, 0).unwrap();
            assert_eq!(to_hex(&buf), to_hex(&cipher(n)), "transport message {n}");
            i_rx.open_in_place(&mut buf).unwrap().to_vec()
        } else {
            i_tx.seal_in_place(&mut buf, 0).unwrap();
            assert_eq!(to_hex(&buf), to_hex(&cipher(n)), "transport message {n}");
            r_rx.open_in_place(&mut buf).unwrap().to_vec()
        };
        assert_eq!(plain, payload(n));
    }
    assert_eq!((r_tx.counter(), i_tx.counter()), (2, 1));
}
