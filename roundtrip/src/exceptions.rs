//! Errors a handler raises and the app answers: FastAPI's `raise` and
//! `@app.exception_handler(...)`.
//!
//! A handler that returns `Result<T, roundtrip::Error>` can fail with any error type
//! (`?` converts it). The app answers it with the handler registered for its type
//! ([`App::exception_handler`](crate::App::exception_handler)), or else with
//! `500 Internal Server Error`, logging the error with the request's method and path.
//! The same registration replaces the answers to [`HttpError`] and to
//! [`RequestValidationError`] (the 422), wherever they come from.

use std::any::TypeId;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{Method, Uri};

use crate::error::{CollectedErrors, HttpError, RequestValidationError};
use crate::operation::OperationOutput;

type StdError = dyn std::error::Error + Send + Sync + 'static;

/// Any error a handler fails with, answered by the app's exception handler for its type
/// or, when it has none, with `500 Internal Server Error`.
///
/// ```
/// use roundtrip::{App, Json, get};
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("quota exceeded, retry in {retry_after} s")]
/// struct QuotaExceeded { retry_after: u32 }
///
/// async fn use_quota() -> Result<Json<()>, roundtrip::Error> {
///     Err(QuotaExceeded { retry_after: 30 })?
/// }
///
/// let app = App::new()
///     .route("/quota", get(use_quota))
///     .exception_handler(|err: &QuotaExceeded| {
///         (http::StatusCode::TOO_MANY_REQUESTS, err.to_string())
///     });
/// # app.into_router().expect("the app builds");
/// ```
///
/// An [`HttpError`] inside keeps its own answer (`404 {"detail": ...}`), so `?` on one is
/// the same as returning it.
pub struct Error {
    inner: Box<StdError>,
}

impl Error {
    /// Wraps an error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error {
            inner: Box::new(error),
        }
    }

    /// The error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref::<E>()
    }

    /// Whether the error is an `E`.
    pub fn is<E: std::error::Error + 'static>(&self) -> bool {
        self.inner.is::<E>()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Error::new(error)
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

/// Carried by the 500 an [`Error`] answers, for the app's exception handlers (and the
/// log line naming the request).
#[derive(Clone)]
pub(crate) struct Raised(pub(crate) Arc<StdError>);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let inner = match self.inner.downcast::<HttpError>() {
            Ok(http) => return http.into_response(),
            Err(inner) => inner,
        };
        let inner = match inner.downcast::<RequestValidationError>() {
            Ok(invalid) => return invalid.into_response(),
            Err(inner) => inner,
        };
        let mut response = crate::scope::internal_server_error();
        response.extensions_mut().insert(Raised(Arc::from(inner)));
        response
    }
}

/// FastAPI documents no 500; neither does roundtrip.
impl OperationOutput for Error {}

type Answer = Box<dyn Fn(&(dyn std::error::Error + 'static)) -> Option<Response> + Send + Sync>;

/// The app's exception handlers, by error type.
#[derive(Default)]
pub(crate) struct ExceptionHandlers {
    handlers: Vec<(TypeId, Answer)>,
}

impl ExceptionHandlers {
    /// Registers `handler` for `E`, replacing an earlier one for the same type.
    pub(crate) fn insert<E, F, R>(&mut self, handler: F)
    where
        E: std::error::Error + Send + Sync + 'static,
        F: Fn(&E) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        let answer: Answer = Box::new(move |error| {
            error
                .downcast_ref::<E>()
                .map(|e| handler(e).into_response())
        });
        self.handlers.retain(|(id, _)| *id != TypeId::of::<E>());
        self.handlers.push((TypeId::of::<E>(), answer));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    fn answer(&self, error: &(dyn std::error::Error + 'static)) -> Option<Response> {
        self.handlers.iter().find_map(|(_, answer)| answer(error))
    }
}

/// Replaces an error answer with the app's handler for its error, and logs errors that
/// nobody handled. Called for answers of 400 and above only.
pub(crate) fn answer_error(
    response: Response,
    handlers: Option<&ExceptionHandlers>,
    method: &Method,
    uri: &Uri,
) -> Response {
    if let Some(Raised(error)) = response.extensions().get::<Raised>() {
        let error: &(dyn std::error::Error + 'static) = error.as_ref();
        if let Some(answer) = handlers.and_then(|h| h.answer(error)) {
            return answer;
        }
        tracing::error!(
            method = %method,
            path = uri.path(),
            "unhandled error in {method} {}: {error}",
            uri.path()
        );
        return response;
    }
    let Some(handlers) = handlers else {
        return response;
    };
    if let Some(http) = response.extensions().get::<HttpError>() {
        return handlers.answer(http).unwrap_or(response);
    }
    if let Some(CollectedErrors(errors)) = response.extensions().get::<CollectedErrors>() {
        let invalid = RequestValidationError::new(errors.clone());
        return handlers.answer(&invalid).unwrap_or(response);
    }
    response
}
