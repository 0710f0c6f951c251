//! The handshake fed arbitrary messages: a responder reads a fuzzed M1 and M3, and an
//! initiator reads a fuzzed M2. Never panics; nothing is accepted without the right
//! keys (a fuzzed M3 cannot authenticate).
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::handshake::Handshake;
use peernet_proto::hello::Hello;

const RESPONDER: [u8; 32] = [3; 32];
const INITIATOR: [u8; 32] = [5; 32];

fuzz_target!(|data: &[u8]| {
    let hello = Hello::new(1 << 20, 7100);
    // First byte: where M1 ends and M3 begins in the rest.
    let (m1, m3): (&[u8], &[u8]) = match data.split_first() {
        Some((&n, rest)) => rest.split_at(usize::from(n).min(rest.len())),
        None => (&[], &[]),
    };
    if let Ok(mut r) = Handshake::responder(&RESPONDER, &hello) {
        if r.read_m1(m1).is_ok() {
            let _ = r.write_m2();
            // Passing needs the DH with this run's random responder ephemeral: a
            // fuzzed M3 never authenticates.
            assert!(r.read_m3(m3).is_err(), "fuzzed M3 accepted");
            // Misuse after failure is an error, not a panic.
            assert!(r.split().is_err());
        }
    }
    if let Ok(mut i) = Handshake::initiator(&INITIATOR, &hello) {
        let _ = i.write_m1();
        if i.read_m2(data).is_ok() {
            // An M2 forged without our ephemeral's DH cannot authenticate.
            unreachable!("fuzzed M2 accepted");
        }
        // Misuse after failure must be an error, not a panic.
        let _ = i.write_m3();
    }
});
