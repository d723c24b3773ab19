//! Lifespan: typed state built before the server accepts its first connection and torn
//! down after it has drained, FastAPI's `lifespan=`.
//!
//! ```
//! use std::convert::Infallible;
//! use roundtrip::{App, Json, Lifespan, get};
//!
//! struct Db { url: String }
//!
//! async fn status(Lifespan(db): Lifespan<Db>) -> Json<String> {
//!     Json(db.url.clone())
//! }
//!
//! let app = App::new()
//!     .lifespan(
//!         || async { Ok::<_, Infallible>(Db { url: "sqlite://app.db".into() }) },
//!         |db| async move { drop(db) /* close connections */ },
//!     )
//!     .route("/status", get(status));
//! # app.into_router().expect("the app builds");
//! ```
//!
//! `App::serve` (and `run`) start it before listening and stop it after the last request;
//! `roundtrip_test::TestClient::start` runs it around a test, as FastAPI's
//! `with TestClient(app)` does. The state of a mounted app's lifespan is started after
//! its parent's and stopped before it.

use std::future::Future;
use std::sync::{Arc, RwLock};

use axum::extract::FromRequestParts;
use axum::response::Response;
use http::request::Parts;

use crate::handler::BoxFuture;
use crate::operation::OperationInput;

/// The state the app's lifespan built, as a handler (or dependency) argument.
#[derive(Debug)]
pub struct Lifespan<T>(pub Arc<T>);

impl<T> Clone for Lifespan<T> {
    fn clone(&self) -> Self {
        Lifespan(self.0.clone())
    }
}

impl<T> std::ops::Deref for Lifespan<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Where the started state of one lifespan lives, shared with every request.
pub(crate) struct LifespanSlot<T>(Arc<RwLock<Option<Arc<T>>>>);

impl<T> Clone for LifespanSlot<T> {
    fn clone(&self) -> Self {
        LifespanSlot(self.0.clone())
    }
}

impl<T> LifespanSlot<T> {
    fn new() -> Self {
        LifespanSlot(Arc::new(RwLock::new(None)))
    }

    fn get(&self) -> Option<Arc<T>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, value: Option<Arc<T>>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
    }
}

impl<T, S> FromRequestParts<S> for Lifespan<T>
where
    T: Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let started = parts
            .extensions
            .get::<LifespanSlot<T>>()
            .and_then(LifespanSlot::get);
        match started {
            Some(state) => Ok(Lifespan(state)),
            None => Err(crate::error::operation_error_response(&format!(
                "`Lifespan<{}>` was asked for, but no lifespan of the app has started one: give the app `.lifespan(..)` building it, and serve it with `App::serve`/`run` or test it with `TestClient::start`",
                std::any::type_name::<T>()
            ))),
        }
    }
}

impl<T> OperationInput for Lifespan<T> {}

/// Stops a started lifespan.
pub(crate) type Stop = Box<dyn FnOnce() -> BoxFuture<()> + Send>;

/// One lifespan, type-erased: starting it yields how to stop it.
pub(crate) trait LifespanHook: Send + Sync {
    fn start(&self) -> BoxFuture<Result<Stop, String>>;
}

struct Hook<T, F, D> {
    slot: LifespanSlot<T>,
    startup: F,
    shutdown: Arc<D>,
}

impl<T, E, F, Fut, D, DFut> LifespanHook for Hook<T, F, D>
where
    T: Send + Sync + 'static,
    E: std::fmt::Display,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    D: Fn(Arc<T>) -> DFut + Send + Sync + 'static,
    DFut: Future<Output = ()> + Send + 'static,
{
    fn start(&self) -> BoxFuture<Result<Stop, String>> {
        let startup = (self.startup)();
        let slot = self.slot.clone();
        let shutdown = self.shutdown.clone();
        Box::pin(async move {
            let state = Arc::new(startup.await.map_err(|e| e.to_string())?);
            slot.set(Some(state.clone()));
            let stop: Stop = Box::new(move || {
                Box::pin(async move {
                    slot.set(None);
                    shutdown(state).await;
                })
            });
            Ok(stop)
        })
    }
}

/// A lifespan declared on an app, with the request extension that hands its state to
/// handlers.
pub(crate) struct Declared {
    pub(crate) hook: Arc<dyn LifespanHook>,
    pub(crate) layer: Box<dyn FnOnce(axum::Router) -> axum::Router + Send>,
}

pub(crate) fn declare<T, E, F, Fut, D, DFut>(startup: F, shutdown: D) -> Declared
where
    T: Send + Sync + 'static,
    E: std::fmt::Display,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    D: Fn(Arc<T>) -> DFut + Send + Sync + 'static,
    DFut: Future<Output = ()> + Send + 'static,
{
    let slot = LifespanSlot::<T>::new();
    let layer_slot = slot.clone();
    Declared {
        hook: Arc::new(Hook {
            slot,
            startup,
            shutdown: Arc::new(shutdown),
        }),
        layer: Box::new(move |router| router.layer(axum::Extension(layer_slot))),
    }
}

/// The lifespans of a started app; [`shutdown`](Self::shutdown) stops them.
#[must_use = "a started app stops its lifespan with `.shutdown().await`"]
pub struct Started {
    stops: Vec<Stop>,
}

impl Started {
    /// Stops every lifespan, the last started first.
    pub async fn shutdown(mut self) {
        while let Some(stop) = self.stops.pop() {
            stop().await;
        }
    }
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("lifespans", &self.stops.len())
            .finish()
    }
}

/// Why an app's lifespan failed to start (returned by
/// [`BuiltApp::startup`](crate::BuiltApp::startup)): the startup function's error, as
/// its `Display` wrote it. The lifespans already started were stopped.
#[derive(Debug, Clone)]
pub struct StartupError {
    reason: String,
}

impl StartupError {
    /// What the failing startup function answered, as its error's `Display` wrote it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the app's lifespan failed to start: {}", self.reason)
    }
}

impl std::error::Error for StartupError {}

/// Starts `hooks` in order; if one fails, those already started are stopped and the
/// error is returned.
pub(crate) async fn start_all(hooks: &[Arc<dyn LifespanHook>]) -> Result<Started, StartupError> {
    let mut started = Started { stops: Vec::new() };
    for hook in hooks {
        match hook.start().await {
            Ok(stop) => started.stops.push(stop),
            Err(err) => {
                started.shutdown().await;
                return Err(StartupError { reason: err });
            }
        }
    }
    Ok(started)
}
