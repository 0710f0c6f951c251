//! Running C callbacks: `user_data` ownership, the per-node count of callbacks in
//! flight (so `peernet_node_free` can wait for them), responders, and the adapters that
//! turn C handler / RPC functions into core `Handler`s.

use std::cell::RefCell;
use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};

use peernet_core::{Handler, HandlerResult, Key, Request, RequestKind, RpcCall, RpcDispatcher};
use tokio::sync::oneshot;

pub(crate) use crate::guard::lock;
use crate::responders::{self, NodeResponders, Refused, Reply};
use crate::types::{
    key_out, peernet_authorize_fn, peernet_free_fn, peernet_handler_fn, peernet_responder,
    peernet_rpc_fn,
};

/// A `user_data` pointer and its optional release function, which runs exactly once:
/// when the last holder drops it, or earlier through [`UserData::release`] (node free),
/// never if registration failed ([`UserData::disarm`]).
pub(crate) struct UserData {
    ptr: *mut c_void,
    free: peernet_free_fn,
    done: AtomicBool,
}

// SAFETY: the C contract (header, "user_data") says user_data may be used from any
// library thread; the library never dereferences it, only passes it back.
unsafe impl Send for UserData {}
// SAFETY: as above; the only shared mutation is the atomic `done` flag.
unsafe impl Sync for UserData {}

impl UserData {
    pub(crate) fn new(ptr: *mut c_void, free: peernet_free_fn) -> Arc<UserData> {
        Arc::new(UserData {
            ptr,
            free,
            done: AtomicBool::new(false),
        })
    }

    /// The pointer to pass to callbacks.
    pub(crate) fn ptr(&self) -> *mut c_void {
        self.ptr
    }

    /// Runs `free_user_data` now if it has not run yet.
    pub(crate) fn release(&self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            if let Some(f) = self.free {
                // SAFETY: the C caller gave us `free` for `ptr`; it runs once (the swap).
                unsafe { f(self.ptr) };
            }
        }
    }

    /// The registration failed: the caller keeps ownership, nothing is released.
    pub(crate) fn disarm(&self) {
        self.done.store(true, Ordering::Release);
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        self.release();
    }
}

/// A raw pointer that a C caller promised may cross threads (call_async's user_data).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut c_void);
// SAFETY: documented contract of peernet_call_async: user_data is handed back on a
// library thread; the library never dereferences it.
unsafe impl Send for SendPtr {}

thread_local! {
    /// Ids of the nodes whose callbacks are running on this thread's stack.
    static IN_CALLBACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// How many callbacks of node `id` this thread is inside.
pub(crate) fn callback_depth(id: u64) -> usize {
    IN_CALLBACK.with(|s| s.borrow().iter().filter(|&&n| n == id).count())
}

struct CallbackScope;

impl Drop for CallbackScope {
    fn drop(&mut self) {
        IN_CALLBACK.with(|s| {
            s.borrow_mut().pop();
        });
    }
}

/// Per-node state the callbacks share (never the core `Node` itself, so handlers held
/// by the core's registry form no reference cycle with it).
pub(crate) struct NodeCtx {
    pub id: u64,
    /// Callbacks run inline on the runtime thread (`peernet_config_set_inline_callbacks`)
    /// instead of inside `block_in_place`.
    inline: bool,
    /// Callbacks in flight, plus [`CLOSED`] once the node is closing. The hot path
    /// (enter, leave) is one atomic operation; the mutex and condvar are only used once
    /// the node is closing.
    inflight: AtomicUsize,
    wait: Mutex<()>,
    changed: Condvar,
    user_data: Mutex<Vec<Weak<UserData>>>,
    /// The node's pending replies to calls (see `responders`).
    pub(crate) responders: NodeResponders,
}

/// The top bit of [`NodeCtx::inflight`]: no new callback may start.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// One callback (or call_async completion) in flight; dropping it ends it.
pub(crate) struct InflightGuard(Arc<NodeCtx>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl InflightGuard {
    /// Runs a C callback, marking this thread as inside a callback of this node.
    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        IN_CALLBACK.with(|s| s.borrow_mut().push(self.0.id));
        let _scope = CallbackScope;
        f()
    }

    /// Runs a C callback that may block: inline on this thread when the node asked for
    /// inline callbacks, else inside `block_in_place` (on this thread too, after the
    /// runtime worker's queue has been handed to another thread, so blocking stalls no
    /// other peer).
    pub(crate) fn run_blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.0.inline {
            self.run(f)
        } else {
            tokio::task::block_in_place(|| self.run(f))
        }
    }
}

static NEXT_NODE_ID: AtomicUsize = AtomicUsize::new(1);

impl NodeCtx {
    pub(crate) fn new(inline: bool) -> Arc<NodeCtx> {
        let id = NEXT_NODE_ID.fetch_add(1, Ordering::Relaxed) as u64;
        Arc::new(NodeCtx {
            id,
            responders: NodeResponders::new(id),
            inline,
            inflight: AtomicUsize::new(0),
            wait: Mutex::new(()),
            changed: Condvar::new(),
            user_data: Mutex::new(Vec::new()),
        })
    }

    /// Whether callbacks run inline (`peernet_config_set_inline_callbacks`).
    pub(crate) fn inline(&self) -> bool {
        self.inline
    }

    /// Starts a callback unless the node is closing.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<InflightGuard> {
        let before = self.inflight.fetch_add(1, Ordering::SeqCst);
        if before & CLOSED != 0 {
            self.leave();
            return None;
        }
        Some(InflightGuard(Arc::clone(self)))
    }

    /// Ends a callback; wakes `close_and_wait` if the node is closing.
    fn leave(&self) {
        let before = self.inflight.fetch_sub(1, Ordering::SeqCst);
        if before & CLOSED != 0 {
            // Taking the lock orders this wake-up after the waiter's check of the count
            // (it holds the lock from its check until it sleeps): no lost wake-up.
            drop(lock(&self.wait));
            self.changed.notify_all();
        }
    }

    /// Stops new callbacks, waits until every running one (except those on this
    /// thread's own stack) has returned, then releases every user_data.
    pub(crate) fn close_and_wait(&self) {
        let own = callback_depth(self.id);
        self.inflight.fetch_or(CLOSED, Ordering::SeqCst);
        let mut w = lock(&self.wait);
        while self.inflight.load(Ordering::SeqCst) & !CLOSED > own {
            w = self.changed.wait(w).unwrap_or_else(|p| p.into_inner());
        }
        drop(w);
        let uds: Vec<Weak<UserData>> = std::mem::take(&mut *lock(&self.user_data));
        for w in uds {
            if let Some(ud) = w.upgrade() {
                ud.release();
            }
        }
    }

    /// Remembers user data to release at node free.
    pub(crate) fn track(&self, ud: &Arc<UserData>) {
        let mut v = lock(&self.user_data);
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(ud));
    }
}

// ---- responders ----

/// Takes a pending reply out of its table (`Err`: why the token is refused).
pub(crate) fn take_responder(r: *mut peernet_responder) -> Result<Reply, Refused> {
    responders::take(r as usize)
}

/// Removes a responder when its call is dropped before it was answered (connection
/// closed) so the table cannot grow with abandoned entries. Disarmed once the reply
/// arrived: the entry left the table when it was answered.
struct ResponderCleanup(usize);

impl ResponderCleanup {
    fn disarm(mut self) {
        self.0 = 0;
    }
}

impl Drop for ResponderCleanup {
    fn drop(&mut self) {
        if self.0 != 0 {
            drop(responders::take(self.0));
        }
    }
}

fn as_responder(token: usize) -> *mut peernet_responder {
    token as *mut peernet_responder
}

const NODE_CLOSING: &str = "the node is closing";
const NO_ANSWER: &str = "the handler's responder was dropped unanswered (node freed)";

/// Runs one C callback and then waits for its responder.
///
/// The callback runs on the current thread, at once (no thread switch), through
/// [`InflightGuard::run_blocking`]: by default inside `block_in_place`, so it may block
/// without stalling other peers; inline when the node was configured so.
async fn dispatch(
    guard: InflightGuard,
    reply: Option<(usize, oneshot::Receiver<HandlerResult>)>,
    job: impl FnOnce(usize) + Send + 'static,
) -> HandlerResult {
    let (token, rx) = match reply {
        Some((t, rx)) => (t, Some(rx)),
        None => (0, None),
    };
    let cleanup = ResponderCleanup(token);
    guard.run_blocking(|| job(token));
    match rx {
        None => Ok(Vec::new()),
        Some(rx) => {
            // Ok: answered (taken out of the table); Err: dropped by node free (taken
            // out too). Either way the entry is gone.
            let r = rx.await.unwrap_or_else(|_| Err(NO_ANSWER.into()));
            cleanup.disarm();
            r
        }
    }
}

/// The C side of an exposed handler.
struct HandlerCb {
    f: HandlerFn,
    ud: Arc<UserData>,
    ctx: Arc<NodeCtx>,
}

/// Builds a core handler from C functions. `ud` is tracked by the node.
pub(crate) fn make_handler(
    ctx: &Arc<NodeCtx>,
    f: HandlerFn,
    authorize: peernet_authorize_fn,
    ud: &Arc<UserData>,
) -> Handler {
    let cb = Arc::new(HandlerCb {
        f,
        ud: Arc::clone(ud),
        ctx: Arc::clone(ctx),
    });
    let body_cb = Arc::clone(&cb);
    let handler = Handler::from_async(move |req: Request| {
        let cb = Arc::clone(&body_cb);
        async move {
            let Some(guard) = cb.ctx.enter() else {
                return Err(NODE_CLOSING.into());
            };
            let reply = (req.kind == RequestKind::Call).then(|| {
                let (tx, rx) = oneshot::channel();
                (cb.ctx.responders.register(tx), rx)
            });
            let from = key_out(&req.from);
            let body = req.body;
            dispatch(guard, reply, move |token| {
                // SAFETY: C handler called with pointers valid for the call; user_data
                // is passed back untouched (contract of peernet_expose).
                unsafe {
                    (cb.f)(
                        cb.ud.ptr(),
                        &from,
                        body.as_ptr(),
                        body.len(),
                        as_responder(token),
                    )
                };
            })
            .await
        }
    });
    match authorize {
        None => handler,
        Some(auth) => handler.with_authorize(move |k: &Key| {
            let Some(guard) = cb.ctx.enter() else {
                return false;
            };
            let key = key_out(k);
            // SAFETY: C predicate called with a key valid for the call.
            guard.run(|| unsafe { auth(cb.ud.ptr(), &key) })
        }),
    }
}

/// Builds the core RPC dispatcher from a C function. `ud` is tracked by the node.
pub(crate) fn make_rpc_dispatcher(
    ctx: &Arc<NodeCtx>,
    f: RpcFn,
    ud: &Arc<UserData>,
) -> RpcDispatcher {
    let ud = Arc::clone(ud);
    let ctx = Arc::clone(ctx);
    RpcDispatcher::from_async(move |call: RpcCall| {
        let ud = Arc::clone(&ud);
        let ctx = Arc::clone(&ctx);
        async move {
            let (Ok(module), Ok(function)) =
                (CString::new(call.module), CString::new(call.function))
            else {
                return Err("module and function names must not contain NUL".into());
            };
            let Some(guard) = ctx.enter() else {
                return Err(NODE_CLOSING.into());
            };
            let (tx, rx) = oneshot::channel();
            let reply = Some((ctx.responders.register(tx), rx));
            let from = key_out(&call.from);
            let args = call.args;
            dispatch(guard, reply, move |token| {
                // SAFETY: C dispatcher called with pointers valid for the call.
                unsafe {
                    f(
                        ud.ptr(),
                        &from,
                        module.as_ptr(),
                        function.as_ptr(),
                        args.as_ptr(),
                        args.len(),
                        as_responder(token),
                    )
                };
            })
            .await
        }
    })
}

/// Checks a required callback pointer.
pub(crate) fn required<F>(f: Option<F>, what: &str) -> Result<F, peernet_core::Error> {
    f.ok_or_else(|| crate::guard::invalid(format!("{what} is NULL")))
}

/// Shorthand for the handler function type.
pub(crate) type HandlerFn = <peernet_handler_fn as IntoIterator>::Item;
/// Shorthand for the call_async completion type.
pub(crate) type CallFn = <crate::types::peernet_call_fn as IntoIterator>::Item;
/// Shorthand for the RPC function type.
pub(crate) type RpcFn = <peernet_rpc_fn as IntoIterator>::Item;
