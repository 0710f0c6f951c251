//! The inviter: its own TCP pairing listener (one attempt at a time, closed at expiry
//! or after success) and, for a short code, the UDP rendezvous announcement.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use peernet_proto::pairing::{Invitation, PairAnnounce, PairError, PairHello, Paired, ShortCode};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{
    adopt, default_name, random16, read_frame, unix_now, write_frame, Invite, InviteOptions,
    InviteState,
};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::shared::Shared;

/// Longest accepted invite lifetime.
const MAX_EXPIRY: Duration = Duration::from_secs(24 * 3600);
/// Time between two rendezvous announcements.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);

/// The addresses a ticket names for a listener bound to `bound`: the address itself,
/// or for an unspecified IP this host's addresses of that family, non-loopback first
/// (at most 4).
fn ticket_addrs(bound: SocketAddr) -> Vec<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let v4_only = bound.is_ipv4();
    let mut ips: Vec<IpAddr> = crate::sys::local_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|ip| !v4_only || ip.is_ipv4())
        .collect();
    ips.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6()));
    ips.into_iter()
        .take(4)
        .map(|ip| SocketAddr::new(ip, bound.port()))
        .collect()
}

/// Where rendezvous announcements go: the discovery configuration's targets, else the
/// directed broadcast of every chosen IPv4 interface at the discovery port.
fn announce_targets(shared: &Shared) -> Vec<SocketAddr> {
    let d = shared.config.udp_discovery.clone().unwrap_or_default();
    if !d.broadcast.is_empty() {
        return d.broadcast;
    }
    // The same interface choice as discovery's (docker/veth bridges skipped, ...).
    crate::discovery::ifaces::InterfaceFilter {
        allow: d.allow_interfaces.clone(),
        deny: d.deny_interfaces.clone(),
    }
    .targets(d.port)
}

/// Opens an invite: binds the pairing listener on the node's listen IP, port 0, and
/// starts its task.
pub(crate) async fn open(shared: &Arc<Shared>, opts: InviteOptions) -> Result<Invite> {
    if opts.expiry.is_zero() || opts.expiry > MAX_EXPIRY {
        return Err(Error::invalid("invite expiry must be between 1 s and 24 h"));
    }
    if opts.attempt_timeout.is_zero() {
        return Err(Error::invalid("attempt_timeout must be positive"));
    }
    let name = opts.name.clone().unwrap_or_else(default_name);
    let hello = PairHello::new(&name, shared.hello.listen_port)
        .map_err(|e| Error::invalid(format!("invite name: {e}")))?;
    let ip = shared
        .config
        .listen
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .map_err(|e| Error::io(format!("binding the pairing listener on {ip}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("pairing listener address", e))?;
    let code = if opts.code {
        let r = random16()?;
        Some(ShortCode::from_random([r[0], r[1], r[2], r[3]]))
    } else {
        None
    };
    let expires_at = unix_now() + opts.expiry.as_secs().max(1);
    let inv = Invitation::new(
        shared.identity.private(),
        random16()?,
        code,
        expires_at,
        hello,
    );
    let ticket = inv.ticket(&ticket_addrs(addr)).encode();
    let (state_tx, state) = watch::channel(InviteState::Waiting);
    let (cancel, cancel_rx) = watch::channel(false);
    let announcer = match code {
        Some(c) => {
            let sock = std::net::UdpSocket::bind(SocketAddr::new(
                if ip.is_ipv4() {
                    ip
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                },
                0,
            ))
            .and_then(|s| {
                s.set_broadcast(true)?;
                s.set_nonblocking(true)?;
                UdpSocket::from_std(s)
            })
            .map_err(|e| Error::io("binding the pairing announcement socket", e))?;
            let msg = PairAnnounce {
                number: c.number(),
                tcp_port: addr.port(),
            };
            Some((sock, announce_targets(shared), msg))
        }
        None => None,
    };
    let task = Task {
        shared: Arc::clone(shared),
        inv,
        deadline: Instant::now() + opts.expiry,
        attempt_timeout: opts.attempt_timeout,
        state: state_tx,
    };
    tokio::spawn(task.run(listener, announcer, cancel_rx));
    Ok(Invite {
        ticket,
        code: code.map(|c| c.to_string()),
        expires_at: UNIX_EPOCH + Duration::from_secs(expires_at),
        addr,
        state,
        cancel,
    })
}

struct Task {
    shared: Arc<Shared>,
    inv: Invitation,
    deadline: Instant,
    attempt_timeout: Duration,
    state: watch::Sender<InviteState>,
}

type Announcer = (UdpSocket, Vec<SocketAddr>, PairAnnounce);

impl Task {
    async fn run(
        mut self,
        listener: TcpListener,
        announcer: Option<Announcer>,
        mut cancel: watch::Receiver<bool>,
    ) {
        let mut shutdown = self.shared.shutdown_rx();
        let mut tick = tokio::time::interval(ANNOUNCE_EVERY);
        let end = loop {
            let code_alive = announcer.is_some() && self.inv.code().is_some();
            tokio::select! {
                _ = tokio::time::sleep_until(self.deadline) => break "the invite expired".to_owned(),
                _ = shutdown.changed() => break "the node stopped".to_owned(),
                _ = cancel.changed() => break "the invite was cancelled".to_owned(),
                _ = tick.tick(), if code_alive => {
                    if let Some((sock, targets, msg)) = &announcer {
                        let bytes = msg.encode();
                        for t in targets.iter().take(16) {
                            let _ = sock.send_to(&bytes, t).await;
                        }
                    }
                }
                r = listener.accept() => {
                    let Ok((stream, peer)) = r else {
                        // EMFILE and the like: do not spin on a failing accept.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    if let Some(p) = self.attempt(stream, peer).await {
                        let _ = self.state.send(InviteState::Paired(p));
                        return;
                    }
                    if self.inv.is_finished(unix_now()) {
                        break "the invite is used up".to_owned();
                    }
                }
            }
        };
        self.shared
            .emit(EventKind::PairingFailed, None, None, end.clone());
        let _ = self.state.send(InviteState::Ended(end));
    }

    /// One attempt, bounded by `attempt_timeout`; `Some` on success.
    async fn attempt(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<super::PairedPeer> {
        self.shared.emit(
            EventKind::PairingStarted,
            None,
            Some(peer),
            "inviter".into(),
        );
        let had_code = self.inv.code().is_some();
        let r = tokio::time::timeout(self.attempt_timeout, self.exchange(&mut stream)).await;
        let outcome = match r {
            Ok(Ok(p)) => adopt(&self.shared, &p, peer.ip()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout),
        };
        match outcome {
            Ok(p) => Some(p),
            Err(e) => {
                let burned = had_code && self.inv.code().is_none();
                let detail = if burned {
                    format!("{e}; the short code is burned (the ticket still works)")
                } else {
                    e.to_string()
                };
                tracing::info!(%peer, %detail, "pairing attempt failed");
                self.shared
                    .emit(EventKind::PairingFailed, None, Some(peer), detail);
                None
            }
        }
    }

    async fn exchange(&mut self, s: &mut TcpStream) -> Result<Paired> {
        let io = |e: std::io::Error| Error::io("pairing connection", e);
        let first = read_frame(s).await.map_err(io)?;
        let (mut session, out) = self.inv.accept(&first, unix_now()).map_err(pair_err)?;
        for m in &out.send {
            write_frame(s, m).await.map_err(io)?;
        }
        loop {
            let f = read_frame(s).await.map_err(io)?;
            let out = session.receive(&f).map_err(pair_err)?;
            for m in &out.send {
                write_frame(s, m).await.map_err(io)?;
            }
            if let Some(p) = out.paired {
                self.inv.mark_used();
                return Ok(p);
            }
        }
    }
}

/// A pairing refusal as the public error: what the user typed is `InvalidArgument`,
/// the rest `HandshakeFailed`; both keep the protocol's message.
pub(crate) fn pair_err(e: PairError) -> Error {
    match e {
        PairError::TicketFormat(_)
        | PairError::TicketTypo { .. }
        | PairError::TicketCharacter { .. }
        | PairError::CodeFormat(_)
        | PairError::CodeWord { .. }
        | PairError::Expired
        | PairError::Used => Error::invalid(e.to_string()),
        _ => Error::HandshakeFailed(e.to_string()),
    }
}
