//! The scheduler in the table: a bulk stream does not starve a trickle stream or
//! calls.

use super::*;

/// The stream and data length of a StreamData, if it is one.
fn data_of(bytes: &[u8]) -> Option<(u64, usize)> {
    match StreamMessage::decode(bytes).unwrap() {
        StreamMessage::Data { id, bytes, .. } => Some((id, bytes.len())),
        _ => None,
    }
}

/// The receiver reads everything and returns all credit at once.
fn drain_receiver(p: &mut Pair, ids: &[u64]) {
    for &id in ids {
        read_all(&mut p.b, id);
    }
    while p.step(Dir::BtoA).is_some() {}
}

#[test]
fn a_trickle_stream_goes_within_one_quantum_of_a_bulk_stream() {
    for quantum in [MAX_DATA_LEN, 4096, 1] {
        let config = StreamConfig {
            quantum,
            ..StreamConfig::default()
        };
        let mut p = Pair::new(config, config);
        let bulk = p.open_accepted("bulk");
        let trickle = p.open_accepted("trickle");
        let big = vec![0u8; 1 << 20];
        for round in 0..50 {
            // The bulk stream is always full; then the trickle queues 10 bytes.
            p.a.write(bulk, &big).unwrap();
            // Let some bulk go first, so the trickle joins a busy ring.
            for _ in 0..round % 3 {
                p.step(Dir::AtoB);
            }
            assert_eq!(p.a.write(trickle, b"0123456789").unwrap(), 10);
            let mut bulk_before = 0;
            loop {
                let Some(msg) = p.step(Dir::AtoB) else {
                    drain_receiver(&mut p, &[bulk, trickle]);
                    continue;
                };
                match data_of(&msg) {
                    Some((id, n)) if id == bulk => bulk_before += n,
                    Some((id, _)) if id == trickle => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(
                bulk_before <= quantum,
                "quantum {quantum}, round {round}: {bulk_before} bulk bytes went first"
            );
            drain_receiver(&mut p, &[bulk, trickle]);
        }
    }
}

#[test]
fn busy_streams_share_the_link_within_a_quantum() {
    let mut p = Pair::default();
    let ids: Vec<u64> = (0..3).map(|i| p.open_accepted(&format!("s{i}"))).collect();
    let big = vec![0u8; 1 << 20];
    let mut sent = [0usize; 3];
    for _ in 0..200 {
        for &id in &ids {
            p.a.write(id, &big).unwrap();
        }
        match p.step(Dir::AtoB) {
            Some(m) => {
                let (id, n) = data_of(&m).unwrap();
                sent[ids.iter().position(|&x| x == id).unwrap()] += n;
            }
            None => drain_receiver(&mut p, &ids),
        }
        let (lo, hi) = (sent.iter().min().unwrap(), sent.iter().max().unwrap());
        assert!(hi - lo <= MAX_DATA_LEN, "{sent:?}");
    }
    assert!(sent.iter().all(|&n| n > 10 * MAX_DATA_LEN), "{sent:?}");
}

#[test]
fn calls_get_every_other_turn_while_a_stream_is_busy() {
    let mut p = Pair::default();
    let id = p.open_accepted("bulk");
    let big = vec![0u8; 1 << 20];
    let (mut calls, mut chunks) = (0, 0);
    let mut last_was_chunk = false;
    for _ in 0..2000 {
        p.a.write(id, &big).unwrap();
        let mut out = Vec::new();
        match p.a.poll_transmit(&mut out, true) {
            Transmit::Calls => {
                calls += 1;
                last_was_chunk = false;
            }
            Transmit::Message(_) => {
                assert!(!last_was_chunk, "two chunks in a row with calls pending");
                chunks += 1;
                last_was_chunk = true;
                p.b.handle_envelope(&out).unwrap();
            }
            Transmit::Idle => panic!("idle with calls pending"),
        }
        drain_receiver(&mut p, &[id]);
    }
    // Neither class starves the other.
    assert_eq!(calls, 1000);
    assert_eq!(chunks, 1000);
}

#[test]
fn control_messages_and_credits_go_ahead_of_bulk_data() {
    let mut p = Pair::default();
    let bulk = p.open_accepted("bulk");
    p.a.write(bulk, &vec![0u8; 1 << 20]).unwrap();
    p.b.write(bulk, &vec![0u8; 1 << 20]).unwrap();
    for _ in 0..3 {
        p.step(Dir::AtoB).unwrap();
    }
    read_all(&mut p.b, bulk);
    // b has a full window of its own data queued and a credit to return (it read
    // more than half a window); then it opens a stream. Opens go first, then
    // credits, then data.
    let other = p.b.open("other").unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        let m = p.step(Dir::BtoA).unwrap();
        got.push(match StreamMessage::decode(&m).unwrap() {
            StreamMessage::Open { id, .. } => ("open", id),
            StreamMessage::Credit { id, .. } => ("credit", id),
            StreamMessage::Data { id, .. } => ("data", id),
            m => panic!("{m:?}"),
        });
    }
    assert_eq!(
        got,
        [
            ("open", other),
            ("credit", bulk),
            ("credit", other),
            ("data", bulk)
        ]
    );
}
