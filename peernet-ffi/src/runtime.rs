//! The one process-wide tokio runtime shared by every node of the C API, and
//! `block_on` for the blocking functions.

use std::future::Future;
use std::sync::OnceLock;

use peernet_core::Error;
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();

/// The shared multi-thread runtime, built on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, Error> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("peernet-rt")
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| Error::Internal("cannot start the tokio runtime".into()))
}

/// Enters the shared runtime's context if it has been built (never builds it).
pub(crate) fn enter() -> Option<tokio::runtime::EnterGuard<'static>> {
    RUNTIME.get().and_then(Option::as_ref).map(Runtime::enter)
}

/// Runs `f` to completion from the calling thread, with `peernet_core::blocking::block_on`
/// (a short yield-loop before parking: no futex wake-up when the reply is quick).
///
/// Works from any thread: a foreign thread, a callback thread of the library, and even
/// a runtime worker thread (an inline callback, a log callback), where `block_in_place`
/// first hands the worker's queue to another thread so that waiting stalls nothing.
pub(crate) fn block_on<F: Future>(f: F) -> Result<F::Output, Error> {
    let rt = runtime()?;
    Ok(tokio::task::block_in_place(|| {
        peernet_core::blocking::block_on(rt.handle(), f)
    }))
}

/// Runs blocking work `f` from any thread (on a runtime worker, first hands the worker's
/// queue to another thread).
pub(crate) fn block_in_place<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}
