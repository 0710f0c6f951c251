//! The driver: the one task of a connection. It owns the socket and the sans-IO
//! connection machine and runs one loop: commands from [`Conn`] in, socket bytes in,
//! the machine's events out (replies to their waiters, calls and sends to `serve.rs`),
//! the machine's sealed frames written out, its timer armed. Nothing here knows the
//! protocol's rules; the machine does.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use peernet_proto::connection::{
    CallId, CallOutcome, Config, Connection, ConnectionError, Event, LimitProblem, StateProblem,
};
use peernet_proto::envelope::GoodbyeReason;
use peernet_proto::Key;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, AcquireError, OwnedSemaphorePermit, TryAcquireError};
use tokio::time::{Instant, Sleep};

use super::handshake::Established;
use super::pending::Waiters;
use super::serve::{self, SendLane};
use super::streams::Links;
use super::{CloseCause, Cmd, Conn, ConnInfo, ConnLimits, Host};
use crate::config::NodeConfig;
use crate::error::{CloseReason, Error, Result};
use crate::handlers::{Request, RequestKind};

/// Commands taken per loop turn before the socket gets its turn.
const BATCH: usize = 256;
/// One turn in this many with something to write yields first, to detect load.
const PROBE_EVERY: u32 = 16;
/// Socket reads per loop turn (each up to `READ_BUF` bytes).
const READS_PER_TURN: usize = 8;
/// The per-thread buffer socket reads land in (the machine keeps only the bytes of
/// the frame it is assembling, so an idle connection holds no read buffer). Larger
/// than a 64 KiB body's frame: with 64 KiB here, each such frame took two reads and a
/// ct node sat idle 44 % of a bulk transfer (the peer's writes waited for window
/// updates that came late); its pages are touched only as far as reads fill it.
const READ_BUF: usize = 256 * 1024;
/// Sealed bytes taken from the machine per write (a long queue leaves in chunks).
const WRITE_CHUNK: usize = 256 * 1024;
/// A closing connection's last bytes (its Goodbye) get this long to be written.
const FLUSH_ON_CLOSE: Duration = Duration::from_secs(2);
/// Inbound budget a send holds beyond its body (its request's own memory), so that
/// many tiny sends are bounded too.
const SEND_OVERHEAD: usize = 128;

thread_local! {
    static READ_SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

/// The connection machine's limits and timers for a node's configuration.
pub(crate) fn machine_config(c: &NodeConfig) -> Config {
    Config {
        max_frame_len: c.max_frame_len,
        heartbeat_interval: c.heartbeat_interval,
        heartbeat_timeout: c.heartbeat_timeout,
        confirm_timeout: c.handshake_timeout,
        // The node bounds its calls by the send-queue budget and their deadlines.
        max_pending_calls: 1 << 20,
        // The node's own serving limit (`max_concurrent_calls`) answers first; this one
        // only catches answers still on their way to the driver.
        max_serving: c
            .max_concurrent_calls
            .saturating_mul(2)
            .saturating_add(1024),
        // What the send-queue budget admits, plus room for control frames.
        transmit_queue_bytes: c.send_queue_bytes.saturating_add(64 * 1024),
        streams: c.streams.then(peernet_proto::stream::StreamConfig::default),
    }
}

/// Who a new connection is, beside what its handshake established.
pub(crate) struct Setup {
    /// The node's connection id for it.
    pub id: u64,
    /// This node's static key.
    pub me: Key,
    pub outbound: bool,
    pub remote: SocketAddr,
    pub limits: ConnLimits,
}

/// Registers an established connection with its host (`Host::opened`) and starts its
/// driver. Refused (nothing is sent, the socket closes) when the host refuses it.
/// A responder's machine already holds the confirming Ping (spec 3.4): it is the first
/// frame written, whatever the program queues once the connection is registered.
pub(crate) fn spawn_connection(
    host: Arc<dyn Host>,
    est: Established,
    setup: Setup,
) -> Result<Arc<Conn>> {
    let local = est
        .stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let info = ConnInfo {
        id: setup.id,
        peer: est.peer,
        initiator: if setup.outbound { setup.me } else { est.peer },
        outbound: setup.outbound,
        remote: setup.remote,
        local,
        peer_hello: est.peer_hello,
        handshake_hash: est.handshake_hash,
    };
    let (conn, cmds) = Conn::new(info, setup.limits);
    host.opened(&conn)?;
    let driver = Driver {
        host,
        conn: Arc::clone(&conn),
        machine: est.machine,
        stream: est.stream,
        cmds,
        waiters: Waiters::default(),
        held: Vec::new(),
        deferred: VecDeque::new(),
        lane: SendLane::default(),
        links: Links::default(),
        parked: None,
        sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
        armed: None,
        last_frames: 0,
        turns: 0,
        now: Instant::now(),
    };
    tokio::spawn(driver.run());
    Ok(conn)
}

type Acquire =
    Pin<Box<dyn Future<Output = std::result::Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A send that waits for inbound budget (its handler lane is behind): nothing more is
/// read or dispatched until it has it — backpressure, nothing dropped.
struct Parked {
    req: Request,
    wait: Acquire,
}

struct Driver {
    host: Arc<dyn Host>,
    conn: Arc<Conn>,
    machine: Connection,
    stream: TcpStream,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    waiters: Waiters,
    /// Send-queue budget of what the machine holds queued (until all of it is
    /// written: conservative while a long queue leaves in chunks).
    held: Vec<OwnedSemaphorePermit>,
    /// Answers the machine's transmit budget refused for now, in order.
    deferred: VecDeque<(CallId, CallOutcome)>,
    lane: SendLane,
    /// The streams that have a handle.
    links: Links,
    parked: Option<Parked>,
    sleep: Pin<Box<Sleep>>,
    /// The deadline `sleep` is armed for.
    armed: Option<Instant>,
    /// Frames in the last chunk taken for writing, and turns that had something to
    /// write (see `gather`).
    last_frames: u64,
    turns: u32,
    /// The time at the start of this loop turn (commands are stamped with it).
    now: Instant,
}

impl Driver {
    async fn run(mut self) {
        self.run_loop().await;
        self.finish().await;
    }

    /// Until the machine closed: every turn takes commands, dispatches events, writes,
    /// then waits for the socket, a command, the timer or inbound budget.
    async fn run_loop(&mut self) {
        loop {
            // One clock read per turn: every command and read of the turn uses it.
            self.now = Instant::now();
            self.take_commands();
            self.dispatch();
            self.answer_deferred();
            self.gather().await;
            if let Err(e) = self.transmit() {
                self.machine.handle_transport_error(&e.to_string());
            }
            self.publish_stats();
            if self.machine.is_closed() {
                return;
            }
            self.arm_timer();
            let read = self.machine.wants_read() && self.parked.is_none();
            let write = self.machine.transmit_unwritten() > 0;
            let timer = self.armed.is_some();
            let parked = self.parked.is_some();
            tokio::select! {
                biased;
                r = self.stream.readable(), if read => match r {
                    Ok(()) => self.read(),
                    Err(e) => self.machine.handle_transport_error(&e.to_string()),
                },
                cmd = self.cmds.recv() => {
                    // `Conn` holds the sender as long as the driver runs.
                    if let Some(cmd) = cmd {
                        // The turn's clock was read before the wait.
                        self.now = Instant::now();
                        self.on_command(cmd);
                    }
                }
                r = self.stream.writable(), if write => {
                    if let Err(e) = r {
                        self.machine.handle_transport_error(&e.to_string());
                    }
                }
                p = wait_parked(&mut self.parked), if parked => self.unpark(p),
                () = &mut self.sleep, if timer => {
                    self.armed = None;
                    self.machine.handle_timeout(Instant::now().into_std());
                }
            }
        }
    }

    /// Takes up to `BATCH` commands that are already queued, without waiting.
    fn take_commands(&mut self) {
        for _ in 0..BATCH {
            match self.cmds.try_recv() {
                Ok(cmd) => self.on_command(cmd),
                Err(_) => break,
            }
        }
    }

    /// Under load — the last write carried several frames — gives the tasks that feed
    /// this connection (callers, handlers) one scheduler round to queue more before
    /// writing, then takes what came: one write per batch instead of one per frame.
    /// Every 16th turn with something to write probes the same way, so a driver that
    /// fell into one-frame writes finds out that more was coming. With one message in
    /// flight nothing else waits, and nothing is delayed.
    async fn gather(&mut self) {
        if self.machine.transmit_unwritten() > 0 || self.machine.transmit_queued() == 0 {
            return;
        }
        self.turns = self.turns.wrapping_add(1);
        if self.last_frames <= 1 && self.turns % PROBE_EVERY != 0 {
            return;
        }
        tokio::task::yield_now().await;
        self.take_commands();
        self.dispatch();
        self.answer_deferred();
    }

    /// Arms the timer for the machine's next deadline. A deadline later than the armed
    /// one leaves it (it fires early, which is harmless, and is armed again then): so
    /// the timer is not moved for every call that completes.
    fn arm_timer(&mut self) {
        let Some(want) = self.machine.poll_timeout().map(Instant::from_std) else {
            self.armed = None;
            return;
        };
        if self.armed.map_or(true, |a| want < a) {
            self.sleep.as_mut().reset(want);
            self.armed = Some(want);
        }
    }

    fn read(&mut self) {
        for _ in 0..READS_PER_TURN {
            if !self.machine.wants_read() {
                return;
            }
            // Also the turn's clock: what this read dispatches was read now.
            self.now = Instant::now();
            let (machine, stream) = (&mut self.machine, &self.stream);
            let now = self.now.into_std();
            let more = READ_SCRATCH.with_borrow_mut(|buf| match stream.try_read(buf) {
                Ok(0) => {
                    machine.handle_eof();
                    false
                }
                Ok(n) => {
                    // Whole frames are opened in place in the scratch buffer.
                    let full = n == buf.len();
                    machine.handle_bytes_mut(now, buf.get_mut(..n).unwrap_or_default());
                    full
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => false,
                Err(e) => {
                    machine.handle_transport_error(&e.to_string());
                    false
                }
            });
            // Events are dispatched between reads, so the machine's queue stays short.
            self.dispatch();
            if !more {
                return;
            }
        }
    }

    fn on_command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Call {
                name,
                body,
                deadline,
                waiter,
                budget,
            } => {
                let t = self.now;
                let timeout = deadline.saturating_duration_since(t);
                match self.machine.call(t.into_std(), &name, &body, timeout) {
                    Ok(id) => {
                        self.waiters.insert(id.0, waiter, name);
                        self.held.extend(budget);
                    }
                    Err(e) => waiter.finish(Err(self.refused(e))),
                }
            }
            Cmd::Send { name, body, budget } => match self.machine.send(&name, &body) {
                Ok(()) => self.held.extend(budget),
                Err(e) => tracing::debug!(error = %e, %name, "send dropped"),
            },
            Cmd::Reply {
                id,
                outcome,
                budget,
                timing,
            } => {
                if let Some(t) = timing {
                    t.record(self.now);
                }
                self.answer(id, outcome);
                self.held.extend(budget);
            }
            Cmd::Close(reason) => {
                let _ = self.machine.close(reason);
            }
            Cmd::Drain(cap) => {
                let _ = self.machine.drain(self.now.into_std(), cap);
            }
            Cmd::OpenStream { name, reply } => {
                let r = self.links.open(&mut self.machine, &self.conn, name);
                let _ = reply.send(r);
            }
            Cmd::StreamPoke(id) => self.links.pump(&mut self.machine, id),
        }
    }

    /// The error of a call the machine refused.
    fn refused(&self, e: ConnectionError) -> Error {
        match e {
            ConnectionError::State(StateProblem::Draining) => Error::Closed(CloseReason::Duplicate),
            ConnectionError::State(_) => self.conn.closed_error(),
            ConnectionError::Limit(LimitProblem::PayloadTooLarge { len, limit }) => {
                Error::PayloadTooLarge {
                    len,
                    limit,
                    overhead: 0,
                }
            }
            ConnectionError::Limit(_) => Error::Overloaded,
            e @ ConnectionError::Malformed(_) => Error::InvalidArgument(e.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }

    /// Answers the peer's call `id`; one the transmit budget refuses now waits, in order.
    fn answer(&mut self, id: CallId, outcome: CallOutcome) {
        if !self.deferred.is_empty() {
            self.deferred.push_back((id, outcome));
            return;
        }
        if let Err(ConnectionError::Limit(LimitProblem::Overloaded { .. })) =
            self.machine.reply(id, outcome.as_wire())
        {
            self.deferred.push_back((id, outcome));
        }
    }

    fn answer_deferred(&mut self) {
        while let Some((id, outcome)) = self.deferred.front() {
            if let Err(ConnectionError::Limit(LimitProblem::Overloaded { .. })) =
                self.machine.reply(*id, outcome.as_wire())
            {
                return;
            }
            self.deferred.pop_front();
        }
    }

    /// Delivers the machine's events, oldest first, until one must wait (a parked send).
    fn dispatch(&mut self) {
        while self.parked.is_none() {
            // `untrust` sets this under the peer-table lock before it returns: nothing
            // read before is dispatched after it.
            let revoked = self.conn.revoked.is_set();
            if revoked && !self.machine.is_closed() {
                let _ = self.machine.close(GoodbyeReason::TrustRevoked);
            }
            let Some(ev) = self.machine.poll_event() else {
                return;
            };
            match ev {
                Event::CallArrived { id, name, body } if !revoked => {
                    if let Some(o) =
                        serve::on_call(&self.host, &self.conn, id, name, body, self.now)
                    {
                        self.answer(id, o);
                    }
                }
                Event::SendArrived { name, body } if !revoked => self.on_send(name, body),
                Event::ReplyArrived { id, outcome } => {
                    self.waiters.finish(id.0, outcome_result(outcome));
                }
                Event::CallExpired { id } => self.waiters.finish(id.0, Err(Error::Timeout)),
                Event::CallAborted { id } => {
                    let e = Error::Closed(self.cause().reason());
                    self.waiters.finish(id.0, Err(e));
                }
                Event::PeerDraining => self.host.peer_draining(&self.conn),
                Event::Stream(ev) => {
                    let closed = matches!(ev, peernet_proto::stream::StreamEvent::Aborted { .. })
                        .then(|| self.cause().reason());
                    self.links
                        .on_event(&mut self.machine, &self.host, &self.conn, ev, closed);
                }
                Event::Closed { .. } => self.conn.mark_closed(self.cause().reason()),
                _ => {}
            }
        }
    }

    fn on_send(&mut self, name: String, body: Vec<u8>) {
        let (budget, need) = self
            .conn
            .inbound_need(body.len().saturating_add(SEND_OVERHEAD));
        let req = Request {
            from: self.conn.info.peer,
            name,
            body,
            kind: RequestKind::Send,
        };
        match Arc::clone(&budget).try_acquire_many_owned(need) {
            Ok(permit) => self.lane.push(&self.host, &self.conn, (req, permit)),
            Err(TryAcquireError::NoPermits) => {
                let wait: Acquire = Box::pin(budget.acquire_many_owned(need));
                self.parked = Some(Parked { req, wait });
            }
            // Closed: the connection is ending.
            Err(TryAcquireError::Closed) => {}
        }
    }

    fn unpark(&mut self, permit: Option<OwnedSemaphorePermit>) {
        if let (Some(p), Some(permit)) = (self.parked.take(), permit) {
            self.lane.push(&self.host, &self.conn, (p.req, permit));
        }
    }

    /// Writes what the machine seals, straight from its transmit buffer, in chunks of
    /// about `WRITE_CHUNK`, without waiting: what the socket does not take stays
    /// there, and no more than about `WRITE_CHUNK` is sealed ahead of the socket.
    fn transmit(&mut self) -> std::io::Result<()> {
        loop {
            let fresh = self.machine.transmit_unwritten() == 0;
            let frames = self.machine.stats().frames_out;
            let ready = self.machine.transmit_buf(WRITE_CHUNK);
            if ready.is_empty() {
                self.held.clear();
                return Ok(());
            }
            let wrote = self.stream.try_write(ready);
            if fresh {
                self.last_frames = self.machine.stats().frames_out - frames;
            }
            match wrote {
                Ok(n) => {
                    self.machine.transmitted(n);
                    if self.machine.transmit_queued() == 0 {
                        self.held.clear();
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn publish_stats(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.machine.stats();
        let c = &self.conn.stats;
        c.frames_in.store(s.frames_in, Relaxed);
        c.frames_out.store(s.frames_out, Relaxed);
        c.bytes_in.store(s.bytes_in, Relaxed);
        c.bytes_out.store(s.bytes_out, Relaxed);
        if let Some(rtt) = self.machine.rtt() {
            self.conn.set_rtt(rtt);
        }
    }

    /// Why the connection closed: trust revoked, else the close this node asked for,
    /// else what the machine saw.
    fn cause(&self) -> CloseCause {
        if self.conn.revoked.is_set() {
            return CloseCause::Local("trust revoked".into());
        }
        match self.machine.closed() {
            Some(reason) => CloseCause::from_machine(reason, self.conn.close_intent()),
            None => CloseCause::Local("closed".into()),
        }
    }

    /// After the close: every waiter and queued command answered, the last bytes (a
    /// Goodbye) written within `FLUSH_ON_CLOSE`, the socket shut, the node told.
    async fn finish(mut self) {
        self.dispatch();
        let cause = self.cause();
        let reason = cause.reason();
        self.conn.mark_closed(reason.clone());
        self.cmds.close();
        while let Ok(cmd) = self.cmds.try_recv() {
            match cmd {
                Cmd::Call { waiter, .. } => waiter.finish(Err(Error::Closed(reason.clone()))),
                Cmd::OpenStream { reply, .. } => {
                    let _ = reply.send(Err(Error::Closed(reason.clone())));
                }
                _ => {}
            }
        }
        self.waiters.fail_all(&reason);
        self.links.close_all(&reason);
        self.parked = None;
        let mut rest = Vec::new();
        self.machine.poll_transmit(&mut rest);
        if !matches!(cause, CloseCause::Io(_)) {
            let stream = &mut self.stream;
            let _ = tokio::time::timeout(FLUSH_ON_CLOSE, async {
                stream.write_all(&rest).await?;
                stream.shutdown().await
            })
            .await;
        }
        self.publish_stats();
        Arc::clone(&self.host).closed(&self.conn, cause);
    }
}

async fn wait_parked(parked: &mut Option<Parked>) -> Option<OwnedSemaphorePermit> {
    match parked {
        Some(p) => p.wait.as_mut().await.ok(),
        None => std::future::pending().await,
    }
}

fn outcome_result(outcome: CallOutcome) -> Result<Vec<u8>> {
    match outcome {
        CallOutcome::Ok(v) => Ok(v),
        // The Reply does not carry the name; `Waiters::finish` puts it in.
        CallOutcome::NoSuchHandler => Err(Error::NoSuchHandler(String::new())),
        CallOutcome::Forbidden => Err(Error::Forbidden),
        CallOutcome::HandlerFailed(m) => Err(Error::HandlerFailed(m)),
        CallOutcome::Overloaded => Err(Error::Overloaded),
    }
}
