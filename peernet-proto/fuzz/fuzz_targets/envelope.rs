//! Envelope decoder: never panics; whatever decodes re-encodes to the same bytes
//! (canonical form), except Goodbye reasons outside 0..=3, which read as 0 (spec 5).
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::envelope::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::decode(data) {
        let mut out = Vec::new();
        env.encode_into(&mut out);
        assert_eq!(out.len(), env.encoded_len());
        if !matches!(env, Envelope::Goodbye { .. }) {
            assert_eq!(out, data);
        }
    }
});
