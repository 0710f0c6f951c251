//! The logger hook: a minimal `tracing` subscriber (events only, spans ignored) that
//! forwards the library's log records to a C callback. Written against `tracing`'s own
//! `Subscriber` trait (about 80 lines) instead of pulling in tracing-subscriber.

use std::cell::Cell;
use std::ffi::{c_int, c_void, CString};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{OnceLock, RwLock};

use peernet_core::Error;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber};

use crate::types::{peernet_log_fn, PEERNET_LOG_OFF, PEERNET_LOG_TRACE};

struct Sink {
    f: <peernet_log_fn as IntoIterator>::Item,
    ud: *mut c_void,
}

// SAFETY: set_logger's contract: user_data may be used from any library thread; the
// library never dereferences it.
unsafe impl Send for Sink {}
// SAFETY: as above.
unsafe impl Sync for Sink {}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static MAX_LEVEL: AtomicI32 = AtomicI32::new(PEERNET_LOG_OFF);
static INSTALLED: OnceLock<bool> = OnceLock::new();

thread_local! {
    /// True while this thread runs the log callback (records logged then are dropped).
    static IN_LOGGER: Cell<bool> = const { Cell::new(false) };
}

fn level_num(l: &Level) -> c_int {
    match *l {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

struct CLogger;

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={:?}", field.name(), value);
        }
    }
}

impl Subscriber for CLogger {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.is_event() && level_num(m.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match MAX_LEVEL.load(Ordering::Relaxed) {
            ..=0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        if IN_LOGGER.with(|f| f.get()) {
            return;
        }
        let sink = SINK.read().unwrap_or_else(|p| p.into_inner());
        let Some(sink) = sink.as_ref() else {
            return;
        };
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        fields.message.push_str(&fields.rest);
        let target = CString::new(meta.target().replace('\0', " ")).unwrap_or_default();
        let message = CString::new(fields.message.replace('\0', " ")).unwrap_or_default();
        IN_LOGGER.with(|f| f.set(true));
        // SAFETY: C log callback with strings valid for the call.
        unsafe {
            (sink.f)(
                sink.ud,
                level_num(meta.level()),
                target.as_ptr(),
                message.as_ptr(),
            )
        };
        IN_LOGGER.with(|f| f.set(false));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Installs (or with `f == None` removes) the log sink.
pub(crate) fn set_logger(
    f: peernet_log_fn,
    ud: *mut c_void,
    max_level: c_int,
) -> Result<(), Error> {
    if IN_LOGGER.with(|f| f.get()) {
        return Err(Error::InvalidArgument(
            "the logger cannot be changed from inside the log callback".into(),
        ));
    }
    if !(PEERNET_LOG_OFF..=PEERNET_LOG_TRACE).contains(&max_level) {
        return Err(Error::InvalidArgument(format!(
            "max_level {max_level} is not between PEERNET_LOG_OFF (0) and PEERNET_LOG_TRACE (5)"
        )));
    }
    let installed =
        *INSTALLED.get_or_init(|| tracing::subscriber::set_global_default(CLogger).is_ok());
    if !installed {
        return Err(Error::AlreadyExists(
            "another tracing subscriber is installed in this process".into(),
        ));
    }
    {
        let mut sink = SINK.write().unwrap_or_else(|p| p.into_inner());
        *sink = f.map(|f| Sink { f, ud });
        let level = if sink.is_some() {
            max_level
        } else {
            PEERNET_LOG_OFF
        };
        MAX_LEVEL.store(level, Ordering::Relaxed);
    }
    tracing::callsite::rebuild_interest_cache();
    Ok(())
}
