//! The reader's path for a byte stream: frame headers checked against a limit before
//! any allocation, each body opened with the receive cipher, then decoded. Never
//! panics; a frame that fails to open stops the stream (the connection would close).
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::channel::{RecvCipher, SendCipher};
use peernet_proto::envelope::Envelope;
use peernet_proto::frame::{self, HEADER_LEN};

const KEY: [u8; 32] = [7; 32];
const LIMIT: usize = 65_536;

fuzz_target!(|data: &[u8]| {
    // Half the inputs are sealed first, so the decoder behind the AEAD gets exercised
    // too: the first byte picks the mode.
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut stream = Vec::new();
    if mode & 1 == 1 {
        let mut send = SendCipher::new(KEY);
        for chunk in rest.chunks(1 + usize::from(mode >> 1)) {
            let start = stream.len();
            stream.extend_from_slice(&[0; HEADER_LEN]);
            stream.extend_from_slice(chunk);
            if send.seal_in_place(&mut stream, start + HEADER_LEN).is_err() {
                return;
            }
            let n = (stream.len() - start - HEADER_LEN) as u32;
            stream[start..start + HEADER_LEN].copy_from_slice(&n.to_be_bytes());
        }
    } else {
        stream.extend_from_slice(rest);
    }
    let mut recv = RecvCipher::new(KEY);
    let mut pos = 0;
    loop {
        match frame::parse_header(&stream[pos..], LIMIT) {
            Ok(Some(n)) => {
                assert!((1..=LIMIT).contains(&n));
                if stream.len() - pos < HEADER_LEN + n {
                    return;
                }
                let body = &mut stream[pos + HEADER_LEN..pos + HEADER_LEN + n];
                let Ok(plain) = recv.open_in_place(body) else {
                    return;
                };
                let _ = Envelope::decode(plain);
                pos += HEADER_LEN + n;
            }
            Ok(None) | Err(_) => return,
        }
    }
});
