//! Announcement decoder: never panics; accepted packets are exactly 39 bytes and
//! re-encode to themselves.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::announce::Announcement;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Announcement::decode(data) {
        assert_eq!(&a.encode()[..], data);
    }
});
