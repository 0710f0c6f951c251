//! Per-node event delivery: one event thread per node reads the core's event stream,
//! appends each event to a bounded queue (for `peernet_next_event`) and calls the event
//! callback, if one is set.

use std::collections::VecDeque;
use std::ffi::CString;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use peernet_core::{CloseReason, Error, Event, EventKind};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use crate::callbacks::{lock, NodeCtx, UserData};
use crate::runtime::runtime;
use crate::signal::Signal;
use crate::types::{
    fill_text, key_out, peernet_close_reason, peernet_event, peernet_event_fn, peernet_event_kind,
    peernet_key, PEERNET_EVENT_QUEUE_CAPACITY,
};

/// The event callback of a node.
pub(crate) struct EventCallback {
    pub f: <peernet_event_fn as IntoIterator>::Item,
    pub ud: Arc<UserData>,
}

/// The bounded queue behind `peernet_next_event`, and the current callback.
pub(crate) struct EventState {
    queue: Mutex<QueueState>,
    ready: Condvar,
    pub callback: Mutex<Option<Arc<EventCallback>>>,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<peernet_event>,
    closed: bool,
    dropped: u64,
    /// `peernet_event_fd`'s descriptor, once asked for: readable exactly while `items`
    /// is not empty (or the queue is closed); changed under this lock.
    signal: Option<Signal>,
}

impl EventState {
    pub(crate) fn new() -> Arc<EventState> {
        Arc::new(EventState {
            queue: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
            callback: Mutex::new(None),
        })
    }

    fn push(&self, ev: peernet_event) {
        let mut q = lock(&self.queue);
        if q.items.len() >= PEERNET_EVENT_QUEUE_CAPACITY {
            q.items.pop_front();
            q.dropped += 1;
            if q.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = q.dropped,
                    "event queue full: oldest events dropped (poll peernet_next_event)"
                );
            }
        }
        q.items.push_back(ev);
        if q.items.len() == 1 {
            if let Some(s) = &q.signal {
                s.raise();
            }
        }
        drop(q);
        self.ready.notify_one();
    }

    /// Waits up to `timeout` for the next event.
    pub(crate) fn next(&self, timeout: Duration) -> Result<peernet_event, Error> {
        let deadline = Instant::now().checked_add(timeout);
        let mut q = lock(&self.queue);
        loop {
            if let Some(ev) = q.items.pop_front() {
                if q.items.is_empty() && !q.closed {
                    if let Some(s) = &q.signal {
                        s.clear();
                    }
                }
                return Ok(ev);
            }
            if q.closed {
                return Err(Error::Closed(CloseReason::LocalShutdown));
            }
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if wait.is_zero() {
                return Err(Error::Timeout);
            }
            q = self
                .ready
                .wait_timeout(q, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Wakes every waiter with `Closed` once the queue is empty (and leaves the
    /// event descriptor readable, so a poll loop wakes up and sees it).
    pub(crate) fn close(&self) {
        let mut q = lock(&self.queue);
        q.closed = true;
        if let Some(s) = &q.signal {
            s.raise();
        }
        drop(q);
        self.ready.notify_all();
    }

    /// The event descriptor, created on first use (readable at once if events wait).
    pub(crate) fn fd(&self) -> Result<std::os::fd::RawFd, Error> {
        let mut q = lock(&self.queue);
        if q.signal.is_none() {
            let s = Signal::new()?;
            if !q.items.is_empty() || q.closed {
                s.raise();
            }
            q.signal = Some(s);
        }
        Ok(q.signal.as_ref().map_or(-1, Signal::raw))
    }
}

fn kind_of(k: EventKind) -> Option<peernet_event_kind> {
    use peernet_event_kind::*;
    Some(match k {
        EventKind::Discovered => PEERNET_EVENT_DISCOVERED,
        EventKind::Lost => PEERNET_EVENT_LOST,
        EventKind::Connected => PEERNET_EVENT_CONNECTED,
        EventKind::Disconnected => PEERNET_EVENT_DISCONNECTED,
        EventKind::NetworkChanged => PEERNET_EVENT_NETWORK_CHANGED,
        EventKind::PairingStarted => PEERNET_EVENT_PAIRING_STARTED,
        EventKind::PairingSucceeded => PEERNET_EVENT_PAIRING_SUCCEEDED,
        EventKind::PairingFailed => PEERNET_EVENT_PAIRING_FAILED,
        _ => return None,
    })
}

/// The C form of a close reason.
fn close_reason_of(r: Option<&CloseReason>) -> peernet_close_reason {
    use peernet_close_reason::*;
    match r {
        None => PEERNET_CLOSE_NONE,
        Some(CloseReason::PeerGoodbye(_)) => PEERNET_CLOSE_PEER_GOODBYE,
        Some(CloseReason::PeerEof) => PEERNET_CLOSE_PEER_EOF,
        Some(CloseReason::Io(_)) => PEERNET_CLOSE_IO,
        Some(CloseReason::LocalShutdown) => PEERNET_CLOSE_LOCAL_SHUTDOWN,
        Some(CloseReason::LocalDisconnect) => PEERNET_CLOSE_LOCAL_DISCONNECT,
        Some(CloseReason::TrustRevoked) => PEERNET_CLOSE_TRUST_REVOKED,
        Some(CloseReason::HeartbeatTimeout) => PEERNET_CLOSE_HEARTBEAT_TIMEOUT,
        Some(CloseReason::Duplicate) => PEERNET_CLOSE_DUPLICATE,
        Some(CloseReason::Protocol(_)) => PEERNET_CLOSE_PROTOCOL,
        Some(_) => PEERNET_CLOSE_LOCAL,
    }
}

/// The detail text of an event: its reason if it has one, else its address.
fn detail_of(e: &Event) -> String {
    if !e.detail.is_empty() {
        e.detail.clone()
    } else {
        e.address.map(|a| a.to_string()).unwrap_or_default()
    }
}

fn deliver(ctx: &Arc<NodeCtx>, state: &EventState, e: &Event) {
    let Some(kind) = kind_of(e.kind) else {
        return;
    };
    let detail = detail_of(e);
    let mut ev = peernet_event {
        kind,
        key: peernet_key { bytes: [0; 32] },
        has_key: e.key.is_some(),
        detail: [0; 128],
        close_reason: close_reason_of(e.close_reason.as_ref()),
    };
    if let Some(k) = &e.key {
        ev.key = key_out(k);
    }
    fill_text(&mut ev.detail, &detail);
    state.push(ev);
    let cb = lock(&state.callback).clone();
    if let Some(cb) = cb {
        let Some(guard) = ctx.enter() else {
            return;
        };
        let text = CString::new(detail.replace('\0', " ")).unwrap_or_default();
        let key_ptr = if ev.has_key {
            &ev.key as *const peernet_key
        } else {
            std::ptr::null()
        };
        // SAFETY: C callback with pointers valid for the call; user_data passed back.
        guard.run(|| unsafe { (cb.f)(cb.ud.ptr(), kind, key_ptr, text.as_ptr()) });
    }
}

/// Starts the event thread of a node; it ends when `stop` turns true.
pub(crate) fn spawn_event_thread(
    mut rx: broadcast::Receiver<Event>,
    ctx: Arc<NodeCtx>,
    state: Arc<EventState>,
    mut stop: watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>, Error> {
    let rt = runtime()?;
    std::thread::Builder::new()
        .name("peernet-events".into())
        .spawn(move || loop {
            let next = rt.block_on(async {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => None,
                    r = rx.recv() => Some(r),
                }
            });
            match next {
                None | Some(Err(RecvError::Closed)) => break,
                Some(Err(RecvError::Lagged(n))) => {
                    tracing::warn!(missed = n, "event thread fell behind; events lost");
                }
                Some(Ok(e)) => deliver(&ctx, &state, &e),
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the event thread: {e}")))
}
