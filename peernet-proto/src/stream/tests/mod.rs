//! Two stream tables back to back through the codec (encode, decode, handle), no
//! sockets and no clock: the stream layer has no timer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod close;
mod fairness;
mod transfer;
mod vectors;

use super::*;
use crate::handshake::Side;

/// The initiator's table `a` and the responder's `b`.
struct Pair {
    a: StreamTable,
    b: StreamTable,
}

/// Which way a message goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    AtoB,
    BtoA,
}

impl Pair {
    fn new(a: StreamConfig, b: StreamConfig) -> Pair {
        Pair {
            a: StreamTable::new(Side::Initiator, a),
            b: StreamTable::new(Side::Responder, b),
        }
    }

    fn default() -> Pair {
        Pair::new(StreamConfig::default(), StreamConfig::default())
    }

    /// Moves one message `dir`, through the encoding, and returns its bytes; None when
    /// the sender had nothing. Panics on a violation (honest tables never commit one).
    fn step(&mut self, dir: Dir) -> Option<Vec<u8>> {
        let (from, to) = match dir {
            Dir::AtoB => (&mut self.a, &mut self.b),
            Dir::BtoA => (&mut self.b, &mut self.a),
        };
        let mut out = Vec::new();
        match from.poll_transmit(&mut out, false) {
            Transmit::Message(n) => assert_eq!(n, out.len()),
            Transmit::Calls => panic!("calls turn without calls pending"),
            Transmit::Idle => return None,
        }
        assert!(out.len() + crate::channel::TAG_LEN <= crate::frame::MIN_MAX_FRAME_LEN as usize);
        let msg = StreamMessage::decode(&out).unwrap();
        if let Err(v) = to.handle(msg) {
            panic!("{dir:?} {msg:?}: {v}");
        }
        Some(out)
    }

    /// Moves messages both ways until both sides are idle; returns how many.
    fn pump(&mut self) -> usize {
        let mut moved = 0;
        loop {
            let mut any = false;
            while self.step(Dir::AtoB).is_some() {
                moved += 1;
                any = true;
            }
            while self.step(Dir::BtoA).is_some() {
                moved += 1;
                any = true;
            }
            if !any {
                return moved;
            }
        }
    }

    /// `a` opens a stream to `name`, `b` sees it and accepts it.
    fn open_accepted(&mut self, name: &str) -> u64 {
        let id = self.a.open(name).unwrap();
        self.pump();
        assert_eq!(
            events(&mut self.b),
            [StreamEvent::Opened {
                id,
                name: name.to_owned()
            }]
        );
        self.b.accept(id).unwrap();
        self.pump();
        id
    }
}

fn events(t: &mut StreamTable) -> Vec<StreamEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

/// Everything readable on `id` now, and whether the end was read.
fn read_all(t: &mut StreamTable, id: u64) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        match t.read(id, &mut buf).unwrap() {
            Read::Bytes(n) => got.extend_from_slice(&buf[..n]),
            Read::Blocked => return (got, false),
            Read::End => return (got, true),
        }
    }
}

/// The byte at `offset` of a test transfer: depends on the offset, so any loss,
/// duplication or reordering shows.
fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ offset as u8
}
