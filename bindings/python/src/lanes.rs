//! Lanes: small pools of std threads that run Python work with the GIL, so that Python
//! code never runs on (and the GIL is never taken by) a tokio thread. This one is a
//! single queue (completions, events); handlers and RPC run on per-peer fair lanes
//! (`fair.rs`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// A piece of Python work.
pub(crate) type Job = Box<dyn FnOnce(Python<'_>) + Send + 'static>;

/// Set at interpreter exit: lane threads stop taking the GIL.
pub(crate) static FINALIZING: AtomicBool = AtomicBool::new(false);

/// Most jobs a batching lane runs per GIL acquisition.
const BATCH: usize = 256;

/// A named pool of threads consuming jobs.
pub(crate) struct Lane {
    tx: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Lane {
    /// Starts `n` threads. A single-thread lane runs queued jobs in batches under one
    /// GIL acquisition (completions, events); a multi-thread lane runs one job at a time
    /// per thread (handlers: a slow one must not hold up the others).
    pub(crate) fn new(name: &str, n: usize) -> std::io::Result<Arc<Lane>> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let rx = Arc::clone(&rx);
            let batch = n <= 1;
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || run(&rx, batch))?,
            );
        }
        Ok(Arc::new(Lane {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
        }))
    }

    /// Queues a job; false when the lane is closed (the job is dropped).
    pub(crate) fn submit(&self, job: Job) -> bool {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match tx.as_ref() {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        }
    }

    /// Stops accepting jobs; the threads end once the queue is drained.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Waits (call without the GIL) up to `limit` for the threads to end; threads still
    /// busy then (a handler that never returns) are left to finish on their own.
    pub(crate) fn join(&self, limit: Duration) {
        join_threads(&self.threads, limit);
    }
}

fn run(rx: &Mutex<Receiver<Job>>, batch: bool) {
    loop {
        let first = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        };
        let Ok(first) = first else { return };
        if FINALIZING.load(Ordering::Acquire) {
            return;
        }
        Python::attach(|py| {
            one(py, first);
            if batch {
                for _ in 1..BATCH {
                    let next = match rx.try_lock() {
                        Ok(rx) => rx.try_recv(),
                        Err(_) => Err(TryRecvError::Empty),
                    };
                    match next {
                        Ok(job) => one(py, job),
                        Err(_) => break,
                    }
                }
            }
        });
    }
}

fn one(py: Python<'_>, job: Job) {
    if catch_unwind(AssertUnwindSafe(|| job(py))).is_err() {
        tracing::error!(target: "peernet::python", "a Python job panicked");
    }
}

/// Waits up to `limit` for the threads in `threads` to end (except the calling one);
/// threads still busy then (a handler that never returns) are left to finish on their
/// own. Call without the GIL.
pub(crate) fn join_threads(threads: &Mutex<Vec<JoinHandle<()>>>, limit: Duration) {
    let threads: Vec<JoinHandle<()>> =
        std::mem::take(&mut *threads.lock().unwrap_or_else(|p| p.into_inner()));
    let me = std::thread::current().id();
    let deadline = Instant::now() + limit;
    for t in threads {
        if t.thread().id() == me {
            continue;
        }
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
}
