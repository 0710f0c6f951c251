//! The connection machine, two of them back to back over a real handshake, fake time:
//! confirmation, calls, sends, heartbeat, call deadlines, limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pair::{raw_initiator, Pair, MS, SEC};
use peernet_proto::connection::{
    CallId, CallOutcome, Config, DisconnectReason, Event, LimitProblem, StateProblem,
    REPLY_TOO_LARGE,
};
use peernet_proto::envelope::{Envelope, Outcome};

fn call_arrived(e: Event) -> (CallId, String, Vec<u8>) {
    match e {
        Event::CallArrived { id, name, body } => (id, name, body),
        other => panic!("expected CallArrived, got {other:?}"),
    }
}

#[test]
fn dialer_is_confirmed_only_by_the_responders_ping() {
    let mut p = Pair::new(Config::default(), Config::default());
    assert!(!p.a.is_confirmed() && p.b.is_confirmed());
    // The dialer may queue a call, but sends nothing before the confirmation.
    let id = p.a.call(p.now, "echo", b"early", 10 * SEC).unwrap();
    assert_eq!(p.a_to_b(), 0);
    assert!(
        p.a.ping(p.now).is_err(),
        "no heartbeat before the confirmation"
    );
    // The responder's first frame is its Ping; only then is the dialer established.
    assert!(p.b_to_a() > 0);
    assert_eq!(p.events_a(), vec![Event::Confirmed]);
    assert!(p.a.is_confirmed());
    // The Pong leaves first, then the call that waited.
    p.a_to_b();
    let (got, name, body) = call_arrived(p.b.poll_event().unwrap());
    assert_eq!((name.as_str(), body.as_slice()), ("echo", &b"early"[..]));
    p.b.reply(got, Outcome::Ok(b"ok")).unwrap();
    p.run();
    assert_eq!(
        p.events_a(),
        vec![Event::ReplyArrived {
            id,
            outcome: CallOutcome::Ok(b"ok".to_vec())
        }]
    );
}

#[test]
fn the_dialers_first_frame_is_the_pong_of_the_confirming_ping() {
    let (now, mut a, mut raw) = raw_initiator(Config::default());
    a.send("chat", b"queued before").unwrap();
    let ping = raw.frame(&Envelope::Ping { nonce: 0 });
    a.handle_bytes(now, &ping);
    assert_eq!(a.poll_event(), Some(Event::Confirmed));
    let sent = raw.take(&mut a, |e| format!("{e:?}"));
    assert_eq!(
        sent,
        vec![
            "Pong { nonce: 0 }".to_string(),
            r#"Send { name: "chat", body: [113, 117, 101, 117, 101, 100, 32, 98, 101, 102, 111, 114, 101] }"#
                .to_string()
        ]
    );
}

#[test]
fn call_and_reply_split_at_every_byte() {
    let mut p = Pair::new(Config::default(), Config::default());
    p.chunk = 1;
    p.confirm();
    let id = p.a.call(p.now, "echo", b"hello", 5 * SEC).unwrap();
    assert_eq!(id, CallId(1));
    p.a_to_b();
    let (got, name, body) = call_arrived(p.b.poll_event().unwrap());
    assert_eq!((got, name.as_str(), &body[..]), (id, "echo", &b"hello"[..]));
    assert_eq!(p.b.serving_calls(), 1);
    p.b.reply(got, Outcome::Ok(&body)).unwrap();
    p.b_to_a();
    assert_eq!(
        p.a.poll_event(),
        Some(Event::ReplyArrived {
            id,
            outcome: CallOutcome::Ok(b"hello".to_vec())
        })
    );
    assert_eq!((p.a.pending_calls(), p.b.serving_calls()), (0, 0));
    // Answering twice is a state error, not a second Reply.
    assert_eq!(
        p.b.reply(got, Outcome::Forbidden),
        Err(StateProblem::UnknownCall { id: 1 }.into())
    );
}

#[test]
fn many_calls_answered_out_of_order() {
    let mut p = Pair::confirmed();
    p.chunk = 7;
    let ids: Vec<CallId> = (0..50u8)
        .map(|i| p.a.call(p.now, "n", &[i], 10 * SEC).unwrap())
        .collect();
    p.a_to_b();
    let arrived: Vec<_> = p.events_b().into_iter().map(call_arrived).collect();
    assert_eq!(arrived.len(), 50);
    for (id, _, body) in arrived.iter().rev() {
        let out = [body[0], body[0]];
        p.b.reply(*id, Outcome::Ok(&out)).unwrap();
    }
    p.run();
    let replies = p.events_a();
    assert_eq!(replies.len(), 50);
    for (k, e) in replies.into_iter().enumerate() {
        let i = 49 - k as u8;
        assert_eq!(
            e,
            Event::ReplyArrived {
                id: ids[usize::from(i)],
                outcome: CallOutcome::Ok(vec![i, i])
            }
        );
    }
    // Every outcome kind survives.
    for o in [
        Outcome::NoSuchHandler,
        Outcome::Forbidden,
        Outcome::Overloaded,
        Outcome::HandlerFailed("bad"),
    ] {
        let id = p.a.call(p.now, "x", b"", SEC).unwrap();
        p.a_to_b();
        let (got, ..) = call_arrived(p.b.poll_event().unwrap());
        p.b.reply(got, o).unwrap();
        p.b_to_a();
        assert_eq!(
            p.a.poll_event(),
            Some(Event::ReplyArrived {
                id,
                outcome: CallOutcome::from_wire(o)
            })
        );
    }
}

#[test]
fn sends_arrive_in_order_and_are_never_answered() {
    let mut p = Pair::confirmed();
    p.chunk = 3;
    for i in 0..20u8 {
        p.a.send("chat", &[i; 3]).unwrap();
    }
    p.run();
    let got = p.events_b();
    let want: Vec<Event> = (0..20u8)
        .map(|i| Event::SendArrived {
            name: "chat".into(),
            body: vec![i; 3],
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(p.b_to_a(), 0, "nothing answers a Send");
}

#[test]
fn heartbeat_keeps_a_live_connection_and_measures_rtt() {
    let mut p = Pair::confirmed();
    p.advance(200 * SEC);
    assert!(!p.a.is_closed() && !p.b.is_closed());
    assert_eq!(p.a.rtt(), Some(std::time::Duration::ZERO));
    assert!(p.a.stats().frames_in >= 13 && p.b.stats().frames_in >= 13);
}

#[test]
fn a_silent_peer_is_dead_at_the_heartbeat_timeout() {
    let mut p = Pair::confirmed();
    let t0 = p.now;
    let id = p.a.call(p.now, "slow", b"", 600 * SEC).unwrap();
    p.a_to_b();
    p.cut_b_to_a = true;
    // Pings at 15 s, 30 s, 45 s, ...; the first is unanswered 45 s later: dead at 60 s.
    p.advance(60 * SEC - MS);
    assert!(!p.a.is_closed());
    assert_eq!(p.a.poll_timeout(), Some(t0 + 60 * SEC));
    p.advance(MS);
    assert_eq!(
        p.events_a(),
        vec![
            Event::CallAborted { id },
            Event::Closed {
                reason: DisconnectReason::HeartbeatTimeout
            }
        ]
    );
    assert_eq!(p.a.poll_timeout(), None);
    assert_eq!(
        p.a.call(p.now, "x", b"", SEC),
        Err(StateProblem::Closed.into())
    );
}

#[test]
fn a_call_expires_at_its_deadline_and_its_late_reply_is_dropped() {
    let mut p = Pair::confirmed();
    let id = p.a.call(p.now, "slow", b"", 2 * SEC).unwrap();
    p.a_to_b();
    let (got, ..) = call_arrived(p.b.poll_event().unwrap());
    assert_eq!(p.a.poll_timeout(), Some(p.now + 2 * SEC));
    p.advance(2 * SEC - MS);
    assert_eq!(p.events_a(), vec![]);
    p.advance(MS);
    assert_eq!(p.events_a(), vec![Event::CallExpired { id }]);
    // The late Reply is dropped; the connection works on.
    p.b.reply(got, Outcome::Ok(b"late")).unwrap();
    p.run();
    assert_eq!(p.events_a(), vec![]);
    assert!(!p.a.is_closed());
    let id2 = p.a.call(p.now, "fast", b"", 2 * SEC).unwrap();
    p.a_to_b();
    let (got, ..) = call_arrived(p.b.poll_event().unwrap());
    p.b.reply(got, Outcome::Ok(b"")).unwrap();
    p.run();
    assert_eq!(
        p.events_a(),
        vec![Event::ReplyArrived {
            id: id2,
            outcome: CallOutcome::Ok(vec![])
        }]
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "sizes, not memory safety: tens of KiB sealed, too slow under Miri"
)]
fn payload_over_the_peers_limit_fails_locally_and_the_connection_stays() {
    let small = Config {
        max_frame_len: 65_536,
        ..Config::default()
    };
    let mut p = Pair::new(Config::default(), small);
    p.confirm();
    assert_eq!(p.a.peer_max_frame_len(), 65_536);
    let err = p.a.call(p.now, "big", &[0; 70_000], SEC).unwrap_err();
    assert!(matches!(
        err,
        peernet_proto::connection::ConnectionError::Limit(LimitProblem::PayloadTooLarge {
            limit: 65_536,
            ..
        })
    ));
    assert!(p.a.send("big", &[0; 70_000]).is_err());
    assert_eq!(p.a.pending_calls(), 0);
    // The largest body that fits still goes: 65,536 - 16 tag - 4 tag - 8 len - 4 name.
    p.a.send("x", &vec![1; 65_536 - 16 - 4 - 8 - 1 - 8])
        .unwrap();
    p.run();
    assert!(matches!(p.b.poll_event(), Some(Event::SendArrived { .. })));
    // A reply too large for the caller becomes HandlerFailed("reply too large").
    let id = p.b.call(p.now, "get", b"", SEC).unwrap();
    p.b_to_a();
    let (got, ..) = call_arrived(p.a.poll_event().unwrap());
    p.a.reply(got, Outcome::Ok(&[0; 70_000])).unwrap();
    p.a_to_b();
    assert_eq!(
        p.b.poll_event(),
        Some(Event::ReplyArrived {
            id,
            outcome: CallOutcome::HandlerFailed(REPLY_TOO_LARGE.into())
        })
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "sizes, not memory safety: tens of KiB sealed, too slow under Miri"
)]
fn long_handler_errors_are_cut_on_a_character_boundary() {
    let mut p = Pair::confirmed();
    let id = p.a.call(p.now, "f", b"", SEC).unwrap();
    p.a_to_b();
    let (got, ..) = call_arrived(p.b.poll_event().unwrap());
    let msg = "é".repeat(3000); // 6000 bytes
    p.b.reply(got, Outcome::HandlerFailed(&msg)).unwrap();
    p.b_to_a();
    let Some(Event::ReplyArrived {
        id: rid,
        outcome: CallOutcome::HandlerFailed(m),
    }) = p.a.poll_event()
    else {
        panic!()
    };
    assert_eq!((rid, m.len()), (id, 4096));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "sizes, not memory safety: tens of KiB sealed, too slow under Miri"
)]
fn the_transmit_queue_and_pending_table_are_bounded() {
    let cfg = Config {
        transmit_queue_bytes: 64 * 1024,
        max_pending_calls: 3,
        ..Config::default()
    };
    let mut p = Pair::new(cfg, Config::default());
    p.confirm();
    let mut sent = 0;
    let err = loop {
        match p.a.send("bulk", &[0; 1000]) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(
        err,
        peernet_proto::connection::ConnectionError::Limit(LimitProblem::Overloaded {
            limit: 65_536,
            ..
        })
    ));
    assert_eq!(sent, 62); // 62 frames of 1,044 wire bytes fit in 64 KiB
    assert!(p.a.transmit_queued() <= 64 * 1024);
    assert!(!p.a.wants_read() || p.a.transmit_queued() < 64 * 1024);
    // Draining the queue makes room again.
    p.run();
    assert_eq!(p.events_b().len(), 62);
    p.a.send("bulk", &[0; 1000]).unwrap();
    for _ in 0..3 {
        p.a.call(p.now, "c", b"", SEC).unwrap();
    }
    assert_eq!(
        p.a.call(p.now, "c", b"", SEC),
        Err(LimitProblem::TooManyCalls { limit: 3 }.into())
    );
}

#[test]
fn bad_names_are_refused_locally() {
    let mut p = Pair::confirmed();
    assert!(p.a.call(p.now, "", b"", SEC).is_err());
    assert!(p.a.send(&"n".repeat(256), b"").is_err());
    assert_eq!(p.a_to_b(), 0);
    assert!(!p.a.is_closed());
}

#[test]
fn close_sends_goodbye_and_aborts_calls() {
    let mut p = Pair::confirmed();
    let id = p.a.call(p.now, "c", b"", 10 * SEC).unwrap();
    p.a.close(peernet_proto::envelope::GoodbyeReason::TrustRevoked)
        .unwrap();
    assert_eq!(
        p.events_a(),
        vec![
            Event::CallAborted { id },
            Event::Closed {
                reason: DisconnectReason::Local(
                    peernet_proto::envelope::GoodbyeReason::TrustRevoked
                )
            }
        ]
    );
    // The call and the Goodbye still leave (flushed before the socket closes).
    p.a_to_b();
    let ev = p.events_b();
    assert!(matches!(ev[0], Event::CallArrived { .. }));
    assert_eq!(
        ev[1],
        Event::Closed {
            reason: DisconnectReason::Peer(peernet_proto::envelope::GoodbyeReason::TrustRevoked)
        }
    );
    assert_eq!(
        p.a.close(peernet_proto::envelope::GoodbyeReason::Closing),
        Err(StateProblem::Closed.into())
    );
}

#[test]
fn eof_after_confirmation_is_peer_eof() {
    let mut p = Pair::confirmed();
    p.b.handle_eof();
    assert_eq!(
        p.events_b(),
        vec![Event::Closed {
            reason: DisconnectReason::PeerEof
        }]
    );
    p.a.handle_transport_error("reset by peer");
    assert_eq!(
        p.events_a(),
        vec![Event::Closed {
            reason: DisconnectReason::Transport("reset by peer".into())
        }]
    );
}

#[test]
fn an_explicit_ping_measures_the_round_trip_time() {
    let mut p = Pair::confirmed();
    assert_eq!(p.a.rtt(), None);
    assert_eq!(p.a.ping(p.now), Ok(true));
    p.a_to_b();
    p.now += 30 * MS;
    p.b_to_a();
    assert_eq!(p.a.rtt(), Some(30 * MS));
    assert_eq!((p.events_a(), p.events_b()), (vec![], vec![]));
}

/// The machine's bytes are exactly `frame(seal(envelope))` with the channel's counters
/// (spec 2, 4, 5): two handshakes with fixed ephemerals give the same keys, one for the
/// machine and one sealed by hand, and the plaintexts are the golden vectors.
#[test]
fn wire_bytes_are_frames_of_sealed_golden_envelopes() {
    use peernet_proto::channel::SendCipher;
    use peernet_proto::connection::Connection;
    use peernet_proto::frame::encode_frame;
    use peernet_proto::handshake::{Handshake, PROLOGUE};
    use peernet_proto::hello::Hello;

    fn responder_send() -> (SendCipher, peernet_proto::channel::RecvCipher, Hello) {
        let (ih, rh) = (Hello::new(1 << 20, 1), Hello::new(1 << 20, 2));
        let mut i = Handshake::with_options(true, &[1; 32], PROLOGUE, Some(&[3; 32]), &ih).unwrap();
        let mut r =
            Handshake::with_options(false, &[2; 32], PROLOGUE, Some(&[4; 32]), &rh).unwrap();
        r.read_m1(&i.write_m1().unwrap()).unwrap();
        i.read_m2(&r.write_m2().unwrap()).unwrap();
        r.read_m3(&i.write_m3().unwrap()).unwrap();
        let (send, recv) = r.split().unwrap();
        (send, recv, ih)
    }
    let by_hand = |tx: &mut SendCipher, plain: &[u8]| {
        let mut body = plain.to_vec();
        tx.seal_in_place(&mut body, 0).unwrap();
        let mut out = Vec::new();
        encode_frame(&body, &mut out);
        out
    };
    let (send, recv, ih) = responder_send();
    let (mut tx, _, _) = responder_send();
    let now = std::time::Instant::now();
    let mut b = Connection::new(
        now,
        peernet_proto::connection::Side::Responder,
        send,
        recv,
        &ih,
        Config::default(),
    );
    let v = common::v1();
    let golden = |name: &str| {
        let e = v["envelopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["value"] == name)
            .unwrap();
        common::hex(e["hex"].as_str().unwrap())
    };
    // Ping 0 (the confirmation), then a Send and a Goodbye, coalesced into one buffer.
    b.send("chat", b"").unwrap();
    b.close(peernet_proto::envelope::GoodbyeReason::ProtocolError)
        .unwrap();
    let mut wire = Vec::new();
    b.poll_transmit(&mut wire);
    let mut want = by_hand(&mut tx, &[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    want.extend(by_hand(&mut tx, &golden("Send{name=\"chat\",body=b\"\"}")));
    want.extend(by_hand(&mut tx, &golden("Goodbye{reason=3}")));
    assert_eq!(common::to_hex(&wire), common::to_hex(&want));
}
