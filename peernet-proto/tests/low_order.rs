//! Issue 14 item 11d: a peer whose static or ephemeral key is a low-order X25519 point
//! makes every DH with it all zeros, whatever our secret. The attacker side is a plain
//! snow handshake whose DH, for the chosen key, announces a low-order point and
//! "computes" the all-zero result the honest side will compute too, so without the
//! check every message would authenticate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::handshake::{Handshake, NOISE_PARAMS, PROLOGUE};
use peernet_proto::hello::Hello;
use peernet_proto::key::LOW_ORDER_POINTS;
use peernet_proto::{Key, ProtoError};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// Which of the attacker's keys is low order.
#[derive(Clone, Copy, PartialEq)]
enum Evil {
    Static,
    Ephemeral,
}

struct EvilDh {
    evil: Evil,
    low: bool,
    private: [u8; 32],
    public: [u8; 32],
}

impl Dh for EvilDh {
    fn name(&self) -> &'static str {
        "25519"
    }
    fn pub_len(&self) -> usize {
        32
    }
    fn priv_len(&self) -> usize {
        32
    }
    fn set(&mut self, privkey: &[u8]) {
        self.private.copy_from_slice(&privkey[..32]);
        self.low = self.evil == Evil::Static;
        self.derive();
    }
    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        rng.try_fill_bytes(&mut self.private)?;
        self.low = self.evil == Evil::Ephemeral;
        self.derive();
        Ok(())
    }
    fn pubkey(&self) -> &[u8] {
        &self.public
    }
    fn privkey(&self) -> &[u8] {
        &self.private
    }
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let r = if self.low {
            [0u8; 32]
        } else {
            let mut p = [0u8; 32];
            p.copy_from_slice(&pubkey[..32]);
            x25519_dalek::x25519(self.private, p)
        };
        out[..32].copy_from_slice(&r);
        Ok(())
    }
}

impl EvilDh {
    fn derive(&mut self) {
        self.public = if self.low {
            // The order-8 point: not 0 or 1, the least conspicuous choice.
            LOW_ORDER_POINTS[2]
        } else {
            let mut nine = [0u8; 32];
            nine[0] = 9;
            x25519_dalek::x25519(self.private, nine)
        };
    }
}

struct EvilResolver(Evil);

impl CryptoResolver for EvilResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
    }
    fn resolve_dh(&self, _: &DHChoice) -> Option<Box<dyn Dh>> {
        Some(Box::new(EvilDh {
            evil: self.0,
            low: false,
            private: [0; 32],
            public: [0; 32],
        }))
    }
    fn resolve_hash(&self, c: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(c)
    }
    fn resolve_cipher(&self, c: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(c)
    }
}

fn evil(evil: Evil, initiator: bool) -> snow::HandshakeState {
    let b =
        snow::Builder::with_resolver(NOISE_PARAMS.parse().unwrap(), Box::new(EvilResolver(evil)))
            .local_private_key(&[3; 32])
            .unwrap()
            .prologue(PROLOGUE)
            .unwrap();
    if initiator {
        b.build_initiator().unwrap()
    } else {
        b.build_responder().unwrap()
    }
}

fn hello() -> Vec<u8> {
    Hello::new(65_536, 7000).encode().to_vec()
}

fn refused(r: Result<impl std::fmt::Debug, ProtoError>, what: &str) {
    match r {
        Err(ProtoError::Handshake(m)) => assert!(m.contains("low-order"), "{what}: {m}"),
        other => panic!("{what}: a low-order key was accepted: {other:?}"),
    }
}

#[test]
fn handshake_refuses_a_low_order_ephemeral_or_static_key() {
    let mut buf = [0u8; 1024];
    // Attacker dials with a low-order ephemeral: the responder refuses M1.
    let mut a = evil(Evil::Ephemeral, true);
    let n = a.write_message(&[], &mut buf).unwrap();
    assert!(Key(buf[..32].try_into().unwrap()).is_low_order());
    let mut r = Handshake::responder(&[2; 32], &Hello::new(65_536, 7002)).unwrap();
    refused(r.read_m1(&buf[..n]), "M1 with a low-order e");

    // Attacker answers with a low-order ephemeral: the initiator refuses M2.
    let mut i = Handshake::initiator(&[1; 32], &Hello::new(65_536, 7001)).unwrap();
    let m1 = i.write_m1().unwrap();
    let mut a = evil(Evil::Ephemeral, false);
    a.read_message(&m1, &mut buf).unwrap();
    let n = a.write_message(&hello(), &mut buf).unwrap();
    refused(i.read_m2(&buf[..n]), "M2 with a low-order e");

    // Attacker answers with a low-order static: the initiator refuses M2.
    let mut i = Handshake::initiator(&[1; 32], &Hello::new(65_536, 7001)).unwrap();
    let m1 = i.write_m1().unwrap();
    let mut a = evil(Evil::Static, false);
    a.read_message(&m1, &mut buf).unwrap();
    let n = a.write_message(&hello(), &mut buf).unwrap();
    refused(i.read_m2(&buf[..n]), "M2 with a low-order s");

    // Attacker dials with a low-order static: the responder refuses M3.
    let mut a = evil(Evil::Static, true);
    let mut r = Handshake::responder(&[2; 32], &Hello::new(65_536, 7002)).unwrap();
    let n = a.write_message(&[], &mut buf).unwrap();
    r.read_m1(&buf[..n]).unwrap();
    let m2 = r.write_m2().unwrap();
    a.read_message(&m2, &mut buf).unwrap();
    let n = a.write_message(&hello(), &mut buf).unwrap();
    refused(r.read_m3(&buf[..n]), "M3 with a low-order s");
    // Poisoned: nothing more can be done with it.
    assert!(r.split().is_err());
}

#[test]
fn trust_file_refuses_a_low_order_key() {
    let text = format!(
        "# PeerNet trust store, format 1\n{} 1 - zero\n",
        Key(LOW_ORDER_POINTS[0]).to_hex()
    );
    let e = peernet_proto::trustfile::parse(&text)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("low-order"), "{e}");
}
