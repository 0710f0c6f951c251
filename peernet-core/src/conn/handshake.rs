//! Drives the sans-IO Noise XX handshake (`peernet_proto::handshake`) over a TCP socket,
//! with the trust checks of spec 3.1, and builds the connection machine from it; the
//! dialer's machine sees the confirmation of spec 3.4 here. Callers bound the
//! whole exchange with the handshake timeout.

use peernet_proto::connection::{Config, Connection, DisconnectReason};
use peernet_proto::frame::{self, HANDSHAKE_FRAME_LIMIT, HEADER_LEN};
use peernet_proto::handshake::Handshake;
use peernet_proto::hello::Hello;
use peernet_proto::Key;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{CloseReason, Error, Result};
use crate::identity::Identity;

/// A socket that passed the handshake and both trust checks, with the connection
/// machine the handshake produced (bytes read past the handshake already fed to it).
pub(crate) struct Established {
    pub stream: TcpStream,
    pub machine: Connection,
    pub peer: Key,
    pub peer_hello: Hello,
    /// The Noise handshake hash: the same on both ends (verification words).
    pub handshake_hash: [u8; 32],
}

/// Reads one whole frame of at most `limit` body bytes, keeping any extra bytes in `buf`.
async fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>, limit: usize) -> Result<Vec<u8>> {
    loop {
        match frame::parse_header(buf, limit) {
            Err(e) => return Err(Error::HandshakeFailed(e.to_string())),
            Ok(Some(n)) if buf.len() >= HEADER_LEN + n => {
                let body = buf[HEADER_LEN..HEADER_LEN + n].to_vec();
                buf.drain(..HEADER_LEN + n);
                return Ok(body);
            }
            Ok(_) => {}
        }
        let mut chunk = [0u8; 2048];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| Error::HandshakeFailed(format!("read: {e}")))?;
        if n == 0 {
            return Err(Error::Closed(CloseReason::PeerEof));
        }
        buf.extend_from_slice(&chunk[..n]);
        // Never hold more than one maximal frame plus one read.
        if buf.len() > HEADER_LEN + limit + chunk.len() {
            return Err(Error::HandshakeFailed("peer sent too much".into()));
        }
    }
}

async fn write_frame(stream: &mut TcpStream, body: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    frame::encode_frame(body, &mut out);
    stream
        .write_all(&out)
        .await
        .map_err(|e| Error::HandshakeFailed(format!("write: {e}")))
}

fn hs_closed(e: Error, during: &str) -> Error {
    match e {
        Error::Closed(_) => Error::HandshakeFailed(format!("connection closed during {during}")),
        other => other,
    }
}

/// The dialing side up to M3: M1 sent, M2 read and checked (the expected key, trust).
/// Nothing is committed yet: dropping it now leaves the responder with a handshake that
/// never completes, never with a registered connection. [`Offered::commit`] goes on.
pub(crate) async fn offer(
    mut stream: TcpStream,
    identity: &Identity,
    hello: &Hello,
    expected: Option<Key>,
    trusted: impl Fn(&Key) -> bool,
) -> Result<Offered> {
    let mut hs = Handshake::initiator(identity.private(), hello)?;
    let mut buf = Vec::new();
    write_frame(&mut stream, &hs.write_m1()?).await?;
    let m2 = read_frame(&mut stream, &mut buf, HANDSHAKE_FRAME_LIMIT)
        .await
        .map_err(|e| hs_closed(e, "M2"))?;
    let (peer, peer_hello) = hs.read_m2(&m2)?;
    if let Some(want) = expected {
        if want != peer {
            return Err(Error::UntrustedPeer(format!(
                "expected {} but the peer is {}",
                want.fingerprint(),
                peer.fingerprint()
            )));
        }
    }
    if !trusted(&peer) {
        return Err(Error::UntrustedPeer(format!(
            "{} is not in the trust store",
            peer.fingerprint()
        )));
    }
    Ok(Offered {
        stream,
        hs,
        buf,
        peer,
        peer_hello,
    })
}

/// A dialing handshake that checked the responder and has not sent M3 yet.
pub(crate) struct Offered {
    stream: TcpStream,
    hs: Handshake,
    buf: Vec<u8>,
    peer: Key,
    peer_hello: Hello,
}

impl Offered {
    /// Sends M3 — from here the responder may register the connection, so a caller
    /// must not drop this future half-way when it can help it (see `net::dial`) — and
    /// waits for the spec 3.4 confirmation.
    pub(crate) async fn commit(self, config: Config) -> Result<Established> {
        let Offered {
            mut stream,
            mut hs,
            buf,
            peer,
            peer_hello,
        } = self;
        write_frame(&mut stream, &hs.write_m3()?).await?;
        let now = tokio::time::Instant::now().into_std();
        let handshake_hash = hs.handshake_hash();
        let mut machine = Connection::from_handshake(now, hs, &peer_hello, config)?;
        machine.handle_bytes(now, &buf);
        // Spec 3.4: established only once the responder's first transport frame opens.
        let mut chunk = [0u8; 2048];
        while !machine.is_confirmed() && !machine.is_closed() {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| Error::HandshakeFailed(format!("read: {e}")))?;
            let now = tokio::time::Instant::now().into_std();
            if n == 0 {
                machine.handle_eof();
            } else {
                machine.handle_bytes(now, &chunk[..n]);
            }
        }
        if let Some(reason) = machine.closed() {
            return Err(match reason {
                DisconnectReason::Refused => Error::UntrustedPeer(format!(
                    "{} refused the connection (we are not in its trust store)",
                    peer.fingerprint()
                )),
                other => Error::HandshakeFailed(format!("confirmation: {other}")),
            });
        }
        Ok(Established {
            stream,
            machine,
            peer,
            peer_hello,
            handshake_hash,
        })
    }
}

/// The accepting side. The caller sends the confirming Ping as the first frame.
pub(crate) async fn respond(
    mut stream: TcpStream,
    identity: &Identity,
    hello: &Hello,
    trusted: impl Fn(&Key) -> bool,
    config: Config,
) -> Result<Established> {
    let mut hs = Handshake::responder(identity.private(), hello)?;
    let mut buf = Vec::new();
    let m1 = read_frame(&mut stream, &mut buf, HANDSHAKE_FRAME_LIMIT)
        .await
        .map_err(|e| hs_closed(e, "M1"))?;
    hs.read_m1(&m1)?;
    write_frame(&mut stream, &hs.write_m2()?).await?;
    let m3 = read_frame(&mut stream, &mut buf, HANDSHAKE_FRAME_LIMIT)
        .await
        .map_err(|e| hs_closed(e, "M3"))?;
    let (peer, peer_hello) = hs.read_m3(&m3)?;
    if !trusted(&peer) {
        return Err(Error::UntrustedPeer(format!(
            "{} is not in the trust store",
            peer.fingerprint()
        )));
    }
    let now = tokio::time::Instant::now().into_std();
    // The responder's machine queues the confirming Ping (spec 3.4) as its first frame.
    let handshake_hash = hs.handshake_hash();
    let mut machine = Connection::from_handshake(now, hs, &peer_hello, config)?;
    machine.handle_bytes(now, &buf);
    Ok(Established {
        stream,
        machine,
        peer,
        peer_hello,
        handshake_hash,
    })
}
