//! Why a callback or webhook was not sent, and the answer each reason gives the client.
//!
//! Messages name the callback and what was wrong, never an internal type or setting.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use roundtrip_delivery::ssrf::SsrfError;
use roundtrip_openapi::expr::{
    EvalError, NotUrlReason, Part, RequestSource, ResponseSource, RuntimeExpr, Source, Template,
};
use roundtrip_openapi::validate::{LocItem, ValidationError};
use serde_json::Value;

use crate::error::{HttpError, value_error};

/// Why a message was not sent.
///
/// Return it with `?` from a handler whose error type is `SendError`, [`HttpError`] (it
/// converts with `From`), or your own type (see the README's recipe). Each kind answers:
///
/// | reason | answer |
/// |---|---|
/// | a value the callback URL is made of is missing, not a URL, or unsafe | 422, located at the parameter or body field it came from |
/// | the URL's host is, or resolves to, an address callbacks may not reach | 422, located the same way |
/// | the payload is over the size limit | 422 at `body` (a warning in the log says how to raise the limit) |
/// | a refused URL the handler chose itself (not from the request) | 400 |
/// | the outbox cannot be written | 503 with `Retry-After` |
/// | the payload breaks its own schema, the handler's answer lacks what a `$response` callback reads, wiring mistakes | 500, logged as an error |
///
/// Every 422 is FastAPI's, which the operation documents (a handler with a
/// [`Notify`](crate::Notify) always documents it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The expression could not be resolved against this request (a missing
    /// `callback_url`, a body field that is not there, a value that is not a URL).
    #[error("cannot send `{name}`: {source}")]
    #[non_exhaustive]
    Resolve {
        /// The callback's name.
        name: String,
        /// What was missing or wrong.
        source: EvalError,
        /// Where the value came from, in FastAPI's `loc` form (`["query", "callback_url"]`);
        /// empty when it did not come from the request.
        loc: Vec<LocItem>,
        /// The value, when there was one.
        input: Option<String>,
    },
    /// The URL is refused: its host is, or resolves to, an address callbacks may not reach,
    /// or it carries credentials, or it could not be resolved.
    #[error("cannot send `{name}`: the URL is refused: {reason}")]
    #[non_exhaustive]
    Refused {
        /// The callback or webhook name.
        name: String,
        /// Why, in words fit for the client.
        reason: String,
        /// Where the URL's host came from, in FastAPI's `loc` form; empty when the handler
        /// chose the URL itself.
        loc: Vec<LocItem>,
        /// The value the host came from (a password in it is hidden).
        input: Option<String>,
    },
    /// The payload does not match the schema it is declared with.
    #[error("cannot send `{name}`: the payload does not match its schema: {}", crate::error::summarize(.errors))]
    InvalidPayload {
        /// The callback or webhook name.
        name: String,
        /// Every mismatch, in FastAPI's shape.
        errors: Vec<ValidationError>,
    },
    /// The payload is larger than the app accepts (`App::max_payload_bytes`, 256 KiB by
    /// default).
    #[error("cannot send `{name}`: the payload is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The callback or webhook name.
        name: String,
        /// The payload's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The outbox could not store the message; nothing was sent.
    #[error("cannot send `{name}`: the outbox is unavailable: {reason}")]
    Unavailable {
        /// The callback or webhook name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The app has no webhook subscriptions to publish to (a wiring mistake: add them with
    /// `App::subscriptions`).
    #[error(
        "cannot publish `{name}`: the app has no webhook subscriptions; add them with `App::subscriptions(..)`"
    )]
    NoSubscriptions {
        /// The webhook name.
        name: String,
    },
    /// The operation has no callback with this payload type (a wiring mistake the app's
    /// build normally catches).
    #[error("no callback with payload `{payload}` is attached to this operation")]
    NotAttached {
        /// The payload type.
        payload: &'static str,
    },
}

impl SendError {
    /// True when the request lacked what the expression needs, or gave a value that is
    /// not a usable URL.
    pub fn is_resolve(&self) -> bool {
        matches!(self, SendError::Resolve { .. })
    }

    /// True when the URL was refused (an address callbacks may not reach).
    pub fn is_refused(&self) -> bool {
        matches!(self, SendError::Refused { .. })
    }

    /// True when the message could not be stored (the outbox is down or full).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SendError::Unavailable { .. })
    }

    /// The resolution error, to ask what was missing.
    pub fn eval_error(&self) -> Option<&EvalError> {
        match self {
            SendError::Resolve { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            SendError::Resolve { loc, source, .. }
                if client_loc(loc) && !source.is_no_response() =>
            {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            SendError::Refused { loc, .. } if loc.is_empty() => StatusCode::BAD_REQUEST,
            SendError::Refused { loc, .. } if client_loc(loc) => StatusCode::UNPROCESSABLE_ENTITY,
            SendError::TooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            SendError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// An expression that could not be resolved, located at the input it reads.
    pub(crate) fn resolve(
        name: &str,
        source: EvalError,
        template: &Template,
        request: &dyn RequestSource,
        response: Option<&dyn ResponseSource>,
    ) -> Self {
        let blamed = source
            .expression()
            .cloned()
            .or_else(|| base(template).cloned());
        let (loc, input) = match &blamed {
            Some(expr) if !source.is_missing() => {
                (location(expr), value_of(expr, request, response))
            }
            Some(expr) => (location(expr), None),
            None => (Vec::new(), None),
        };
        SendError::Resolve {
            name: name.to_owned(),
            source,
            loc,
            input,
        }
    }

    /// A URL the SSRF guard refused, located at the input its host came from.
    pub(crate) fn refused(
        name: &str,
        err: &SsrfError,
        origin: Option<(&Template, &dyn RequestSource, Option<&dyn ResponseSource>)>,
    ) -> Self {
        // The full reason names the policy setting that would allow it: for the log only.
        tracing::info!(callback = name, "a callback URL was refused: {err}");
        let (loc, input) = match origin.and_then(|(t, req, resp)| base(t).map(|e| (e, req, resp))) {
            Some((expr, request, response)) => (location(expr), value_of(expr, request, response)),
            None => (Vec::new(), None),
        };
        SendError::Refused {
            name: name.to_owned(),
            reason: client_reason(err),
            loc,
            input,
        }
    }

    /// The error's 422 entry, or (for a refusal the client cannot be pointed at) the
    /// detail of its 400.
    fn answer(&self) -> Result<ValidationError, String> {
        match self {
            SendError::Resolve {
                name,
                source,
                loc,
                input,
            } => {
                let loc = loc.clone();
                let input = input.clone().map_or(Value::Null, Value::String);
                if source.is_missing() {
                    return Ok(ValidationError::new(
                        "missing",
                        loc,
                        format!("Field required to send the callback `{name}`"),
                        input,
                    ));
                }
                if let Some(kind) = source.non_scalar_type() {
                    return Ok(value_error(
                        loc,
                        &format!(
                            "the callback `{name}` needs a string, number or boolean here, not {kind}"
                        ),
                        input,
                    ));
                }
                Ok(match source.not_url_reason() {
                    Some(NotUrlReason::Scheme(_)) => ValidationError::new(
                        "url_scheme",
                        loc,
                        "URL scheme should be 'http' or 'https'".to_owned(),
                        input,
                    ),
                    Some(NotUrlReason::Relative) => ValidationError::new(
                        "url_parsing",
                        loc,
                        "Input should be a valid URL, relative URL without a base".to_owned(),
                        input,
                    ),
                    Some(reason) => ValidationError::new(
                        "url_parsing",
                        loc,
                        format!("Input should be a valid URL, {reason}"),
                        input,
                    ),
                    None => value_error(
                        loc,
                        &format!("this value would change the path of the callback `{name}`'s URL"),
                        input,
                    ),
                })
            }
            SendError::Refused {
                reason, loc, input, ..
            } if !loc.is_empty() => Ok(value_error(
                loc.clone(),
                reason,
                input.clone().map_or(Value::Null, Value::String),
            )),
            SendError::Refused { name, reason, .. } => Err(format!(
                "cannot send `{name}`: the URL is refused: {reason}"
            )),
            SendError::TooLarge { name, size, limit } => Ok(value_error(
                vec![LocItem::key("body")],
                &format!(
                    "the message `{name}` this request sends would be {size} bytes, over this \
                     API's limit of {limit} bytes"
                ),
                Value::Null,
            )),
            _ => Err(self.to_string()),
        }
    }
}

/// Whether a location is in the request, which the client can fix.
fn client_loc(loc: &[LocItem]) -> bool {
    matches!(loc.first(), Some(LocItem::Key(k)) if k != "response")
}

/// The expression that gives a template's base URL (and so its host): the first part.
fn base(template: &Template) -> Option<&RuntimeExpr> {
    match template.parts().first() {
        Some(Part::Expr(expr)) => Some(expr),
        _ => None,
    }
}

/// Where an expression's value comes from, in FastAPI's `loc` form.
pub(crate) fn location(expr: &RuntimeExpr) -> Vec<LocItem> {
    let pointer_loc = |root: &str, body: &roundtrip_openapi::expr::BodyRef| {
        std::iter::once(LocItem::key(root))
            .chain(body.pointer().tokens().map(|t| match t.parse::<usize>() {
                Ok(index) if t == "0" || !t.starts_with('0') => LocItem::Index(index),
                _ => LocItem::key(t),
            }))
            .collect()
    };
    match expr {
        RuntimeExpr::Request(Source::Query(name)) => vec!["query".into(), name.as_str().into()],
        RuntimeExpr::Request(Source::Path(name)) => vec!["path".into(), name.as_str().into()],
        RuntimeExpr::Request(Source::Header(name)) => {
            vec!["header".into(), name.as_str().to_ascii_lowercase().into()]
        }
        RuntimeExpr::Request(Source::Body(body)) => pointer_loc("body", body),
        RuntimeExpr::CallbackUrl => vec!["query".into(), "callback_url".into()],
        RuntimeExpr::Url => vec!["header".into(), "host".into()],
        RuntimeExpr::Response(Source::Body(body)) => {
            let mut loc = vec![LocItem::key("response")];
            loc.extend(pointer_loc("body", body));
            loc
        }
        RuntimeExpr::Response(_) | RuntimeExpr::StatusCode => vec![LocItem::key("response")],
        _ => Vec::new(),
    }
}

/// The value of an expression, for the 422's `input`, with a URL's password hidden.
fn value_of(
    expr: &RuntimeExpr,
    request: &dyn RequestSource,
    response: Option<&dyn ResponseSource>,
) -> Option<String> {
    expr.evaluate(request, response)
        .ok()
        .map(|text| hide_password(&text))
}

fn hide_password(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => text.to_owned(),
    }
}

/// Why a URL is refused, in words for the client: no policy or type names, and no address
/// a name resolved to (which would tell the client about the server's network).
fn client_reason(err: &SsrfError) -> String {
    match err {
        SsrfError::UnsupportedScheme { .. } => "URL scheme should be 'http' or 'https'".to_owned(),
        SsrfError::MissingHost => "the URL has no host".to_owned(),
        SsrfError::CredentialsInUrl => {
            "the URL must not contain a user name or password".to_owned()
        }
        SsrfError::Blocked { host, blocked } if *host == blocked.ip().to_string() => format!(
            "`{host}` is a {} address, which this API does not send callbacks to",
            blocked.range()
        ),
        SsrfError::Blocked { host, blocked } => format!(
            "the host `{host}` resolves to a {} address, which this API does not send \
             callbacks to",
            blocked.range()
        ),
        SsrfError::Resolve { host, .. } | SsrfError::NoAddresses { host } => {
            format!("the host `{host}` could not be resolved")
        }
        _ => "the URL is refused".to_owned(),
    }
}

/// `?` on a `SendError` in a handler that returns `HttpError`: the same answer the
/// `SendError` itself gives.
impl From<SendError> for HttpError {
    fn from(err: SendError) -> Self {
        let status = err.status();
        match status {
            StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE => {
                tracing::error!("{err}");
            }
            _ if matches!(err, SendError::TooLarge { .. }) => tracing::warn!(
                "{err}; raise the limit with App::max_payload_bytes if such payloads are expected"
            ),
            _ => {}
        }
        let error = match (status, err.answer()) {
            (StatusCode::UNPROCESSABLE_ENTITY, Ok(entry)) => HttpError::with_detail(
                status,
                serde_json::to_value(vec![entry]).unwrap_or(Value::Null),
            ),
            (StatusCode::BAD_REQUEST, Err(detail)) => HttpError::new(status, detail),
            (StatusCode::SERVICE_UNAVAILABLE, _) => HttpError::new(status, "Service Unavailable"),
            _ => HttpError::new(status, "Internal Server Error"),
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            error.header(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("5"),
            )
        } else {
            error
        }
    }
}

impl IntoResponse for SendError {
    fn into_response(self) -> Response {
        HttpError::from(self).into_response()
    }
}

/// A failed send's 422 is documented by the [`Notify`](crate::Notify) that made it; its
/// other answers are not, as FastAPI documents no `HTTPException`.
impl crate::operation::OperationOutput for SendError {}
