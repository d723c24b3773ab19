//! Extractors that validate their input against the schema they publish and report
//! errors in FastAPI's shape: [`Json`], [`Query`], [`Path`], [`Header`], [`Cookie`],
//! [`Form`] and [`Multipart`] (files).
//!
//! Each one is an axum extractor: it works in any axum router too. In a roundtrip
//! handler, the errors of all of them are reported together.

mod json;
mod multipart;
mod params;
mod request;
pub(crate) mod validation;

use axum::RequestExt;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;

pub use json::Json;
pub(crate) use json::deserialize_value;
pub(crate) use multipart::request_parts;
pub use multipart::{
    DEFAULT_SPOOL_THRESHOLD, MAX_BOUNDARY_LEN, Multipart, MultipartLimits, UploadFile, UploadReader,
};
pub use params::{Cookie, Form, Header, Path, Query};
pub(crate) use request::{OperationRequest, RequestBodySlot};

use crate::error::{Rejection, RequestValidationError, detail_response};
use crate::operation::{OperationContext, OperationInput};

/// A JSON body without its UTF-8 byte order mark: not JSON, but clients send it and
/// FastAPI accepts it. `Json` and `Notify` both read bodies through this.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Why a request body was refused.
#[derive(Debug)]
pub enum BodyRejection {
    /// The body did not validate: 422 with every error.
    Invalid(RequestValidationError),
    /// The body is larger than the app's limit: 413.
    TooLarge,
    /// The body's media type is not one this endpoint reads: 415.
    Unsupported {
        /// The `Content-Type` the request sent.
        got: String,
        /// The media type the endpoint reads.
        expected: &'static str,
    },
    /// The body could not be read (the client went away, say): 400.
    Unreadable(String),
    /// The body broke one of the app's limits (a multipart body with too many parts, a
    /// part too large, a boundary too long): 413 or 422, with a detail saying which.
    Limit {
        /// 413 or 422.
        status: StatusCode,
        /// What was over which limit.
        detail: String,
    },
    /// An uploaded file could not be written to a temporary file (a full disk, say): 500,
    /// naming no path; the cause is logged.
    Storage,
}

impl BodyRejection {
    pub(crate) fn unsupported(got: &str, expected: &'static str) -> Self {
        BodyRejection::Unsupported {
            got: got.to_owned(),
            expected,
        }
    }
}

impl std::fmt::Display for BodyRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyRejection::Invalid(err) => err.fmt(f),
            BodyRejection::TooLarge => f.write_str("Request body is too large"),
            BodyRejection::Unsupported { got, expected } => write!(
                f,
                "Unsupported media type `{got}`: this endpoint reads `{expected}`"
            ),
            BodyRejection::Unreadable(reason) => {
                write!(f, "The request body could not be read: {reason}")
            }
            BodyRejection::Limit { detail, .. } => f.write_str(detail),
            BodyRejection::Storage => f.write_str("Internal Server Error"),
        }
    }
}

impl std::error::Error for BodyRejection {}

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        match self {
            BodyRejection::Invalid(err) => err.into_response(),
            BodyRejection::TooLarge => {
                detail_response(StatusCode::PAYLOAD_TOO_LARGE, &self.to_string())
            }
            BodyRejection::Unsupported { .. } => {
                detail_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, &self.to_string())
            }
            BodyRejection::Unreadable(_) => {
                detail_response(StatusCode::BAD_REQUEST, &self.to_string())
            }
            BodyRejection::Limit { status, ref detail } => detail_response(status, detail),
            BodyRejection::Storage => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
            }
        }
    }
}

impl From<BodyRejection> for Rejection {
    /// A body that did not validate joins the handler's 422; any other refusal of the body
    /// is answered at once.
    fn from(rejection: BodyRejection) -> Self {
        match rejection {
            BodyRejection::Invalid(invalid) => Rejection::Invalid(invalid),
            other => Rejection::Response(other.into_response()),
        }
    }
}

/// What a request says its body is.
pub(crate) enum BodyKind {
    /// JSON (`application/json` or `application/*+json`).
    Json,
    /// No `Content-Type` at all. Since FastAPI 0.165 such a body is not read as JSON:
    /// a JSON endpoint gets it as a string, and refuses it as "not an object".
    Missing,
    /// `application/x-www-form-urlencoded` or `multipart/form-data`.
    Form,
    /// Anything else, with the header's value.
    Other(String),
}

pub(crate) fn body_kind(headers: &HeaderMap) -> BodyKind {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return BodyKind::Missing;
    };
    // The common case, read without allocating.
    if value.as_bytes().eq_ignore_ascii_case(b"application/json") {
        return BodyKind::Json;
    }
    let raw = String::from_utf8_lossy(value.as_bytes());
    let essence = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence.is_empty() {
        return BodyKind::Missing;
    }
    match essence.split_once('/') {
        Some(("application", sub)) if sub == "json" || sub.ends_with("+json") => BodyKind::Json,
        Some(("application", "x-www-form-urlencoded")) | Some(("multipart", "form-data")) => {
            BodyKind::Form
        }
        _ => BodyKind::Other(raw.into_owned()),
    }
}

/// Reads the whole body within the app's size limit (axum's `DefaultBodyLimit`).
///
/// Not an `async fn`: the request is taken apart before the future is made, so the future
/// holds the body alone and not a copy of the request beside it. An extractor's future,
/// and the handler's that holds it, stay small (a future past 1 KiB costs every request a
/// trip through the allocator's slow path).
pub(crate) fn read_body(req: Request) -> impl Future<Output = Result<Bytes, BodyRejection>> + Send {
    let body = req.into_limited_body();
    async move {
        match body.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if is_length_limit(&err) => Err(BodyRejection::TooLarge),
            Err(err) => Err(BodyRejection::Unreadable(format!(
                "Failed to buffer the request body: {err}"
            ))),
        }
    }
}

/// Whether an error is, or was caused by, the body limit's (axum's `DefaultBodyLimit`
/// reports it from the body stream, wrapped by whatever read the stream).
pub(crate) fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Wraps an extractor from another crate that has no [`OperationInput`] impl, so it can
/// be used in a roundtrip handler. It documents nothing.
///
/// ```ignore
/// async fn handler(Undocumented(session): Undocumented<tower_sessions::Session>) { .. }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Undocumented<E>(pub E);

impl<E> OperationInput for Undocumented<E> {
    fn describe(_ctx: &mut OperationContext<'_>) {}
}

impl<S, E> axum::extract::FromRequestParts<S> for Undocumented<E>
where
    E: axum::extract::FromRequestParts<S>,
    S: Send + Sync,
{
    type Rejection = E::Rejection;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        E::from_request_parts(parts, state).await.map(Undocumented)
    }
}
