//! Routers that group routes under a prefix, with shared tags, responses and callbacks,
//! as FastAPI's `APIRouter`; they nest and merge.

use std::convert::Infallible;

use axum::extract::Request;
use axum::response::IntoResponse;
use schemars::JsonSchema;
use tower::{Layer, Service};

use crate::callback::CallbackSpec;
use crate::depends::{Dependency, ExtractInputs};
use crate::invoke::DependencyRunner;
use crate::response_docs::ExtraResponse;
use crate::routing::Route;

type RouterLayer<S> = Box<dyn FnOnce(axum::Router<S>) -> axum::Router<S> + Send>;

pub(crate) enum Entry<S> {
    Route(String, Route<S>),
    Router(Router<S>),
    Axum(axum::Router<S>),
}

/// A group of routes: FastAPI's `APIRouter`.
///
/// ```
/// use roundtrip::{Router, get};
/// async fn read_item() -> &'static str { "item" }
/// let items: Router = Router::new()
///     .prefix("/items")
///     .tag("items")
///     .response_status(404, "Not found")
///     .route("/{item_id}", get(read_item));
/// ```
#[must_use = "a router does nothing until it is included in an App"]
pub struct Router<S = ()> {
    pub(crate) prefix: String,
    pub(crate) tags: Vec<String>,
    pub(crate) responses: Vec<ExtraResponse>,
    pub(crate) callbacks: Vec<CallbackSpec>,
    pub(crate) deprecated: bool,
    pub(crate) hidden: bool,
    pub(crate) entries: Vec<Entry<S>>,
    pub(crate) layers: Vec<RouterLayer<S>>,
    pub(crate) dependencies: Vec<DependencyRunner<S>>,
    pub(crate) body_limit: Option<usize>,
}

impl<S> Default for Router<S> {
    fn default() -> Self {
        Router {
            prefix: String::new(),
            tags: Vec::new(),
            responses: Vec::new(),
            callbacks: Vec::new(),
            deprecated: false,
            hidden: false,
            entries: Vec::new(),
            layers: Vec::new(),
            dependencies: Vec::new(),
            body_limit: None,
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Router<S> {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// A path prefix for every route (`/items`). It must start with `/` and not end with
    /// one; the app refuses it when it is built otherwise.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// A tag given to every operation.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// A response with a JSON body of type `T` documented on every operation.
    pub fn response<T: JsonSchema>(mut self, status: u16, description: &str) -> Self {
        self.responses
            .push(ExtraResponse::with_body::<T>(status, description));
        self
    }

    /// A response without a described body documented on every operation.
    pub fn response_status(mut self, status: u16, description: &str) -> Self {
        self.responses
            .push(ExtraResponse::status_only(status, description));
        self
    }

    /// A callback attached to every operation.
    pub fn callback<P, R>(mut self, callback: crate::Callback<P, R>) -> Self {
        self.callbacks.push(callback.into_spec());
        self
    }

    /// Marks every operation deprecated.
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    /// Keeps every operation out of the document; they are still served.
    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    /// A dependency run for every operation of this router, included routers too
    /// (FastAPI's `APIRouter(dependencies=[Depends(dep)])`): its inputs are documented on
    /// each operation (parameters, security), its checks enforced, its value dropped.
    /// Dependencies run in the order declared, the outer routers' first, before the
    /// handler's own arguments; their validation errors join the handler's in one 422.
    pub fn dependency<D>(mut self) -> Self
    where
        D: Dependency,
        D::Inputs: ExtractInputs<S>,
    {
        self.dependencies.push(DependencyRunner::of::<D>());
        self
    }

    /// The largest request body the router's operations accept, in bytes; larger ones
    /// get 413. It replaces the app's, and a route's `.body_limit(..)` replaces it.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }

    /// A websocket route (FastAPI's `@router.websocket(path)`), undocumented; see
    /// [`App::websocket`](crate::App::websocket).
    pub fn websocket<H, T>(self, path: &str, handler: H) -> Self
    where
        H: axum::handler::Handler<T, S>,
        T: 'static,
    {
        self.merge_axum(axum::Router::new().route(path, axum::routing::get(handler)))
    }

    /// Adds a route at `path` (relative to the prefix).
    pub fn route(mut self, path: impl Into<String>, route: Route<S>) -> Self {
        self.entries.push(Entry::Route(path.into(), route));
        self
    }

    /// Includes another router, its prefix appended to this one's: FastAPI's
    /// `include_router`.
    pub fn include(mut self, router: Router<S>) -> Self {
        self.entries.push(Entry::Router(router));
        self
    }

    /// Merges a plain axum router: its routes are served, with this router's prefix, but
    /// not documented.
    pub fn merge_axum(mut self, router: axum::Router<S>) -> Self {
        self.entries.push(Entry::Axum(router));
        self
    }

    /// Wraps every route of this router (included routers too) in a tower layer.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.layers
            .push(Box::new(move |router| router.layer(layer)));
        self
    }
}
