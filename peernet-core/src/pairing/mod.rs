//! Pairing, driven over real sockets: the inviter's own short-lived TCP listener (off
//! the connection engine's accept path), the short-code rendezvous over UDP, the
//! joiner's dial. The protocol itself is `peernet_proto::pairing`.

pub(crate) mod inviter;
pub(crate) mod joiner;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peernet_proto::pairing::{Paired, MAX_MESSAGE_LEN};
use peernet_proto::Key;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::shared::Shared;

/// Settings of [`Node::invite`](crate::Node::invite).
#[derive(Debug, Clone)]
pub struct InviteOptions {
    /// How long the invite is valid (default 10 minutes, at most 24 hours).
    pub expiry: Duration,
    /// The name the other side will label this node with (≤ 64 bytes, no control
    /// characters); `None` = this host's name.
    pub name: Option<String>,
    /// Also offer a short code `N-word-word` (default true). Needs the LAN rendezvous
    /// (UDP on the discovery port); without it only the ticket works.
    pub code: bool,
    /// Deadline of one pairing attempt on the listener (default 10 s): a joiner that
    /// stalls holds the (single) attempt slot at most this long.
    pub attempt_timeout: Duration,
}

impl Default for InviteOptions {
    fn default() -> Self {
        InviteOptions {
            expiry: Duration::from_secs(peernet_proto::pairing::DEFAULT_EXPIRY_SECS),
            name: None,
            code: true,
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// Who a pairing made this node trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedPeer {
    /// The peer's key, now trusted (the one its handshake proved).
    pub key: Key,
    /// The name it chose: its trust label.
    pub name: String,
    /// Where it accepts connections (its pairing IP and its listen port), if it listens.
    pub address: Option<SocketAddr>,
    /// Five verification words; the other screen shows the same ones.
    pub sas: String,
}

/// Where an invite stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InviteState {
    Waiting,
    Paired(PairedPeer),
    Ended(String),
}

/// An open invite: its ticket and short code, and a way to wait for the pairing.
/// Dropping it (or [`Invite::cancel`]) closes the pairing listener.
#[derive(Debug)]
pub struct Invite {
    pub(crate) ticket: String,
    pub(crate) code: Option<String>,
    pub(crate) expires_at: SystemTime,
    pub(crate) addr: SocketAddr,
    pub(crate) state: watch::Receiver<InviteState>,
    pub(crate) cancel: watch::Sender<bool>,
}

impl Invite {
    /// The ticket text (`peernet1-…`): copy-paste or QR.
    pub fn ticket(&self) -> &str {
        &self.ticket
    }

    /// The short code (`7-copper-violin`), if one was asked for. It dies after one
    /// attempt, right or wrong.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// When the invite expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The pairing listener's address (its port is in the ticket).
    pub fn listen_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until a joiner has paired (returns whom this node now trusts, on every
    /// later call too), the invite
    /// expired or was cancelled (`Closed`-like `InvalidArgument` naming why), or
    /// `timeout` passed (`Timeout`; the invite stays open).
    pub async fn wait(&self, timeout: Duration) -> Result<PairedPeer> {
        let mut rx = self.state.clone();
        let fut = async move {
            let s = rx.wait_for(|s| *s != InviteState::Waiting).await;
            s.map(|s| s.clone())
        };
        match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(Error::Timeout),
            Ok(Err(_)) => Err(Error::invalid("the invite ended (its node stopped)")),
            Ok(Ok(InviteState::Paired(p))) => Ok(p),
            Ok(Ok(InviteState::Ended(why))) => Err(Error::invalid(why)),
            Ok(Ok(InviteState::Waiting)) => Err(Error::Timeout),
        }
    }

    /// True while the invite can still be used.
    pub fn is_open(&self) -> bool {
        *self.state.borrow() == InviteState::Waiting
    }

    /// Closes the pairing listener now.
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
    }
}

impl Drop for Invite {
    fn drop(&mut self) {
        self.cancel.send_replace(true);
    }
}

/// Unix seconds now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The default pairing name: this host's name (Linux), else "peernet".
pub(crate) fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host.trim().chars().filter(|c| !c.is_control()).collect();
    let mut end = host.len().min(peernet_proto::pairing::MAX_NAME_LEN);
    while !host.is_char_boundary(end) {
        end -= 1;
    }
    match host.get(..end) {
        Some(h) if !h.is_empty() => h.to_owned(),
        _ => "peernet".to_owned(),
    }
}

/// 16 random bytes from the kernel.
pub(crate) fn random16() -> Result<[u8; 16]> {
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(8) {
        let r = crate::sys::random_u64()
            .map_err(|e| Error::io("random bytes for the invite secret", e))?;
        chunk.copy_from_slice(&r.to_le_bytes());
    }
    Ok(out)
}

/// Writes one frame (`u32 BE length ‖ body`).
pub(crate) async fn write_frame(s: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
    s.write_all(&buf).await
}

/// Reads one frame of at most 1024 bytes (checked before the body is allocated).
pub(crate) async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await?;
    let len = u32::from_be_bytes(h) as usize;
    if len == 0 || len > MAX_MESSAGE_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("pairing frame of {len} bytes (1 to {MAX_MESSAGE_LEN} allowed)"),
        ));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok(body)
}

/// After a successful pairing on either side: trust the authenticated key (label = its
/// chosen name), record where it listens (it is then dialed), report it.
pub(crate) fn adopt(shared: &Arc<Shared>, p: &Paired, ip: IpAddr) -> Result<PairedPeer> {
    let key = p.remote_key;
    if key == shared.identity.public() {
        return Err(Error::invalid(
            "paired with this node's own key; nothing trusted",
        ));
    }
    let name = p.remote_hello.name.clone();
    let label = (!name.is_empty()).then_some(name.as_str());
    shared
        .trust
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .trust(key, label)?;
    shared.ensure_dialer(key, true);
    let port = p.remote_hello.listen_port;
    let address = (port != 0).then(|| SocketAddr::new(ip, port));
    if let Some(addr) = address {
        if let Ok(ev) = crate::discovery::manual::discovered(&shared.identity.public(), &key, addr)
        {
            shared.apply_discovery(ev);
        }
    }
    shared.emit(
        EventKind::PairingSucceeded,
        Some(key),
        address,
        name.clone(),
    );
    Ok(PairedPeer {
        key,
        name,
        address,
        sas: p.sas(),
    })
}
