//! The pairing golden vectors of docs/protocol.md ("Pairing"), byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use peernet_proto::pairing::{
    code_confirm_keys, code_psk, confirm_tag, sas, ticket_psk, Open, PairHello, ShortCode, Ticket,
};
use peernet_proto::Key;

/// RFC 7748 Alice's public key, as in the keyfile vector.
const ALICE: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const SECRET: &str = "000102030405060708090a0b0c0d0e0f";
const K: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn vectors() -> Vec<(&'static str, String)> {
    let t = Ticket {
        key: Key(hex32(ALICE)),
        secret: hex(SECRET).try_into().unwrap(),
        expires_at: 1_700_000_600,
        addrs: vec!["127.0.0.1:40000".parse().unwrap()],
    };
    let (cj, ci) = code_confirm_keys(&hex(K));
    let code = ShortCode::parse("7-copper-violin").unwrap();
    vec![
        ("ticket bytes", to_hex(&t.to_bytes())),
        ("ticket text", t.encode()),
        ("ticket psk", to_hex(&ticket_psk(&t.secret))),
        ("code password", to_hex(&code.password())),
        ("code psk", to_hex(&code_psk(&hex(K)))),
        ("confirm joiner key", to_hex(&cj)),
        ("confirm inviter key", to_hex(&ci)),
        (
            "confirm tag",
            to_hex(&confirm_tag(&cj, &[0x41; 33], &[0x42; 33])),
        ),
        ("sas", sas::words(&hex32(K))),
        (
            "pair hello",
            to_hex(&PairHello::new("laptop", 7100).unwrap().encode()),
        ),
        (
            "open code",
            to_hex(
                &Open::Code {
                    number: 7,
                    pake: [0x41; 33],
                }
                .encode(),
            ),
        ),
        (
            "open ticket",
            to_hex(&Open::Ticket { m1: [0x09; 48] }.encode()),
        ),
    ]
}

const EXPECTED: &[(&str, &str)] = &[
    (
        "ticket bytes",
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a000102030405060708090a0b0c0d0e0f000000006553f35801047f0000019c40",
    ),
    (
        "ticket text",
        "peernet1-QUQPACMJGCTVI6-5ELPXOLIPXXLIC-G36OQNEY4BV5HQ-LUSUY5KU3JZVA7-AAICAMCAKBQHB7-AEQUCYMBUHA6AE-AAAAAGKU7TLAAK-QI7YAAAAZYQAW",
    ),
    (
        "ticket psk",
        "7a406d94e21930ed0937148c18bcf78cf65e6c3c9e97994ce7512968a561e087",
    ),
    (
        "code password",
        "372d636f707065722d76696f6c696e",
    ),
    (
        "code psk",
        "d68165f677229fcd6ef4987cd9344cafea7b13faa3d0f6eff61ee287d87e748a",
    ),
    (
        "confirm joiner key",
        "d9a31264910cfcdaf2337721982f892406fc0fb30ebb157171b411c00339f6ea",
    ),
    (
        "confirm inviter key",
        "d0a27218151f762e5b01bd31247419451f8bf06cccb906c2e5f1a5b6f8baeeef",
    ),
    (
        "confirm tag",
        "37c521d0ec6973f0dc3e68feb01b35205e03857ac8a5505689795436d73b8883",
    ),
    (
        "sas",
        "berry citrus fossil peach jacket",
    ),
    (
        "pair hello",
        "011bbc066c6170746f70",
    ),
    (
        "open code",
        "504e5041495201020007414141414141414141414141414141414141414141414141414141414141414141",
    ),
    (
        "open ticket",
        "504e504149520101090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909",
    ),
];

#[test]
fn pairing_vectors() {
    for (name, want) in EXPECTED {
        let got = vectors().into_iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(&got, want, "{name}");
    }
    assert_eq!(EXPECTED.len(), vectors().len());
    // The ticket text decodes back to the same ticket.
    let t = Ticket::parse(EXPECTED[1].1).unwrap();
    assert_eq!(to_hex(&t.to_bytes()), EXPECTED[0].1);
}
