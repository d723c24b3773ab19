//! Background tasks: work a handler schedules to run after its response has been sent,
//! FastAPI's `BackgroundTasks`.
//!
//! Tasks live in memory: they run in this process, one after the other in the order they
//! were added, once the response body has been handed to the connection (or the client
//! has gone away). A process that stops first loses them. Work that must survive a crash
//! belongs in the outbox (a callback or webhook); `BackgroundTasks` is the handle that
//! durable tasks will be added to as well, so handlers keep one place to schedule work.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::Response;
use bytes::Bytes;
use futures_util::FutureExt;
use http::request::Parts;
use http_body::Frame;

use crate::operation::{OperationContext, OperationInput};
use crate::scope::{RequestScope, Task, panic_message};

/// Schedules work for after the response: FastAPI's `BackgroundTasks`, as a handler
/// argument.
///
/// ```
/// use roundtrip::{BackgroundTasks, Json, Path};
///
/// async fn signup(Path(email): Path<String>, tasks: BackgroundTasks) -> Json<&'static str> {
///     tasks.add(async move { println!("welcome mail to {email}") });
///     Json("Signup accepted")
/// }
/// ```
///
/// Tasks run only when the operation succeeded (it answered below 400), as FastAPI runs
/// them only with the response they were attached to. A task that panics is logged, and
/// the next one still runs.
pub struct BackgroundTasks {
    scope: Arc<RequestScope>,
}

impl BackgroundTasks {
    /// Adds a task, to run after the response and after the tasks added before it.
    pub fn add<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.scope.add_task(Box::pin(task));
    }
}

impl std::fmt::Debug for BackgroundTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundTasks").finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BackgroundTasks {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        match parts.extensions.get::<Arc<RequestScope>>() {
            Some(scope) => Ok(BackgroundTasks {
                scope: scope.clone(),
            }),
            None => Err(crate::error::operation_error_response(
                "`BackgroundTasks` was used outside a documented roundtrip operation (a plain axum route, say)",
            )),
        }
    }
}

/// Documents nothing; it asks the operation to keep a request scope.
impl OperationInput for BackgroundTasks {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.needs_scope();
    }
}

/// Runs `tasks` once `response`'s body has been sent (or dropped).
pub(crate) fn run_after(response: Response, tasks: Vec<Task>) -> Response {
    response.map(|body| {
        Body::new(AfterBody {
            inner: body,
            tasks: Some(tasks),
        })
    })
}

/// A body that starts its tasks when it ends.
struct AfterBody {
    inner: Body,
    tasks: Option<Vec<Task>>,
}

impl AfterBody {
    fn start_tasks(&mut self) {
        let Some(tasks) = self.tasks.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                "{} background task(s) dropped: no runtime to run them",
                tasks.len()
            );
            return;
        };
        runtime.spawn(async move {
            for task in tasks {
                if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
                    tracing::error!(
                        "a background task panicked: {}",
                        panic_message(panic.as_ref())
                    );
                }
            }
        });
    }
}

impl http_body::Body for AfterBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.start_tasks();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AfterBody {
    fn drop(&mut self) {
        self.start_tasks();
    }
}
