//! Waiting for a future from a thread that is not a runtime worker: the blocking calls
//! of the C API and of the Python package.
//!
//! `Handle::block_on` parks the calling thread on the first `Pending` and is woken by a
//! futex when a runtime worker completes the future. On a loopback round trip that
//! wake-up is most of the time a blocking caller loses against a task inside the
//! runtime (measured on the project's 2-core machine: call RTT p50 ≈ 50 µs from a plain
//! thread against ≈ 15 µs from a task). [`block_on`] first polls in a short
//! yield-loop — at most [`SPIN`], one thread of the process at a time — and only then
//! parks, so a reply that comes back within the spin is picked up without a wake-up
//! (≈ 25 µs in the same measurement; `docs/benchmarks.md`). A wait that outlasts the
//! spin parks like `Handle::block_on`, so a long call costs at most [`SPIN`] of CPU.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

/// How long a waiting thread polls before it parks.
pub const SPIN: Duration = Duration::from_micros(100);

/// How many threads may spin at once; others park at once, so waiting threads never
/// take more than this many CPUs from the runtime's workers.
const MAX_SPINNERS: usize = 1;

static SPINNERS: AtomicUsize = AtomicUsize::new(0);

/// Wakes the waiting thread: sets the flag, and unparks the thread if it parked
/// (`Thread::unpark` is an atomic swap when the thread is not parked).
struct ThreadWaker {
    woken: AtomicBool,
    thread: Thread,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// One of at most `max` spinning slots counted in `count`, released on drop.
struct SpinSlot<'a>(&'a AtomicUsize);

impl<'a> SpinSlot<'a> {
    fn take(count: &'a AtomicUsize, max: usize) -> Option<SpinSlot<'a>> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| SpinSlot(count))
    }
}

impl Drop for SpinSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `fut` to completion on the calling thread, inside `handle`'s context (so it may
/// use the runtime's timers and sockets, which the runtime's workers drive).
///
/// Call it from a thread that is not a runtime worker (a program's own thread, or a
/// worker inside `tokio::task::block_in_place`). Unlike `Handle::block_on` it does not
/// mark the thread as running a runtime, so it does not detect being called from a
/// `current_thread` runtime's own thread — where it would wait forever for I/O that
/// only the blocked thread could drive.
pub fn block_on<F: Future>(handle: &Handle, fut: F) -> F::Output {
    let _context = handle.enter();
    let mut fut = pin!(fut);
    let waker = Arc::new(ThreadWaker {
        woken: AtomicBool::new(false),
        thread: thread::current(),
    });
    let std_waker = Waker::from(Arc::clone(&waker));
    let mut cx = Context::from_waker(&std_waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        wait_for_wake(&waker.woken);
    }
}

/// Returns once `woken` was set (and clears it): first yielding the CPU in a loop for
/// up to [`SPIN`] if a spinning slot is free, then parking.
fn wait_for_wake(woken: &AtomicBool) {
    if woken.swap(false, Ordering::Acquire) {
        return;
    }
    if let Some(_slot) = SpinSlot::take(&SPINNERS, MAX_SPINNERS) {
        let start = Instant::now();
        while start.elapsed() < SPIN {
            thread::yield_now();
            if woken.swap(false, Ordering::Acquire) {
                return;
            }
        }
    }
    // `park` may return spuriously, and an unpark that came before it makes it return
    // at once; the flag is what counts.
    while !woken.swap(false, Ordering::Acquire) {
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn ready_future_returns_its_value() {
        let rt = runtime();
        assert_eq!(block_on(rt.handle(), async { 7 }), 7);
    }

    #[test]
    fn waits_for_a_value_sent_by_a_runtime_task() {
        let rt = runtime();
        for delay_us in [0u64, 10, 200, 5_000] {
            let (tx, rx) = tokio::sync::oneshot::channel();
            rt.spawn(async move {
                tokio::time::sleep(Duration::from_micros(delay_us)).await;
                let _ = tx.send(delay_us);
            });
            assert_eq!(block_on(rt.handle(), rx).unwrap(), delay_us);
        }
    }

    #[test]
    fn runtime_timers_work_in_the_future() {
        let rt = runtime();
        let t = Instant::now();
        block_on(rt.handle(), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
        assert!(t.elapsed() >= Duration::from_millis(20));
        // A timeout around a future that never completes ends it.
        let r = block_on(rt.handle(), async {
            tokio::time::timeout(Duration::from_millis(5), std::future::pending::<()>()).await
        });
        assert!(r.is_err());
    }

    #[test]
    fn many_threads_wait_at_once_and_the_spin_slots_are_returned() {
        let rt = runtime();
        let done = Arc::new(AtomicU32::new(0));
        thread::scope(|s| {
            for i in 0..8u64 {
                let (h, done) = (rt.handle().clone(), Arc::clone(&done));
                s.spawn(move || {
                    for j in 0..50u64 {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        h.spawn(async move {
                            tokio::time::sleep(Duration::from_micros((i * 50 + j) % 300)).await;
                            let _ = tx.send(i * 1000 + j);
                        });
                        assert_eq!(block_on(&h, rx).unwrap(), i * 1000 + j);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        assert_eq!(done.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn spin_slots_are_bounded_and_returned() {
        let count = AtomicUsize::new(0);
        let a = SpinSlot::take(&count, 2).unwrap();
        let b = SpinSlot::take(&count, 2).unwrap();
        assert!(SpinSlot::take(&count, 2).is_none());
        drop(a);
        let c = SpinSlot::take(&count, 2).unwrap();
        drop((b, c));
        assert_eq!(count.load(Ordering::Relaxed), 0);
    }
}
