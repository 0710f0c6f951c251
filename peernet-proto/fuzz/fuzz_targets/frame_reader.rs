//! The real receive path, driven with a byte stream: a responder's connection machine
//! over a channel with fixed keys (the handshake is the `handshake_responder` and
//! `connection` targets' business; skipping it here keeps this one fast) fed arbitrary
//! bytes split at arbitrary points, or — for half the inputs — the input cut into chunks
//! that are each sealed into a frame with the peer's channel first, so the envelope
//! decoder and dispatch behind the AEAD are reached too. Never panics; once closed it
//! stays closed, emits nothing more and has no timeout.
#![no_main]
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use peernet_proto::channel::{RecvCipher, SendCipher};
use peernet_proto::connection::{Config, Connection, Event, Side};
use peernet_proto::hello::Hello;

/// Initiator → responder, and responder → initiator.
const K_IR: [u8; 32] = [7; 32];
const K_RI: [u8; 32] = [8; 32];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let peer = Hello::new(65_536, 1);
    let mut conn = Connection::new(
        now,
        Side::Responder,
        SendCipher::new(K_RI),
        RecvCipher::new(K_IR),
        &peer,
        Config {
            max_frame_len: 65_536,
            ..Config::default()
        },
    );
    let mut send = SendCipher::new(K_IR);
    let mut stream = Vec::new();
    let chunk = 1 + usize::from(mode >> 2);
    if mode & 1 == 1 {
        for c in rest.chunks(chunk) {
            if send.seal_frame(c, &mut stream).is_err() {
                return;
            }
        }
    } else {
        stream.extend_from_slice(rest);
    }
    // Fed in pieces of a size the input picks (1..=64 bytes), or all at once.
    let piece = if mode & 2 == 2 {
        usize::from(mode >> 2) + 1
    } else {
        stream.len().max(1)
    };
    let mut closed = false;
    let mut out = Vec::new();
    for (i, p) in stream.chunks(piece).enumerate() {
        // Alternate the copying path and the in-place one (what the driver uses).
        if i % 2 == 0 {
            conn.handle_bytes_mut(now, &mut p.to_vec());
        } else {
            conn.handle_bytes(now, p);
        }
        while let Some(ev) = conn.poll_event() {
            assert!(!closed, "an event after Closed");
            closed |= matches!(ev, Event::Closed { .. });
        }
        out.clear();
        conn.poll_transmit(&mut out);
    }
    if closed {
        assert!(conn.is_closed());
        assert!(conn.poll_timeout().is_none());
        out.clear();
        conn.poll_transmit(&mut out);
        assert!(out.is_empty(), "bytes after the close was flushed");
    }
});
