//! The connection machine against a hostile or broken peer: tampering, replay, bytes
//! after Goodbye, oversize and empty frames, malformed envelopes, rule breaks, a
//! refused or wrong confirmation, nonce exhaustion. Each closes with a typed reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pair::{raw_initiator, raw_responder, Pair, SEC};
use peernet_proto::connection::{
    Config, ConnectionError, CryptoProblem, DisconnectReason, Event, LimitProblem, MalformedProblem,
};
use peernet_proto::envelope::{Envelope, GoodbyeReason, Outcome};

fn closed(reason: DisconnectReason) -> Event {
    Event::Closed { reason }
}

fn err(e: impl Into<ConnectionError>) -> DisconnectReason {
    DisconnectReason::Error(e.into())
}

fn dbg(e: Envelope<'_>) -> String {
    format!("{e:?}")
}

fn drain_events(c: &mut peernet_proto::connection::Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

#[test]
fn a_flipped_ciphertext_bit_closes_with_a_crypto_reason() {
    for bit in [0usize, 7, 8 * 12, 8 * 20 - 1] {
        let mut p = Pair::confirmed();
        p.a.send("chat", b"hello world").unwrap();
        let mut buf = Vec::new();
        p.a.poll_transmit(&mut buf);
        // Past the 4-byte header: ciphertext (and, for the last bit, the tag).
        let i = 4 + bit / 8;
        let i = i.min(buf.len() - 1);
        buf[i] ^= 1 << (bit % 8);
        p.b.handle_bytes(p.now, &buf);
        assert_eq!(
            p.events_b(),
            vec![closed(err(CryptoProblem::Decrypt))],
            "bit {bit}"
        );
        // Closed silently: no Goodbye (spec 4).
        assert_eq!(p.b_to_a(), 0);
        // Never a frame-size error.
        assert!(!matches!(
            p.b.closed(),
            Some(DisconnectReason::Error(ConnectionError::Limit(_)))
        ));
    }
}

#[test]
fn a_replayed_frame_closes_the_connection() {
    let mut p = Pair::confirmed();
    p.a.send("chat", b"once").unwrap();
    let mut buf = Vec::new();
    p.a.poll_transmit(&mut buf);
    p.b.handle_bytes(p.now, &buf);
    assert!(matches!(p.b.poll_event(), Some(Event::SendArrived { .. })));
    p.b.handle_bytes(p.now, &buf);
    assert_eq!(p.events_b(), vec![closed(err(CryptoProblem::Decrypt))]);
}

#[test]
fn reordered_frames_close_the_connection() {
    let (now, mut b, mut raw) = raw_responder(Config::default());
    let f1 = raw.frame(&Envelope::Ping { nonce: 1 });
    let f2 = raw.frame(&Envelope::Ping { nonce: 2 });
    b.handle_bytes(now, &f2);
    b.handle_bytes(now, &f1);
    assert_eq!(
        drain_events(&mut b),
        vec![closed(err(CryptoProblem::Decrypt))]
    );
}

#[test]
fn nothing_after_a_goodbye_is_processed() {
    let (now, mut b, mut raw) = raw_responder(Config::default());
    let mut bytes = raw.frame(&Envelope::Goodbye {
        reason: GoodbyeReason::Closing,
    });
    bytes.extend(raw.frame(&Envelope::Call {
        id: 1,
        name: "after",
        body: b"",
    }));
    bytes.extend(b"garbage that is not even a frame");
    b.handle_bytes(now, &bytes);
    assert_eq!(
        drain_events(&mut b),
        vec![closed(DisconnectReason::Peer(GoodbyeReason::Closing))]
    );
    b.handle_bytes(now, &raw.frame(&Envelope::Ping { nonce: 9 }));
    assert_eq!(drain_events(&mut b), vec![]);
    assert_eq!(b.stats().frames_in, 1);
    assert!(raw.take(&mut b, |e| format!("{e:?}")).is_empty());
}

#[test]
fn calls_after_a_goodbye_1_are_still_answered() {
    let (now, mut b, mut raw) = raw_responder(Config::default());
    let mut bytes = raw.frame(&Envelope::Goodbye {
        reason: GoodbyeReason::Duplicate,
    });
    bytes.extend(raw.frame(&Envelope::Call {
        id: 4,
        name: "late",
        body: b"x",
    }));
    b.handle_bytes(now, &bytes);
    let ev = drain_events(&mut b);
    assert_eq!(ev[0], Event::PeerDraining);
    assert!(matches!(ev[1], Event::CallArrived { .. }));
    assert!(!b.is_closed());
}

#[test]
fn an_oversize_frame_header_closes_before_any_body_is_buffered() {
    let cfg = Config::default();
    let (now, mut b, _raw) = raw_responder(cfg);
    let over = cfg.max_frame_len + 1;
    b.handle_bytes(now, &over.to_be_bytes()[..3]);
    assert!(!b.is_closed());
    b.handle_bytes(now, &over.to_be_bytes()[3..]);
    assert_eq!(
        drain_events(&mut b),
        vec![closed(err(LimitProblem::FrameTooLarge {
            len: over as usize,
            limit: cfg.max_frame_len as usize
        }))]
    );
}

#[test]
fn the_receive_buffer_follows_the_bytes_not_the_header() {
    let (now, mut b, _raw) = raw_responder(Config::default());
    // A header claiming the whole limit, then 10 bytes: nothing near 1 MiB is held.
    b.handle_bytes(now, &(1u32 << 20).to_be_bytes());
    b.handle_bytes(now, &[0; 10]);
    assert!(!b.is_closed());
    assert!(
        b.receive_buffer_capacity() < 1024,
        "{}",
        b.receive_buffer_capacity()
    );
}

#[test]
fn an_empty_frame_closes() {
    let (now, mut b, _raw) = raw_responder(Config::default());
    b.handle_bytes(now, &[0, 0, 0, 0]);
    assert_eq!(
        drain_events(&mut b),
        vec![closed(err(MalformedProblem::EmptyFrame))]
    );
}

#[test]
fn a_malformed_envelope_is_answered_with_goodbye_3() {
    let (now, mut b, mut raw) = raw_responder(Config::default());
    b.handle_bytes(now, &raw.frame_bytes(&[6, 0, 0, 0]));
    assert_eq!(
        drain_events(&mut b),
        vec![closed(err(MalformedProblem::Envelope(
            "envelope does not decode"
        )))]
    );
    assert_eq!(
        raw.take(&mut b, dbg),
        vec![dbg(Envelope::Goodbye {
            reason: GoodbyeReason::ProtocolError
        })]
    );
}

#[test]
fn replies_to_unknown_ids_are_dropped_expired_or_never_issued() {
    let (now, mut b, mut raw) = raw_responder(Config::default());
    let id = b.call(now, "f", b"", SEC).unwrap();
    b.handle_timeout(now + SEC);
    assert_eq!(drain_events(&mut b), vec![Event::CallExpired { id }]);
    // Late: dropped (spec 5).
    b.handle_bytes(
        now,
        &raw.frame(&Envelope::Reply {
            id: id.0,
            outcome: Outcome::Ok(b"late"),
        }),
    );
    assert_eq!(drain_events(&mut b), vec![]);
    // Never issued: dropped too (spec 5), the connection stays.
    b.handle_bytes(
        now,
        &raw.frame(&Envelope::Reply {
            id: 77,
            outcome: Outcome::Ok(b""),
        }),
    );
    assert_eq!(drain_events(&mut b), vec![]);
    assert!(!b.is_closed());
    let sent = raw.take(&mut b, |e| format!("{e:?}"));
    assert!(!sent.iter().any(|e| e.starts_with("Goodbye")), "{sent:?}");
}

#[test]
fn call_ids_must_be_non_zero_and_unique_among_outstanding_calls() {
    let (now, mut b, mut raw) = raw_responder(Config::default());
    b.handle_bytes(
        now,
        &raw.frame(&Envelope::Call {
            id: 0,
            name: "f",
            body: b"",
        }),
    );
    assert_eq!(
        drain_events(&mut b),
        vec![closed(err(MalformedProblem::ZeroCallId))]
    );

    let (now, mut b, mut raw) = raw_responder(Config::default());
    let call = Envelope::Call {
        id: 5,
        name: "f",
        body: b"",
    };
    b.handle_bytes(now, &raw.frame(&call));
    assert!(matches!(b.poll_event(), Some(Event::CallArrived { .. })));
    b.handle_bytes(now, &raw.frame(&call));
    assert_eq!(
        drain_events(&mut b),
        vec![closed(err(MalformedProblem::DuplicateCallId { id: 5 }))]
    );
}

#[test]
fn calls_beyond_max_serving_are_answered_overloaded_without_an_event() {
    let cfg = Config {
        max_serving: 1,
        ..Config::default()
    };
    let (now, mut b, mut raw) = raw_responder(cfg);
    for id in [1, 2] {
        b.handle_bytes(
            now,
            &raw.frame(&Envelope::Call {
                id,
                name: "f",
                body: b"",
            }),
        );
    }
    assert_eq!(drain_events(&mut b).len(), 1);
    assert_eq!(
        raw.take(&mut b, dbg),
        vec![dbg(Envelope::Reply {
            id: 2,
            outcome: Outcome::Overloaded
        })]
    );
}

#[test]
fn a_dialer_closed_before_confirmation_was_refused_and_sent_nothing() {
    let (now, mut a, mut raw) = raw_initiator(Config::default());
    let id = a.call(now, "f", b"", 10 * SEC).unwrap();
    a.handle_eof();
    assert_eq!(
        drain_events(&mut a),
        vec![Event::CallAborted { id }, closed(DisconnectReason::Refused)]
    );
    assert!(raw.take(&mut a, dbg).is_empty());
}

#[test]
fn a_dialer_gives_up_at_the_confirmation_deadline() {
    let cfg = Config::default();
    let (now, mut a, _raw) = raw_initiator(cfg);
    assert_eq!(a.poll_timeout(), Some(now + cfg.confirm_timeout));
    a.handle_timeout(now + cfg.confirm_timeout - SEC / 1000);
    assert!(!a.is_closed());
    a.handle_timeout(now + cfg.confirm_timeout);
    assert_eq!(
        drain_events(&mut a),
        vec![closed(DisconnectReason::ConfirmTimeout)]
    );
}

#[test]
fn a_confirmation_that_is_not_a_ping_closes_silently() {
    let (now, mut a, mut raw) = raw_initiator(Config::default());
    a.handle_bytes(now, &raw.frame(&Envelope::Pong { nonce: 0 }));
    assert_eq!(
        drain_events(&mut a),
        vec![closed(err(MalformedProblem::ConfirmationNotPing))]
    );
    assert!(
        raw.take(&mut a, dbg).is_empty(),
        "nothing before confirmation"
    );
}

#[test]
fn the_last_nonce_is_used_then_the_connection_closes() {
    let (i, r, ih, rh) = common::pair::handshake(
        peernet_proto::hello::Hello::new(1 << 20, 1),
        peernet_proto::hello::Hello::new(1 << 20, 2),
    );
    let now = std::time::Instant::now();
    let (mut send, recv) = r.split().unwrap();
    send.set_counter(u64::MAX - 1);
    let mut b = peernet_proto::connection::Connection::new(
        now,
        peernet_proto::connection::Side::Responder,
        send,
        recv,
        &ih,
        Config::default(),
    );
    let _ = rh;
    let (s, mut rv) = i.split().unwrap();
    rv.set_counter(u64::MAX - 1);
    let mut raw = common::pair::Raw { send: s, recv: rv };
    // The confirming Ping is sealed with counter 2^64 - 2; nothing can follow it.
    b.send("x", b"").unwrap();
    let sent = raw.take(&mut b, dbg);
    assert_eq!(sent, vec![dbg(Envelope::Ping { nonce: 0 })]);
    assert_eq!(
        drain_events(&mut b),
        vec![closed(err(CryptoProblem::NonceExhausted))]
    );
}

#[test]
fn the_receive_limit_is_the_one_this_sides_hello_announced() {
    let (i, r, ih, _) = common::pair::handshake(
        peernet_proto::hello::Hello::new(1 << 20, 1),
        peernet_proto::hello::Hello::new(65_536, 2),
    );
    let _ = i;
    let now = std::time::Instant::now();
    // The config says 1 MiB; the Hello that was sent says 64 KiB, and wins.
    let mut b =
        peernet_proto::connection::Connection::from_handshake(now, r, &ih, Config::default())
            .unwrap();
    b.handle_bytes(now, &65_537u32.to_be_bytes());
    assert_eq!(
        drain_events(&mut b),
        vec![closed(err(LimitProblem::FrameTooLarge {
            len: 65_537,
            limit: 65_536
        }))]
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "sizes, not memory safety: tens of KiB sealed, too slow under Miri"
)]
fn a_ping_flood_that_is_never_drained_stops_reading_then_closes() {
    let cfg = Config {
        transmit_queue_bytes: 64 * 1024,
        ..Config::default()
    };
    let (now, mut b, mut raw) = raw_responder(cfg);
    let mut pings = 0u64;
    // Each Pong is 32 wire bytes: the budget holds 2048.
    while b.wants_read() {
        b.handle_bytes(now, &raw.frame(&Envelope::Ping { nonce: pings }));
        pings += 1;
        assert!(pings < 10_000);
    }
    assert_eq!(pings, 2048);
    assert!(!b.is_closed());
    // A driver that ignores wants_read(): closed past twice the budget.
    while !b.is_closed() {
        b.handle_bytes(now, &raw.frame(&Envelope::Ping { nonce: pings }));
        pings += 1;
        assert!(pings < 10_000);
    }
    assert_eq!(pings, 4097);
    assert!(matches!(
        b.closed(),
        Some(DisconnectReason::Error(ConnectionError::Limit(
            LimitProblem::TransmitQueueFull { .. }
        )))
    ));
}
