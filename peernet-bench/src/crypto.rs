//! Single-core cryptographic ceilings: ChaCha20-Poly1305 seal (ring, as PeerNet uses it
//! through `SendCipher`, and the `chacha20poly1305` crate for comparison), X25519, and
//! the whole Noise XX handshake through `peernet_proto::handshake::Handshake`. Each is
//! the best of several slices of the measured time.

use std::hint::black_box;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use peernet_proto::channel::{SendCipher, TAG_LEN};
use peernet_proto::handshake::Handshake;
use peernet_proto::hello::Hello;
use peernet_proto::ProtoError;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::measure::{rate, Bound, Budget};

/// Slices a ceiling's measured time is cut into; the best slice counts (a shared
/// machine only ever makes a slice slower, so the best one is closest to the ceiling).
const SLICES: u32 = 5;

/// Runs `run` for the warm-up, then `SLICES` times for `time / SLICES`; returns the
/// best rate (per second).
fn best_of<E>(b: Budget, mut run: impl FnMut(&Bound) -> Result<u64, E>) -> Result<f64, E> {
    run(&Bound::new(b.warmup, b.max_count))?;
    let mut best = 0.0f64;
    for _ in 0..SLICES {
        let bound = Bound::new(b.time / SLICES, b.max_count);
        let n = run(&bound)?;
        best = best.max(rate(n, bound.elapsed()));
    }
    Ok(best)
}

/// A seal loop's result: messages and bytes per second.
#[derive(Debug, Clone, Copy)]
pub struct Seal {
    /// Messages sealed per second.
    pub msgs: f64,
    /// Plaintext bytes sealed per second.
    pub bytes: f64,
}

impl Seal {
    fn new(msgs: f64, size: usize) -> Seal {
        Seal {
            msgs,
            bytes: msgs * size as f64,
        }
    }
}

/// Seals `size`-byte messages with ring through PeerNet's `SendCipher` (nonce counter
/// and tag append included, as on the wire path).
pub fn seal_ring(b: Budget, size: usize) -> Result<Seal, ProtoError> {
    let mut cipher = SendCipher::new([7; 32]);
    let mut buf = vec![0u8; size];
    buf.reserve(TAG_LEN);
    let run = |bound: &Bound| -> Result<u64, ProtoError> {
        let mut n = 0;
        while bound.go(n) {
            cipher.seal_in_place(&mut buf, 0)?;
            buf.truncate(size);
            black_box(&buf);
            n += 1;
        }
        Ok(n)
    };
    Ok(Seal::new(best_of(b, run)?, size))
}

/// The same with the RustCrypto `chacha20poly1305` crate (detached tag, appended).
pub fn seal_rustcrypto(b: Budget, size: usize) -> Result<Seal, chacha20poly1305::Error> {
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut buf = vec![0u8; size];
    buf.reserve(TAG_LEN);
    let mut counter = 0u64;
    let run = |bound: &Bound| -> Result<u64, chacha20poly1305::Error> {
        let mut n = 0;
        while bound.go(n) {
            let nonce = peernet_proto::channel::nonce_bytes(counter);
            counter += 1;
            let tag = cipher.encrypt_in_place_detached(&nonce.into(), &[], &mut buf)?;
            buf.extend_from_slice(&tag);
            buf.truncate(size);
            black_box(&buf);
            n += 1;
        }
        Ok(n)
    };
    Ok(Seal::new(best_of(b, run)?, size))
}

/// X25519 Diffie-Hellman operations per second (x25519-dalek, as snow's resolver).
pub fn x25519(b: Budget) -> f64 {
    let mine = StaticSecret::from([3u8; 32]);
    let mut theirs = PublicKey::from(&StaticSecret::from([5u8; 32]));
    let run = |bound: &Bound| {
        let mut n = 0;
        while bound.go(n) {
            let shared = mine.diffie_hellman(&theirs);
            // Feed the output back so no iteration can be skipped.
            theirs = PublicKey::from(*shared.as_bytes());
            n += 1;
        }
        Ok::<u64, std::convert::Infallible>(n)
    };
    match best_of(b, run) {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// One complete XX handshake, both sides in this thread, in memory.
fn one_handshake(a: &[u8; 32], b: &[u8; 32], hello: &Hello) -> Result<(), ProtoError> {
    let mut i = Handshake::initiator(a, hello)?;
    let mut r = Handshake::responder(b, hello)?;
    r.read_m1(&i.write_m1()?)?;
    i.read_m2(&r.write_m2()?)?;
    r.read_m3(&i.write_m3()?)?;
    black_box(i.split()?);
    black_box(r.split()?);
    Ok(())
}

/// Complete Noise XX handshakes per second (both sides' work counted in one thread).
pub fn handshakes(b: Budget) -> Result<f64, ProtoError> {
    let (ka, kb) = ([11u8; 32], [13u8; 32]);
    let hello = Hello::new(1 << 20, 4000);
    let run = |bound: &Bound| -> Result<u64, ProtoError> {
        let mut n = 0;
        while bound.go(n) {
            one_handshake(&ka, &kb, &hello)?;
            n += 1;
        }
        Ok(n)
    };
    best_of(b, run)
}
