//! The stream decoders and a stream table driven by a fuzzed sequence of operations:
//! raw envelopes (any bytes), well-formed stream messages built from the input (so
//! the fuzzer reaches the states behind a valid open), and the program's calls.
//!
//! Checked: nothing panics; whatever decodes re-encodes to the same bytes; the table
//! keeps its bounds after every step (receive buffer within the window, send buffer
//! within its cap, nothing sent past the credit, at most `max_streams` of the peer's
//! streams); everything it transmits decodes and fits the smallest frame; after a
//! violation that closes the connection, `abort` leaves it empty and silent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::connection::Side;
use peernet_proto::stream::{
    Response, StreamConfig, StreamEvent, StreamMessage, StreamTable, Transmit,
};

/// Reads from the front of the input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> usize {
        usize::from(self.byte().unwrap_or(0)) | usize::from(self.byte().unwrap_or(0)) << 8
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

const SEND_BUFFER: usize = 1000;

fn check(t: &StreamTable, window: usize, ids: &[u64]) {
    for &id in ids {
        assert!(t.recv_buffered(id) <= window);
        assert!(t.send_buffered(id) <= SEND_BUFFER);
        if let Some((sent, limit)) = t.send_progress(id) {
            assert!(sent <= limit);
        }
    }
    assert!(t.len() <= 2 * t.config().max_streams);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = StreamMessage::decode(data) {
        let mut out = Vec::new();
        m.encode_into(&mut out);
        assert_eq!(out, data);
        assert_eq!(m.encoded_len(), data.len());
    }

    let mut input = Input(data);
    let Some(first) = input.byte() else {
        return;
    };
    let side = if first & 1 == 0 {
        Side::Initiator
    } else {
        Side::Responder
    };
    let window = 1usize << (6 + (first >> 3 & 7));
    let config = StreamConfig {
        max_streams: usize::from(first >> 1 & 3),
        initial_window: window as u32,
        send_buffer: SEND_BUFFER,
        quantum: 300,
    };
    let mut t = StreamTable::new(side, config);
    // Every id the table mentioned or was told about, to aim operations at.
    let mut ids: Vec<u64> = vec![1, 2];
    let mut payload = [0u8; 2048];
    let mut out = Vec::new();
    while let Some(op) = input.byte() {
        let pick = ids[usize::from(op >> 4) % ids.len()];
        let result = match op % 10 {
            0 | 1 => {
                let len = input.u16() % 2048;
                t.handle_envelope(input.bytes(len))
            }
            2 | 3 => {
                let arg = input.u16() as u64;
                let n = input.u16() % 1100;
                let bytes = &payload[..n];
                let msg = match input.byte().unwrap_or(0) % 5 {
                    0 => StreamMessage::Open {
                        id: arg % 16,
                        name: "s",
                    },
                    1 => StreamMessage::Data {
                        id: pick,
                        offset: arg,
                        bytes,
                    },
                    2 => StreamMessage::Credit {
                        id: pick,
                        limit: arg,
                    },
                    3 => StreamMessage::Fin { id: pick },
                    _ => StreamMessage::Reset {
                        id: pick,
                        code: 0,
                        reason: "r",
                    },
                };
                t.handle(msg)
            }
            4 => {
                if let Ok(id) = t.open("s") {
                    ids.push(id);
                }
                Ok(())
            }
            5 => {
                let _ = t.accept(pick);
                Ok(())
            }
            6 => {
                let n = input.u16() % 1500;
                let _ = t.write(pick, &payload[..n.min(payload.len())]);
                Ok(())
            }
            7 => {
                let n = input.u16() % 2048;
                let _ = t.read(pick, &mut payload[..n]);
                Ok(())
            }
            8 => {
                let _ = match op >> 7 {
                    0 => t.finish(pick),
                    _ => t.reset(pick, u32::from(op), "bye"),
                };
                Ok(())
            }
            _ => {
                out.clear();
                if let Transmit::Message(n) = t.poll_transmit(&mut out, op & 0x80 != 0) {
                    assert_eq!(n, out.len());
                    assert!(out.len() + 16 <= 65_536);
                    let m = StreamMessage::decode(&out).expect("the table sent a bad message");
                    ids.push(m.id());
                }
                Ok(())
            }
        };
        while let Some(e) = t.poll_event() {
            if let StreamEvent::Opened { id, .. } = e {
                ids.push(id);
            }
        }
        if ids.len() > 64 {
            ids.drain(..32);
        }
        check(&t, window, &ids);
        if let Err(v) = result {
            let _ = v.to_string();
            if v.response() == Response::CloseConnection {
                t.abort();
                while t.poll_event().is_some() {}
                assert!(t.is_empty());
                out.clear();
                assert_eq!(t.poll_transmit(&mut out, false), Transmit::Idle);
                return;
            }
        }
    }
});
