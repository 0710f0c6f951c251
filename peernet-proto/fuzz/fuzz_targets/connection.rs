//! The connection machine driven by a fuzzed sequence of operations, after a real Noise
//! XX handshake with fixed test keys (and fixed ephemerals, so runs reproduce), so the
//! fuzzer reaches everything behind the AEAD: raw bytes, well-sealed envelopes built
//! from the input (and tampered ones), time advances, and the program's commands.
//!
//! With mode bit 1 both Hellos announce streams: stream messages (opens, data within
//! and past the credit, credits, fins, resets) and the program's stream calls join in.
//!
//! Checked: nothing panics; everything the machine transmits opens with the peer's
//! channel and decodes (it never emits a bad frame); `Closed` comes once and last;
//! a closed machine emits nothing more and has no timeout.
#![no_main]
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use peernet_proto::channel::{RecvCipher, SendCipher};
use peernet_proto::connection::{Config, Connection, Event};
use peernet_proto::envelope::{Envelope, GoodbyeReason, Outcome};
use peernet_proto::frame::HEADER_LEN;
use peernet_proto::handshake::{Handshake, PROLOGUE};
use peernet_proto::hello::Hello;
use peernet_proto::stream::{stream_tag, StreamConfig, StreamMessage, FEATURE_STREAMS};

const I_STATIC: [u8; 32] = [5; 32];
const R_STATIC: [u8; 32] = [3; 32];
const I_EPH: [u8; 32] = [9; 32];
const R_EPH: [u8; 32] = [11; 32];

/// A machine on `side` (true: initiator) and the other end's bare channel.
fn setup(
    initiator: bool,
    now: Instant,
    config: Config,
) -> Option<(Connection, SendCipher, RecvCipher)> {
    let mut hello = Hello::new(65_536, 1);
    if config.streams.is_some() {
        hello.features = FEATURE_STREAMS;
    }
    let mut i = Handshake::with_options(true, &I_STATIC, PROLOGUE, Some(&I_EPH), &hello).ok()?;
    let mut r = Handshake::with_options(false, &R_STATIC, PROLOGUE, Some(&R_EPH), &hello).ok()?;
    r.read_m1(&i.write_m1().ok()?).ok()?;
    let (_, rh) = i.read_m2(&r.write_m2().ok()?).ok()?;
    let (_, ih) = r.read_m3(&i.write_m3().ok()?).ok()?;
    if initiator {
        let conn = Connection::from_handshake(now, i, &rh, config).ok()?;
        let (s, rv) = r.split().ok()?;
        Some((conn, s, rv))
    } else {
        let conn = Connection::from_handshake(now, r, &ih, config).ok()?;
        let (s, rv) = i.split().ok()?;
        Some((conn, s, rv))
    }
}

/// Reads from the front of the input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.byte().unwrap_or(0)) | u64::from(self.byte().unwrap_or(0)) << 8
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn name(&mut self) -> &'a str {
        let n = usize::from(self.byte().unwrap_or(1) % 12);
        std::str::from_utf8(self.bytes(n)).unwrap_or("f")
    }
}

fn seal(send: &mut SendCipher, plain: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    send.seal_frame(plain, &mut out).ok()?;
    Some(out)
}

fn envelope(inp: &mut Input<'_>, served: &[u64]) -> Vec<u8> {
    let kind = inp.byte().unwrap_or(0);
    let mut plain = Vec::new();
    let env = match kind % 7 {
        0 => Envelope::Call {
            id: inp.u64(),
            name: inp.name(),
            body: {
                let n = usize::from(inp.byte().unwrap_or(0));
                inp.bytes(n)
            },
        },
        1 => Envelope::Reply {
            id: u64::from(inp.byte().unwrap_or(1) % 8),
            outcome: match inp.byte().unwrap_or(0) % 5 {
                0 => Outcome::Ok(inp.bytes(8)),
                1 => Outcome::NoSuchHandler,
                2 => Outcome::Forbidden,
                3 => Outcome::HandlerFailed("x"),
                _ => Outcome::Overloaded,
            },
        },
        2 => Envelope::Send {
            name: inp.name(),
            body: inp.bytes(16),
        },
        3 => Envelope::Ping { nonce: inp.u64() },
        4 => Envelope::Pong {
            nonce: inp.u64() % 4,
        },
        5 => Envelope::Goodbye {
            reason: GoodbyeReason::from_u32(u32::from(inp.byte().unwrap_or(0) % 4)),
        },
        _ => Envelope::Reply {
            id: served.first().copied().unwrap_or(1),
            outcome: Outcome::Ok(b""),
        },
    };
    env.encode_into(&mut plain);
    plain
}

/// A stream message from the peer, with small ids so they hit real streams.
fn stream_message(inp: &mut Input<'_>) -> Vec<u8> {
    let id = u64::from(inp.byte().unwrap_or(1) % 6);
    let mut plain = Vec::new();
    let msg = match inp.byte().unwrap_or(0) % 5 {
        0 => StreamMessage::Open {
            id,
            name: inp.name(),
        },
        1 => StreamMessage::Data {
            id,
            offset: inp.u64() % 4096,
            bytes: {
                let n = usize::from(inp.byte().unwrap_or(0)) * 8;
                inp.bytes(n)
            },
        },
        2 => StreamMessage::Credit {
            id,
            limit: inp.u64() << 4,
        },
        3 => StreamMessage::Fin { id },
        _ => StreamMessage::Reset {
            id,
            code: u32::from(inp.byte().unwrap_or(0)),
            reason: "r",
        },
    };
    msg.encode_into(&mut plain);
    plain
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let mode = inp.byte().unwrap_or(0);
    let streams = mode & 2 == 2;
    let config = Config {
        max_frame_len: 65_536,
        transmit_queue_bytes: 64 * 1024,
        max_pending_calls: 8,
        max_serving: 8,
        streams: streams.then_some(StreamConfig {
            max_streams: 3,
            initial_window: 4096,
            send_buffer: 4096,
            quantum: 1500,
        }),
        ..Config::default()
    };
    let mut now = Instant::now();
    let Some((mut conn, mut send, mut recv)) = setup(mode & 1 == 1, now, config) else {
        return;
    };
    let mut served: Vec<u64> = Vec::new();
    let mut closed = false;
    let mut out = Vec::new();
    while let Some(op) = inp.byte() {
        match op % 10 {
            0 => {
                let n = usize::from(inp.byte().unwrap_or(0));
                conn.handle_bytes(now, inp.bytes(n));
            }
            1 | 2 => {
                let plain = if op % 10 == 1 {
                    let n = usize::from(inp.byte().unwrap_or(0));
                    inp.bytes(n).to_vec()
                } else if streams && op & 0x80 != 0 {
                    stream_message(&mut inp)
                } else {
                    envelope(&mut inp, &served)
                };
                if let Some(frame) = seal(&mut send, &plain) {
                    let cut = usize::from(inp.byte().unwrap_or(255)).min(frame.len());
                    conn.handle_bytes(now, &frame[..cut]);
                    conn.handle_bytes(now, &frame[cut..]);
                }
            }
            3 => {
                // Tampered: a sealed envelope with one bit flipped.
                let plain = envelope(&mut inp, &served);
                if let Some(mut frame) = seal(&mut send, &plain) {
                    let at = usize::from(inp.byte().unwrap_or(0)) % frame.len();
                    frame[at] ^= 1 << (inp.byte().unwrap_or(0) % 8);
                    conn.handle_bytes(now, &frame);
                }
            }
            4 => {
                now += Duration::from_millis(u64::from(inp.byte().unwrap_or(0)) * 500);
                conn.handle_timeout(now);
            }
            5 => {
                let name = inp.name();
                let body = inp.bytes(32);
                let t = Duration::from_secs(u64::from(inp.byte().unwrap_or(0)));
                let _ = conn.call(now, name, body, t);
            }
            6 => {
                let name = inp.name();
                let _ = conn.send(name, inp.bytes(32));
            }
            7 => {
                let which = usize::from(inp.byte().unwrap_or(0));
                let id = served
                    .get(which % served.len().max(1))
                    .copied()
                    .unwrap_or(1);
                if conn
                    .reply(peernet_proto::connection::CallId(id), Outcome::Ok(b"r"))
                    .is_ok()
                {
                    served.retain(|&s| s != id);
                }
            }
            8 if streams && op & 0x80 != 0 => {
                let id = u64::from(inp.byte().unwrap_or(1) % 6);
                let mut buf = [0u8; 700];
                let _ = match inp.byte().unwrap_or(0) % 6 {
                    0 => conn.open_stream(inp.name()).map(|_| ()),
                    1 => conn.accept_stream(id),
                    2 => {
                        let n = usize::from(inp.byte().unwrap_or(0)) * 16;
                        conn.stream_write(id, &vec![7; n]).map(|_| ())
                    }
                    3 => conn.stream_read(id, &mut buf).map(|_| ()),
                    4 => conn.stream_finish(id),
                    _ => conn.stream_reset(id, 9, "fuzz"),
                };
            }
            8 => match inp.byte().unwrap_or(0) % 5 {
                0 => {
                    let _ = conn.ping(now);
                }
                1 => {
                    let _ = conn.close(GoodbyeReason::from_u32(u32::from(op >> 4) % 4));
                }
                2 => {
                    let _ = conn.drain(now, Duration::from_secs(u64::from(op >> 4)));
                }
                3 => conn.handle_eof(),
                _ => conn.handle_transport_error("fuzz"),
            },
            _ => {
                // Everything the machine sends must open and decode on the other end.
                out.clear();
                let n = conn.poll_transmit(&mut out);
                assert_eq!(n, out.len());
                let mut rest = &mut out[..];
                while !rest.is_empty() {
                    let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                    assert!(len <= 65_536 && HEADER_LEN + len <= rest.len());
                    let (frame, tail) = rest.split_at_mut(HEADER_LEN + len);
                    let plain = recv
                        .open_in_place(&mut frame[HEADER_LEN..])
                        .expect("the machine sent a frame that does not open");
                    if stream_tag(plain).is_some() {
                        assert!(streams, "a stream message without streams");
                        StreamMessage::decode(plain)
                            .expect("the machine sent a bad stream message");
                    } else {
                        Envelope::decode(plain).expect("the machine sent a bad envelope");
                    }
                    rest = tail;
                }
            }
        }
        while let Some(e) = conn.poll_event() {
            assert!(!closed, "event after Closed: {e:?}");
            match e {
                Event::CallArrived { id, .. } => served.push(id.0),
                Event::Closed { .. } => {
                    closed = true;
                    served.clear();
                }
                _ => {}
            }
        }
        assert_eq!(closed, conn.is_closed());
        if closed {
            assert!(conn.poll_timeout().is_none());
        }
    }
});
