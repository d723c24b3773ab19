//! What an app has around its routes: its lifespan, middleware, exception handlers,
//! mounted apps and static files, its root path behind a proxy, and how it names
//! operations. Each is declared on [`App`] and applied by `App::build`.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::response::IntoResponse;
use roundtrip_openapi::model::Method;

use super::{App, BuildError, BuiltApp};
use crate::depends::{Dependency, ExtractInputs};
use crate::exceptions::ExceptionHandlers;
use crate::lifespan::LifespanHook;

type RouterLayer = Box<dyn FnOnce(axum::Router) -> axum::Router + Send>;
type BuildMounted = Box<dyn FnOnce() -> Result<BuiltApp, BuildError> + Send>;

/// What a custom operation id function is told about an operation.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct OperationInfo<'a> {
    /// The handler's function name (or the route's `.name(..)`).
    pub name: &'a str,
    /// The path as documented (`/items/{item_id}`).
    pub path: &'a str,
    /// The method.
    pub method: Method,
    /// The operation's tags: the routers' first, then the route's.
    pub tags: &'a [String],
}

pub(crate) type OperationIds = Arc<dyn Fn(&OperationInfo<'_>) -> String + Send + Sync>;

/// Something served under a path prefix beside the routes.
pub(crate) enum Mount {
    /// A whole app, with its own document and docs.
    App(String, BuildMounted),
    /// A directory of files.
    Static(String, PathBuf),
}

#[derive(Default)]
pub(crate) struct AppSetup {
    /// Tower layers over everything, the innermost first.
    pub(crate) layers: Vec<RouterLayer>,
    pub(crate) exceptions: ExceptionHandlers,
    pub(crate) lifespans: Vec<Arc<dyn LifespanHook>>,
    pub(crate) lifespan_layers: Vec<RouterLayer>,
    pub(crate) mounts: Vec<Mount>,
    pub(crate) root_path: Option<String>,
    pub(crate) operation_ids: Option<OperationIds>,
}

impl<S: Clone + Send + Sync + 'static> App<S> {
    /// Builds typed state before the server accepts its first connection, and hands it
    /// back to `shutdown` after the server has drained: FastAPI's `lifespan=`. Handlers
    /// and dependencies read it with [`Lifespan<T>`](crate::Lifespan).
    ///
    /// If `startup` fails, the server does not start, and says why.
    pub fn lifespan<T, E, F, Fut, D, DFut>(mut self, startup: F, shutdown: D) -> Self
    where
        T: Send + Sync + 'static,
        E: std::fmt::Display,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        D: Fn(Arc<T>) -> DFut + Send + Sync + 'static,
        DFut: Future<Output = ()> + Send + 'static,
    {
        let declared = crate::lifespan::declare(startup, shutdown);
        self.setup.lifespans.push(declared.hook);
        self.setup.lifespan_layers.push(declared.layer);
        self
    }

    /// Answers errors of type `E` with `handler`: FastAPI's `@app.exception_handler(E)`.
    ///
    /// `E` is an error a handler raised through [`roundtrip::Error`](crate::Error), or
    /// [`HttpError`](crate::HttpError) (including the app's own 404 and 405), or
    /// [`RequestValidationError`](crate::RequestValidationError) (every 422).
    pub fn exception_handler<E, F, R>(mut self, handler: F) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
        F: Fn(&E) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        self.setup.exceptions.insert(handler);
        self
    }

    /// A dependency run for every operation of the app (FastAPI's
    /// `FastAPI(dependencies=[Depends(dep)])`): its inputs are documented on each, its
    /// checks enforced on each, and its value dropped.
    pub fn dependency<D>(mut self) -> Self
    where
        D: Dependency,
        D::Inputs: ExtractInputs<S>,
    {
        self.root = self.root.dependency::<D>();
        self
    }

    /// Names every operation with `f` (FastAPI's `generate_unique_id_function`), unless a
    /// route sets its own `.operation_id(..)`.
    ///
    /// ```
    /// # use roundtrip::App;
    /// // `{tag}-{name}`, or the name alone for untagged operations.
    /// let app = App::new().operation_ids(|op| match op.tags.first() {
    ///     Some(tag) => format!("{tag}-{}", op.name),
    ///     None => op.name.to_owned(),
    /// });
    /// ```
    pub fn operation_ids(
        mut self,
        f: impl Fn(&OperationInfo<'_>) -> String + Send + Sync + 'static,
    ) -> Self {
        self.setup.operation_ids = Some(Arc::new(f));
        self
    }

    /// The path prefix a proxy in front of the app strips (FastAPI's `root_path`): the
    /// document lists it as a server and the docs pages load everything under it. The
    /// routes are still matched without it. A request's `X-Forwarded-Prefix` header does
    /// the same for that request when no root path is set.
    pub fn root_path(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.setup.root_path = Some(prefix.trim_end_matches('/').to_owned());
        self
    }

    /// Serves another app under `path` (FastAPI's `app.mount(path, subapp)`), with its own
    /// routes, document (`{path}/openapi.json`, with `path` as its server), docs and
    /// fallbacks. The outer app's middleware covers it; its own lifespan runs too.
    pub fn mount<T: Clone + Send + Sync + 'static>(mut self, path: &str, app: App<T>) -> Self {
        self.setup
            .mounts
            .push(Mount::App(path.to_owned(), Box::new(move || app.build())));
        self
    }

    /// Serves the files of `dir` under `path` (Starlette's `StaticFiles`), with their
    /// media types; a missing file answers 404 `{"detail": "Not Found"}`. Paths that
    /// leave the directory are refused.
    pub fn static_files(mut self, path: &str, dir: impl Into<PathBuf>) -> Self {
        self.setup
            .mounts
            .push(Mount::Static(path.to_owned(), dir.into()));
        self
    }

    /// A websocket route (FastAPI's `@app.websocket(path)`): `handler` is an axum
    /// handler taking a [`WebSocketUpgrade`](crate::ws::WebSocketUpgrade). Websockets
    /// are not part of the OpenAPI document.
    pub fn websocket<H, T>(mut self, path: &str, handler: H) -> Self
    where
        H: axum::handler::Handler<T, S>,
        T: 'static,
    {
        self.root = self
            .root
            .merge_axum(axum::Router::new().route(path, axum::routing::get(handler)));
        self
    }
}
