//! Property tests of the connection machine: any split of the byte stream delivers the
//! same envelopes in the same order; arbitrary bytes never panic it, and `Closed` is
//! always its last event, once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pair::{raw_responder, Pair, SEC};
use peernet_proto::connection::{CallOutcome, Config, Connection, Event};
use peernet_proto::envelope::Outcome;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Call(String, Vec<u8>),
    Send(String, Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let body = proptest::collection::vec(any::<u8>(), 0..1500);
    prop_oneof![
        ("[a-z]{1,8}", body.clone()).prop_map(|(n, b)| Op::Call(n, b)),
        ("[a-z]{1,8}", body).prop_map(|(n, b)| Op::Send(n, b)),
    ]
}

/// Feeds `bytes` cut at the sizes of `splits` (cycled), pieces of even size through
/// `handle_bytes_mut`, odd ones through `handle_bytes`.
fn feed(conn: &mut Connection, now: std::time::Instant, bytes: &[u8], splits: &[usize]) {
    let mut rest = bytes;
    for &n in splits.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(n.min(rest.len()));
        if n % 2 == 0 {
            // The in-place path (frames whole in the piece opened where they lie).
            conn.handle_bytes_mut(now, &mut head.to_vec());
        } else {
            conn.handle_bytes(now, head);
        }
        rest = tail;
    }
}

fn transmit(conn: &mut Connection) -> Vec<u8> {
    let mut buf = Vec::new();
    conn.poll_transmit(&mut buf);
    buf
}

/// `got` is one arrival per op of `ops`, in order, with its name and body.
fn delivered(got: &[Event], ops: &[Op]) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), ops.len());
    for (e, o) in got.iter().zip(ops) {
        match (e, o) {
            (Event::CallArrived { name, body, .. }, Op::Call(n, b))
            | (Event::SendArrived { name, body }, Op::Send(n, b)) => {
                prop_assert_eq!((name, body), (n, b));
            }
            _ => prop_assert!(false, "{e:?} for {o:?}"),
        }
    }
    Ok(())
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_split_delivers_every_envelope_in_order(
        ops in proptest::collection::vec(op(), 1..30),
        splits in proptest::collection::vec(prop_oneof![1usize..64, 64usize..8192], 1..50),
    ) {
        let mut p = Pair::new(Config::default(), Config::default());
        let now = p.now;
        let ping = transmit(&mut p.b);
        feed(&mut p.a, now, &ping, &splits);
        prop_assert_eq!(events(&mut p.a), vec![Event::Confirmed]);
        let mut calls = Vec::new();
        for o in &ops {
            match o {
                Op::Call(n, b) => calls.push((p.a.call(now, n, b, 10 * SEC).unwrap(), b.clone())),
                Op::Send(n, b) => p.a.send(n, b).unwrap(),
            }
        }
        let bytes = transmit(&mut p.a);
        feed(&mut p.b, now, &bytes, &splits);
        let got = events(&mut p.b);
        delivered(&got, &ops)?;
        // Answer in reverse, with the body reversed.
        for e in got.iter().rev() {
            if let Event::CallArrived { id, body, .. } = e {
                let r: Vec<u8> = body.iter().rev().copied().collect();
                p.b.reply(*id, Outcome::Ok(&r)).unwrap();
            }
        }
        let bytes = transmit(&mut p.b);
        feed(&mut p.a, now, &bytes, &splits);
        let replies = events(&mut p.a);
        let want: Vec<Event> = calls
            .iter()
            .rev()
            .map(|(id, b)| Event::ReplyArrived {
                id: *id,
                outcome: CallOutcome::Ok(b.iter().rev().copied().collect()),
            })
            .collect();
        prop_assert_eq!(replies, want);
        prop_assert!(!p.a.is_closed() && !p.b.is_closed());
    }

    /// A driver that writes from `transmit_buf` in pieces the socket takes partly
    /// (random chunk limits, random partial writes), while more is queued between
    /// writes: the bytes it wrote deliver every envelope, in order, once.
    #[test]
    fn partial_writes_from_the_transmit_buffer_lose_and_reorder_nothing(
        ops in proptest::collection::vec(op(), 1..40),
        writes in proptest::collection::vec((1usize..5000, 1usize..3000), 1..60),
    ) {
        let mut p = Pair::new(Config::default(), Config::default());
        let now = p.now;
        let ping = transmit(&mut p.b);
        p.a.handle_bytes(now, &ping);
        prop_assert_eq!(events(&mut p.a), vec![Event::Confirmed]);
        let mut wire = Vec::new();
        let mut queued = ops.iter();
        let mut w = writes.iter().cycle();
        loop {
            // Queue up to two more, then one partial write.
            for o in queued.by_ref().take(2) {
                match o {
                    Op::Call(n, b) => { p.a.call(now, n, b, 10 * SEC).unwrap(); }
                    Op::Send(n, b) => p.a.send(n, b).unwrap(),
                }
            }
            let &(max, took) = w.next().unwrap();
            let ready = p.a.transmit_buf(max);
            let n = took.min(ready.len());
            wire.extend_from_slice(&ready[..n]);
            p.a.transmitted(n);
            if queued.len() == 0 && p.a.transmit_queued() == 0 {
                break;
            }
        }
        prop_assert_eq!(p.a.transmit_unwritten(), 0);
        p.b.handle_bytes(now, &wire);
        let got = events(&mut p.b);
        delivered(&got, &ops)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_closed_is_last(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20),
        valid_first in any::<bool>(),
    ) {
        let (now, mut b, mut raw) = raw_responder(Config::default());
        if valid_first {
            b.handle_bytes(now, &raw.frame(&peernet_proto::envelope::Envelope::Ping { nonce: 3 }));
        }
        for c in &chunks {
            b.handle_bytes(now, c);
        }
        b.handle_timeout(now + 100 * SEC);
        let ev = events(&mut b);
        let closes = ev.iter().filter(|e| matches!(e, Event::Closed { .. })).count();
        prop_assert!(closes <= 1);
        if closes == 1 {
            let last_is_closed = matches!(ev.last(), Some(Event::Closed { .. }));
            prop_assert!(last_is_closed);
            prop_assert!(b.is_closed() && b.poll_timeout().is_none());
        }
        // Garbage never authenticates: nothing but the heartbeat's result comes of it.
        let only_closed = ev.iter().all(|e| matches!(e, Event::Closed { .. }));
        prop_assert!(only_closed, "{:?}", ev);
    }
}
