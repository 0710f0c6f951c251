//! The default-deny registry of named, peer-callable handlers.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::metrics::{CallStatus, HandlerCounters, HandlerMetrics};
use std::task::{Context, Poll};

use peernet_proto::envelope::validate_name;
use peernet_proto::rpc::RESERVED_PREFIX;
use peernet_proto::Key;

use crate::error::{Error, Result};

/// Whether a request is a call (the result goes back) or a send (it does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Request/reply.
    Call,
    /// Fire-and-forget; the handler's result is dropped.
    Send,
}

/// What a handler receives.
#[derive(Debug, Clone)]
pub struct Request {
    /// The authenticated caller.
    pub from: Key,
    /// The handler name called.
    pub name: String,
    /// The opaque body.
    pub body: Vec<u8>,
    /// Call or send.
    pub kind: RequestKind,
}

/// A handler's answer: the reply body, or an error message for the caller.
pub type HandlerResult = std::result::Result<Vec<u8>, String>;

/// A boxed future returning a handler result.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'static>>;

/// A request that names its authenticated caller.
pub trait Caller {
    /// The peer that sent the request.
    fn caller(&self) -> &Key;
}

impl Caller for Request {
    fn caller(&self) -> &Key {
        &self.from
    }
}

type AsyncFn<R> = dyn Fn(R) -> HandlerFuture + Send + Sync;
type BlockingFn<R> = dyn Fn(R) -> HandlerResult + Send + Sync;
type AuthorizeFn = dyn Fn(&Key) -> bool + Send + Sync;

enum Body<R> {
    Async(Arc<AsyncFn<R>>),
    Blocking(Arc<BlockingFn<R>>),
}

impl<R> Clone for Body<R> {
    fn clone(&self) -> Self {
        match self {
            Body::Async(f) => Body::Async(Arc::clone(f)),
            Body::Blocking(f) => Body::Blocking(Arc::clone(f)),
        }
    }
}

/// What running a handler gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Handled {
    Ok(Vec<u8>),
    Failed(String),
    Forbidden,
}

impl Handled {
    /// Its error status for the metrics (`None`: a result).
    pub(crate) fn status(&self) -> Option<CallStatus> {
        match self {
            Handled::Ok(_) => None,
            Handled::Forbidden => Some(CallStatus::Forbidden),
            Handled::Failed(_) => Some(CallStatus::HandlerFailed),
        }
    }
}

/// Set once the caller's trust is revoked (`Node::untrust`): from then on no handler
/// starts for that caller. Checked in the same synchronous step that invokes the
/// handler (for a blocking handler: on the blocking thread, right before it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Revoked(Arc<AtomicBool>);

impl Revoked {
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A handler: async (runs on the runtime) or blocking (runs with its authorize predicate
/// on the blocking pool, so it never stalls other connections), with an optional
/// authorize predicate. `R` is [`Request`] for named handlers and
/// [`RpcCall`](crate::RpcCall) for the RPC dispatcher.
pub struct Handler<R = Request> {
    body: Body<R>,
    authorize: Option<Arc<AuthorizeFn>>,
}

impl<R> Clone for Handler<R> {
    fn clone(&self) -> Self {
        Handler {
            body: self.body.clone(),
            authorize: self.authorize.clone(),
        }
    }
}

impl<R> fmt::Debug for Handler<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("blocking", &matches!(self.body, Body::Blocking(_)))
            .field("authorize", &self.authorize.is_some())
            .finish()
    }
}

fn authorized(pred: &Option<Arc<AuthorizeFn>>, from: &Key) -> bool {
    match pred {
        None => true,
        Some(p) => catch_unwind(AssertUnwindSafe(|| p(from))).unwrap_or_else(|_| {
            tracing::warn!(peer = %from.fingerprint(), "authorize predicate panicked; refusing");
            false
        }),
    }
}

impl<R: Caller + Send + 'static> Handler<R> {
    /// A handler that returns a future (it must not block the thread).
    pub fn from_async<F, Fut>(f: F) -> Handler<R>
    where
        F: Fn(R) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Handler {
            body: Body::Async(Arc::new(move |req| Box::pin(f(req)) as HandlerFuture)),
            authorize: None,
        }
    }

    /// A handler that may block; it and its predicate run on tokio's blocking pool.
    pub fn blocking<F>(f: F) -> Handler<R>
    where
        F: Fn(R) -> HandlerResult + Send + Sync + 'static,
    {
        Handler {
            body: Body::Blocking(Arc::new(f)),
            authorize: None,
        }
    }

    /// Restricts the handler to peers for which `pred` returns true (else `Forbidden`).
    /// A predicate that panics counts as a refusal.
    pub fn with_authorize<P>(mut self, pred: P) -> Handler<R>
    where
        P: Fn(&Key) -> bool + Send + Sync + 'static,
    {
        self.authorize = Some(Arc::new(pred));
        self
    }

    /// Authorizes and runs the handler; panics become `Failed("handler panicked")`, so no
    /// stack trace ever leaves the node. Once `revoked` is set, it never starts
    /// (`Forbidden`).
    pub(crate) async fn handle(&self, req: R, revoked: &Revoked) -> Handled {
        match &self.body {
            Body::Async(f) => {
                if revoked.is_set() || !authorized(&self.authorize, req.caller()) {
                    return Handled::Forbidden;
                }
                let fut = catch_unwind(AssertUnwindSafe(|| f(req)))
                    .unwrap_or_else(|_| Box::pin(async { Err("handler panicked".to_owned()) }));
                CatchUnwind(fut).await.into()
            }
            Body::Blocking(f) => {
                let f = Arc::clone(f);
                let auth = self.authorize.clone();
                let revoked = revoked.clone();
                let job = move || {
                    if revoked.is_set() || !authorized(&auth, req.caller()) {
                        return Handled::Forbidden;
                    }
                    catch_unwind(AssertUnwindSafe(|| f(req)))
                        .unwrap_or_else(|_| Err("handler panicked".to_owned()))
                        .into()
                };
                tokio::task::spawn_blocking(job)
                    .await
                    .unwrap_or_else(|_| Handled::Failed("handler panicked".to_owned()))
            }
        }
    }
}

impl From<HandlerResult> for Handled {
    fn from(r: HandlerResult) -> Handled {
        match r {
            Ok(v) => Handled::Ok(v),
            Err(m) => Handled::Failed(m),
        }
    }
}

/// Polls a handler future, turning a panic into a failed result (no stack trace leaves
/// the node).
pub(crate) struct CatchUnwind(HandlerFuture);

impl Future for CatchUnwind {
    type Output = HandlerResult;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<HandlerResult> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(p) => p,
            Err(_) => {
                tracing::warn!("handler panicked");
                Poll::Ready(Err("handler panicked".to_owned()))
            }
        }
    }
}

/// Name → handler and its metrics counters. Reads (every call) take a shared lock and
/// clone two `Arc`s. The counters live as long as the registration (bounded by what
/// the program exposes).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    map: RwLock<HashMap<String, (Handler, Arc<HandlerCounters>)>>,
}

impl Registry {
    pub(crate) fn expose(&self, name: &str, handler: Handler) -> Result<()> {
        validate_name(name).map_err(|e| Error::invalid(format!("handler name: {e}")))?;
        if name.starts_with(RESERVED_PREFIX) {
            return Err(Error::invalid(format!(
                "handler names starting with {RESERVED_PREFIX:?} are reserved"
            )));
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(name) {
            return Err(Error::AlreadyExists(format!("handler {name:?}")));
        }
        map.insert(name.to_owned(), (handler, Arc::default()));
        Ok(())
    }

    pub(crate) fn revoke(&self, name: &str) -> Result<()> {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.remove(name)
            .map(|_| ())
            .ok_or_else(|| Error::invalid(format!("no handler named {name:?}")))
    }

    pub(crate) fn get(&self, name: &str) -> Option<(Handler, Arc<HandlerCounters>)> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    /// Every handler's counters, by name (sorted).
    pub(crate) fn metrics(&self) -> Vec<HandlerMetrics> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<HandlerMetrics> = map.iter().map(|(n, (_, c))| c.snapshot(n)).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Drops every handler (node shutdown), releasing what they capture.
    pub(crate) fn clear(&self) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Request {
        Request {
            from: Key::from_bytes([1; 32]),
            name: "x".into(),
            body: b"b".to_vec(),
            kind: RequestKind::Call,
        }
    }

    #[test]
    fn registry_rules() {
        let r = Registry::default();
        let h: Handler = Handler::from_async(|req: Request| async move { Ok(req.body) });
        r.expose("echo", h.clone()).unwrap();
        assert!(matches!(
            r.expose("echo", h.clone()),
            Err(Error::AlreadyExists(_))
        ));
        assert!(matches!(
            r.expose("", h.clone()),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            r.expose(&"n".repeat(256), h.clone()),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            r.expose("peernet.rpc", h.clone()),
            Err(Error::InvalidArgument(_))
        ));
        assert!(r.get("echo").is_some());
        r.revoke("echo").unwrap();
        assert!(r.get("echo").is_none());
        assert!(r.revoke("echo").is_err());
    }

    #[tokio::test]
    async fn a_revoked_caller_starts_no_handler() {
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (r1, r2) = (Arc::clone(&ran), Arc::clone(&ran));
        let revoked = Revoked::default();
        revoked.set();
        let h: Handler = Handler::from_async(move |r: Request| {
            r1.fetch_add(1, Ordering::SeqCst);
            async move { Ok(r.body) }
        });
        assert_eq!(h.handle(req(), &revoked).await, Handled::Forbidden);
        let h: Handler = Handler::blocking(move |r: Request| {
            r2.fetch_add(1, Ordering::SeqCst);
            Ok(r.body)
        });
        assert_eq!(h.handle(req(), &revoked).await, Handled::Forbidden);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn panics_are_contained() {
        let failed = Handled::Failed("handler panicked".to_owned());
        let h: Handler = Handler::from_async(|_req| async move {
            if true {
                panic!("boom");
            }
            Ok(vec![])
        });
        assert_eq!(h.handle(req(), &Revoked::default()).await, failed);
        let h: Handler = Handler::from_async(|_req| -> std::future::Ready<HandlerResult> {
            panic!("before the future")
        });
        assert_eq!(h.handle(req(), &Revoked::default()).await, failed);
        let h: Handler = Handler::blocking(|_req| panic!("boom"));
        assert_eq!(h.handle(req(), &Revoked::default()).await, failed);
        let h: Handler =
            Handler::blocking(|r: Request| Ok(r.body)).with_authorize(|_| panic!("no"));
        assert_eq!(
            h.handle(req(), &Revoked::default()).await,
            Handled::Forbidden
        );
        let h: Handler = Handler::from_async(|r: Request| async move { Ok(r.body) })
            .with_authorize(|k| k.as_bytes()[0] == 1);
        assert_eq!(
            h.handle(req(), &Revoked::default()).await,
            Handled::Ok(b"b".to_vec())
        );
    }
}
