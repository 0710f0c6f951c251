//! Hello decoder: never panics; accepted Hellos re-encode to their first 16 bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::hello::{Hello, HELLO_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Hello::decode(data) {
        assert!(h.protocol_version >= 1 && h.max_frame_len >= 65_536);
        assert_eq!(&h.encode()[..], &data[..HELLO_LEN]);
    }
});
