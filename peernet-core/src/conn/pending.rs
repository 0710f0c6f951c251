//! The calls of one connection that wait for a Reply.
//!
//! A call started with `Conn::call` waits in its own task on a oneshot (and its own
//! timer). A call started with `Conn::call_with` has no task: its callback is stored
//! here with its deadline, the reader task runs it when the Reply arrives, and one timer
//! per connection ([`Conn::expire_calls`](super::Conn::expire_calls)) fails the ones
//! whose deadline passed. Every callback runs exactly once: with the reply, with
//! `Timeout`, with `Closed` when the connection ends, or with `Closed` when it is
//! dropped unanswered for any other reason ([`Callback`]'s `Drop`).

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{CloseReason, Error, Result};

/// What a completed call is handed to.
pub(crate) type CallbackFn = Box<dyn FnOnce(Result<Vec<u8>>) + Send + 'static>;

/// A call's callback, run exactly once (on drop with `Closed` if nothing ran it).
pub(crate) struct Callback(Option<CallbackFn>);

impl Callback {
    pub(crate) fn new(f: CallbackFn) -> Callback {
        Callback(Some(f))
    }

    /// Runs the callback with `result`. A panic in it is contained and logged: it runs
    /// on the connection's reader task, which must survive it.
    pub(crate) fn run(mut self, result: Result<Vec<u8>>) {
        if let Some(f) = self.0.take() {
            if catch_unwind(AssertUnwindSafe(|| f(result))).is_err() {
                tracing::error!("a call completion callback panicked");
            }
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            let why = CloseReason::Local("the call was dropped unanswered".into());
            let _ = catch_unwind(AssertUnwindSafe(|| f(Err(Error::Closed(why)))));
        }
    }
}

/// Who waits for a call's Reply.
pub(crate) enum Waiter {
    /// A task in `Conn::call`, which keeps its own deadline.
    Task(oneshot::Sender<Result<Vec<u8>>>),
    /// A callback from `Conn::call_with`, failed with `Timeout` at `deadline`.
    Callback(Callback, Instant),
}

impl Waiter {
    /// Delivers the outcome of the call.
    pub(crate) fn finish(self, result: Result<Vec<u8>>) {
        match self {
            Waiter::Task(tx) => {
                let _ = tx.send(result);
            }
            Waiter::Callback(cb, _) => cb.run(result),
        }
    }
}

/// The pending-call table of one connection.
#[derive(Default)]
pub(crate) struct Pending {
    map: HashMap<u64, Waiter>,
    /// Deadlines of the callback calls, earliest first.
    deadlines: BTreeSet<(Instant, u64)>,
    /// The connection ended (why): no new calls.
    pub closed: Option<CloseReason>,
}

impl Pending {
    /// Adds a call. Returns true when it is a callback call whose deadline is now the
    /// earliest (the expiry timer must be moved up).
    pub(crate) fn insert(&mut self, id: u64, w: Waiter) -> bool {
        let mut earliest = false;
        if let Waiter::Callback(_, deadline) = &w {
            earliest = match self.deadlines.first() {
                None => true,
                Some((first, _)) => deadline < first,
            };
            self.deadlines.insert((*deadline, id));
        }
        self.map.insert(id, w);
        earliest
    }

    /// Takes a call out of the table.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Waiter> {
        let w = self.map.remove(&id)?;
        if let Waiter::Callback(_, deadline) = &w {
            self.deadlines.remove(&(*deadline, id));
        }
        Some(w)
    }

    /// Takes every call out (the connection ended).
    pub(crate) fn drain(&mut self) -> Vec<Waiter> {
        self.deadlines.clear();
        self.map.drain().map(|(_, w)| w).collect()
    }

    /// Takes out the callback calls whose deadline is at or before `now`.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<Waiter> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(w) = self.map.remove(&id) {
                out.push(w);
            }
        }
        out
    }

    /// The earliest deadline of a callback call.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    type Log = Arc<Mutex<Vec<(u64, std::result::Result<Vec<u8>, String>)>>>;

    fn cb(log: &Log, id: u64) -> Callback {
        let log = Arc::clone(log);
        Callback::new(Box::new(move |r| {
            log.lock().unwrap().push((
                id,
                r.map_err(|e| format!("{e:?}").split('(').next().unwrap_or("").to_owned()),
            ))
        }))
    }

    #[test]
    fn callbacks_run_once_whatever_ends_them() {
        let log: Log = Arc::default();
        let t0 = Instant::now();
        let mut p = Pending::default();
        assert!(p.insert(
            1,
            Waiter::Callback(cb(&log, 1), t0 + Duration::from_secs(3))
        ));
        assert!(p.insert(
            2,
            Waiter::Callback(cb(&log, 2), t0 + Duration::from_secs(1))
        ));
        assert!(!p.insert(
            3,
            Waiter::Callback(cb(&log, 3), t0 + Duration::from_secs(2))
        ));
        assert!(!p.insert(
            4,
            Waiter::Callback(cb(&log, 4), t0 + Duration::from_secs(9))
        ));
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(1)));
        // A reply.
        p.remove(3).unwrap().finish(Ok(b"r".to_vec()));
        // Expiry at t0+2 s takes call 2 only (3 is gone).
        let expired = p.expired(t0 + Duration::from_secs(2));
        assert_eq!(expired.len(), 1);
        for w in expired {
            w.finish(Err(Error::Timeout));
        }
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(3)));
        // Dropped unanswered: Closed.
        drop(p.remove(1));
        assert!(p.remove(1).is_none());
        // The table itself dropped: Closed.
        drop(p);
        let mut got = log.lock().unwrap().clone();
        got.sort_by_key(|(id, _)| *id);
        assert_eq!(
            got,
            vec![
                (1, Err("Closed".to_string())),
                (2, Err("Timeout".to_string())),
                (3, Ok(b"r".to_vec())),
                (4, Err("Closed".to_string())),
            ]
        );
    }

    #[test]
    fn a_panicking_callback_is_contained() {
        let c = Callback::new(Box::new(|_| panic!("boom")));
        c.run(Ok(Vec::new()));
        let d = Callback::new(Box::new(|_| panic!("boom")));
        drop(d);
    }
}
