//! Evaluating expressions against a request and response, and what can go wrong.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use super::ast::{RuntimeExpr, Source};
use super::pointer::JsonPointer;
use super::template::Template;

/// The parts of an HTTP request that runtime expressions read.
///
/// roundtrip implements it for the request that triggered a callback; [`RequestContext`]
/// is a plain owned implementation for tests and for callers that have no better type.
pub trait RequestSource {
    /// The HTTP method, such as `POST`.
    fn method(&self) -> &str;
    /// The full URL of the request.
    fn url(&self) -> &str;
    /// The value of a path parameter.
    fn path_param(&self, name: &str) -> Option<&str>;
    /// The first value of a query parameter, decoded.
    fn query_param(&self, name: &str) -> Option<&str>;
    /// The first value of a header; `name` must be matched without regard to ASCII case.
    fn header(&self, name: &str) -> Option<&str>;
    /// The body parsed as JSON, if the request had one.
    fn body(&self) -> Option<&Value>;
}

/// The parts of an HTTP response that runtime expressions read.
pub trait ResponseSource {
    /// The status code, such as 200.
    fn status(&self) -> u16;
    /// The first value of a header; `name` must be matched without regard to ASCII case.
    fn header(&self, name: &str) -> Option<&str>;
    /// The body parsed as JSON, if the response had one.
    fn body(&self) -> Option<&Value>;
}

/// A request held in plain owned data, for tests and for callers with no better type.
///
/// ```
/// use roundtrip_openapi::expr::{RequestContext, Template};
/// use serde_json::json;
///
/// let request = RequestContext::new(
///     "POST",
///     "https://api.example.com/invoices/?callback_url=https://www.external.org/events",
/// )
/// .with_body(json!({"id": "2expen51ve"}));
/// let template: Template = "{$callback_url}/invoices/{$request.body.id}".parse()?;
/// assert_eq!(
///     template.resolve_url(&request, None)?.as_str(),
///     "https://www.external.org/events/invoices/2expen51ve",
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestContext {
    method: String,
    url: String,
    path_params: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

impl RequestContext {
    /// A request with this method and URL; the query parameters are read from the URL.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        let url = url.into();
        let query = url
            .split_once('?')
            .map(|(_, rest)| rest.split('#').next().unwrap_or_default())
            .map(|query| {
                url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Self {
            method: method.into(),
            url,
            query,
            ..Self::default()
        }
    }

    /// Adds a path parameter.
    pub fn with_path_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.path_params.push((name.into(), value.into()));
        self
    }

    /// Adds a query parameter after those read from the URL.
    pub fn with_query_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the JSON body.
    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn first_header<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

impl RequestSource for RequestContext {
    fn method(&self) -> &str {
        &self.method
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn path_param(&self, name: &str) -> Option<&str> {
        first(&self.path_params, name)
    }

    fn query_param(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }

    fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    fn body(&self) -> Option<&Value> {
        self.body.as_ref()
    }
}

/// A response held in plain owned data, for tests and for callers with no better type.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseContext {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

impl ResponseContext {
    /// A response with this status code, no headers and no body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the JSON body.
    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

impl ResponseSource for ResponseContext {
    fn status(&self) -> u16 {
        self.status
    }

    fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    fn body(&self) -> Option<&Value> {
        self.body.as_ref()
    }
}

impl RuntimeExpr {
    /// The value of this expression, rendered as text: strings as they are, numbers as
    /// JSON writes them, booleans as `true` or `false`.
    ///
    /// Objects, arrays and `null` have no text form and are an error.
    pub fn evaluate<'a>(
        &self,
        request: &'a dyn RequestSource,
        response: Option<&'a dyn ResponseSource>,
    ) -> Result<Cow<'a, str>, EvalError> {
        let fail = |kind| EvalError::new(kind, Some(self.clone()));
        let missing = |what| fail(Kind::Missing(what));
        let text =
            |value: Option<&'a str>, what| value.map(Cow::Borrowed).ok_or_else(|| missing(what));
        match self {
            Self::Url => Ok(Cow::Borrowed(request.url())),
            Self::Method => Ok(Cow::Borrowed(request.method())),
            Self::StatusCode => response
                .map(|response| Cow::Owned(response.status().to_string()))
                .ok_or_else(|| fail(Kind::NoResponse)),
            Self::CallbackUrl => text(
                request.query_param("callback_url"),
                Missing::QueryParam("callback_url".to_owned()),
            ),
            Self::Request(Source::Header(name)) => text(
                request.header(name.as_str()),
                Missing::RequestHeader(name.as_str().to_owned()),
            ),
            Self::Request(Source::Query(name)) => text(
                request.query_param(name.as_str()),
                Missing::QueryParam(name.as_str().to_owned()),
            ),
            Self::Request(Source::Path(name)) => text(
                request.path_param(name.as_str()),
                Missing::PathParam(name.as_str().to_owned()),
            ),
            Self::Request(Source::Body(body)) => {
                let document = request
                    .body()
                    .ok_or_else(|| missing(Missing::RequestBody))?;
                let value = body
                    .pointer()
                    .resolve(document)
                    .ok_or_else(|| missing(Missing::RequestBodyValue(body.pointer().clone())))?;
                scalar(value).map_err(|kind| fail(Kind::NotScalar(kind)))
            }
            Self::Response(source) => {
                let response = response.ok_or_else(|| fail(Kind::NoResponse))?;
                match source {
                    Source::Header(name) => text(
                        response.header(name.as_str()),
                        Missing::ResponseHeader(name.as_str().to_owned()),
                    ),
                    Source::Body(body) => {
                        let document = response
                            .body()
                            .ok_or_else(|| missing(Missing::ResponseBody))?;
                        let value = body.pointer().resolve(document).ok_or_else(|| {
                            missing(Missing::ResponseBodyValue(body.pointer().clone()))
                        })?;
                        scalar(value).map_err(|kind| fail(Kind::NotScalar(kind)))
                    }
                    // The parser refuses `$response.query.` and `$response.path.`.
                    Source::Query(name) | Source::Path(name) => {
                        text(None, Missing::ResponseParam(name.as_str().to_owned()))
                    }
                }
            }
        }
    }
}

/// The text of a scalar JSON value, or the JSON type name of a value that has none.
fn scalar(value: &Value) -> Result<Cow<'_, str>, &'static str> {
    match value {
        Value::String(s) => Ok(Cow::Borrowed(s)),
        Value::Number(n) => Ok(Cow::Owned(n.to_string())),
        Value::Bool(true) => Ok(Cow::Borrowed("true")),
        Value::Bool(false) => Ok(Cow::Borrowed("false")),
        Value::Null => Err("null"),
        Value::Array(_) => Err("an array"),
        Value::Object(_) => Err("an object"),
    }
}

/// What was missing when an expression had no value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// The request has no query parameter of this name.
    QueryParam(String),
    /// The request has no path parameter of this name.
    PathParam(String),
    /// The request has no header of this name.
    RequestHeader(String),
    /// The request has no body.
    RequestBody,
    /// The request body has nothing at this pointer.
    RequestBodyValue(JsonPointer),
    /// The response has no header of this name.
    ResponseHeader(String),
    /// The response has no body.
    ResponseBody,
    /// The response body has nothing at this pointer.
    ResponseBodyValue(JsonPointer),
    /// A response has no query or path parameters.
    ResponseParam(String),
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QueryParam(name) => write!(f, "the request has no query parameter \"{name}\""),
            Self::PathParam(name) => write!(f, "the request has no path parameter \"{name}\""),
            Self::RequestHeader(name) => write!(f, "the request has no header \"{name}\""),
            Self::RequestBody => f.write_str("the request has no JSON body"),
            Self::RequestBodyValue(pointer) => {
                write!(f, "the request body has no value at \"{pointer}\"")
            }
            Self::ResponseHeader(name) => write!(f, "the response has no header \"{name}\""),
            Self::ResponseBody => f.write_str("the response has no JSON body"),
            Self::ResponseBodyValue(pointer) => {
                write!(f, "the response body has no value at \"{pointer}\"")
            }
            Self::ResponseParam(name) => {
                write!(f, "a response has no parameter \"{name}\"")
            }
        }
    }
}

/// Why the result of a template is not a URL a callback can be sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotUrlReason {
    /// It is a relative reference, with no scheme and host.
    Relative,
    /// Its scheme is neither `http` nor `https`.
    Scheme(String),
    /// It does not parse as a URL.
    Invalid(url::ParseError),
}

impl fmt::Display for NotUrlReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Relative => f.write_str("it is relative (it has no scheme and host)"),
            Self::Scheme(scheme) => write!(
                f,
                "its scheme is \"{scheme}\", not http or https (a callback URL starts with \
                 http:// or https://)"
            ),
            Self::Invalid(err) => write!(f, "{err}"),
        }
    }
}

/// A template or expression that could not be evaluated against a request.
///
/// Ask it what went wrong with the `is_*` methods and the accessors. Its message names the
/// template and the expression but never a value, because values (callback URLs above
/// all) can hold secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError {
    inner: Box<Inner>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    kind: Kind,
    expr: Option<RuntimeExpr>,
    template: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Missing(Missing),
    NotScalar(&'static str),
    NoResponse,
    NotUrl(NotUrlReason),
    UnsafeValue(String),
}

impl EvalError {
    fn new(kind: Kind, expr: Option<RuntimeExpr>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                expr,
                template: None,
            }),
        }
    }

    pub(super) fn not_url(reason: NotUrlReason) -> Self {
        Self::new(Kind::NotUrl(reason), None)
    }

    pub(super) fn unsafe_value(segment: String, expr: Option<RuntimeExpr>) -> Self {
        Self::new(Kind::UnsafeValue(segment), expr)
    }

    pub(super) fn in_template(mut self, template: &Template) -> Self {
        self.inner.template = Some(template.to_string());
        self
    }

    /// Whether an expression had no value: a parameter, header, body or body field was
    /// missing (see [`missing`](Self::missing)).
    pub fn is_missing(&self) -> bool {
        matches!(self.inner.kind, Kind::Missing(_))
    }

    /// Whether an expression's value was an object, an array or `null`, which have no text
    /// form to put into a URL.
    pub fn is_not_scalar(&self) -> bool {
        matches!(self.inner.kind, Kind::NotScalar(_))
    }

    /// Whether an expression reads the response but none was given.
    pub fn is_no_response(&self) -> bool {
        matches!(self.inner.kind, Kind::NoResponse)
    }

    /// Whether the result is not an absolute http(s) URL (see
    /// [`not_url_reason`](Self::not_url_reason)).
    pub fn is_not_url(&self) -> bool {
        matches!(self.inner.kind, Kind::NotUrl(_))
    }

    /// Whether a value would have formed a `.` or `..` path segment and so moved the URL's
    /// path; such a value is refused rather than sent.
    pub fn is_unsafe_value(&self) -> bool {
        matches!(self.inner.kind, Kind::UnsafeValue(_))
    }

    /// What was missing, if that was the problem.
    pub fn missing(&self) -> Option<&Missing> {
        match &self.inner.kind {
            Kind::Missing(missing) => Some(missing),
            _ => None,
        }
    }

    /// The JSON type of a value that was not a scalar: `an object`, `an array` or `null`.
    pub fn non_scalar_type(&self) -> Option<&'static str> {
        match self.inner.kind {
            Kind::NotScalar(kind) => Some(kind),
            _ => None,
        }
    }

    /// Why the result is not a callback URL, if that was the problem.
    pub fn not_url_reason(&self) -> Option<&NotUrlReason> {
        match &self.inner.kind {
            Kind::NotUrl(reason) => Some(reason),
            _ => None,
        }
    }

    /// The expression that failed, as written, when one expression is to blame.
    pub fn expression(&self) -> Option<&RuntimeExpr> {
        self.inner.expr.as_ref()
    }

    /// The template being evaluated, as written, when the error came from a template.
    pub fn template(&self) -> Option<&str> {
        self.inner.template.as_deref()
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(template) = &self.inner.template {
            write!(f, "cannot evaluate \"{template}\": ")?;
        }
        let expr = self
            .inner
            .expr
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        match &self.inner.kind {
            Kind::Missing(missing) => write!(f, "\"{expr}\" has no value: {missing}"),
            Kind::NotScalar(kind) => write!(
                f,
                "\"{expr}\" is {kind}, but only a string, number or boolean can be put into \
                 a URL"
            ),
            Kind::NoResponse => write!(
                f,
                "\"{expr}\" reads the response, but it was evaluated without one"
            ),
            Kind::NotUrl(reason) => write!(f, "the result is not a callback URL: {reason}"),
            Kind::UnsafeValue(segment) => write!(
                f,
                "the value of \"{expr}\" would form the path segment \"{segment}\", which \
                 would move the URL's path; it is refused"
            ),
        }
    }
}

impl std::error::Error for EvalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            Kind::NotUrl(NotUrlReason::Invalid(err)) => Some(err),
            _ => None,
        }
    }
}
