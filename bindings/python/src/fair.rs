//! Fair lanes: a pool of std threads running Python work for peers, one queue per peer,
//! served round robin. A peer with a thousand calls waiting gets one turn, then every
//! other peer with work gets one, so its backlog delays the others by at most one job
//! per thread, not by the whole backlog.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use peernet_core::Key;
use pyo3::prelude::*;

use crate::lanes::{Job, FINALIZING};

struct Queues<T> {
    closed: bool,
    /// Jobs of each peer that has some, oldest first.
    by_peer: HashMap<Key, VecDeque<T>>,
    /// Peers with queued jobs, in the order of their next turn.
    turns: VecDeque<Key>,
    /// Jobs queued, all peers.
    waiting: usize,
}

impl<T> Queues<T> {
    fn new() -> Queues<T> {
        Queues {
            closed: false,
            by_peer: HashMap::new(),
            turns: VecDeque::new(),
            waiting: 0,
        }
    }

    /// Queues `job` behind `peer`'s earlier ones; a peer with nothing queued joins the
    /// back of the line.
    fn push(&mut self, peer: &Key, job: T) {
        let queue = self.by_peer.entry(*peer).or_default();
        if queue.is_empty() {
            self.turns.push_back(*peer);
        }
        queue.push_back(job);
        self.waiting += 1;
    }

    /// The next job: the first job of the peer whose turn it is; that peer, if it has
    /// more, goes to the back of the line.
    fn next(&mut self) -> Option<T> {
        let peer = self.turns.pop_front()?;
        let q = self.by_peer.get_mut(&peer)?;
        let job = q.pop_front();
        if q.is_empty() {
            self.by_peer.remove(&peer);
        } else {
            self.turns.push_back(peer);
        }
        if job.is_some() {
            self.waiting -= 1;
        }
        job
    }
}

struct Shared {
    queues: Mutex<Queues<Job>>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues<Job>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A named pool of threads taking jobs from per-peer queues in turn, one job per thread
/// at a time (a slow job must not hold up the other threads).
pub(crate) struct FairLane {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl FairLane {
    /// Starts `n` (at least 1) threads.
    pub(crate) fn new(name: &str, n: usize) -> std::io::Result<Arc<FairLane>> {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::new()),
            ready: Condvar::new(),
        });
        let mut threads = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let mine = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || run(&mine));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Stop the threads already started before reporting.
                    shared.lock().closed = true;
                    shared.ready.notify_all();
                    return Err(e);
                }
            }
        }
        Ok(Arc::new(FairLane {
            shared,
            threads: Mutex::new(threads),
        }))
    }

    /// Queues `job` for `peer`; false when the lane is closed (the job is dropped).
    pub(crate) fn submit(&self, peer: &Key, job: Job) -> bool {
        let mut q = self.shared.lock();
        if q.closed {
            return false;
        }
        q.push(peer, job);
        drop(q);
        self.shared.ready.notify_one();
        true
    }

    /// Jobs queued and not started yet (tests and diagnostics).
    pub(crate) fn waiting(&self) -> usize {
        self.shared.lock().waiting
    }

    /// Stops accepting jobs; the threads end once the queues are drained.
    pub(crate) fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }

    /// Waits (call without the GIL) up to `limit` for the threads to end; threads still
    /// busy then (a handler that never returns) are left to finish on their own.
    pub(crate) fn join(&self, limit: Duration) {
        crate::lanes::join_threads(&self.threads, limit);
    }
}

fn run(shared: &Shared) {
    loop {
        let job = {
            let mut q = shared.lock();
            loop {
                if let Some(job) = q.next() {
                    break job;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        if FINALIZING.load(Ordering::Acquire) {
            return;
        }
        Python::attach(|py| {
            if catch_unwind(AssertUnwindSafe(|| job(py))).is_err() {
                tracing::error!(target: "peernet::python", "a Python job panicked");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; 32])
    }

    #[test]
    fn a_backlog_gets_one_turn_per_round() {
        let mut q = Queues::new();
        for i in 0..5 {
            q.push(&key(1), 100 + i);
        }
        q.push(&key(2), 200);
        q.push(&key(3), 300);
        q.push(&key(2), 201);
        assert_eq!(q.waiting, 8);
        let order: Vec<u32> = std::iter::from_fn(|| q.next()).collect();
        assert_eq!(order, [100, 200, 300, 101, 201, 102, 103, 104]);
        assert_eq!(q.waiting, 0);
        assert!(q.by_peer.is_empty() && q.turns.is_empty());
        // A peer that comes back after its queue emptied waits behind the others.
        q.push(&key(1), 1);
        q.push(&key(2), 2);
        q.push(&key(1), 3);
        assert_eq!(q.next(), Some(1));
        q.push(&key(3), 4);
        let order: Vec<u32> = std::iter::from_fn(|| q.next()).collect();
        assert_eq!(order, [2, 3, 4]);
    }
}
