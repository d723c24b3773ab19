//! The life of one request around its handler: what runs after it (dependency cleanups,
//! background tasks), how a panic becomes a 500, and what the cleanups are told.
//!
//! An operation gets a [`RequestScope`] only when something it uses needs one (a
//! [`Cleanup`](crate::depends::Cleanup) or [`BackgroundTasks`](crate::BackgroundTasks),
//! found when the app is built), so other operations pay nothing for it.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use http::{Method, StatusCode, Uri, header};

use crate::handler::BoxFuture;

/// How the request ended, as a dependency's cleanup sees it (FastAPI's code after
/// `yield` sees the exception, if any).
///
/// A request **succeeded** when the handler answered with a status below 400. Anything
/// else failed: an error answer (an [`HttpError`](crate::HttpError), a `Result`'s `Err`,
/// a rejected input), a panic, or a client that went away before the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    kind: OutcomeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutcomeKind {
    Answered(StatusCode),
    Panicked,
    ClientGone,
}

impl Outcome {
    pub(crate) fn answered(status: StatusCode) -> Self {
        Outcome {
            kind: OutcomeKind::Answered(status),
        }
    }

    pub(crate) fn of_panic() -> Self {
        Outcome {
            kind: OutcomeKind::Panicked,
        }
    }

    pub(crate) fn of_client_gone() -> Self {
        Outcome {
            kind: OutcomeKind::ClientGone,
        }
    }

    /// The handler answered with a status below 400: commit.
    pub fn succeeded(&self) -> bool {
        matches!(self.kind, OutcomeKind::Answered(status) if status.as_u16() < 400)
    }

    /// Anything else: roll back.
    pub fn failed(&self) -> bool {
        !self.succeeded()
    }

    /// The status the handler answered with, if it answered (not after a panic or a
    /// client that left).
    pub fn status(&self) -> Option<StatusCode> {
        match self.kind {
            OutcomeKind::Answered(status) => Some(status),
            _ => None,
        }
    }

    /// The handler panicked (the client got a 500).
    pub fn is_panic(&self) -> bool {
        self.kind == OutcomeKind::Panicked
    }

    /// The client went away before the handler answered; the handler was stopped.
    pub fn is_client_gone(&self) -> bool {
        self.kind == OutcomeKind::ClientGone
    }
}

type Deferred = Box<dyn FnOnce(Outcome) -> BoxFuture<()> + Send>;
pub(crate) type Task = BoxFuture<()>;

/// What one request has left to do after its handler.
#[derive(Default)]
pub(crate) struct RequestScope {
    cleanups: Mutex<Vec<Deferred>>,
    tasks: Mutex<Vec<Task>>,
}

impl RequestScope {
    pub(crate) fn defer(&self, cleanup: Deferred) {
        lock(&self.cleanups).push(cleanup);
    }

    pub(crate) fn add_task(&self, task: Task) {
        lock(&self.tasks).push(task);
    }

    pub(crate) fn take_tasks(&self) -> Vec<Task> {
        std::mem::take(&mut *lock(&self.tasks))
    }

    /// Runs the cleanups, the last registered first (as nested `yield`s unwind), each to
    /// its end even if another one panicked.
    pub(crate) async fn close(&self, outcome: &Outcome) {
        loop {
            let Some(cleanup) = lock(&self.cleanups).pop() else {
                return;
            };
            if let Err(panic) = AssertUnwindSafe(cleanup(outcome.clone()))
                .catch_unwind()
                .await
            {
                tracing::error!(
                    "a dependency's cleanup panicked: {}",
                    panic_message(panic.as_ref())
                );
            }
        }
    }
}

/// A poisoned lock only means another cleanup panicked while holding it; the list is
/// still sound.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Closes the scope if the request's future is dropped before it finished: the client
/// went away, and the cleanups still run (in a task of their own).
pub(crate) struct ScopeGuard {
    scope: Option<Arc<RequestScope>>,
}

impl ScopeGuard {
    pub(crate) fn new(scope: Arc<RequestScope>) -> Self {
        ScopeGuard { scope: Some(scope) }
    }

    pub(crate) fn disarm(&mut self) {
        self.scope = None;
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let Some(scope) = self.scope.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { scope.close(&Outcome::of_client_gone()).await });
            }
            Err(_) => tracing::warn!(
                "a request was dropped outside a runtime; its dependency cleanups cannot run"
            ),
        }
    }
}

/// Runs `future`, turning a panic into FastAPI's `500 Internal Server Error` (plain text)
/// and logging it with the request's method and path.
pub(crate) async fn catch_panic<F>(
    future: F,
    method: &Method,
    uri: &Uri,
) -> Result<Response, Response>
where
    F: Future<Output = Response>,
{
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(response) => Ok(response),
        Err(panic) => {
            tracing::error!(
                method = %method,
                path = uri.path(),
                "the handler of {method} {} panicked: {}",
                uri.path(),
                panic_message(panic.as_ref())
            );
            Err(internal_server_error())
        }
    }
}

/// The answer to an error nobody handled: `500 Internal Server Error` in plain text, as
/// Starlette's `ServerErrorMiddleware` writes it. Nothing about the error leaks.
pub(crate) fn internal_server_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Internal Server Error",
    )
        .into_response()
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "(a panic without a message)"
    }
}
