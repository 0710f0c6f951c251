//! The joiner: parse what the user typed (a typo is reported before any traffic),
//! find the inviter (ticket addresses, or the code's rendezvous on the LAN), dial it
//! and run the pairing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peernet_proto::pairing::{JoinerSession, PairAnnounce, PairHello, Paired, ShortCode, Ticket};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::inviter::pair_err;
use super::{adopt, default_name, read_frame, unix_now, write_frame, PairedPeer};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::shared::Shared;

/// What the user gave: a parsed ticket or code (no traffic yet).
enum Secret {
    Ticket(Ticket),
    Code(ShortCode),
}

fn parse(text: &str) -> Result<Secret> {
    if ShortCode::looks_like_code(text) {
        ShortCode::parse(text).map(Secret::Code).map_err(pair_err)
    } else {
        Ticket::parse(text).map(Secret::Ticket).map_err(pair_err)
    }
}

/// Pairs with the inviter of `text` (a ticket or a short code) within `timeout`.
pub(crate) async fn join(
    shared: &Arc<Shared>,
    text: &str,
    name: Option<&str>,
    timeout: Duration,
) -> Result<PairedPeer> {
    let secret = parse(text)?;
    let name = name.map_or_else(default_name, str::to_owned);
    let hello = PairHello::new(&name, shared.hello.listen_port)
        .map_err(|e| Error::invalid(format!("pairing name: {e}")))?;
    let deadline = Instant::now() + timeout;
    let private = shared.identity.private();
    let r = match secret {
        Secret::Ticket(t) => {
            // Expired: refused here, before any traffic.
            JoinerSession::with_ticket(&t, private, hello.clone(), unix_now()).map_err(pair_err)?;
            shared.emit(
                EventKind::PairingStarted,
                Some(t.key),
                None,
                "joiner".into(),
            );
            by_ticket(&t, private, &hello, deadline).await
        }
        Secret::Code(c) => {
            shared.emit(EventKind::PairingStarted, None, None, "joiner".into());
            match rendezvous(shared, c.number(), deadline).await {
                Ok(addr) => {
                    let (s, first) =
                        JoinerSession::with_code(&c, private, hello).map_err(pair_err)?;
                    run(addr, s, first, deadline).await
                }
                Err(e) => Err(e),
            }
        }
    };
    match r.and_then(|(p, addr)| adopt(shared, &p, addr.ip())) {
        Ok(p) => Ok(p),
        Err(e) => {
            shared.emit(EventKind::PairingFailed, None, None, e.to_string());
            Err(e)
        }
    }
}

/// Tries the ticket's addresses in order until one answers.
async fn by_ticket(
    t: &Ticket,
    private: &[u8; 32],
    hello: &PairHello,
    deadline: Instant,
) -> Result<(Paired, SocketAddr)> {
    let mut last = Error::invalid("the ticket names no address to dial");
    for &addr in &t.addrs {
        let (s, first) =
            JoinerSession::with_ticket(t, private, hello.clone(), unix_now()).map_err(pair_err)?;
        match run(addr, s, first, deadline).await {
            Ok(p) => return Ok(p),
            // Only an unreachable address is worth trying the next one.
            Err(e @ Error::Io { .. }) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Dials `addr` and runs the session to the end, by `deadline`.
async fn run(
    addr: SocketAddr,
    mut s: JoinerSession,
    first: Vec<u8>,
    deadline: Instant,
) -> Result<(Paired, SocketAddr)> {
    let fut = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| {
            Error::io(
                format!("dialing the inviter at {addr} (is the invite still open?)"),
                e,
            )
        })?;
        let io = |e: std::io::Error| {
            Error::HandshakeFailed(format!(
                "pairing connection: {e} (the invite may be used, expired or its code burned)"
            ))
        };
        write_frame(&mut stream, &first).await.map_err(io)?;
        loop {
            let f = read_frame(&mut stream).await.map_err(io)?;
            let out = s.receive(&f).map_err(pair_err)?;
            for m in &out.send {
                write_frame(&mut stream, m).await.map_err(io)?;
            }
            if let Some(p) = out.paired {
                return Ok((p, addr));
            }
        }
    };
    tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| Error::Timeout)?
}

/// Listens on the discovery port for the inviter's announcement of `number`; returns
/// its pairing address.
async fn rendezvous(shared: &Shared, number: u16, deadline: Instant) -> Result<SocketAddr> {
    let port = shared
        .config
        .udp_discovery
        .as_ref()
        .map_or(peernet_proto::announce::DEFAULT_DISCOVERY_PORT, |d| d.port);
    let sock = crate::discovery::transport::bind(port)
        .map_err(|e| Error::io(format!("listening for the inviter on UDP port {port}"), e))?;
    let fut = async {
        let mut buf = [0u8; 64];
        loop {
            let (n, src) = sock
                .recv_from(&mut buf)
                .await
                .map_err(|e| Error::io("receiving pairing announcements", e))?;
            if let Ok(a) = PairAnnounce::decode(buf.get(..n).unwrap_or_default()) {
                if a.number == number {
                    return Ok(SocketAddr::new(src.ip(), a.tcp_port));
                }
            }
        }
    };
    tokio::time::timeout_at(deadline, fut).await.map_err(|_| {
        Error::invalid(format!(
            "no inviter announced code number {number} on this network (UDP port {port}); \
             check the number, that both machines are on the same LAN, or use the ticket"
        ))
    })?
}
