//! Spec 5.1 with two connection machines per link: which duplicate survives, and the
//! loser's drain (its calls finish, Goodbye 1 both ways, the peer's calls answered,
//! or the drain deadline).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pair::{Pair, I_KEY, R_KEY, SEC};
use peernet_proto::connection::{
    keep_new, CallId, CallOutcome, Config, DisconnectReason, Event, StateProblem,
};
use peernet_proto::envelope::Outcome;
use peernet_proto::keyfile::public_from_private;

const DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Answers every CallArrived among `events` on `conn` with Ok(body); returns the rest.
fn answer_all(conn: &mut peernet_proto::connection::Connection, events: Vec<Event>) -> Vec<Event> {
    let mut rest = Vec::new();
    for e in events {
        match e {
            Event::CallArrived { id, body, .. } => conn.reply(id, Outcome::Ok(&body)).unwrap(),
            other => rest.push(other),
        }
    }
    rest
}

fn ok(id: CallId, body: &[u8]) -> Event {
    Event::ReplyArrived {
        id,
        outcome: CallOutcome::Ok(body.to_vec()),
    }
}

#[test]
fn both_sides_drain_with_calls_in_flight_both_ways() {
    let mut p = Pair::confirmed();
    let a_call = p.a.call(p.now, "f", b"from a", 10 * SEC).unwrap();
    let b_call = p.b.call(p.now, "f", b"from b", 10 * SEC).unwrap();
    // Both learn that this connection lost, before anything was delivered.
    p.a.drain(p.now, DRAIN).unwrap();
    p.b.drain(p.now, DRAIN).unwrap();
    assert!(p.a.is_draining());
    assert_eq!(
        p.a.call(p.now, "f", b"", SEC),
        Err(StateProblem::Draining.into())
    );
    p.run();
    // Calls that arrive on the losing connection are still answered.
    let ev_a = p.events_a();
    let ev_b = p.events_b();
    let rest_a = answer_all(&mut p.a, ev_a);
    let rest_b = answer_all(&mut p.b, ev_b);
    assert_eq!((rest_a, rest_b), (vec![], vec![]));
    assert!(!p.a.is_closed() && !p.b.is_closed());
    p.run();
    assert_eq!(
        p.events_a(),
        vec![
            ok(a_call, b"from a"),
            Event::PeerDraining,
            Event::Closed {
                reason: DisconnectReason::Drained
            }
        ]
    );
    assert_eq!(
        p.events_b(),
        vec![
            ok(b_call, b"from b"),
            Event::PeerDraining,
            Event::Closed {
                reason: DisconnectReason::Drained
            }
        ]
    );
}

#[test]
fn the_loser_waits_for_the_calls_the_peer_made_on_it() {
    let mut p = Pair::confirmed();
    // b's call reaches a; a then drains (no calls of its own): Goodbye 1 at once.
    let b_call = p.b.call(p.now, "f", b"x", 10 * SEC).unwrap();
    p.b_to_a();
    let ev = p.events_a();
    assert!(matches!(ev[0], Event::CallArrived { .. }));
    p.a.drain(p.now, DRAIN).unwrap();
    p.a_to_b();
    assert_eq!(p.events_b(), vec![Event::PeerDraining]);
    p.b.drain(p.now, DRAIN).unwrap();
    // b still waits for its call: no Goodbye 1 from b, and a does not close.
    p.run();
    assert!(!p.a.is_closed() && !p.b.is_closed());
    assert_eq!(p.a.serving_calls(), 1);
    answer_all(&mut p.a, ev);
    p.run();
    assert_eq!(
        p.events_b(),
        vec![
            ok(b_call, b"x"),
            Event::Closed {
                reason: DisconnectReason::Drained
            }
        ]
    );
    assert_eq!(
        p.events_a(),
        vec![
            Event::PeerDraining,
            Event::Closed {
                reason: DisconnectReason::Drained
            }
        ]
    );
}

#[test]
fn a_drain_that_does_not_complete_ends_at_its_deadline_without_goodbye() {
    let mut p = Pair::confirmed();
    let t0 = p.now;
    let id = p.a.call(p.now, "slow", b"", 60 * SEC).unwrap();
    p.a.drain(p.now, DRAIN).unwrap();
    p.a.drain(p.now, 5 * DRAIN).unwrap(); // a second drain changes nothing
    p.run();
    let _unanswered = p.events_b();
    p.advance(DRAIN - SEC);
    assert!(!p.a.is_closed());
    assert_eq!(p.a.poll_timeout(), Some(t0 + DRAIN));
    p.advance(SEC);
    assert_eq!(
        p.events_a(),
        vec![
            Event::CallAborted { id },
            Event::Closed {
                reason: DisconnectReason::DrainTimeout
            }
        ]
    );
    p.run();
    // b never saw a Goodbye 1 (a's own call never finished).
    assert_eq!(p.events_b(), vec![]);
    assert!(!p.b.is_draining() && !p.b.is_closed());
}

fn expected_on_loser(e: &Event) -> bool {
    matches!(
        e,
        Event::PeerDraining
            | Event::Closed {
                reason: DisconnectReason::Drained
            }
    )
}

#[test]
fn duplicate_connections_both_nodes_keep_the_same_one() {
    let node1 = public_from_private(&I_KEY);
    let node2 = public_from_private(&R_KEY);
    // x: node 1 dialed node 2 (a = node 1); y: node 2 dialed node 1 (a = node 2).
    let mut x = Pair::with_keys(&I_KEY, &R_KEY, Config::default(), Config::default());
    let mut y = Pair::with_keys(&R_KEY, &I_KEY, Config::default(), Config::default());
    x.confirm();
    y.confirm();
    // x is older. Each node decides alone, from the initiators' keys.
    let node1_keeps_y = keep_new(&node2, &node1);
    let node2_keeps_y = keep_new(&node2, &node1);
    assert_eq!(node1_keeps_y, node2_keeps_y);
    assert_eq!(node1_keeps_y, node2 < node1);
    let (winner, loser) = if node1_keeps_y {
        (&mut y, &mut x)
    } else {
        (&mut x, &mut y)
    };
    // Calls in flight both ways on the loser.
    let c1 = loser.a.call(loser.now, "f", b"1", 10 * SEC).unwrap();
    let c2 = loser.b.call(loser.now, "f", b"2", 10 * SEC).unwrap();
    loser.a.drain(loser.now, DRAIN).unwrap();
    loser.b.drain(loser.now, DRAIN).unwrap();
    for _ in 0..4 {
        loser.run();
        let ev = loser.events_a();
        let rest = answer_all(&mut loser.a, ev);
        assert!(rest
            .iter()
            .all(|e| *e == ok(c1, b"1") || expected_on_loser(e)));
        let ev = loser.events_b();
        let rest = answer_all(&mut loser.b, ev);
        assert!(rest
            .iter()
            .all(|e| *e == ok(c2, b"2") || expected_on_loser(e)));
    }
    let drained = Some(&DisconnectReason::Drained);
    assert_eq!((loser.a.closed(), loser.b.closed()), (drained, drained));
    // The winner works on.
    let id = winner.a.call(winner.now, "f", b"w", SEC).unwrap();
    winner.run();
    let ev = winner.events_b();
    answer_all(&mut winner.b, ev);
    winner.run();
    assert_eq!(winner.events_a(), vec![ok(id, b"w")]);
    // Same initiator twice (a redial): the newer one is kept.
    assert!(keep_new(&node1, &node1));
}
