//! Deterministic pseudo-random inputs into every decoder: errors, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::announce::Announcement;
use peernet_proto::envelope::{Envelope, Outcome};
use peernet_proto::frame::parse_header;
use peernet_proto::handshake::Handshake;
use peernet_proto::hello::Hello;
use peernet_proto::rpc::RpcRequest;
use peernet_proto::{keyfile, trustfile};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for e in [
        Envelope::Call {
            id: 1,
            name: "echo",
            body: b"hi",
        },
        Envelope::Reply {
            id: 2,
            outcome: Outcome::HandlerFailed("bad"),
        },
        Envelope::Send {
            name: "chat",
            body: b"",
        },
        Envelope::Ping { nonce: 3 },
    ] {
        let mut b = Vec::new();
        e.encode_into(&mut b);
        seeds.push(b);
    }
    seeds.push(
        RpcRequest {
            module: "m",
            function: "f",
            args: b"[]",
        }
        .encode(),
    );
    for round in 0..20_000 {
        let input = if round % 2 == 0 {
            rng.bytes(64)
        } else {
            let mut b = seeds[round % seeds.len()].clone();
            let flips = 1 + rng.next() % 3;
            for _ in 0..flips {
                let i = (rng.next() as usize) % b.len();
                b[i] = rng.next() as u8;
            }
            b
        };
        if let Ok(e) = Envelope::decode(&input) {
            // Whatever decodes re-encodes to the same bytes.
            let mut out = Vec::new();
            e.encode_into(&mut out);
            if !matches!(e, Envelope::Goodbye { .. }) {
                assert_eq!(out, input);
            }
        }
        let _ = RpcRequest::decode(&input);
        let _ = Hello::decode(&input);
        let _ = Announcement::decode(&input);
        let _ = keyfile::decode(&input);
        let _ = parse_header(&input, 1024);
        let _ = trustfile::parse(&String::from_utf8_lossy(&input));
    }
}

#[test]
fn random_handshake_messages_never_panic() {
    let mut rng = Rng(42);
    let hello = Hello::new(65_536, 1);
    for _ in 0..300 {
        let mut r = Handshake::responder(&[3; 32], &hello).unwrap();
        let _ = r.read_m1(&rng.bytes(200));
        let mut i = Handshake::initiator(&[4; 32], &hello).unwrap();
        i.write_m1().unwrap();
        let _ = i.read_m2(&rng.bytes(200));
        let _ = i.write_m3();
    }
}
