//! Half-close (Fin) and reset, both ways.

use super::*;

#[test]
fn the_opener_finishes_first_and_the_acceptor_keeps_writing() {
    let mut p = Pair::default();
    let id = p.open_accepted("up");
    p.a.write(id, b"request").unwrap();
    p.a.finish(id).unwrap();
    assert_eq!(p.a.write(id, b"more"), Err(StreamError::Finished { id }));
    assert_eq!(p.a.finish(id), Err(StreamError::Finished { id }));
    p.pump();
    assert_eq!(
        events(&mut p.b),
        [StreamEvent::Readable { id }, StreamEvent::Finished { id }]
    );
    assert_eq!(read_all(&mut p.b, id), (b"request".to_vec(), true));
    // b's direction is still open: it answers, a reads it.
    p.b.write(id, b"response").unwrap();
    p.pump();
    assert_eq!(read_all(&mut p.a, id), (b"response".to_vec(), false));
    assert!(p.a.contains(id) && p.b.contains(id));
    p.b.finish(id).unwrap();
    p.pump();
    assert_eq!(read_all(&mut p.a, id), (vec![], true));
    assert!(p.a.is_empty() && p.b.is_empty());
    assert_eq!(
        p.a.read(id, &mut [0; 4]),
        Err(StreamError::NoSuchStream { id })
    );
}

#[test]
fn the_acceptor_finishes_first_and_the_opener_keeps_writing() {
    let mut p = Pair::default();
    let id = p.open_accepted("down");
    p.b.write(id, b"banner").unwrap();
    p.b.finish(id).unwrap();
    p.pump();
    assert_eq!(
        events(&mut p.a),
        [StreamEvent::Readable { id }, StreamEvent::Finished { id }]
    );
    assert_eq!(read_all(&mut p.a, id), (b"banner".to_vec(), true));
    for _ in 0..3 {
        p.a.write(id, &[5; 100_000]).unwrap();
        p.pump();
        let (got, end) = read_all(&mut p.b, id);
        assert!(!end && got.iter().all(|&x| x == 5));
    }
    p.a.finish(id).unwrap();
    p.pump();
    assert!(read_all(&mut p.b, id).1);
    assert!(p.a.is_empty() && p.b.is_empty());
}

#[test]
fn the_opener_resets_and_the_acceptor_hears_code_and_reason() {
    let mut p = Pair::default();
    let id = p.open_accepted("x");
    p.a.write(id, &[1; 10_000]).unwrap();
    p.b.write(id, &[2; 10_000]).unwrap();
    // a resets with b's data still on its way to it.
    p.a.reset(id, 7, "disk full").unwrap();
    assert!(!p.a.contains(id));
    assert_eq!(p.a.write(id, b"x"), Err(StreamError::NoSuchStream { id }));
    // b's data crosses the reset: a drops it without an error (step panics on one).
    let late = p.step(Dir::BtoA).unwrap();
    assert!(matches!(
        StreamMessage::decode(&late),
        Ok(StreamMessage::Data { .. })
    ));
    p.pump();
    assert_eq!(
        events(&mut p.b),
        [StreamEvent::Reset {
            id,
            code: 7,
            reason: "disk full".into()
        }]
    );
    assert!(
        events(&mut p.a).is_empty(),
        "b's late data is dropped, not an error"
    );
    assert!(p.a.is_empty() && p.b.is_empty());
    assert_eq!(p.b.write(id, b"x"), Err(StreamError::NoSuchStream { id }));
}

#[test]
fn the_acceptor_resets_and_the_opener_hears_it() {
    let mut p = Pair::default();
    let id = p.open_accepted("y");
    p.a.write(id, &[1; 300_000]).unwrap();
    p.pump();
    p.b.cancel(id).unwrap();
    p.pump();
    let ev = events(&mut p.a);
    assert_eq!(
        ev.last(),
        Some(&StreamEvent::Reset {
            id,
            code: RESET_CANCELLED,
            reason: String::new()
        })
    );
    assert!(p.a.is_empty() && p.b.is_empty());
}

#[test]
fn a_refused_open_is_a_reset_with_code_refused() {
    let mut p = Pair::default();
    let id = p.a.open("nobody-here").unwrap();
    p.pump();
    assert!(matches!(events(&mut p.b)[..], [StreamEvent::Opened { .. }]));
    p.b.reset(id, RESET_REFUSED, "no stream handler \"nobody-here\"")
        .unwrap();
    p.pump();
    assert_eq!(
        events(&mut p.a),
        [StreamEvent::Reset {
            id,
            code: RESET_REFUSED,
            reason: "no stream handler \"nobody-here\"".into()
        }]
    );
}

#[test]
fn both_sides_reset_at_once_and_neither_complains() {
    let mut p = Pair::default();
    let id = p.open_accepted("z");
    p.a.reset(id, 1, "a").unwrap();
    p.b.reset(id, 2, "b").unwrap();
    p.pump();
    assert!(events(&mut p.a).is_empty() && events(&mut p.b).is_empty());
}

#[test]
fn a_long_reason_is_cut_on_a_character_boundary() {
    let mut p = Pair::default();
    let id = p.open_accepted("r");
    let reason = "é".repeat(MAX_REASON_LEN);
    p.a.reset(id, 9, &reason).unwrap();
    p.pump();
    let [StreamEvent::Reset { reason: got, .. }] = &events(&mut p.b)[..] else {
        panic!("no reset");
    };
    assert_eq!(got.len(), MAX_REASON_LEN);
    assert!(reason.starts_with(got.as_str()));
}

#[test]
fn abort_ends_every_stream_with_an_event() {
    let mut p = Pair::default();
    let x = p.open_accepted("x");
    let y = p.open_accepted("y");
    p.a.write(x, b"unsent").unwrap();
    p.a.abort();
    assert_eq!(
        events(&mut p.a),
        [
            StreamEvent::Aborted { id: x },
            StreamEvent::Aborted { id: y }
        ]
    );
    assert_eq!(p.a.poll_transmit(&mut Vec::new(), false), Transmit::Idle);
    assert!(p.a.is_empty());
}
