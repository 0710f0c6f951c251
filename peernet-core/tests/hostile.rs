//! Hostile input: every malformed frame, handshake message and envelope closes (only)
//! the offending connection, before allocating for it; the node keeps serving others.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::raw::*;
use common::*;
use peernet_core::{Error, Node};
use peernet_proto::envelope::Envelope;
use peernet_proto::hello::Hello;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const CLOSE: Duration = Duration::from_secs(3);

/// A server node with an echo handler, a legit client connected to it, and the keys of
/// a hostile client the server trusts.
async fn setup() -> (Node, Node, RawKeys) {
    let (server, client) = pair().await;
    let evil = RawKeys::new();
    server.trust(&evil.public, Some("evil")).unwrap();
    (server, client, evil)
}

/// The legitimate client still gets answers.
async fn still_serving(server: &Node, client: &Node) {
    assert_eq!(
        client.call(&server.key(), "echo", b"ok", T).await.unwrap(),
        b"ok"
    );
}

#[tokio::test]
async fn bad_handshake_frames_are_closed() {
    let (server, client, evil) = setup().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero length", vec![0, 0, 0, 0]),
        ("over the handshake limit", 1025u32.to_be_bytes().to_vec()),
        ("huge length", u32::MAX.to_be_bytes().to_vec()),
        ("garbage M1", framed(&[0xab; 10])),
        ("M1 with payload", {
            let mut hs = peernet_proto::handshake::Handshake::with_options(
                true,
                &evil.private,
                peernet_proto::handshake::PROLOGUE,
                None,
                &Hello::new(1 << 20, 0),
            )
            .unwrap();
            framed(&hs.write_message(b"payload").unwrap())
        }),
    ];
    for (what, bytes) in cases {
        let mut s = TcpStream::connect(addr(&server)).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        assert!(closed_within(&mut s, CLOSE).await, "{what}: not closed");
    }
    still_serving(&server, &client).await;
}

#[tokio::test]
async fn bad_m3_and_bad_hellos_are_closed() {
    let (server, client, evil) = setup().await;
    let mut short = Hello::new(1 << 20, 0).encode().to_vec();
    short.truncate(15);
    let mut v0 = Hello::new(1 << 20, 0);
    v0.protocol_version = 0;
    let small = Hello::new(65_535, 0);
    for (what, payload) in [
        ("short hello", short),
        ("version 0", v0.encode().to_vec()),
        ("limit under 64 KiB", small.encode().to_vec()),
    ] {
        let (mut s, _hs, _) = RawConn::handshake(addr(&server), &evil, &payload).await;
        assert!(closed_within(&mut s, CLOSE).await, "{what}: not closed");
    }
    // Garbage instead of M3.
    let mut s = TcpStream::connect(addr(&server)).await.unwrap();
    let mut hs =
        peernet_proto::handshake::Handshake::initiator(&evil.private, &Hello::new(1 << 20, 0))
            .unwrap();
    s.write_all(&framed(&hs.write_m1().unwrap())).await.unwrap();
    let mut buf = Vec::new();
    read_frame(&mut s, &mut buf).await.expect("M2");
    s.write_all(&framed(&[0x55; 80])).await.unwrap();
    assert!(closed_within(&mut s, CLOSE).await, "garbage M3: not closed");
    // A longer Hello from a newer revision is fine.
    let mut long = Hello::new(1 << 20, 0).encode().to_vec();
    long.extend_from_slice(&[9; 20]);
    let (stream, hs, buf) = RawConn::handshake(addr(&server), &evil, &long).await;
    let (send, recv) = hs.split().unwrap();
    let mut c = RawConn {
        stream,
        send,
        recv,
        buf,
    };
    assert_eq!(
        c.recv_env().await,
        Some(EnvOwned::Ping(0)),
        "confirmation ping"
    );
    assert!(c.alive(5).await);
    still_serving(&server, &client).await;
}

#[tokio::test]
async fn initiator_rejects_a_bad_hello_in_m2() {
    let a = node("a").await;
    let fake = RawKeys::new();
    a.trust(&fake.public, None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let laddr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut hs = peernet_proto::handshake::Handshake::with_options(
            false,
            &fake.private,
            peernet_proto::handshake::PROLOGUE,
            None,
            &Hello::new(1 << 20, 0),
        )
        .unwrap();
        let mut buf = Vec::new();
        let m1 = read_frame(&mut s, &mut buf).await.unwrap();
        hs.read_message(&m1).unwrap();
        let mut bad = Hello::new(1 << 20, 0);
        bad.protocol_version = 0;
        s.write_all(&framed(&hs.write_message(&bad.encode()).unwrap()))
            .await
            .unwrap();
        // The initiator sends nothing more and closes.
        closed_within(&mut s, CLOSE).await
    });
    let r = a.connect(&fake.public, laddr, T).await;
    assert!(matches!(r, Err(Error::HandshakeFailed(_))), "{r:?}");
    assert!(server.await.unwrap(), "initiator did not close");
}

#[tokio::test]
async fn stalled_handshakes_time_out_and_are_bounded() {
    let mut cs = config("s");
    cs.handshake_timeout = Duration::from_millis(300);
    cs.max_handshakes = 4;
    let server = Node::start(cs).await.unwrap();
    let client = node("c").await;
    server.trust(&client.key(), None).unwrap();
    client.trust(&server.key(), None).unwrap();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    // Each stalled handshake is closed at the handshake timeout.
    for (i, s) in stalled.iter_mut().enumerate() {
        assert!(
            closed_within(s, CLOSE).await,
            "stalled handshake {i} not closed"
        );
    }
    // Their slots are free again: a real peer connects.
    client
        .connect(&server.key(), addr(&server), T)
        .await
        .unwrap();
    assert!(
        server.is_connected(&client.key()) || {
            server.wait_connected(&client.key(), T).await.is_ok()
        }
    );
}

#[tokio::test]
async fn connection_beyond_the_handshake_bound_is_closed_at_once() {
    let mut cs = config("s");
    cs.handshake_timeout = Duration::from_secs(20);
    cs.max_handshakes = 2;
    let server = Node::start(cs).await.unwrap();
    // From two sources: one source gets only its share of the slots (a quarter, at
    // least one; see trust_boundary.rs).
    let mut held = Vec::new();
    for ip in [[127, 0, 0, 1], [127, 0, 0, 2]] {
        let mut s = connect_from(ip, addr(&server)).await;
        // One byte so the handshake is surely in progress.
        s.write_all(&[0]).await.unwrap();
        held.push(s);
    }
    // Wait until both are counted (the third is refused only once both are in).
    let mut third_closed = false;
    for _ in 0..50 {
        let mut s = connect_from([127, 0, 0, 3], addr(&server)).await;
        if closed_within(&mut s, Duration::from_millis(200)).await {
            third_closed = true;
            break;
        }
    }
    assert!(third_closed, "a connection beyond the bound was not closed");
    // The held ones are still open (their handshake timeout is 20 s).
    for s in held.iter_mut() {
        assert!(!closed_within(s, Duration::from_millis(50)).await);
    }
}

#[tokio::test]
async fn tampered_replayed_and_reordered_frames_close_the_connection() {
    let (server, client, evil) = setup().await;
    // Tampered: flip one ciphertext bit.
    let mut c = RawConn::connect(addr(&server), &evil).await;
    let mut f = c.seal_env(&Envelope::Ping { nonce: 1 });
    f[6] ^= 1;
    c.write(&f).await;
    assert!(closed_within(&mut c.stream, CLOSE).await, "tampered");
    // Replayed: the same valid frame twice.
    let mut c = RawConn::connect(addr(&server), &evil).await;
    let f = c.seal_env(&Envelope::Ping { nonce: 1 });
    c.write(&f).await;
    c.write(&f).await;
    assert!(closed_within(&mut c.stream, CLOSE).await, "replayed");
    // Reordered: second frame first.
    let mut c = RawConn::connect(addr(&server), &evil).await;
    let f1 = c.seal_env(&Envelope::Ping { nonce: 1 });
    let f2 = c.seal_env(&Envelope::Ping { nonce: 2 });
    c.write(&f2).await;
    c.write(&f1).await;
    assert!(closed_within(&mut c.stream, CLOSE).await, "reordered");
    still_serving(&server, &client).await;
}

#[tokio::test]
async fn transport_frame_limits_close_the_connection() {
    let (server, client, evil) = setup().await;
    for (what, header) in [
        ("zero", 0u32),
        ("over max_frame_len", (1 << 20) + 1),
        ("u32::MAX", u32::MAX),
    ] {
        let mut c = RawConn::connect(addr(&server), &evil).await;
        c.write(&header.to_be_bytes()).await;
        assert!(closed_within(&mut c.stream, CLOSE).await, "{what}");
    }
    still_serving(&server, &client).await;
}

#[tokio::test]
async fn undecodable_envelopes_get_goodbye_3_then_close() {
    let (server, client, evil) = setup().await;
    let mut bad_names = Vec::new();
    // Send{name: 256 bytes}
    let mut long = vec![2, 0, 0, 0];
    long.extend_from_slice(&256u64.to_le_bytes());
    long.extend_from_slice(&[b'n'; 256]);
    long.extend_from_slice(&0u64.to_le_bytes());
    bad_names.push(("name over 255 bytes", long));
    bad_names.push(("empty name", {
        let mut v = vec![2, 0, 0, 0];
        v.extend_from_slice(&0u64.to_le_bytes());
        v.extend_from_slice(&0u64.to_le_bytes());
        v
    }));
    let vectors: serde_json_free::Vectors = serde_json_free::malformed();
    for (why, hex) in vectors {
        bad_names.push((why, hex));
    }
    for (what, plain) in bad_names {
        let mut c = RawConn::connect(addr(&server), &evil).await;
        let f = c.seal(&plain);
        c.write(&f).await;
        let mut got_goodbye = false;
        while let Some(env) = c.recv_env().await {
            if env == EnvOwned::Goodbye(3) {
                got_goodbye = true;
            }
        }
        assert!(got_goodbye, "{what}: no Goodbye 3 before close");
    }
    still_serving(&server, &client).await;
}

/// The malformed envelopes of the published vectors (hex, parsed by hand so the
/// tests need no JSON crate).
mod serde_json_free {
    pub type Vectors = Vec<(&'static str, Vec<u8>)>;
    pub fn malformed() -> Vectors {
        [
            ("unknown tag", "06000000"),
            ("truncated Ping", "03000000887766"),
            ("trailing byte", "040000000100000000000000ff"),
            ("length 2^63", "0200000000000000000000806869"),
            ("length past the end", "0200000004000000000000006368"),
            (
                "invalid UTF-8 name",
                "020000000200000000000000c3280000000000000000",
            ),
            ("unknown outcome", "01000000010000000000000009000000"),
            ("empty", ""),
        ]
        .into_iter()
        .map(|(w, h)| {
            let bytes = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            (w, bytes)
        })
        .collect()
    }
}

#[tokio::test]
async fn reply_for_unknown_id_is_dropped() {
    let (server, client, evil) = setup().await;
    let mut c = RawConn::connect(addr(&server), &evil).await;
    let f = c.seal_env(&Envelope::Reply {
        id: 424242,
        outcome: peernet_proto::envelope::Outcome::Ok(b"late"),
    });
    c.write(&f).await;
    assert!(
        c.alive(7).await,
        "connection closed after an unknown reply id"
    );
    still_serving(&server, &client).await;
}

#[tokio::test]
async fn calls_from_a_raw_peer_get_outcomes() {
    let (server, _client, evil) = setup().await;
    let mut c = RawConn::connect(addr(&server), &evil).await;
    let f = c.seal_env(&Envelope::Call {
        id: 1,
        name: "echo",
        body: b"hi",
    });
    c.write(&f).await;
    let f = c.seal_env(&Envelope::Call {
        id: 2,
        name: "missing",
        body: b"",
    });
    c.write(&f).await;
    // A Send to the reserved RPC name is dropped; a Call to it without rights is Forbidden.
    let f = c.seal_env(&Envelope::Send {
        name: "peernet.rpc",
        body: b"",
    });
    c.write(&f).await;
    let f = c.seal_env(&Envelope::Call {
        id: 3,
        name: "peernet.rpc",
        body: b"",
    });
    c.write(&f).await;
    let mut replies = Vec::new();
    while replies.len() < 3 {
        if let EnvOwned::Reply(id, o) = c.recv_env().await.expect("connection closed") {
            replies.push((id, o));
        }
    }
    replies.sort();
    assert_eq!(replies[0], (1, "Ok([104, 105])".to_string()));
    assert_eq!(replies[1], (2, "NoSuchHandler".to_string()));
    assert_eq!(replies[2], (3, "Forbidden".to_string()));
}
