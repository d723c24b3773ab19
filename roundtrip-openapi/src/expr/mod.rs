//! OpenAPI runtime expressions (`{$request.body#/id}`): parse, print, evaluate and lint.
//!
//! A callback's key says where the callback goes, in terms of the request that triggered
//! it: `{$request.query.callback_url}/invoices/{$request.body#/id}`. roundtrip parses such
//! keys when the app is built, so a mistake is reported before the first request, and
//! evaluates them when a handler sends the callback.
//!
//! ```
//! use roundtrip_openapi::expr::{RequestContext, Template};
//! use serde_json::json;
//!
//! let template = Template::parse("{$request.query.callback_url}/invoices/{$request.body#/id}")?;
//! assert!(template.needs_request_body());
//! assert_eq!(template.query_params().collect::<Vec<_>>(), ["callback_url"]);
//!
//! let request = RequestContext::new("POST", "/invoices/")
//!     .with_query_param("callback_url", "https://www.external.org/events")
//!     .with_body(json!({"id": "2expen51ve"}));
//! let url = template.resolve_url(&request, None)?;
//! assert_eq!(url.as_str(), "https://www.external.org/events/invoices/2expen51ve");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Grammar
//!
//! Expressions follow the ABNF of the OpenAPI 3.1 specification ("Runtime Expressions"):
//!
//! | expression | value |
//! |---|---|
//! | `$url` | the full request URL |
//! | `$method` | the request method |
//! | `$statusCode` | the response status code |
//! | `$request.header.<token>` | a request header (any case) |
//! | `$request.query.<name>` | a query parameter |
//! | `$request.path.<name>` | a path parameter |
//! | `$request.body` | the whole request body |
//! | `$request.body#<json-pointer>` | a value in the request body (`~0` is `~`, `~1` is `/`) |
//! | `$response.header.<token>`, `$response.body…` | the same, from the response |
//!
//! A [`Template`] is text with expressions embedded in braces; inside braces, `}` ends the
//! expression. A template that starts with `$` is a single bare expression, as in the
//! spec's callback example `$request.body#/url`. There is no escape for a literal `{` or
//! `}`: neither belongs in a URL.
//!
//! roundtrip is stricter than the ABNF in two places, both of which could only ever fail
//! at send time: a query or path parameter name may not be empty, and `$response.` takes
//! only `header.` and `body` (a response has no query or path parameters).
//!
//! # FastAPI's dialect
//!
//! FastAPI apps write callback keys such as `{$callback_url}/invoices/{$request.body.id}`.
//! roundtrip accepts both of its forms:
//!
//! - `$callback_url` means the operation's one input named `callback_url`: a query, path
//!   or header parameter, or a top-level body field ([`Template::check`] binds it and
//!   refuses an operation with none or several). On its own, without an operation, it
//!   reads the query parameter, and its spec spelling is `$request.query.callback_url`;
//! - `$request.body.a.b` (a dotted path) means `$request.body#/a/b`.
//!
//! The document keeps what the user wrote, as FastAPI does. [`Template::lint`] warns about
//! each such expression and gives the spec's spelling, for tools that follow the grammar.
//!
//! # Values cannot change the URL's structure
//!
//! Values come from the request, which the API's caller controls, so a template
//! inserts them by this rule:
//!
//! 1. A value at the very start of the template (such as `{$callback_url}` in
//!    `{$callback_url}/invoices/{$request.body.id}`) is the base URL and goes in verbatim.
//! 2. Every other value is percent-encoded (as UTF-8). Until a `?` or `#` has been
//!    written (by the template's text or in the base URL), it is encoded as a path
//!    segment: only ASCII letters and digits and `-._~!$&'()*+,=` stay as they are, so
//!    `/`, `\`, `?`, `#`, `%`, `:`, `@` and `;` are encoded. After that it is encoded as a
//!    query component: only ASCII letters and digits and `-._~!$'()*,:@/?` stay, so `&`,
//!    `=`, `+`, `;`, `#` and `%` are encoded. A body value `../../admin` thus becomes
//!    `..%2F..%2Fadmin`, and `x?y#z` becomes `x%3Fy%23z`.
//! 3. A value that would form a whole `.` or `..` path segment is refused with an error
//!    ([`EvalError::is_unsafe_value`]), since URL parsers treat even `%2E%2E` as `..`.
//!
//! [`Template::resolve_url`] also requires the result to be an absolute `http` or `https`
//! URL. Where it may connect (no private addresses, for instance) is the delivery side's
//! decision, not this module's.
//!
//! # Checked against the operation
//!
//! [`Template::check`] checks a template against the operation it is attached to (what
//! it [`Declared`]): every parameter an expression reads must be declared, every body path
//! must be one the body's schema can have, and FastAPI's `$callback_url` must name exactly
//! one input. roundtrip runs it when the app is built, so a callback that builds is a
//! callback that can be sent. Runtime expressions cannot read cookies: the specification's
//! grammar has no `$request.cookie.` (pass such a value in a header or the body instead).
//!
//! # Values as text
//!
//! Strings go in as they are, numbers as JSON writes them, booleans as `true` and `false`.
//! An object, an array or `null` is an error ([`EvalError::is_not_scalar`]).

mod ast;
mod check;
mod encode;
mod eval;
mod lint;
mod parse;
mod pointer;
mod template;

#[cfg(test)]
mod tests;

pub use ast::{BodyRef, ParamName, RuntimeExpr, Source};
pub use check::{Declared, Mismatch};
pub use eval::{
    EvalError, Missing, NotUrlReason, RequestContext, RequestSource, ResponseContext,
    ResponseSource,
};
pub use lint::LintWarning;
pub use parse::ParseError;
pub use pointer::JsonPointer;
pub use template::{Part, Template};
