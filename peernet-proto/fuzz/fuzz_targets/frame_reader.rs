//! The real receive path, driven with a byte stream: the connection machine (after a
//! real Noise XX handshake with fixed keys) fed arbitrary bytes split at arbitrary
//! points, or — for half the inputs — the input cut into chunks that are each sealed
//! into a frame with the peer's channel first, so the envelope decoder and dispatch
//! behind the AEAD are reached too. Never panics; once closed, it stays closed and
//! emits nothing more.
#![no_main]
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use peernet_proto::connection::{Config, Connection, Event};
use peernet_proto::handshake::{Handshake, PROLOGUE};
use peernet_proto::hello::Hello;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let hello = Hello::new(65_536, 1);
    let Ok(mut i) = Handshake::with_options(true, &[5; 32], PROLOGUE, Some(&[9; 32]), &hello)
    else {
        return;
    };
    let Ok(mut r) = Handshake::with_options(false, &[3; 32], PROLOGUE, Some(&[11; 32]), &hello)
    else {
        return;
    };
    let Ok(m1) = i.write_m1() else { return };
    if r.read_m1(&m1).is_err() {
        return;
    }
    let Ok(m2) = r.write_m2() else { return };
    if i.read_m2(&m2).is_err() {
        return;
    }
    let Ok(m3) = i.write_m3() else { return };
    let Ok((_, ih)) = r.read_m3(&m3) else { return };
    // The responder's machine is the one under test; the initiator's channel forges input.
    let Ok((mut send, _)) = i.split() else { return };
    let Ok(mut conn) = Connection::from_handshake(now, r, &ih, Config::default()) else {
        return;
    };
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
    // Fed in pieces of a size the input picks (1..=64 bytes, or all at once).
    let piece = if mode & 2 == 2 {
        usize::from(mode >> 2) + 1
    } else {
        stream.len().max(1)
    };
    let mut closed = false;
    for p in stream.chunks(piece) {
        conn.handle_bytes(now, p);
        while let Some(ev) = conn.poll_event() {
            assert!(!closed, "an event after Closed");
            if matches!(ev, Event::Closed { .. }) {
                closed = true;
            }
        }
        let mut out = Vec::new();
        conn.poll_transmit(&mut out);
    }
    if closed {
        assert!(conn.is_closed());
        assert!(conn.poll_timeout().is_none());
    }
});
