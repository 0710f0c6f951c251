//! Each way a peer can break the stream protocol, and what it gets (docs/protocol.md,
//! "Streams", bad input).

use super::*;

fn close(r: Result<(), Violation>) -> Violation {
    let v = r.unwrap_err();
    assert_eq!(v.response(), Response::CloseConnection, "{v}");
    assert_eq!(v.reset_code(), None);
    v
}

#[test]
fn data_past_the_credit_closes_the_connection() {
    let config = StreamConfig {
        initial_window: 1000,
        ..StreamConfig::default()
    };
    let mut p = Pair::new(config, config);
    let id = p.open_accepted("s");
    let bytes = [0u8; 1001];
    let v = close(p.b.handle(StreamMessage::Data {
        id,
        offset: 0,
        bytes: &bytes,
    }));
    assert_eq!(
        v,
        Violation::CreditExceeded {
            id,
            end: 1001,
            limit: 1000
        }
    );
    assert!(v.to_string().contains("exceeds the credit"), "{v}");
    // The whole window is fine.
    p.b.handle(StreamMessage::Data {
        id,
        offset: 0,
        bytes: &bytes[..1000],
    })
    .unwrap();
}

#[test]
fn data_before_the_accept_exceeds_a_credit_of_zero() {
    let mut p = Pair::default();
    let id = p.a.open("s").unwrap();
    p.pump();
    let v = close(p.b.handle(StreamMessage::Data {
        id,
        offset: 0,
        bytes: b"x",
    }));
    assert_eq!(
        v,
        Violation::CreditExceeded {
            id,
            end: 1,
            limit: 0
        }
    );
}

#[test]
fn too_many_streams_resets_only_the_extra_one() {
    let small = StreamConfig {
        max_streams: 2,
        ..StreamConfig::default()
    };
    let mut p = Pair::new(StreamConfig::default(), small);
    let ids: Vec<u64> = (0..3).map(|_| p.a.open("s").unwrap()).collect();
    // Deliver by hand: the third Open is refused with a reset.
    let mut results = Vec::new();
    let mut out = Vec::new();
    while let Transmit::Message(_) = p.a.poll_transmit(&mut out, false) {
        results.push(p.b.handle_envelope(&out));
        out.clear();
    }
    let errors: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    assert_eq!(
        errors,
        [Violation::TooManyStreams {
            id: ids[2],
            limit: 2
        }]
    );
    assert_eq!(errors[0].response(), Response::ResetStream);
    assert_eq!(errors[0].reset_code(), Some(RESET_TOO_MANY_STREAMS));
    p.pump();
    assert_eq!(
        events(&mut p.a),
        [StreamEvent::Reset {
            id: ids[2],
            code: RESET_TOO_MANY_STREAMS,
            reason: "too many streams (limit 2)".into()
        }]
    );
    assert_eq!(p.b.len(), 2);
    // Once one ends, the next open is taken.
    p.b.reset(ids[0], RESET_REFUSED, "").unwrap();
    p.pump();
    let id = p.a.open("s").unwrap();
    p.pump();
    assert!(events(&mut p.b).contains(&StreamEvent::Opened {
        id,
        name: "s".into()
    }));
}

#[test]
fn this_side_refuses_to_open_past_its_own_limit() {
    let small = StreamConfig {
        max_streams: 1,
        ..StreamConfig::default()
    };
    let mut p = Pair::new(small, StreamConfig::default());
    p.a.open("s").unwrap();
    assert_eq!(p.a.open("s"), Err(StreamError::TooManyStreams { limit: 1 }));
    assert!(matches!(p.a.open(""), Err(StreamError::BadName(_))));
    assert!(matches!(
        p.a.open(&"n".repeat(256)),
        Err(StreamError::BadName(_))
    ));
}

#[test]
fn data_or_a_second_fin_after_the_fin_closes_the_connection() {
    let mut p = Pair::default();
    let id = p.open_accepted("s");
    p.a.write(id, b"abc").unwrap();
    p.a.finish(id).unwrap();
    p.pump();
    let data = StreamMessage::Data {
        id,
        offset: 3,
        bytes: b"d",
    };
    assert_eq!(close(p.b.handle(data)), Violation::DataAfterFin { id });
    // Even empty data, and a repeated Fin.
    let empty = StreamMessage::Data {
        id,
        offset: 3,
        bytes: b"",
    };
    assert_eq!(close(p.b.handle(empty)), Violation::DataAfterFin { id });
    assert_eq!(
        close(p.b.handle(StreamMessage::Fin { id })),
        Violation::DataAfterFin { id }
    );
}

#[test]
fn messages_for_a_stream_never_opened_close_the_connection() {
    let mut p = Pair::default();
    let id = p.open_accepted("s");
    // b is the responder: the peer's ids are odd; 3 is not opened yet, 4 would be b's
    // own next one, 0 is never an id.
    for bad in [0, id + 2, 2, 4, u64::MAX] {
        let msgs = [
            StreamMessage::Data {
                id: bad,
                offset: 0,
                bytes: b"x",
            },
            StreamMessage::Credit { id: bad, limit: 9 },
            StreamMessage::Fin { id: bad },
            StreamMessage::Reset {
                id: bad,
                code: 0,
                reason: "",
            },
        ];
        for m in msgs {
            assert_eq!(
                close(p.b.handle(m)),
                Violation::UnknownStream { id: bad },
                "{m:?}"
            );
        }
    }
}

#[test]
fn messages_for_a_stream_that_ended_are_dropped() {
    let mut p = Pair::default();
    let id = p.open_accepted("s");
    p.b.cancel(id).unwrap();
    for m in [
        StreamMessage::Data {
            id,
            offset: 0,
            bytes: b"late",
        },
        StreamMessage::Credit { id, limit: 1 },
        StreamMessage::Fin { id },
        StreamMessage::Reset {
            id,
            code: 0,
            reason: "",
        },
    ] {
        p.b.handle(m).unwrap();
    }
    assert!(events(&mut p.b).is_empty());
}

#[test]
fn an_open_out_of_sequence_closes_the_connection() {
    let mut p = Pair::default();
    // The responder b expects the initiator's odd ids: 1 first.
    for (id, expected) in [(2, 1), (3, 1), (0, 1)] {
        let open = StreamMessage::Open { id, name: "s" };
        assert_eq!(
            close(p.b.handle(open)),
            Violation::BadStreamId { id, expected }
        );
    }
    p.b.handle(StreamMessage::Open { id: 1, name: "s" })
        .unwrap();
    // Reusing an id.
    assert_eq!(
        close(p.b.handle(StreamMessage::Open { id: 1, name: "s" })),
        Violation::BadStreamId { id: 1, expected: 3 }
    );
}

#[test]
fn data_at_the_wrong_offset_closes_the_connection() {
    let mut p = Pair::default();
    let id = p.open_accepted("s");
    p.a.write(id, b"abc").unwrap();
    p.pump();
    let m = StreamMessage::Data {
        id,
        offset: 0,
        bytes: b"again",
    };
    assert_eq!(
        close(p.b.handle(m)),
        Violation::BadOffset {
            id,
            offset: 0,
            expected: 3
        }
    );
}

#[test]
fn bytes_that_do_not_decode_close_the_connection() {
    let mut t = StreamTable::new(Side::Responder, StreamConfig::default());
    for bytes in [
        &[][..],
        &[16, 0, 0][..],
        &[6, 0, 0, 0][..],
        &[19, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0][..],
        &[19, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xff][..],
    ] {
        assert!(matches!(
            close(t.handle_envelope(bytes)),
            Violation::Malformed(_)
        ));
    }
}

#[test]
fn a_flood_of_refused_opens_is_cut_off() {
    let none = StreamConfig {
        max_streams: 0,
        ..StreamConfig::default()
    };
    let mut t = StreamTable::new(Side::Responder, none);
    let mut id = 1;
    for i in 0..2 * MAX_CONTROL_QUEUED {
        let r = t.handle(StreamMessage::Open { id, name: "s" });
        assert!(matches!(r, Err(Violation::TooManyStreams { .. })));
        assert_eq!(t.wants_read(), i + 1 < MAX_CONTROL_QUEUED);
        id += 2;
    }
    let v = close(t.handle(StreamMessage::Open { id, name: "s" }));
    assert_eq!(
        v,
        Violation::Backlog {
            queued: 2 * MAX_CONTROL_QUEUED
        }
    );
}

#[test]
fn opens_and_resets_that_are_never_transmitted_stop_further_opens() {
    let mut t = StreamTable::new(Side::Initiator, StreamConfig::default());
    for _ in 0..MAX_CONTROL_QUEUED / 2 {
        let id = t.open("s").unwrap();
        t.cancel(id).unwrap();
    }
    assert_eq!(
        t.open("s"),
        Err(StreamError::Backlog {
            queued: MAX_CONTROL_QUEUED
        })
    );
    while let Transmit::Message(_) = t.poll_transmit(&mut Vec::new(), false) {}
    assert!(t.open("s").is_ok());
}

#[test]
fn api_calls_on_streams_that_are_not_open_fail_cleanly() {
    let mut t = StreamTable::new(Side::Initiator, StreamConfig::default());
    let e = StreamError::NoSuchStream { id: 1 };
    assert_eq!(t.write(1, b"x"), Err(e.clone()));
    assert_eq!(t.read(1, &mut [0]), Err(e.clone()));
    assert_eq!(t.finish(1), Err(e.clone()));
    assert_eq!(t.reset(1, 0, ""), Err(e.clone()));
    assert_eq!(t.accept(1), Err(e.clone()));
    let id = t.open("s").unwrap();
    assert_eq!(t.accept(id), Err(StreamError::NotPending { id }));
}
