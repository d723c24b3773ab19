//! Routes: one or more documented operations on a path, built from handlers with
//! [`get`], [`post`] and friends, and refined with builder methods.
//!
//! A builder method (`.status(201)`, `.summary(..)`, `.tag(..)`) applies to the operation
//! added last, so `post(create_item).status(201).get(list_items)` reads as it runs.

use std::any::type_name;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::response::IntoResponse;
use axum::routing::{MethodFilter, MethodRouter};
use roundtrip_openapi::model::Method;
use schemars::JsonSchema;
use serde_json::Value;
use tower::{Layer, Service};

use crate::callback::CallbackSpec;
use crate::handler::Handler;
use crate::invoke::{DependencyRunner, OperationHandler, OperationSettings};
use crate::operation::OperationContext;
use crate::response_docs::ExtraResponse;
pub(crate) use crate::response_model::ResponseModelSpec;

/// Everything a user can say about one operation besides its handler.
#[derive(Clone, Default)]
pub(crate) struct OperationMeta {
    pub(crate) name: Option<String>,
    pub(crate) summary: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) operation_id: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) status: Option<u16>,
    pub(crate) response_description: Option<String>,
    pub(crate) media_type: Option<String>,
    pub(crate) deprecated: bool,
    pub(crate) hidden: bool,
    pub(crate) responses: Vec<ExtraResponse>,
    pub(crate) callbacks: Vec<CallbackSpec>,
    pub(crate) response_model: Option<ResponseModelSpec>,
    pub(crate) openapi_extra: Option<Value>,
    pub(crate) body_limit: Option<usize>,
}

type Install<S> = Box<
    dyn FnOnce(
            MethodRouter<S>,
            Arc<OperationSettings>,
            Arc<[DependencyRunner<S>]>,
        ) -> MethodRouter<S>
        + Send,
>;
type MethodLayer<S> = Box<dyn FnOnce(MethodRouter<S>) -> MethodRouter<S> + Send>;

/// One operation waiting for the app to be built.
pub(crate) struct PendingOperation<S> {
    pub(crate) method: Method,
    pub(crate) handler_type: &'static str,
    pub(crate) describe: fn(&mut OperationContext<'_>),
    pub(crate) install: Install<S>,
    pub(crate) meta: OperationMeta,
}

/// The documented operations of one path, with the layers that wrap them.
///
/// Made by [`get`], [`post`], [`put`], [`delete`], [`patch`], [`head`], [`options`],
/// [`trace`] and [`on`], and chained the same way: `get(read).put(replace)`.
#[must_use = "a route does nothing until it is added to an App or Router"]
pub struct Route<S = ()> {
    pub(crate) operations: Vec<PendingOperation<S>>,
    pub(crate) layers: Vec<MethodLayer<S>>,
}

impl<S> Default for Route<S> {
    fn default() -> Self {
        Route {
            operations: Vec::new(),
            layers: Vec::new(),
        }
    }
}

fn filter_for(method: Method) -> MethodFilter {
    match method {
        Method::Get => MethodFilter::GET,
        Method::Put => MethodFilter::PUT,
        Method::Post => MethodFilter::POST,
        Method::Delete => MethodFilter::DELETE,
        Method::Options => MethodFilter::OPTIONS,
        Method::Head => MethodFilter::HEAD,
        Method::Patch => MethodFilter::PATCH,
        Method::Trace => MethodFilter::TRACE,
    }
}

macro_rules! method_fns {
    ($($name:ident => $method:ident),* $(,)?) => {
        $(
            #[doc = concat!("A route with a documented `", stringify!($method), "` operation.")]
            pub fn $name<H, T, S>(handler: H) -> Route<S>
            where
                H: Handler<T, S>,
                T: 'static,
                S: Clone + Send + Sync + 'static,
            {
                Route::default().on(Method::$method, handler)
            }
        )*

        impl<S: Clone + Send + Sync + 'static> Route<S> {
            $(
                #[doc = concat!("Adds a documented `", stringify!($method), "` operation.")]
                pub fn $name<H, T>(self, handler: H) -> Self
                where
                    H: Handler<T, S>,
                    T: 'static,
                {
                    self.on(Method::$method, handler)
                }
            )*
        }
    };
}

method_fns!(
    get => Get,
    post => Post,
    put => Put,
    delete => Delete,
    patch => Patch,
    head => Head,
    options => Options,
    trace => Trace,
);

/// A route with a documented operation on any method.
pub fn on<H, T, S>(method: Method, handler: H) -> Route<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    Route::default().on(method, handler)
}

impl<S: Clone + Send + Sync + 'static> Route<S> {
    /// Adds a documented operation on `method`.
    pub fn on<H, T>(mut self, method: Method, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let install: Install<S> = Box::new(move |router, settings, dependencies| {
            let body_limit = settings.body_limit;
            let handler = OperationHandler {
                handler,
                operation: std::sync::Arc::new(crate::invoke::Operation {
                    settings,
                    dependencies,
                }),
                _marker: std::marker::PhantomData,
            };
            match body_limit {
                Some(limit) => router.on(
                    filter_for(method),
                    axum::handler::Handler::layer(handler, DefaultBodyLimit::max(limit)),
                ),
                None => router.on(filter_for(method), handler),
            }
        });
        self.operations.push(PendingOperation {
            method,
            handler_type: type_name::<H>(),
            describe: H::describe,
            install,
            meta: OperationMeta::default(),
        });
        self
    }

    fn last(&mut self) -> &mut OperationMeta {
        // A route made by `get`, `post`, ... always has an operation; an empty
        // `Route::default()` gets a hidden placeholder so settings are ignored, not a panic.
        if self.operations.is_empty() {
            self.operations.push(PendingOperation {
                method: Method::Get,
                handler_type: "",
                describe: |_| {},
                install: Box::new(|r, _, _| r),
                meta: OperationMeta {
                    hidden: true,
                    ..OperationMeta::default()
                },
            });
        }
        let last = self.operations.len() - 1;
        &mut self.operations[last].meta
    }

    /// The function name FastAPI would use for the operation id and summary, when the
    /// handler's own name is not the one to publish (closures have none).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.last().name = Some(name.into());
        self
    }

    /// The summary; by default the handler's name in title case (`Create Invoice`).
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.last().summary = Some(summary.into());
        self
    }

    /// The description; by default the handler's doc comment (with `#[roundtrip::handler]`).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.last().description = Some(description.into());
        self
    }

    /// The operation id; by default FastAPI's `<name><path>_<method>` scheme.
    pub fn operation_id(mut self, id: impl Into<String>) -> Self {
        self.last().operation_id = Some(id.into());
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.last().tags.push(tag.into());
        self
    }

    /// The status of a successful response (FastAPI's `status_code=`): documented, and
    /// put on every `200 OK` the handler answers. For 204 and 304 the body is dropped.
    pub fn status(mut self, status: u16) -> Self {
        self.last().status = Some(status);
        self
    }

    /// The description of the successful response; `Successful Response` by default.
    pub fn response_description(mut self, description: impl Into<String>) -> Self {
        self.last().response_description = Some(description.into());
        self
    }

    /// The media type of the successful response's body, as documented. For outputs that
    /// choose theirs at run time ([`Streaming`](crate::response::Streaming),
    /// [`FileResponse`](crate::response::FileResponse), raw bodies), which are otherwise
    /// documented as `application/octet-stream`: `.media_type("text/event-stream")`.
    pub fn media_type(mut self, media_type: impl Into<String>) -> Self {
        self.last().media_type = Some(media_type.into());
        self
    }

    /// Marks the operation deprecated.
    pub fn deprecated(mut self) -> Self {
        self.last().deprecated = true;
        self
    }

    /// Keeps the operation out of the document (FastAPI's `include_in_schema=False`).
    /// It is still served.
    pub fn hidden(mut self) -> Self {
        self.last().hidden = true;
        self
    }

    /// Documents another response with a JSON body of type `T` (FastAPI's
    /// `responses={409: {"model": Message, "description": ...}}`).
    pub fn response<T: JsonSchema>(mut self, status: u16, description: &str) -> Self {
        self.last()
            .responses
            .push(ExtraResponse::with_body::<T>(status, description));
        self
    }

    /// Documents another response that has no body, or whose body is not described.
    pub fn response_status(mut self, status: u16, description: &str) -> Self {
        self.last()
            .responses
            .push(ExtraResponse::status_only(status, description));
        self
    }

    /// Attaches a callback: documented under the operation's `callbacks`, and available
    /// to the handler as a [`Notify`](crate::Notify) sender.
    pub fn callback<P, R>(mut self, callback: crate::Callback<P, R>) -> Self {
        self.last().callbacks.push(callback.into_spec());
        self
    }

    /// Filters the answer through `M` (FastAPI's `response_model=`): the handler's JSON
    /// is read into `M` and written back, so fields `M` does not have are dropped (a
    /// password, say), and `M` is what the document shows. An answer that does not fit
    /// `M` is a bug of the handler: it is logged and the client gets a 500.
    pub fn response_model<M>(mut self) -> Self
    where
        M: serde::Serialize + serde::de::DeserializeOwned + JsonSchema + 'static,
    {
        let exclude_unset = self
            .last()
            .response_model
            .as_ref()
            .is_some_and(|m| m.exclude_unset);
        self.last().response_model = Some(ResponseModelSpec::of::<M>(exclude_unset));
        self
    }

    /// With [`response_model`](Self::response_model): leaves out the fields the handler's
    /// answer did not set (FastAPI's `response_model_exclude_unset=True`), so defaults
    /// are not filled in. Fields only answers have (computed ones) are always sent.
    pub fn response_model_exclude_unset(mut self) -> Self {
        if let Some(model) = &mut self.last().response_model {
            model.exclude_unset = true;
        }
        self
    }

    /// Merges `extra` into the operation's document (FastAPI's `openapi_extra=`): `x-`
    /// extensions, or any key of the Operation Object, merged key by key.
    pub fn openapi_extra(mut self, extra: Value) -> Self {
        self.last().openapi_extra = Some(extra);
        self
    }

    /// The largest request body this operation accepts, in bytes (FastAPI's
    /// `max_body_size=`); larger ones get 413. It replaces the app's and the router's.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.last().body_limit = Some(bytes);
        self
    }

    /// Wraps every operation of this route in a tower layer, as axum's
    /// `MethodRouter::layer`.
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

    /// Wraps the operations in a layer that runs only for requests that matched them,
    /// as axum's `MethodRouter::route_layer`.
    pub fn route_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.layers
            .push(Box::new(move |router| router.route_layer(layer)));
        self
    }
}
