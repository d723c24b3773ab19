//! Templates: strings that embed runtime expressions in braces, such as callback keys.

use std::fmt;
use std::str::FromStr;

use url::Url;

use super::ast::RuntimeExpr;
use super::encode::UrlWriter;
use super::eval::{EvalError, NotUrlReason, RequestSource, ResponseSource};
use super::parse::{self, ParseError};
use super::pointer::JsonPointer;

/// A string with runtime expressions embedded in braces, such as the callback key
/// `{$request.query.callback_url}/invoices/{$request.body#/id}`.
///
/// A string that starts with `$` is one bare expression (`$request.body#/url`), as in the
/// spec's callback examples. [`Display`](fmt::Display) prints the template exactly as it
/// was written, FastAPI's spellings included; equality compares the written form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Template {
    /// Never two literals in a row, and never an empty literal.
    parts: Vec<Part>,
    /// The whole template is one expression written without braces.
    bare: bool,
    /// The text as the user wrote it, when the parts were rewritten since (FastAPI's
    /// `$callback_url` bound to the parameter it names); it is what the template prints.
    written: Option<String>,
}

/// One piece of a [`Template`]: literal text, or an expression that was written in braces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// Text copied as it is.
    Literal(String),
    /// An expression whose value is put in its place.
    Expr(RuntimeExpr),
}

impl Template {
    /// Parses a template; see the [module documentation](super) for the grammar.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        parse::template(input)
    }

    pub(super) fn bare(expr: RuntimeExpr) -> Self {
        Self {
            parts: vec![Part::Expr(expr)],
            bare: true,
            written: None,
        }
    }

    pub(super) fn braced(parts: Vec<Part>) -> Self {
        Self {
            parts,
            bare: false,
            written: None,
        }
    }

    /// The literal text and expressions, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Whether the template is a single expression written without braces.
    pub fn is_bare(&self) -> bool {
        self.bare
    }

    /// The expressions in the template, in order.
    pub fn expressions(&self) -> impl Iterator<Item = &RuntimeExpr> + '_ {
        self.parts.iter().filter_map(|part| match part {
            Part::Expr(expr) => Some(expr),
            Part::Literal(_) => None,
        })
    }

    /// Whether evaluating the template reads the request body, which must then be kept.
    pub fn needs_request_body(&self) -> bool {
        self.expressions().any(RuntimeExpr::reads_request_body)
    }

    /// Whether evaluating the template needs a response (`$statusCode`, `$response.…`).
    pub fn needs_response(&self) -> bool {
        self.expressions().any(RuntimeExpr::needs_response)
    }

    /// The request query parameters the template reads (`$callback_url` reads `callback_url`).
    pub fn query_params(&self) -> impl Iterator<Item = &str> + '_ {
        self.expressions().filter_map(RuntimeExpr::query_param)
    }

    /// The request path parameters the template reads.
    pub fn path_params(&self) -> impl Iterator<Item = &str> + '_ {
        self.expressions().filter_map(RuntimeExpr::path_param)
    }

    /// The request headers the template reads, as written.
    pub fn request_headers(&self) -> impl Iterator<Item = &str> + '_ {
        self.expressions().filter_map(RuntimeExpr::request_header)
    }

    /// The pointers into the request body the template reads (the root pointer for the
    /// whole body).
    pub fn request_body_pointers(&self) -> impl Iterator<Item = &JsonPointer> + '_ {
        self.expressions()
            .filter_map(RuntimeExpr::request_body_pointer)
    }

    /// Whether any expression is written in FastAPI's dialect rather than the spec's.
    pub fn uses_fastapi_dialect(&self) -> bool {
        self.expressions().any(RuntimeExpr::is_fastapi_dialect)
    }

    /// The same template with every expression in the spec's spelling
    /// (see [`RuntimeExpr::to_spec`]).
    pub fn to_spec(&self) -> Self {
        Self {
            parts: self
                .parts
                .iter()
                .map(|part| match part {
                    Part::Expr(expr) => Part::Expr(expr.to_spec()),
                    literal => literal.clone(),
                })
                .collect(),
            bare: self.bare,
            written: None,
        }
    }

    /// The same template with every `$callback_url` replaced by `target`, the expression
    /// of the parameter it stands for in one operation. It still prints as written.
    pub(super) fn with_callback_url(&self, target: &RuntimeExpr) -> Self {
        Self {
            parts: self
                .parts
                .iter()
                .map(|part| match part {
                    Part::Expr(RuntimeExpr::CallbackUrl) => Part::Expr(target.clone()),
                    other => other.clone(),
                })
                .collect(),
            bare: self.bare,
            written: Some(self.to_string()),
        }
    }

    /// The expressions with the 1-based character position of each (of its `$`).
    pub(super) fn positioned_expressions(&self) -> Vec<(usize, &RuntimeExpr)> {
        let mut found = Vec::new();
        let mut chars_before = 0;
        for part in &self.parts {
            match part {
                Part::Literal(text) => chars_before += text.chars().count(),
                Part::Expr(expr) if self.bare => found.push((1, expr)),
                Part::Expr(expr) => {
                    // Skip the `{`, then count from 1.
                    found.push((chars_before + 2, expr));
                    chars_before += expr.to_string().chars().count() + 2;
                }
            }
        }
        found
    }

    /// Evaluates the template against a request and, where there is one, its response.
    ///
    /// A value at the very start of the template is the base URL and goes in verbatim;
    /// every later value is percent-encoded, so that it cannot change the URL's structure
    /// (see the [module documentation](super#values-cannot-change-the-urls-structure)).
    pub fn evaluate(
        &self,
        request: &dyn RequestSource,
        response: Option<&dyn ResponseSource>,
    ) -> Result<String, EvalError> {
        let mut writer = UrlWriter::default();
        for (index, part) in self.parts.iter().enumerate() {
            match part {
                Part::Literal(text) => writer.push_verbatim(text),
                Part::Expr(expr) => {
                    let value = expr
                        .evaluate(request, response)
                        .map_err(|err| err.in_template(self))?;
                    if index == 0 {
                        writer.push_verbatim(&value);
                    } else {
                        writer.push_value(&value, index);
                    }
                }
            }
        }
        writer.finish().map_err(|unsafe_value| {
            let expr = match self.parts.get(unsafe_value.part) {
                Some(Part::Expr(expr)) => Some(expr.clone()),
                _ => None,
            };
            EvalError::unsafe_value(unsafe_value.segment, expr).in_template(self)
        })
    }

    /// Evaluates the template and checks that the result is an absolute `http` or `https`
    /// URL, as a callback target must be.
    pub fn resolve_url(
        &self,
        request: &dyn RequestSource,
        response: Option<&dyn ResponseSource>,
    ) -> Result<Url, EvalError> {
        let text = self.evaluate(request, response)?;
        let url = Url::parse(&text).map_err(|err| {
            let reason = match err {
                url::ParseError::RelativeUrlWithoutBase => NotUrlReason::Relative,
                other => NotUrlReason::Invalid(other),
            };
            EvalError::not_url(reason).in_template(self)
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            let reason = NotUrlReason::Scheme(url.scheme().to_owned());
            return Err(EvalError::not_url(reason).in_template(self));
        }
        Ok(url)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(written) = &self.written {
            return f.write_str(written);
        }
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(text)?,
                Part::Expr(expr) if self.bare => write!(f, "{expr}")?,
                Part::Expr(expr) => write!(f, "{{{expr}}}")?,
            }
        }
        Ok(())
    }
}

impl FromStr for Template {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}
