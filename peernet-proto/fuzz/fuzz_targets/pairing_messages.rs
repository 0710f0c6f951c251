//! Pairing message decoders and both state machines fed arbitrary frames: never panic,
//! accepted Open/PairHello re-encode to themselves, and no fuzzed transcript completes
//! a pairing (it would need the secret and this run's random keys).
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::pairing::{
    Invitation, JoinerSession, Open, PairAnnounce, PairHello, ShortCode, Ticket,
};
use peernet_proto::Key;

fuzz_target!(|data: &[u8]| {
    if let Ok(o) = Open::decode(data) {
        assert_eq!(o.encode(), data);
    }
    if let Ok(h) = PairHello::decode(data) {
        assert_eq!(h.encode(), data);
    }
    if let Ok(a) = PairAnnounce::decode(data) {
        assert_eq!(&a.encode()[..], data);
    }
    // Frames: each prefixed by one length byte.
    let mut frames = Vec::new();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let (f, tail) = tail.split_at(usize::from(n).min(tail.len()));
        frames.push(f);
        rest = tail;
    }
    let Ok(hello) = PairHello::new("fuzz", 1) else {
        return;
    };
    let Ok(code) = ShortCode::new(7, [1, 2]) else {
        return;
    };
    let mut inv = Invitation::new(&[3; 32], [4; 16], Some(code), 100, hello.clone());
    if let Some((first, more)) = frames.split_first() {
        if let Ok((mut s, _)) = inv.accept(first, 0) {
            for f in more {
                if let Ok(out) = s.receive(f) {
                    assert!(out.paired.is_none(), "fuzzed transcript paired the inviter");
                }
            }
        }
    }
    let ticket = Ticket {
        key: Key([5; 32]),
        secret: [4; 16],
        expires_at: 100,
        addrs: vec![],
    };
    for start in 0..2 {
        let j = if start == 0 {
            JoinerSession::with_code(&code, &[6; 32], hello.clone())
        } else {
            JoinerSession::with_ticket(&ticket, &[6; 32], hello.clone(), 0)
        };
        if let Ok((mut j, _)) = j {
            for f in &frames {
                if let Ok(out) = j.receive(f) {
                    assert!(out.paired.is_none(), "fuzzed transcript paired the joiner");
                }
            }
        }
    }
});
