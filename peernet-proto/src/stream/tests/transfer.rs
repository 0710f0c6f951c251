//! Bulk transfer through the window, and a reader that never reads.

use super::*;

#[test]
fn sixty_four_mib_through_a_256_kib_window_arrive_equal_and_in_order() {
    let config = StreamConfig::default();
    let window = config.initial_window as usize;
    let cap = config.send_buffer;
    let mut p = Pair::new(config, config);
    let id = p.open_accepted("file");
    const TOTAL: u64 = 64 << 20;
    let (mut written, mut checked) = (0u64, 0u64);
    let mut src = vec![0u8; 100_003];
    let mut buf = vec![0u8; 70_001];
    let (mut max_recv, mut max_send, mut messages) = (0, 0, 0u64);
    let mut finished = false;
    let mut ended = false;
    let mut turn = 0u64;
    while !ended {
        turn += 1;
        if written < TOTAL {
            let n = src.len().min((TOTAL - written) as usize);
            for (i, b) in src[..n].iter_mut().enumerate() {
                *b = pattern(written + i as u64);
            }
            written += p.a.write(id, &src[..n]).unwrap() as u64;
        } else if !finished {
            p.a.finish(id).unwrap();
            finished = true;
        }
        // A few messages each way, then the reader reads some: sender and receiver
        // run at different paces, the buffers fill and drain.
        for _ in 0..3 {
            if p.step(Dir::AtoB).is_some() {
                messages += 1;
            }
            max_recv = max_recv.max(p.b.recv_buffered(id));
            assert!(p.b.recv_buffered(id) <= window, "receiver above its window");
            assert!(
                p.b.buffer_capacity() <= window + cap,
                "receiver's memory grew"
            );
            if let Some((sent, limit)) = p.a.send_progress(id) {
                assert!(sent <= limit, "sender past its credit: {sent} > {limit}");
            }
        }
        while p.step(Dir::BtoA).is_some() {}
        max_send = max_send.max(p.a.send_buffered(id));
        assert!(p.a.send_buffered(id) <= cap, "sender above its cap");
        assert!(
            p.a.buffer_capacity() <= window + cap,
            "sender's memory grew"
        );
        // The reader pauses now and then (the window fills, the sender stalls).
        let reads = if (turn / 40) % 3 == 2 { 0 } else { 2 };
        for _ in 0..reads {
            match p.b.read(id, &mut buf).unwrap() {
                Read::Bytes(n) => {
                    for (i, &b) in buf[..n].iter().enumerate() {
                        assert_eq!(
                            b,
                            pattern(checked + i as u64),
                            "byte {}",
                            checked + i as u64
                        );
                    }
                    checked += n as u64;
                }
                Read::Blocked => {}
                Read::End => ended = true,
            }
        }
    }
    assert_eq!(checked, TOTAL);
    // The pauses fill the receiver to its credit: between half a window (credit is
    // returned in half windows) and the whole window.
    assert!(
        max_recv > window / 2,
        "the window was exercised: {max_recv}"
    );
    assert_eq!(max_send, cap, "the send buffer was used in full");
    assert!(messages >= TOTAL / MAX_DATA_LEN as u64);
    // b still has its direction open; a's is over.
    p.b.finish(id).unwrap();
    p.pump();
    assert_eq!(read_all(&mut p.a, id), (vec![], true));
    assert!(
        p.a.is_empty() && p.b.is_empty(),
        "the stream left both tables"
    );
}

#[test]
fn a_reader_that_never_reads_stalls_the_sender_with_bounded_memory() {
    let config = StreamConfig::default();
    let window = u64::from(config.initial_window);
    let cap = config.send_buffer;
    let mut p = Pair::new(config, config);
    let id = p.open_accepted("sink");
    let data = vec![7u8; 1 << 20];
    let mut accepted = 0;
    for _ in 0..10 {
        accepted += p.a.write(id, &data).unwrap();
        p.pump();
    }
    // The window went, the cap is buffered, and that is all.
    assert_eq!(accepted as u64, window + cap as u64);
    assert_eq!(p.a.send_progress(id), Some((window, window)));
    assert_eq!(p.a.send_buffered(id), cap);
    assert_eq!(p.b.recv_buffered(id), window as usize);
    assert_eq!(p.b.recv_credit_left(id), 0);
    let (cap_a, cap_b) = (p.a.buffer_capacity(), p.b.buffer_capacity());
    // The first write was cut short and chunks went since: that Writable is old.
    assert_eq!(events(&mut p.a), [StreamEvent::Writable { id }]);
    assert!(cap_a <= cap && cap_b <= window as usize, "{cap_a} {cap_b}");
    assert!(
        !p.a.has_transmit() && !p.b.has_transmit(),
        "nothing to write"
    );
    for _ in 0..1000 {
        assert_eq!(p.a.write(id, &data).unwrap(), 0);
        assert_eq!(p.pump(), 0, "nothing moves while the reader does not read");
    }
    assert_eq!(
        (p.a.buffer_capacity(), p.b.buffer_capacity()),
        (cap_a, cap_b)
    );
    assert!(events(&mut p.a).is_empty(), "no Writable while blocked");
    // The reader reads: credit flows back, the sender hears it has room.
    let (got, _) = read_all(&mut p.b, id);
    assert_eq!(got.len() as u64, window);
    assert!(p.b.has_transmit(), "the credit is waiting");
    p.pump();
    assert_eq!(events(&mut p.a), [StreamEvent::Writable { id }]);
}

#[test]
fn writes_before_the_accept_wait_for_credit() {
    let mut p = Pair::default();
    let id = p.a.open("early").unwrap();
    assert_eq!(p.a.write(id, b"before accept").unwrap(), 13);
    p.pump();
    assert_eq!(p.b.recv_buffered(id), 0, "nothing goes before the accept");
    assert_eq!(p.b.write(id, b"x"), Err(StreamError::NotAccepted { id }));
    p.b.accept(id).unwrap();
    assert_eq!(p.b.accept(id), Err(StreamError::NotPending { id }));
    p.pump();
    let ev = events(&mut p.b);
    assert!(ev.contains(&StreamEvent::Readable { id }), "{ev:?}");
    assert_eq!(read_all(&mut p.b, id), (b"before accept".to_vec(), false));
}

#[test]
fn credit_is_returned_in_half_windows_not_per_read() {
    let config = StreamConfig {
        initial_window: 1000,
        ..StreamConfig::default()
    };
    let mut p = Pair::new(config, config);
    let id = p.open_accepted("s");
    p.a.write(id, &[1; 1000]).unwrap();
    p.pump();
    let mut one = [0u8; 1];
    for i in 0..499 {
        p.b.read(id, &mut one).unwrap();
        assert_eq!(p.pump(), 0, "no credit after {} bytes read", i + 1);
    }
    p.b.read(id, &mut one).unwrap();
    assert_eq!(p.pump(), 1, "one credit once half the window was read");
    assert_eq!(p.a.send_progress(id), Some((1000, 1500)));
}
