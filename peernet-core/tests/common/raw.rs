//! A hand-driven peer for hostile-input tests: speaks the protocol with
//! `peernet_proto` directly so a test can break any rule on purpose.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use peernet_proto::channel::{RecvCipher, SendCipher};
use peernet_proto::envelope::Envelope;
use peernet_proto::frame::{self, HEADER_LEN};
use peernet_proto::handshake::{Handshake, PROLOGUE};
use peernet_proto::hello::Hello;
use peernet_proto::{keyfile, Key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawKeys {
    pub private: [u8; 32],
    pub public: Key,
}

impl RawKeys {
    pub fn new() -> RawKeys {
        let private = keyfile::generate_private().unwrap();
        RawKeys {
            private,
            public: keyfile::public_from_private(&private),
        }
    }
}

pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    frame::encode_frame(body, &mut v);
    v
}

/// True if the peer closes the socket (EOF or reset) within `within`, ignoring any
/// bytes it sends first.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// Reads one frame body from any reader, keeping extra bytes in `buf` (None at EOF or
/// on an error).
pub async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    s: &mut R,
    buf: &mut Vec<u8>,
) -> Option<Vec<u8>> {
    loop {
        if let Ok(Some(n)) = frame::parse_header(buf, 1 << 24) {
            if buf.len() >= HEADER_LEN + n {
                let body = buf[HEADER_LEN..HEADER_LEN + n].to_vec();
                buf.drain(..HEADER_LEN + n);
                return Some(body);
            }
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// An initiator that completed the handshake (with a custom Hello payload in M3).
pub struct RawConn {
    pub stream: TcpStream,
    pub send: SendCipher,
    pub recv: RecvCipher,
    pub buf: Vec<u8>,
}

impl RawConn {
    /// Dials and runs M1..M3 with `m3_payload` as our Hello; returns the stream
    /// right after M3 (before the responder's confirmation).
    pub async fn handshake(
        addr: SocketAddr,
        keys: &RawKeys,
        m3_payload: &[u8],
    ) -> (TcpStream, Handshake, Vec<u8>) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let hello = Hello::new(1 << 20, 0);
        let mut hs = Handshake::with_options(true, &keys.private, PROLOGUE, None, &hello).unwrap();
        s.write_all(&framed(&hs.write_message(&[]).unwrap()))
            .await
            .unwrap();
        let mut buf = Vec::new();
        let m2 = read_frame(&mut s, &mut buf).await.expect("M2");
        hs.read_message(&m2).unwrap();
        s.write_all(&framed(&hs.write_message(m3_payload).unwrap()))
            .await
            .unwrap();
        (s, hs, buf)
    }

    /// A full, valid connection as a trusted peer; the confirmation Ping is consumed.
    pub async fn connect(addr: SocketAddr, keys: &RawKeys) -> RawConn {
        let hello = Hello::new(1 << 20, 0).encode();
        let (stream, hs, buf) = Self::handshake(addr, keys, &hello).await;
        let (send, recv) = hs.split().unwrap();
        let mut c = RawConn {
            stream,
            send,
            recv,
            buf,
        };
        match c.recv_env().await {
            Some(EnvOwned::Ping(_)) => {}
            other => panic!("expected the confirmation ping, got {other:?}"),
        }
        c
    }

    pub fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        self.send.seal_frame(plain, &mut v).unwrap();
        v
    }

    pub fn seal_env(&mut self, env: &Envelope<'_>) -> Vec<u8> {
        let mut plain = Vec::new();
        env.encode_into(&mut plain);
        self.seal(&plain)
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Next envelope from the node (None when the connection closes).
    pub async fn recv_env(&mut self) -> Option<EnvOwned> {
        let mut body = read_frame(&mut self.stream, &mut self.buf).await?;
        let plain = self.recv.open_in_place(&mut body).ok()?;
        Some(EnvOwned::from(Envelope::decode(plain).ok()?))
    }

    /// Sends a Ping and waits for its Pong: proof the connection still works.
    pub async fn alive(&mut self, nonce: u64) -> bool {
        let f = self.seal_env(&Envelope::Ping { nonce });
        if self.stream.write_all(&f).await.is_err() {
            return false;
        }
        let fut = async {
            loop {
                match self.recv_env().await {
                    Some(EnvOwned::Pong(n)) if n == nonce => return true,
                    Some(EnvOwned::Ping(n)) => {
                        let f = self.seal_env(&Envelope::Pong { nonce: n });
                        let _ = self.stream.write_all(&f).await;
                    }
                    Some(_) => {}
                    None => return false,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .unwrap_or(false)
    }
}

/// An owned view of the envelopes the tests look at.
#[derive(Debug, PartialEq, Eq)]
pub enum EnvOwned {
    Ping(u64),
    Pong(u64),
    Goodbye(u32),
    Reply(u64, String),
    Other,
}

impl From<Envelope<'_>> for EnvOwned {
    fn from(e: Envelope<'_>) -> Self {
        match e {
            Envelope::Ping { nonce } => EnvOwned::Ping(nonce),
            Envelope::Pong { nonce } => EnvOwned::Pong(nonce),
            Envelope::Goodbye { reason } => EnvOwned::Goodbye(reason.as_u32()),
            Envelope::Reply { id, outcome } => EnvOwned::Reply(id, format!("{outcome:?}")),
            _ => EnvOwned::Other,
        }
    }
}

/// A TCP connection to `addr` from source address `ip` (any of 127.0.0.0/8 is loopback
/// on Linux, so tests can play several hosts).
pub async fn connect_from(ip: [u8; 4], addr: SocketAddr) -> TcpStream {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from((ip, 0))).unwrap();
    s.connect(addr).await.unwrap()
}

/// Runs M1..M3 as `keys` over `s` with a default Hello and waits for the responder's
/// confirming Ping: `Some` if it came (the connection is registered), `None` if the
/// responder closed (or sent something else) before.
pub async fn try_handshake(mut s: TcpStream, keys: &RawKeys) -> Option<RawConn> {
    let hello = Hello::new(1 << 20, 0);
    let mut hs = Handshake::with_options(true, &keys.private, PROLOGUE, None, &hello).unwrap();
    s.write_all(&framed(&hs.write_message(&[]).unwrap()))
        .await
        .ok()?;
    let mut buf = Vec::new();
    let m2 = read_frame(&mut s, &mut buf).await?;
    hs.read_message(&m2).ok()?;
    s.write_all(&framed(&hs.write_message(&hello.encode()).unwrap()))
        .await
        .ok()?;
    let (send, recv) = hs.split().unwrap();
    let mut c = RawConn {
        stream: s,
        send,
        recv,
        buf,
    };
    match c.recv_env().await {
        Some(EnvOwned::Ping(_)) => Some(c),
        _ => None,
    }
}
