//! Response types and how each one is documented: JSON, HTML, plain text, no content,
//! redirects, streams, files, server-sent events, and cookies.

mod cookie;
pub mod sse;

pub use cookie::{SameSite, SetCookie};

use std::borrow::Cow;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::operation::{OperationContext, OperationOutput};

pub use axum::response::Html;

fn string_schema() -> Value {
    json!({"type": "string"})
}

/// `204 No Content`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

impl OperationOutput for NoContent {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(Some(204), None);
    }
}

/// A redirect; `307 Temporary Redirect` unless another status is chosen, as FastAPI's
/// `RedirectResponse`.
#[derive(Debug, Clone)]
pub struct Redirect {
    status: StatusCode,
    location: HeaderValue,
}

impl Redirect {
    /// `307 Temporary Redirect` to `uri`: the client repeats the same method.
    pub fn to(uri: &str) -> Self {
        Self::with_status(StatusCode::TEMPORARY_REDIRECT, uri)
    }

    /// `303 See Other` to `uri`: the client follows with a `GET`.
    pub fn see_other(uri: &str) -> Self {
        Self::with_status(StatusCode::SEE_OTHER, uri)
    }

    /// `308 Permanent Redirect` to `uri`.
    pub fn permanent(uri: &str) -> Self {
        Self::with_status(StatusCode::PERMANENT_REDIRECT, uri)
    }

    /// A redirect with any 3xx status. A location that is not a valid header value is
    /// percent-encoded rather than refused.
    pub fn with_status(status: StatusCode, uri: &str) -> Self {
        let location = HeaderValue::from_str(uri).unwrap_or_else(|_| {
            let encoded: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
            HeaderValue::from_str(&encoded).unwrap_or(HeaderValue::from_static("/"))
        });
        Redirect { status, location }
    }
}

impl IntoResponse for Redirect {
    fn into_response(self) -> Response {
        (self.status, [(header::LOCATION, self.location)]).into_response()
    }
}

impl OperationOutput for Redirect {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(Some(307), None);
    }
}

impl OperationOutput for axum::response::Redirect {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(Some(303), None);
    }
}

impl<T> OperationOutput for Html<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(None, Some(("text/html", string_schema())));
    }
}

macro_rules! text_outputs {
    ($($ty:ty),*) => {$(
        impl OperationOutput for $ty {
            fn describe(ctx: &mut OperationContext<'_>) {
                ctx.success(None, Some(("text/plain", string_schema())));
            }
        }
    )*};
}

text_outputs!(String, &'static str, Cow<'static, str>);

impl OperationOutput for () {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(None, None);
    }
}

impl OperationOutput for StatusCode {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(None, None);
    }
}

/// A raw response documents no content of its own; say what it is with the route's
/// `.response::<T>(..)` when it matters.
impl OperationOutput for Response {}

impl OperationOutput for Body {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(None, Some(("application/octet-stream", json!({}))));
    }
}

impl OperationOutput for Vec<u8> {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(None, Some(("application/octet-stream", json!({}))));
    }
}

impl OperationOutput for bytes::Bytes {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(None, Some(("application/octet-stream", json!({}))));
    }
}

impl<T: OperationOutput, E: OperationOutput> OperationOutput for Result<T, E> {
    fn describe(ctx: &mut OperationContext<'_>) {
        T::describe(ctx);
        ctx.error_branch(E::describe);
    }
}

impl<R: OperationOutput> OperationOutput for (StatusCode, R) {
    fn describe(ctx: &mut OperationContext<'_>) {
        R::describe(ctx);
    }
}

impl<R: OperationOutput> OperationOutput for (http::HeaderMap, R) {
    fn describe(ctx: &mut OperationContext<'_>) {
        R::describe(ctx);
    }
}

impl<R: OperationOutput> OperationOutput for (StatusCode, http::HeaderMap, R) {
    fn describe(ctx: &mut OperationContext<'_>) {
        R::describe(ctx);
    }
}

impl<R: OperationOutput, K, V, const N: usize> OperationOutput for ([(K, V); N], R) {
    fn describe(ctx: &mut OperationContext<'_>) {
        R::describe(ctx);
    }
}

impl<R: OperationOutput, K, V, const N: usize> OperationOutput for (StatusCode, [(K, V); N], R) {
    fn describe(ctx: &mut OperationContext<'_>) {
        R::describe(ctx);
    }
}

/// A streamed body with its media type: server-sent events, NDJSON, a large export.
///
/// ```
/// use roundtrip::response::Streaming;
/// let events = futures_util::stream::iter([Ok::<_, std::io::Error>("data: a\n\n")]);
/// let response = Streaming::new("text/event-stream", events);
/// ```
pub struct Streaming {
    media_type: HeaderValue,
    body: Body,
}

impl Streaming {
    /// Streams `stream` with the given media type.
    pub fn new<S, B, E>(media_type: &'static str, stream: S) -> Self
    where
        S: Stream<Item = Result<B, E>> + Send + 'static,
        B: Into<bytes::Bytes> + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        Streaming {
            media_type: HeaderValue::from_static(media_type),
            body: Body::from_stream(stream),
        }
    }
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("media_type", &self.media_type)
            .finish_non_exhaustive()
    }
}

impl IntoResponse for Streaming {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, self.media_type)], self.body).into_response()
    }
}

/// Documented as a stream of bytes: the media type is chosen at run time, so name it in
/// the document with the route's `.media_type(..)`.
impl OperationOutput for Streaming {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(None, Some(("application/octet-stream", json!({}))));
    }
}

/// A file from disk, streamed with a media type and an optional download name.
#[derive(Debug)]
pub struct FileResponse {
    path: std::path::PathBuf,
    media_type: HeaderValue,
    filename: Option<String>,
}

impl FileResponse {
    /// Serves `path` as `application/octet-stream`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        FileResponse {
            path: path.into(),
            media_type: HeaderValue::from_static("application/octet-stream"),
            filename: None,
        }
    }

    /// The media type to send.
    pub fn media_type(mut self, media_type: &'static str) -> Self {
        self.media_type = HeaderValue::from_static(media_type);
        self
    }

    /// Sends `Content-Disposition: attachment; filename="..."`.
    pub fn filename(mut self, name: impl Into<String>) -> Self {
        self.filename = Some(name.into());
        self
    }
}

/// Reads a file in chunks as a stream, without an extra dependency.
fn file_chunks(
    file: tokio::fs::File,
) -> impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(file)))
            }
            Err(err) => Some((Err(err), None)),
        }
    })
}

/// Opening the file happens when the response is built; a missing file answers 404,
/// any other error 500.
impl IntoResponse for FileResponse {
    fn into_response(self) -> Response {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return crate::error::detail_response(StatusCode::NOT_FOUND, "File not found");
            }
            Err(err) => {
                return crate::error::operation_error_response(&format!(
                    "failed to open {}: {err}",
                    self.path.display()
                ));
            }
        };
        let stream = file_chunks(tokio::fs::File::from_std(file));
        let mut response = (
            [(header::CONTENT_TYPE, self.media_type)],
            Body::from_stream(stream),
        )
            .into_response();
        if let Some(name) = self.filename {
            let cleaned: String = name
                .chars()
                .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
                .collect();
            if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{cleaned}\""))
            {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
        }
        response
    }
}

/// Documented as a stream of bytes; name the media type with the route's `.media_type(..)`.
impl OperationOutput for FileResponse {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success(None, Some(("application/octet-stream", json!({}))));
    }
}
