//! Every vector of vectors/peernet-v1.json, byte for byte, both ways.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use peernet_proto::announce::Announcement;
use peernet_proto::channel::nonce_bytes;
use peernet_proto::envelope::{Envelope, GoodbyeReason, Outcome};
use peernet_proto::frame::{encode_frame, parse_header, HEADER_LEN};
use peernet_proto::hello::Hello;
use peernet_proto::rpc::RpcRequest;
use peernet_proto::{keyfile, Key};

#[test]
fn envelopes() {
    let v = v1();
    let expected = [
        Envelope::Call {
            id: 1,
            name: "echo",
            body: b"hi",
        },
        Envelope::Call {
            id: 2,
            name: "é",
            body: &[0x00, 0xff],
        },
        Envelope::Reply {
            id: 1,
            outcome: Outcome::Ok(b"hi"),
        },
        Envelope::Reply {
            id: 7,
            outcome: Outcome::NoSuchHandler,
        },
        Envelope::Reply {
            id: 3,
            outcome: Outcome::Forbidden,
        },
        Envelope::Reply {
            id: 2,
            outcome: Outcome::HandlerFailed("bad"),
        },
        Envelope::Reply {
            id: 0x0102_0304_0506_0708,
            outcome: Outcome::Overloaded,
        },
        Envelope::Send {
            name: "chat",
            body: b"",
        },
        Envelope::Ping {
            nonce: 0x1122_3344_5566_7788,
        },
        Envelope::Pong { nonce: 1 },
        Envelope::Goodbye {
            reason: GoodbyeReason::ProtocolError,
        },
    ];
    let bytes = hexes(&v, "envelopes");
    assert_eq!(bytes.len(), expected.len());
    for (b, e) in bytes.iter().zip(expected.iter()) {
        let mut out = Vec::new();
        e.encode_into(&mut out);
        assert_eq!(to_hex(&out), to_hex(b), "encode {e:?}");
        assert_eq!(e.encoded_len(), b.len());
        assert_eq!(&Envelope::decode(b).unwrap(), e, "decode {}", to_hex(b));
    }
}

#[test]
fn malformed_envelopes() {
    let v = v1();
    let cases = v["malformed_envelopes_must_be_rejected"]
        .as_array()
        .unwrap();
    assert_eq!(cases.len(), 8);
    for c in cases {
        let b = hex(c["hex"].as_str().unwrap());
        assert!(
            matches!(
                Envelope::decode(&b),
                Err(peernet_proto::ProtoError::Malformed(_))
            ),
            "{} must be rejected",
            c["why"]
        );
    }
}

#[test]
fn hello() {
    let v = v1();
    let expected = [
        Hello {
            protocol_version: 1,
            max_frame_len: 1_048_576,
            listen_port: 7100,
            features: 0,
        },
        Hello {
            protocol_version: 1,
            max_frame_len: 65_536,
            listen_port: 0,
            features: 1 << 63,
        },
    ];
    for (b, h) in hexes(&v, "hello").iter().zip(expected.iter()) {
        assert_eq!(h.encode().as_slice(), b.as_slice());
        assert_eq!(&Hello::decode(b).unwrap(), h);
    }
    assert_eq!(Hello::new(1 << 20, 7100), expected[0]);
}

#[test]
fn rpc_body() {
    let v = v1();
    let b = &hexes(&v, "rpc_body")[0];
    let r = RpcRequest {
        module: "m",
        function: "f",
        args: b"[]",
    };
    assert_eq!(&r.encode(), b);
    assert_eq!(RpcRequest::decode(b).unwrap(), r);
}

#[test]
fn frame() {
    let v = v1();
    let b = &hexes(&v, "frame")[0];
    let mut out = Vec::new();
    encode_frame(b"hi", &mut out);
    assert_eq!(&out, b);
    assert_eq!(parse_header(b, 1024).unwrap(), Some(2));
    assert_eq!(&b[HEADER_LEN..], b"hi");
}

#[test]
fn nonce() {
    let v = v1();
    for n in v["nonce"].as_array().unwrap() {
        let counter = n["counter"].as_u64().unwrap();
        assert_eq!(to_hex(&nonce_bytes(counter)), n["hex"].as_str().unwrap());
    }
}

#[test]
fn announcement() {
    let v = v1();
    let b = &hexes(&v, "announcement")[0];
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let a = Announcement {
        tcp_port: 7100,
        key: Key(key),
    };
    assert_eq!(a.encode().as_slice(), b.as_slice());
    assert_eq!(Announcement::decode(b).unwrap(), a);
}

#[test]
fn keyfile_and_fingerprint() {
    let v = v1();
    let k = &v["keyfile"][0];
    let private = hex32(k["private"].as_str().unwrap());
    let file = hex(k["hex"].as_str().unwrap());
    assert_eq!(keyfile::encode(&private).as_slice(), file.as_slice());
    let (p, public) = keyfile::decode(&file).unwrap();
    assert_eq!(p, private);
    assert_eq!(public, keyfile::public_from_private(&private));
    assert_eq!(public.to_hex(), to_hex(&file[6..38]));
    // RFC 7748 section 6.1: Alice's public key.
    assert_eq!(
        public.to_hex(),
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    );
    assert_eq!(public.fingerprint(), k["fingerprint"].as_str().unwrap());
    assert_eq!(format!("{public:?}"), "Key(300c9c9603b92a4b)");
    assert_eq!(public.to_string(), public.to_hex());
}
