//! One libp2p node: a swarm (TCP + Noise XX + Yamux + request-response with a raw-bytes
//! codec) driven by its own tokio task, used through a command channel the way an
//! application would use it. Loopback only.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::core::upgrade::Version;
use libp2p::request_response::{self, Codec, Event, Message, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{dial_opts::DialOpts, SwarmEvent};
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit};

/// Deadline of every dial, request and wait (peernet-bench's `T`).
pub const T: Duration = Duration::from_secs(10);

/// Largest body the codec reads: checked before the allocation.
const MAX_BODY: usize = 1 << 20;

const PROTOCOL: StreamProtocol = StreamProtocol::new("/peernet-bench/raw/1");

/// Raw bytes, each message a 4-byte big-endian length and the body, one write.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

async fn read_body<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_BODY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("body of {len} bytes is over the {MAX_BODY}-byte limit"),
        ));
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    Ok(body)
}

async fn write_body<T: AsyncWrite + Unpin + Send>(io: &mut T, body: Vec<u8>) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n as usize <= MAX_BODY)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "body too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    io.write_all(&frame).await
}

impl Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_body(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_body(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        b: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_body(io, b).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        b: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_body(io, b).await
    }
}

/// What a node answers to requests.
#[derive(Debug, Clone)]
pub enum Serve {
    /// The request body back (PeerNet's `echo` handler).
    Echo,
    /// An empty response; the body's length is added to the counter, published on the
    /// watch channel (PeerNet's `sink` handler).
    Sink(Arc<AtomicU64>, Arc<watch::Sender<u64>>),
}

/// Where a request's outcome goes.
pub enum Reply {
    /// The response, or the failure.
    Once(oneshot::Sender<Result<Vec<u8>, String>>),
    /// Nothing: dropping the permit frees a slot of the sender's window; failures are
    /// counted.
    Permit {
        /// Held until the response (or failure) arrives.
        _slot: OwnedSemaphorePermit,
        /// Counts failures.
        fails: Arc<AtomicU64>,
    },
}

enum Cmd {
    Request(PeerId, Vec<u8>, Reply),
    Dial(PeerId, Multiaddr, oneshot::Sender<Result<(), String>>),
    Disconnect(PeerId, oneshot::Sender<()>),
}

/// The application's side of a node.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Cmd>,
    /// This node's identity.
    pub peer: PeerId,
}

fn gone<E>(_: E) -> String {
    "the node's task ended".into()
}

async fn within<F: std::future::Future>(what: &str, f: F) -> Result<F::Output, String> {
    tokio::time::timeout(T, f)
        .await
        .map_err(|_| format!("{what}: no answer within {T:?}"))
}

impl Handle {
    /// One request, its response awaited.
    pub async fn call(&self, peer: PeerId, body: Vec<u8>) -> Result<Vec<u8>, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Request(peer, body, Reply::Once(tx)))
            .await
            .map_err(gone)?;
        within("request", rx).await?.map_err(gone)?
    }

    /// A request whose response only frees `permit`.
    pub async fn send(
        &self,
        peer: PeerId,
        body: Vec<u8>,
        permit: OwnedSemaphorePermit,
        fails: Arc<AtomicU64>,
    ) -> Result<(), String> {
        self.tx
            .send(Cmd::Request(
                peer,
                body,
                Reply::Permit {
                    _slot: permit,
                    fails,
                },
            ))
            .await
            .map_err(gone)
    }

    /// Dials `peer` at `addr`; returns once the connection is established (Noise XX and
    /// Yamux negotiated).
    pub async fn dial(&self, peer: PeerId, addr: Multiaddr) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Dial(peer, addr, tx))
            .await
            .map_err(gone)?;
        within("dial", rx).await?.map_err(gone)?
    }

    /// Closes every connection to `peer`; returns once they are closed.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Disconnect(peer, tx))
            .await
            .map_err(gone)?;
        within("disconnect", rx).await?.map_err(gone)
    }
}

type Behaviour = request_response::Behaviour<RawCodec>;

/// Whether streams are negotiated with multistream-select `V1Lazy` (the request is sent
/// with the protocol proposal, saving a round trip) instead of libp2p's default `V1`.
pub static LAZY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn swarm() -> Result<Swarm<Behaviour>, String> {
    let lazy = LAZY.load(Ordering::Relaxed);
    let cfg = request_response::Config::default()
        .with_request_timeout(T)
        .with_max_concurrent_streams(256);
    let b = Behaviour::new([(PROTOCOL, ProtocolSupport::Full)], cfg);
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| format!("libp2p transport: {e}"))?
        .with_behaviour(|_| b)
        .map_err(|e| format!("libp2p behaviour: {e}"))?
        .with_swarm_config(|c| {
            let c = c.with_idle_connection_timeout(Duration::from_secs(60));
            if lazy {
                c.with_substream_upgrade_protocol_override(Version::V1Lazy)
            } else {
                c
            }
        })
        .build())
}

/// Starts a node on the current runtime; `listen` = on 127.0.0.1, port 0, and its
/// address (read back from the swarm) is returned.
pub async fn start(listen: bool, serve: Serve) -> Result<(Handle, Option<Multiaddr>), String> {
    let mut swarm = swarm()?;
    let mut addr = None;
    if listen {
        let any: Multiaddr = "/ip4/127.0.0.1/tcp/0"
            .parse()
            .map_err(|e| format!("listen address: {e}"))?;
        swarm.listen_on(any).map_err(|e| format!("listen: {e}"))?;
        let got = within("listen", async {
            loop {
                if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                    return address;
                }
            }
        })
        .await?;
        addr = Some(got);
    }
    let peer = *swarm.local_peer_id();
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(run(swarm, rx, serve));
    Ok((Handle { tx, peer }, addr))
}

#[derive(Default)]
struct Waiting {
    requests: HashMap<OutboundRequestId, Reply>,
    dials: HashMap<PeerId, oneshot::Sender<Result<(), String>>>,
    closes: HashMap<PeerId, oneshot::Sender<()>>,
}

fn fail(reply: Reply, why: String) {
    match reply {
        Reply::Once(tx) => {
            let _ = tx.send(Err(why));
        }
        Reply::Permit { fails, .. } => {
            fails.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The node's task: commands in, swarm events out, until every handle is dropped.
async fn run(mut swarm: Swarm<Behaviour>, mut rx: mpsc::Receiver<Cmd>, serve: Serve) {
    let mut w = Waiting::default();
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Cmd::Request(peer, body, reply)) => {
                    let id = swarm.behaviour_mut().send_request(&peer, body);
                    w.requests.insert(id, reply);
                }
                Some(Cmd::Dial(peer, addr, tx)) => {
                    let opts = DialOpts::peer_id(peer).addresses(vec![addr]).build();
                    match swarm.dial(opts) {
                        Ok(()) => { w.dials.insert(peer, tx); }
                        Err(e) => { let _ = tx.send(Err(format!("dial: {e}"))); }
                    }
                }
                Some(Cmd::Disconnect(peer, tx)) => {
                    if swarm.disconnect_peer_id(peer).is_ok() {
                        w.closes.insert(peer, tx);
                    } else {
                        let _ = tx.send(());
                    }
                }
            },
            ev = swarm.select_next_some() => on_event(&mut swarm, &mut w, &serve, ev),
        }
    }
}

fn on_event(
    swarm: &mut Swarm<Behaviour>,
    w: &mut Waiting,
    serve: &Serve,
    ev: SwarmEvent<Event<Vec<u8>, Vec<u8>>>,
) {
    match ev {
        SwarmEvent::Behaviour(Event::Message { message, .. }) => match message {
            Message::Request {
                request, channel, ..
            } => {
                let answer = match serve {
                    Serve::Echo => request,
                    Serve::Sink(total, seen) => {
                        let n = total.fetch_add(request.len() as u64, Ordering::Relaxed)
                            + request.len() as u64;
                        seen.send_replace(n);
                        Vec::new()
                    }
                };
                let _ = swarm.behaviour_mut().send_response(channel, answer);
            }
            Message::Response {
                request_id,
                response,
            } => match w.requests.remove(&request_id) {
                Some(Reply::Once(tx)) => {
                    let _ = tx.send(Ok(response));
                }
                Some(Reply::Permit { .. }) | None => {}
            },
        },
        SwarmEvent::Behaviour(Event::OutboundFailure {
            request_id, error, ..
        }) => {
            if let Some(r) = w.requests.remove(&request_id) {
                fail(r, format!("request: {error}"));
            }
        }
        SwarmEvent::ConnectionEstablished { peer_id, .. } => {
            if let Some(tx) = w.dials.remove(&peer_id) {
                let _ = tx.send(Ok(()));
            }
        }
        SwarmEvent::OutgoingConnectionError {
            peer_id: Some(p),
            error,
            ..
        } => {
            if let Some(tx) = w.dials.remove(&p) {
                let _ = tx.send(Err(format!("dial: {error}")));
            }
        }
        SwarmEvent::ConnectionClosed {
            peer_id,
            num_established: 0,
            ..
        } => {
            if let Some(tx) = w.closes.remove(&peer_id) {
                let _ = tx.send(());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;

    use super::*;

    #[test]
    fn codec_round_trips_and_bounds_the_length_first() {
        let mut buf = Cursor::new(Vec::new());
        block_on(write_body(&mut buf, vec![7u8; 100])).unwrap();
        assert_eq!(buf.get_ref().len(), 104);
        buf.set_position(0);
        assert_eq!(block_on(read_body(&mut buf)).unwrap(), vec![7u8; 100]);
        // A length over the limit is refused before any body is read or allocated.
        let mut huge = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let e = block_on(read_body(&mut huge)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
