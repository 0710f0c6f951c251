//! Who waits for the answer to each call this node started on one connection.
//!
//! The connection machine (`peernet_proto::connection`) owns the calls themselves: ids,
//! deadlines, expiry and abort. The driver keeps, beside it, the one thing the machine
//! cannot: whom to tell. A call started with `Conn::call` waits in its task on a
//! oneshot; one started with `Conn::call_with` has no task, and its callback runs on the
//! driver. Every callback runs exactly once: with the reply, with `Timeout`, with
//! `Closed` when the connection ends, or with `Closed` when it is dropped unanswered for
//! any other reason ([`Callback`]'s `Drop`).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use tokio::sync::oneshot;

use crate::error::{CloseReason, Error, Result};

/// A completion callback of `Node::call_with`.
pub(crate) type CallbackFn = Box<dyn FnOnce(Result<Vec<u8>>) + Send + 'static>;

/// A callback that runs exactly once; a panic in it is contained and logged.
pub(crate) struct Callback(Option<CallbackFn>);

impl Callback {
    pub(crate) fn new(f: CallbackFn) -> Callback {
        Callback(Some(f))
    }

    /// Runs it with `result`.
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

/// Whom a call's answer goes to.
pub(crate) enum Waiter {
    /// A task awaiting `Conn::call` (it may have gone: then the answer is dropped).
    Task(oneshot::Sender<Result<Vec<u8>>>),
    /// A `call_with` callback.
    Callback(Callback),
}

impl Waiter {
    /// Delivers the answer.
    pub(crate) fn finish(self, result: Result<Vec<u8>>) {
        match self {
            Waiter::Task(tx) => {
                let _ = tx.send(result);
            }
            Waiter::Callback(cb) => cb.run(result),
        }
    }
}

/// Call id → waiter, for the calls the machine holds as pending.
#[derive(Default)]
pub(crate) struct Waiters {
    map: HashMap<u64, (Waiter, String)>,
}

impl Waiters {
    /// Registers the waiter of call `id` of handler `name` (the Reply does not repeat
    /// the name; a `NoSuchHandler` answer gets it from here).
    pub(crate) fn insert(&mut self, id: u64, w: Waiter, name: String) {
        self.map.insert(id, (w, name));
    }

    /// Delivers the answer to call `id`; an unknown id is dropped.
    pub(crate) fn finish(&mut self, id: u64, result: Result<Vec<u8>>) {
        match self.map.remove(&id) {
            Some((w, name)) => w.finish(result.map_err(|e| e.for_handler(&name))),
            None => tracing::debug!(id, "answer for an unknown call id dropped"),
        }
    }

    /// Fails every waiter with `Closed(reason)`.
    pub(crate) fn fail_all(&mut self, reason: &CloseReason) {
        for (_, (w, _)) in self.map.drain() {
            w.finish(Err(Error::Closed(reason.clone())));
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Log = Arc<Mutex<Vec<(u64, std::result::Result<Vec<u8>, String>)>>>;

    fn cb(log: &Log, id: u64) -> Waiter {
        let log = Arc::clone(log);
        Waiter::Callback(Callback::new(Box::new(move |r| {
            log.lock().unwrap().push((id, r.map_err(|e| e.to_string())));
        })))
    }

    #[test]
    fn callbacks_run_once_whatever_ends_them() {
        let log: Log = Arc::default();
        let mut w = Waiters::default();
        for id in 1..=4 {
            w.insert(id, cb(&log, id), format!("h{id}"));
        }
        w.finish(3, Ok(b"r".to_vec()));
        w.finish(3, Ok(b"again".to_vec()));
        w.finish(2, Err(Error::NoSuchHandler(String::new())));
        w.finish(4, Err(Error::Timeout));
        w.fail_all(&CloseReason::PeerEof);
        assert_eq!(w.len(), 0);
        let mut got = log.lock().unwrap().clone();
        got.sort_by_key(|(id, _)| *id);
        assert_eq!(got.len(), 4);
        assert!(got[0].1.as_ref().unwrap_err().contains("without a Goodbye"));
        // The name the Reply did not carry is put back.
        assert!(got[1].1.as_ref().unwrap_err().contains("h2"), "{got:?}");
        assert_eq!(got[2].1, Ok(b"r".to_vec()));
        assert_eq!(got[3].1, Err("timed out".to_string()));
    }

    #[test]
    fn a_dropped_callback_reports_closed() {
        let log: Log = Arc::default();
        drop(cb(&log, 7));
        let got = log.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert!(got[0]
            .1
            .as_ref()
            .unwrap_err()
            .contains("dropped unanswered"));
    }

    #[test]
    fn a_panicking_callback_is_contained() {
        let c = Callback::new(Box::new(|_| panic!("boom")));
        c.run(Ok(Vec::new()));
        let d = Callback::new(Box::new(|_| panic!("boom")));
        drop(d);
    }
}
