//! Drives the sans-IO Noise XX handshake (`peernet_proto::handshake`) over a TCP socket,
//! with the trust checks of spec 3.1 and the confirmation of spec 3.4. Callers bound the
//! whole exchange with the handshake timeout.

use peernet_proto::channel::{RecvCipher, SendCipher};
use peernet_proto::envelope::Envelope;
use peernet_proto::frame::{self, HANDSHAKE_FRAME_LIMIT, HEADER_LEN};
use peernet_proto::handshake::Handshake;
use peernet_proto::hello::Hello;
use peernet_proto::Key;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{CloseReason, Error, Result};
use crate::identity::Identity;

/// A socket that passed the handshake and both trust checks.
pub(crate) struct Established {
    pub stream: TcpStream,
    pub send: SendCipher,
    pub recv: RecvCipher,
    pub peer: Key,
    pub peer_hello: Hello,
    /// Bytes already read past the handshake (start of the next frame).
    pub leftover: Vec<u8>,
    /// Initiator: nonce of the responder's confirming Ping, to be answered.
    pub confirm_ping: Option<u64>,
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

/// The dialing side. `expected`: the key we meant to reach (a different one aborts).
pub(crate) async fn initiate(
    mut stream: TcpStream,
    identity: &Identity,
    hello: &Hello,
    expected: Option<Key>,
    trusted: impl Fn(&Key) -> bool,
    max_frame_len: usize,
) -> Result<Established> {
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
    write_frame(&mut stream, &hs.write_m3()?).await?;
    let (send, mut recv) = hs.split()?;
    // Spec 3.4: established only once the responder's first transport frame opens.
    let mut first = match read_frame(&mut stream, &mut buf, max_frame_len).await {
        Ok(f) => f,
        Err(Error::Closed(_)) => {
            return Err(Error::UntrustedPeer(format!(
                "{} refused the connection (we are not in its trust store)",
                peer.fingerprint()
            )))
        }
        Err(e) => return Err(e),
    };
    let plain = recv
        .open_in_place(&mut first)
        .map_err(|e| Error::HandshakeFailed(format!("confirmation: {e}")))?;
    let confirm_ping = match Envelope::decode(plain) {
        Ok(Envelope::Ping { nonce }) => Some(nonce),
        Ok(_) => return Err(Error::HandshakeFailed("confirmation was not a Ping".into())),
        Err(e) => return Err(Error::HandshakeFailed(format!("confirmation: {e}"))),
    };
    Ok(Established {
        stream,
        send,
        recv,
        peer,
        peer_hello,
        leftover: buf,
        confirm_ping,
    })
}

/// The accepting side. The caller sends the confirming Ping as the first frame.
pub(crate) async fn respond(
    mut stream: TcpStream,
    identity: &Identity,
    hello: &Hello,
    trusted: impl Fn(&Key) -> bool,
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
    let (send, recv) = hs.split()?;
    Ok(Established {
        stream,
        send,
        recv,
        peer,
        peer_hello,
        leftover: buf,
        confirm_ping: None,
    })
}
