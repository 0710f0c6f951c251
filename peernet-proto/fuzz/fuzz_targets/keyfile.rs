//! Keyfile decoder: never panics; an accepted file has a public key that matches its
//! private key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::keyfile;

fuzz_target!(|data: &[u8]| {
    if let Ok((private, public)) = keyfile::decode(data) {
        assert_eq!(keyfile::public_from_private(&private), public);
    }
});
