//! Streams inside the connection machine: two machines under fake time, negotiated
//! through their Hellos, moving stream bytes interleaved with calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pair::{raw_responder, Pair, MS, SEC};
use peernet_proto::connection::{
    Config, ConnectionError, DisconnectReason, Event, MalformedProblem,
};
use peernet_proto::envelope::{Envelope, GoodbyeReason, Outcome};
use peernet_proto::stream::{
    Read, StreamConfig, StreamError, StreamEvent, StreamMessage, Violation, MAX_DATA_LEN,
};

fn with_streams() -> Config {
    Config {
        streams: Some(StreamConfig::default()),
        ..Config::default()
    }
}

fn confirmed_pair() -> Pair {
    let mut p = Pair::new(with_streams(), with_streams());
    p.confirm();
    assert!(p.a.streams_negotiated() && p.b.streams_negotiated());
    p
}

fn stream_events(events: Vec<Event>) -> Vec<StreamEvent> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Stream(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// `a` opens "files"; `b` accepts it. Returns the id.
fn open_accepted(p: &mut Pair) -> u64 {
    let id = p.a.open_stream("files").unwrap();
    p.a_to_b();
    let ev = stream_events(p.events_b());
    assert_eq!(
        ev,
        vec![StreamEvent::Opened {
            id,
            name: "files".into()
        }]
    );
    p.b.accept_stream(id).unwrap();
    p.run();
    id
}

/// Reads everything `conn` buffered on `id` into `out`; true at the end.
fn read_all(conn: &mut peernet_proto::connection::Connection, id: u64, out: &mut Vec<u8>) -> bool {
    let mut buf = vec![0; 100_000];
    loop {
        match conn.stream_read(id, &mut buf).unwrap() {
            Read::Bytes(n) => out.extend_from_slice(&buf[..n]),
            Read::Blocked => return false,
            Read::End => return true,
        }
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn a_stream_moves_megabytes_both_half_closes_and_leaves_the_table() {
    let mut p = confirmed_pair();
    let id = open_accepted(&mut p);
    let data = pattern(3 << 20);
    let mut sent = 0;
    let mut got = Vec::new();
    let mut ended = false;
    for _ in 0..10_000 {
        if sent < data.len() {
            sent += p.a.stream_write(id, &data[sent..]).unwrap();
            if sent == data.len() {
                p.a.stream_finish(id).unwrap();
            }
        }
        p.run();
        ended = read_all(&mut p.b, id, &mut got);
        p.run();
        if ended {
            break;
        }
    }
    assert!(
        ended,
        "the end never arrived ({} of {} bytes)",
        got.len(),
        data.len()
    );
    assert!(got == data, "the bytes differ");
    // b's direction is still open: it answers, then finishes too.
    assert_eq!(p.b.stream_write(id, b"thanks").unwrap(), 6);
    p.b.stream_finish(id).unwrap();
    p.run();
    let mut back = Vec::new();
    assert!(read_all(&mut p.a, id, &mut back));
    assert_eq!(back, b"thanks");
    p.run();
    assert_eq!(p.a.streams().unwrap().len(), 0);
    assert_eq!(p.b.streams().unwrap().len(), 0);
    assert!(p.a.stream_write(id, b"x").is_err());
}

#[test]
fn a_call_queued_behind_a_busy_stream_waits_for_at_most_about_one_chunk() {
    let mut p = confirmed_pair();
    let id = open_accepted(&mut p);
    let data = pattern(256 * 1024);
    assert_eq!(p.a.stream_write(id, &data).unwrap(), data.len());
    // Some of the stream leaves, then a call is queued.
    let first = p.a.transmit_buf(16 * 1024).to_vec();
    p.a.transmitted(first.len());
    p.b.handle_bytes(p.now, &first);
    p.a.call(p.now, "ping", b"?", SEC).unwrap();
    let delivered_before = p.b.streams().unwrap().recv_buffered(id);
    let mut at_call = None;
    for _ in 0..1000 {
        let chunk = p.a.transmit_buf(4096).to_vec();
        if chunk.is_empty() {
            break;
        }
        p.a.transmitted(chunk.len());
        p.b.handle_bytes(p.now, &chunk);
        let events = p.events_b();
        if events
            .iter()
            .any(|e| matches!(e, Event::CallArrived { .. }))
        {
            at_call = Some(p.b.streams().unwrap().recv_buffered(id));
            break;
        }
    }
    let at_call = at_call.expect("the call never arrived");
    let behind = at_call - delivered_before;
    assert!(
        behind <= 128 * 1024 + MAX_DATA_LEN,
        "the call waited behind {behind} stream bytes"
    );
    assert!(behind < data.len() - delivered_before, "the call went last");
}

#[test]
fn a_reset_reaches_the_peer_with_its_code_and_reason_and_ends_the_stream() {
    let mut p = confirmed_pair();
    let id = open_accepted(&mut p);
    p.a.stream_write(id, b"partial").unwrap();
    p.a.stream_reset(id, 77, "disk full").unwrap();
    p.run();
    let ev = stream_events(p.events_b());
    assert!(
        ev.contains(&StreamEvent::Reset {
            id,
            code: 77,
            reason: "disk full".into()
        }),
        "{ev:?}"
    );
    assert!(!p.b.streams().unwrap().contains(id));
    assert!(matches!(
        p.b.stream_write(id, b"x"),
        Err(StreamError::NoSuchStream { .. })
    ));
    assert!(!p.a.is_closed() && !p.b.is_closed());
}

#[test]
fn closing_the_connection_aborts_every_stream_before_closed() {
    let mut p = confirmed_pair();
    let id = open_accepted(&mut p);
    p.a.close(GoodbyeReason::Closing).unwrap();
    let ev = p.events_a();
    let n = ev.len();
    assert_eq!(ev[n - 2], Event::Stream(StreamEvent::Aborted { id }));
    assert!(matches!(ev[n - 1], Event::Closed { .. }));
    p.run();
    let ev = p.events_b();
    assert!(
        ev.contains(&Event::Stream(StreamEvent::Aborted { id })),
        "{ev:?}"
    );
    assert!(matches!(
        p.a.open_stream("files"),
        Err(StreamError::ConnectionClosed)
    ));
}

#[test]
fn streams_are_used_only_when_both_hellos_announce_them() {
    let mut p = Pair::new(with_streams(), Config::default());
    p.confirm();
    assert!(!p.a.streams_negotiated() && !p.b.streams_negotiated());
    assert_eq!(p.a.open_stream("files"), Err(StreamError::NotNegotiated));
    // Calls are unaffected.
    let id = p.a.call(p.now, "echo", b"hi", SEC).unwrap();
    p.a_to_b();
    let (cid, _, _) = match p.events_b().remove(0) {
        Event::CallArrived { id, name, body } => (id, name, body),
        e => panic!("{e:?}"),
    };
    p.b.reply(cid, Outcome::Ok(b"hi")).unwrap();
    p.b_to_a();
    assert!(p
        .events_a()
        .iter()
        .any(|e| matches!(e, Event::ReplyArrived { id: r, .. } if *r == id)));
}

#[test]
fn data_beyond_the_credit_closes_with_goodbye_3_and_a_typed_reason() {
    let (now, mut b, mut raw) = raw_responder(with_streams());
    let open = StreamMessage::Open {
        id: 1,
        name: "files",
    };
    let mut plain = Vec::new();
    open.encode_into(&mut plain);
    b.handle_bytes(now, &raw.frame_bytes(&plain));
    assert!(matches!(
        b.poll_event(),
        Some(Event::Stream(StreamEvent::Opened { id: 1, .. }))
    ));
    b.accept_stream(1).unwrap();
    // One byte past the whole 256 KiB window, in legal-sized chunks.
    let chunk = vec![0u8; MAX_DATA_LEN];
    let mut offset = 0u64;
    while b.closed().is_none() && offset < 300_000 {
        let mut plain = Vec::new();
        StreamMessage::Data {
            id: 1,
            offset,
            bytes: &chunk,
        }
        .encode_into(&mut plain);
        b.handle_bytes(now, &raw.frame_bytes(&plain));
        offset += chunk.len() as u64;
    }
    let reason = b.closed().cloned().expect("never closed");
    assert!(
        matches!(
            reason,
            DisconnectReason::Error(ConnectionError::Malformed(MalformedProblem::Stream(
                Violation::CreditExceeded { id: 1, .. }
            )))
        ),
        "{reason:?}"
    );
    let sent = raw.take(&mut b, |e| format!("{e:?}"));
    assert!(
        sent.last()
            .is_some_and(|s| s.contains("Goodbye") && s.contains("ProtocolError")),
        "{sent:?}"
    );
    assert_eq!(b.streams().map(|t| t.len()), Some(0));
}

#[test]
fn a_draining_duplicate_waits_for_its_open_streams() {
    let mut p = confirmed_pair();
    let id = open_accepted(&mut p);
    p.a.drain(p.now, 10 * SEC).unwrap();
    p.b.drain(p.now, 10 * SEC).unwrap();
    p.run();
    assert!(
        !p.a.is_closed() && !p.b.is_closed(),
        "closed with a stream open"
    );
    assert!(p.a.open_stream("more").is_err());
    p.a.stream_finish(id).unwrap();
    p.run();
    let mut got = Vec::new();
    assert!(read_all(&mut p.b, id, &mut got));
    p.b.stream_finish(id).unwrap();
    p.run();
    let mut back = Vec::new();
    assert!(read_all(&mut p.a, id, &mut back));
    p.run();
    p.advance(MS);
    assert_eq!(p.a.closed(), Some(&DisconnectReason::Drained));
    assert_eq!(p.b.closed(), Some(&DisconnectReason::Drained));
}

#[test]
fn a_stream_message_before_negotiation_is_an_unknown_envelope() {
    let (now, mut b, mut raw) = raw_responder(Config::default());
    let mut plain = Vec::new();
    StreamMessage::Open { id: 1, name: "x" }.encode_into(&mut plain);
    b.handle_bytes(now, &raw.frame_bytes(&plain));
    assert!(b.is_closed());
    let sent = raw.take(&mut b, |e| {
        e == Envelope::Goodbye {
            reason: GoodbyeReason::ProtocolError,
        }
    });
    assert_eq!(sent, vec![true]);
}
