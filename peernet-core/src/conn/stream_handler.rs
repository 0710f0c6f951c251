//! Stream handlers: what runs when a trusted peer opens a stream to a name this node
//! exposes, and the registry of them.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use peernet_proto::envelope::validate_name;
use peernet_proto::Key;

use super::stream::Stream;
use crate::error::{Error, Result};

type AsyncFn = dyn Fn(Stream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync;
type BlockingFn = dyn Fn(Stream) + Send + Sync;
type AuthorizeFn = dyn Fn(&Key) -> bool + Send + Sync;

#[derive(Clone)]
enum Body {
    Async(Arc<AsyncFn>),
    Blocking(Arc<BlockingFn>),
}

/// What runs for each stream a peer opens to an exposed name: an async function (on
/// the runtime) or a blocking one (on tokio's blocking pool), with an optional
/// authorize predicate. Only trusted peers reach a handler at all (default deny); the
/// predicate narrows that further, and a refused stream is reset with code 1
/// (refused). The handler owns the [`Stream`]: when it returns, the stream is
/// dropped (reset unless it was finished).
#[derive(Clone)]
pub struct StreamHandler {
    body: Body,
    authorize: Option<Arc<AuthorizeFn>>,
}

impl fmt::Debug for StreamHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamHandler")
            .field("blocking", &matches!(self.body, Body::Blocking(_)))
            .field("authorize", &self.authorize.is_some())
            .finish()
    }
}

impl StreamHandler {
    /// A handler that returns a future (it must not block the thread).
    pub fn from_async<F, Fut>(f: F) -> StreamHandler
    where
        F: Fn(Stream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        StreamHandler {
            body: Body::Async(Arc::new(move |s| Box::pin(f(s)))),
            authorize: None,
        }
    }

    /// A handler that may block (use the stream's `*_blocking` methods); it and its
    /// predicate run on tokio's blocking pool.
    pub fn blocking<F>(f: F) -> StreamHandler
    where
        F: Fn(Stream) + Send + Sync + 'static,
    {
        StreamHandler {
            body: Body::Blocking(Arc::new(f)),
            authorize: None,
        }
    }

    /// Restricts the handler to peers for which `pred` returns true; other streams
    /// are reset with code 1 (refused). A predicate that panics refuses.
    pub fn with_authorize<P>(mut self, pred: P) -> StreamHandler
    where
        P: Fn(&Key) -> bool + Send + Sync + 'static,
    {
        self.authorize = Some(Arc::new(pred));
        self
    }

    fn authorized(&self, peer: &Key) -> bool {
        match &self.authorize {
            None => true,
            Some(p) => catch_unwind(AssertUnwindSafe(|| p(peer))).unwrap_or(false),
        }
    }

    /// Authorizes `peer`, then runs the handler on the stream (`accept` is called
    /// first, so nothing flows before the predicate said yes), off the driver. A
    /// handler that panics drops its stream (so it is reset).
    pub(crate) fn spawn(&self, stream: Stream, accept: impl FnOnce(&Stream) + Send + 'static) {
        let this = self.clone();
        let peer = stream.peer();
        match &self.body {
            Body::Async(f) => {
                let f = Arc::clone(f);
                tokio::spawn(async move {
                    if !this.authorized(&peer) {
                        return refuse(stream);
                    }
                    accept(&stream);
                    let Ok(fut) = catch_unwind(AssertUnwindSafe(|| f(stream))) else {
                        return;
                    };
                    let _ = futures_catch(fut).await;
                });
            }
            Body::Blocking(f) => {
                let f = Arc::clone(f);
                tokio::task::spawn_blocking(move || {
                    if !this.authorized(&peer) {
                        return refuse(stream);
                    }
                    accept(&stream);
                    let _ = catch_unwind(AssertUnwindSafe(|| f(stream)));
                });
            }
        }
    }
}

fn refuse(stream: Stream) {
    stream.reset(
        peernet_proto::stream::RESET_REFUSED,
        &format!("not authorized for stream handler {:?}", stream.name()),
    );
}

/// Runs a handler's future, containing a panic (the stream inside it is dropped).
async fn futures_catch(fut: Pin<Box<dyn Future<Output = ()> + Send>>) -> std::thread::Result<()> {
    struct Catch(Pin<Box<dyn Future<Output = ()> + Send>>);
    impl Future for Catch {
        type Output = std::thread::Result<()>;
        fn poll(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Self::Output> {
            let f = &mut self.0;
            match catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(cx))) {
                Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
                Ok(std::task::Poll::Ready(())) => std::task::Poll::Ready(Ok(())),
                Err(p) => std::task::Poll::Ready(Err(p)),
            }
        }
    }
    Catch(fut).await
}

/// The stream handlers a node exposes, by name.
#[derive(Debug, Default)]
pub(crate) struct StreamRegistry {
    map: RwLock<HashMap<String, StreamHandler>>,
}

impl StreamRegistry {
    pub(crate) fn expose(&self, name: &str, handler: StreamHandler) -> Result<()> {
        validate_name(name).map_err(|e| Error::invalid(format!("stream handler name: {e}")))?;
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(name) {
            return Err(Error::AlreadyExists(format!("stream handler {name:?}")));
        }
        map.insert(name.to_owned(), handler);
        Ok(())
    }

    pub(crate) fn revoke(&self, name: &str) -> Result<()> {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.remove(name)
            .map(|_| ())
            .ok_or_else(|| Error::invalid(format!("no stream handler named {name:?}")))
    }

    /// Drops every handler (at shutdown: a handler may hold what holds the node).
    pub(crate) fn clear(&self) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub(crate) fn get(&self, name: &str) -> Option<StreamHandler> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }
}
