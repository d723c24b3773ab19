//! Errors a client sees, in FastAPI's shapes: the 422 of a request that failed
//! validation, and [`HttpError`] for everything a handler chooses to refuse.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use roundtrip_openapi::validate::{LocItem, ValidationError};
use serde::Serialize;

use crate::operation::OperationOutput;

/// A request that failed validation: FastAPI's 422 with every error found.
///
/// The body is `{"detail": [{"type", "loc", "msg", "input", "ctx"?}, ...]}`. Handlers get
/// this as the rejection of roundtrip's extractors; when several extractors of one
/// handler fail, roundtrip merges their errors into one response.
#[derive(Debug, Clone)]
pub struct RequestValidationError {
    errors: Vec<ValidationError>,
}

/// Carried in the extensions of a 422 response, so that an exception handler registered
/// for [`RequestValidationError`] sees the errors of a response already made. Extractors
/// hand their errors to the handler by type ([`Rejection`]), not through this.
#[derive(Debug, Clone)]
pub(crate) struct CollectedErrors(pub(crate) Vec<ValidationError>);

/// Why an extractor refused a request: validation errors, which roundtrip merges with those
/// of the handler's other arguments into one 422, or any other answer, sent as it is.
///
/// It is the rejection of [`Depends`](crate::depends::Depends) and
/// [`Fresh`](crate::depends::Fresh). roundtrip sorts a rejection by its type: an extractor
/// of your own whose validation errors should join the handler's 422 rejects with this,
/// with [`RequestValidationError`] or with [`BodyRejection`](crate::extract::BodyRejection).
/// A rejection of any other type (a plain `Response`, say) is answered at once, as in axum.
///
/// ```
/// use roundtrip::{Rejection, RequestValidationError};
/// let refused = Rejection::from(RequestValidationError::new(Vec::new()));
/// assert!(matches!(refused, Rejection::Invalid(_)));
/// ```
#[derive(Debug)]
pub enum Rejection {
    /// The request failed validation: merged with the other arguments' errors.
    Invalid(RequestValidationError),
    /// Any other refusal, answered as it is.
    Response(Response),
}

impl From<RequestValidationError> for Rejection {
    fn from(invalid: RequestValidationError) -> Self {
        Rejection::Invalid(invalid)
    }
}

impl From<Response> for Rejection {
    fn from(response: Response) -> Self {
        Rejection::Response(response)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::Invalid(invalid) => invalid.into_response(),
            Rejection::Response(response) => response,
        }
    }
}

impl RequestValidationError {
    /// A rejection holding these errors.
    pub fn new(errors: Vec<ValidationError>) -> Self {
        RequestValidationError { errors }
    }

    /// The errors, in the order they are reported.
    pub fn errors(&self) -> &[ValidationError] {
        &self.errors
    }

    /// Takes the errors out.
    pub fn into_errors(self) -> Vec<ValidationError> {
        self.errors
    }
}

impl std::fmt::Display for RequestValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request validation failed with {} error(s)",
            self.errors.len()
        )
    }
}

impl std::error::Error for RequestValidationError {}

#[derive(Serialize)]
struct DetailList<'a> {
    detail: &'a [ValidationError],
}

impl IntoResponse for RequestValidationError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&DetailList {
            detail: &self.errors,
        })
        .unwrap_or_else(|_| b"{\"detail\":[]}".to_vec());
        let mut response = json_response(StatusCode::UNPROCESSABLE_ENTITY, body);
        response
            .extensions_mut()
            .insert(CollectedErrors(self.errors));
        response
    }
}

/// The rank FastAPI reports errors in: path, query, header, cookie, then body.
pub(crate) fn location_rank(error: &ValidationError) -> u8 {
    match error.loc.first() {
        Some(LocItem::Key(k)) => match k.as_str() {
            "path" => 0,
            "query" => 1,
            "header" => 2,
            "cookie" => 3,
            "body" => 4,
            _ => 5,
        },
        _ => 5,
    }
}

pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An error a handler returns on purpose, answered as `{"detail": ...}` with its status:
/// FastAPI's `HTTPException`.
///
/// ```
/// use roundtrip::HttpError;
/// let err = HttpError::not_found("Item not found");
/// assert_eq!(err.status(), http::StatusCode::NOT_FOUND);
/// ```
#[derive(Debug, Clone)]
pub struct HttpError {
    status: StatusCode,
    detail: serde_json::Value,
    headers: HeaderMap,
}

impl HttpError {
    /// An error with this status and a message as its detail.
    pub fn new(status: StatusCode, detail: impl Into<Cow<'static, str>>) -> Self {
        HttpError {
            status,
            detail: serde_json::Value::String(detail.into().into_owned()),
            headers: HeaderMap::new(),
        }
    }

    /// An error whose detail is any JSON value.
    pub fn with_detail(status: StatusCode, detail: serde_json::Value) -> Self {
        HttpError {
            status,
            detail,
            headers: HeaderMap::new(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// 403 Forbidden.
    pub fn forbidden(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404 Not Found.
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 409 Conflict.
    pub fn conflict(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 500 Internal Server Error. The detail is what the client sees: keep secrets out.
    pub fn internal(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }

    /// Adds a response header (for example `WWW-Authenticate`).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The detail sent to the client.
    pub fn detail(&self) -> &serde_json::Value {
        &self.detail
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            serde_json::Value::String(s) => write!(f, "{}: {s}", self.status),
            other => write!(f, "{}: {other}", self.status),
        }
    }
}

impl std::error::Error for HttpError {}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Detail<'a> {
            detail: &'a serde_json::Value,
        }
        let body = serde_json::to_vec(&Detail {
            detail: &self.detail,
        })
        .unwrap_or_default();
        let mut response = if is_body_allowed(self.status) {
            json_response(self.status, body)
        } else {
            self.status.into_response()
        };
        response.headers_mut().extend(self.headers.clone());
        // For the app's exception handler for `HttpError`, if it has one.
        response.extensions_mut().insert(self);
        response
    }
}

/// FastAPI does not document `HTTPException`s; declare their statuses on the route with
/// `.response_status(404, "Item not found")` when you want them in the document.
impl OperationOutput for HttpError {}

/// Whether a response with this status may carry a body.
pub(crate) fn is_body_allowed(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::RESET_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// Builds `{"detail": "<message>"}` with a status: the shape of every error roundtrip
/// itself answers outside validation (404, 405, 413, 415).
pub(crate) fn detail_response(status: StatusCode, message: &str) -> Response {
    HttpError::new(status, message.to_owned()).into_response()
}

/// A pydantic `value_error` entry: `Value error, <message>`.
pub(crate) fn value_error(
    loc: Vec<LocItem>,
    message: &str,
    input: serde_json::Value,
) -> ValidationError {
    ValidationError::new("value_error", loc, format!("Value error, {message}"), input)
        .with_ctx("error", serde_json::Value::Object(serde_json::Map::new()))
}

pub(crate) fn operation_error_response(message: &str) -> Response {
    tracing::error!("{message}");
    detail_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

/// A short account of validation errors for logs and messages: `loc: msg; ...`.
pub(crate) fn summarize(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .take(3)
        .map(|e| {
            let loc: Vec<String> = e
                .loc
                .iter()
                .map(|l| match l {
                    LocItem::Key(k) => k.clone(),
                    LocItem::Index(i) => i.to_string(),
                })
                .collect();
            format!("{}: {}", loc.join("."), e.msg)
        })
        .collect::<Vec<_>>()
        .join("; ")
}
