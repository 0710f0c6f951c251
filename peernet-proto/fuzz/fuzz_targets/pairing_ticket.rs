//! Ticket and short-code parsers: never panic; an accepted ticket re-encodes to text
//! that parses to the same ticket, and its bytes to themselves.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::pairing::{ShortCode, Ticket};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Ticket::from_bytes(data) {
        assert_eq!(t.to_bytes(), data);
        assert_eq!(Ticket::parse(&t.encode()).as_ref(), Ok(&t));
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = Ticket::parse(s) {
            assert_eq!(Ticket::parse(&t.encode()).as_ref(), Ok(&t));
        }
        if let Ok(c) = ShortCode::parse(s) {
            assert_eq!(ShortCode::parse(&c.to_string()), Ok(c));
        }
    }
});
