//! Forwards the library's `tracing` records to Python's `logging` (logger `peernet`).
//!
//! Runtime threads only format the record and queue it (bounded; dropped when full);
//! one thread per process takes the GIL and logs the queued records.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::lanes::FINALIZING;

/// Lowest Python level forwarded (Python numbering: 10 debug ... 40 error).
static MIN_LEVEL: AtomicU8 = AtomicU8::new(30);
/// Records queued for the logging thread at most.
const QUEUE: usize = 1024;

type Record = (u8, String);
static SENDER: Mutex<Option<(u32, SyncSender<Record>)>> = Mutex::new(None);

fn py_level(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        _ => 5,
    }
}

/// Sets the lowest Python logging level forwarded.
pub(crate) fn set_level(level: i64) {
    let l = u8::try_from(level.clamp(0, 255)).unwrap_or(30);
    MIN_LEVEL.store(l, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
}

/// Installs the forwarding layer as the global subscriber (unless the host program
/// already installed one).
pub(crate) fn install() {
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(PyLog));
}

struct PyLog;

impl<S: Subscriber> Layer<S> for PyLog {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        py_level(meta.level()) >= MIN_LEVEL.load(Ordering::Relaxed)
            && meta.target().starts_with("peernet")
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut v = Fmt::default();
        event.record(&mut v);
        let mut line = v.message;
        if !v.fields.is_empty() {
            line.push_str(" (");
            line.push_str(v.fields.trim_start());
            line.push(')');
        }
        forward((py_level(event.metadata().level()), line));
    }
}

#[derive(Default)]
struct Fmt {
    message: String,
    fields: String,
}

impl Visit for Fmt {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

fn forward(rec: Record) {
    if FINALIZING.load(Ordering::Acquire) {
        return;
    }
    let pid = std::process::id();
    let mut slot = SENDER.lock().unwrap_or_else(|p| p.into_inner());
    if !matches!(slot.as_ref(), Some((p, _)) if *p == pid) {
        let (tx, rx) = sync_channel(QUEUE);
        if std::thread::Builder::new()
            .name("peernet-log".into())
            .spawn(move || log_thread(rx))
            .is_err()
        {
            return;
        }
        *slot = Some((pid, tx));
    }
    if let Some((_, tx)) = slot.as_ref() {
        if let Err(TrySendError::Full(_)) = tx.try_send(rec) {
            // Dropped: logging must never block the network.
        }
    }
}

fn log_thread(rx: Receiver<Record>) {
    while let Ok(first) = rx.recv() {
        if FINALIZING.load(Ordering::Acquire) {
            return;
        }
        Python::attach(|py| {
            let logger = match py
                .import("logging")
                .and_then(|m| m.call_method1("getLogger", ("peernet",)))
            {
                Ok(l) => l,
                Err(_) => return,
            };
            let mut next = Some(first);
            while let Some((level, msg)) = next.take() {
                let _ = logger.call_method1("log", (level, msg));
                next = rx.try_recv().ok();
            }
        });
    }
}
