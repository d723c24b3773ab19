//! Running one operation for one request: the app's and routers' dependencies, the
//! handler, then what follows it (cleanups, the route's status and response model, the
//! app's exception handlers, background tasks), with panics answered as 500.
//!
//! The plain path (no scope, no app-level dependencies) adds only a panic guard around
//! the handler; everything else is paid for by the operations that use it.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::response::Response;
use http::request::Parts;
use http::{Method, StatusCode, Uri};

use crate::delivery::{OperationCallbacks, PendingSends};
use crate::depends::{Dependency, Depends, ExtractInputs};
use crate::error::Rejection;
use crate::exceptions::ExceptionHandlers;
use crate::extract::{OperationRequest, RequestBodySlot};
use crate::handler::{BoxFuture, Collector, EarlierErrors, Handler};
use crate::operation::{OperationContext, OperationInput};
use crate::response_model::ResponseModel;
use crate::scope::{Outcome, RequestScope, ScopeGuard, catch_panic};

type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Rejection>> + Send + 'a>>;

/// A dependency declared on the app or a router (FastAPI's `dependencies=[...]`): run for
/// every operation it covers, its value dropped, its inputs documented on each.
pub(crate) struct DependencyRunner<S> {
    pub(crate) describe: fn(&mut OperationContext<'_>),
    pub(crate) run: for<'a> fn(&'a mut Parts, &'a S) -> RunFuture<'a>,
}

impl<S> Clone for DependencyRunner<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for DependencyRunner<S> {}

impl<S: Send + Sync + 'static> DependencyRunner<S> {
    pub(crate) fn of<D>() -> Self
    where
        D: Dependency,
        D::Inputs: ExtractInputs<S>,
    {
        DependencyRunner {
            describe: <Depends<D> as OperationInput>::describe,
            run: run_dependency::<D, S>,
        }
    }
}

fn run_dependency<'a, D, S>(parts: &'a mut Parts, state: &'a S) -> RunFuture<'a>
where
    D: Dependency,
    D::Inputs: ExtractInputs<S>,
    S: Send + Sync,
{
    Box::pin(async move {
        Depends::<D>::from_request_parts(parts, state)
            .await
            .map(drop)
    })
}

/// Runs a roundtrip [`Handler`] as an axum handler, with the per-operation settings and
/// the inherited dependencies fixed when the app was built.
///
/// axum clones the handler for every request: everything it holds is behind one `Arc`, so
/// that clone is one reference count (a shared cache line, on every core), not several.
pub(crate) struct OperationHandler<H, T, S> {
    pub(crate) handler: H,
    pub(crate) operation: Arc<Operation<S>>,
    pub(crate) _marker: PhantomData<fn() -> T>,
}

/// What an operation's handler needs besides the function.
pub(crate) struct Operation<S> {
    pub(crate) settings: Arc<OperationSettings>,
    pub(crate) dependencies: Arc<[DependencyRunner<S>]>,
}

impl<H: Clone, T, S> Clone for OperationHandler<H, T, S> {
    fn clone(&self) -> Self {
        OperationHandler {
            handler: self.handler.clone(),
            operation: self.operation.clone(),
            _marker: PhantomData,
        }
    }
}

impl<H, T, S> axum::handler::Handler<T, S> for OperationHandler<H, T, S>
where
    H: Handler<T, S>,
    S: Clone + Send + Sync + 'static,
    T: 'static,
{
    type Future = BoxFuture<Response>;

    fn call(self, mut req: Request, state: S) -> Self::Future {
        let operation = self.operation;
        if operation.settings.needs_extension {
            let settings = &operation.settings;
            req.extensions_mut().insert(OperationRequest {
                senders: settings.callbacks.clone(),
                body: settings.reads_request_body.then(RequestBodySlot::default),
            });
        }
        // Messages of callbacks that read the response wait for the handler's answer.
        let pending = operation.settings.response_callbacks.then(|| {
            let pending = PendingSends::default();
            req.extensions_mut().insert(pending.clone());
            pending
        });
        let method = req.method().clone();
        let uri = req.uri().clone();
        if !operation.settings.scoped && operation.dependencies.is_empty() {
            let answer = self.handler.call(req, state);
            return Box::pin(async move {
                let response = catch_panic(answer, &method, &uri)
                    .await
                    .unwrap_or_else(|panic| panic);
                operation
                    .settings
                    .finish(response, pending, &method, &uri)
                    .await
            });
        }
        Box::pin(run_scoped(
            self.handler,
            operation.dependencies.clone(),
            operation.settings.clone(),
            req,
            state,
            method,
            uri,
        ))
    }
}

async fn run_scoped<H, T, S>(
    handler: H,
    dependencies: Arc<[DependencyRunner<S>]>,
    settings: Arc<OperationSettings>,
    mut req: Request,
    state: S,
    method: Method,
    uri: Uri,
) -> Response
where
    H: Handler<T, S>,
    S: Clone + Send + Sync + 'static,
{
    let scope = settings.scoped.then(|| {
        let scope = Arc::new(RequestScope::default());
        req.extensions_mut().insert(scope.clone());
        scope
    });
    let mut guard = scope.clone().map(ScopeGuard::new);
    let pending = req.extensions().get::<PendingSends>().cloned();
    let answer = async move {
        if !dependencies.is_empty() {
            let (mut parts, body) = req.into_parts();
            let mut collector = Collector::default();
            for dependency in dependencies.iter() {
                if let Err(rejection) = (dependency.run)(&mut parts, &state).await
                    && let Some(response) = collector.absorb(rejection)
                {
                    return response;
                }
            }
            // Validation errors wait for the handler's own, to be answered in one 422.
            if let Some(errors) = collector.into_errors() {
                parts.extensions.insert(EarlierErrors(errors));
            }
            req = Request::from_parts(parts, body);
        }
        handler.call(req, state).await
    };
    let (response, outcome) = match catch_panic(answer, &method, &uri).await {
        Ok(response) => {
            let outcome = Outcome::answered(response.status());
            (response, outcome)
        }
        Err(response) => (response, Outcome::of_panic()),
    };
    if let Some(guard) = &mut guard {
        guard.disarm();
    }
    let Some(scope) = scope else {
        return settings.finish(response, pending, &method, &uri).await;
    };
    scope.close(&outcome).await;
    let response = settings.finish(response, pending, &method, &uri).await;
    let tasks = scope.take_tasks();
    if outcome.succeeded() && !tasks.is_empty() {
        crate::background::run_after(response, tasks)
    } else {
        if !tasks.is_empty() {
            tracing::debug!(
                "{method} {} failed: its {} background task(s) do not run",
                uri.path(),
                tasks.len()
            );
        }
        response
    }
}

/// What an operation needs at request time, fixed when the app is built.
#[derive(Default)]
pub(crate) struct OperationSettings {
    /// The status that replaces the handler's `200 OK` (FastAPI's `status_code=`).
    pub(crate) status: Option<StatusCode>,
    /// Whether extractors need these settings in the request extensions.
    pub(crate) needs_extension: bool,
    /// Senders bound to this operation's callbacks.
    pub(crate) callbacks: Arc<OperationCallbacks>,
    /// Whether a callback reads the response (`$response.…`, `$statusCode`): its messages
    /// are committed after the handler answers, before the answer leaves.
    pub(crate) response_callbacks: bool,
    /// Whether a callback reads the request body (`$request.body…`): the body extractor
    /// keeps the body for it.
    pub(crate) reads_request_body: bool,
    /// Something runs after the handler (cleanups, background tasks).
    pub(crate) scoped: bool,
    /// The type answers are filtered through (FastAPI's `response_model=`).
    pub(crate) response_model: Option<ResponseModel>,
    /// The app's exception handlers, when it registered any.
    pub(crate) exceptions: Option<Arc<ExceptionHandlers>>,
    /// The largest body this operation reads, when it differs from the app's.
    pub(crate) body_limit: Option<usize>,
}

impl OperationSettings {
    /// What the route and the app do to the handler's answer: the route's status, its
    /// response model, the messages of callbacks that read the answer (committed before
    /// it leaves; a failed commit replaces it), and the app's exception handlers.
    async fn finish(
        &self,
        response: Response,
        pending: Option<PendingSends>,
        method: &Method,
        uri: &Uri,
    ) -> Response {
        let mut response = response;
        if let Some(status) = self.status
            && response.status() == http::StatusCode::OK
        {
            *response.status_mut() = status;
            if !crate::error::is_body_allowed(status) {
                *response.body_mut() = axum::body::Body::empty();
                response.headers_mut().remove(http::header::CONTENT_TYPE);
                response.headers_mut().remove(http::header::CONTENT_LENGTH);
            }
        }
        if let Some(model) = &self.response_model
            && response.status().as_u16() < 300
        {
            // Boxed, as the commit below: this future stays small for the operations
            // that have neither.
            response = Box::pin(model.apply(response, method, uri)).await;
        }
        if let Some(pending) = pending {
            response = Box::pin(pending.commit(response)).await;
        }
        if response.status().as_u16() >= 400 {
            response =
                crate::exceptions::answer_error(response, self.exceptions.as_deref(), method, uri);
        }
        response
    }
}
