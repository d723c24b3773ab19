//! The parsed form of one runtime expression, and how it prints.

use std::fmt;
use std::str::FromStr;

use super::parse::{self, ParseError};
use super::pointer::JsonPointer;

/// One OpenAPI runtime expression, such as `$request.body#/id` or `$statusCode`.
///
/// It keeps the spelling it was written in: [`Display`](fmt::Display) prints exactly the
/// text that was parsed, and two expressions are equal only if they were written the same
/// way (`$request.body` and `$request.body#` mean the same but are not equal). Use
/// [`RuntimeExpr::to_spec`] to compare meanings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RuntimeExpr {
    /// `$url`: the full URL of the request.
    Url,
    /// `$method`: the HTTP method of the request.
    Method,
    /// `$statusCode`: the status code of the response.
    StatusCode,
    /// `$request.<source>`: a part of the request.
    Request(Source),
    /// `$response.<source>`: a part of the response.
    Response(Source),
    /// `$callback_url`: FastAPI's spelling of `$request.query.callback_url`.
    CallbackUrl,
}

/// The part of a request or response that an expression reads: a header, a query or path
/// parameter, or (part of) the body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// `header.<token>`: a header, matched without regard to case.
    Header(ParamName),
    /// `query.<name>`: a query parameter.
    Query(ParamName),
    /// `path.<name>`: a path parameter.
    Path(ParamName),
    /// `body`, `body#<json-pointer>`, or FastAPI's `body.a.b`: the body or a value inside it.
    Body(BodyRef),
}

/// The name of a header, query parameter or path parameter, as written in an expression.
///
/// Only the parser makes these, so every name can be printed and parsed back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParamName(String);

impl ParamName {
    pub(super) fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reference to the body or a value inside it, in the spelling it was written in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BodyRef {
    pointer: JsonPointer,
    spelling: BodySpelling,
}

/// How a body reference was written; all three spellings resolve through a JSON Pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum BodySpelling {
    /// `body`
    Plain,
    /// `body#/a/b` (or `body#`)
    Pointer,
    /// `body.a.b`, FastAPI's dialect
    Dotted,
}

impl BodyRef {
    /// `body`: the whole body.
    pub(super) fn whole() -> Self {
        Self {
            pointer: JsonPointer::root(),
            spelling: BodySpelling::Plain,
        }
    }

    /// `body#<pointer>`.
    pub(super) fn pointer_form(pointer: JsonPointer) -> Self {
        Self {
            pointer,
            spelling: BodySpelling::Pointer,
        }
    }

    /// `body.a.b`; the parser guarantees at least one segment and no `.` inside one.
    pub(super) fn dotted(pointer: JsonPointer) -> Self {
        Self {
            pointer,
            spelling: BodySpelling::Dotted,
        }
    }

    /// The JSON Pointer this reference resolves through; the root pointer means the whole body.
    pub fn pointer(&self) -> &JsonPointer {
        &self.pointer
    }

    /// Whether this was written in FastAPI's dotted form (`body.a.b`) rather than the spec's.
    pub fn is_dotted(&self) -> bool {
        self.spelling == BodySpelling::Dotted
    }

    fn to_spec(&self) -> Self {
        match self.spelling {
            BodySpelling::Dotted => Self::pointer_form(self.pointer.clone()),
            _ => self.clone(),
        }
    }
}

impl RuntimeExpr {
    /// Parses a bare expression such as `$request.body#/id` (no surrounding braces).
    ///
    /// Use [`Template::parse`](super::Template::parse) for strings that embed expressions
    /// in braces, such as callback keys.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        parse::expression(input)
    }

    /// Whether this expression is valid only in FastAPI's dialect (`$callback_url`,
    /// `$request.body.a.b`) and not in the spec's ABNF.
    pub fn is_fastapi_dialect(&self) -> bool {
        match self {
            Self::CallbackUrl => true,
            Self::Request(Source::Body(body)) | Self::Response(Source::Body(body)) => {
                body.is_dotted()
            }
            _ => false,
        }
    }

    /// The same expression in the spec's spelling: `$callback_url` becomes
    /// `$request.query.callback_url` and `$request.body.a.b` becomes `$request.body#/a/b`.
    ///
    /// Expressions already in the spec's spelling come back unchanged.
    pub fn to_spec(&self) -> Self {
        match self {
            Self::CallbackUrl => Self::Request(Source::Query(ParamName::new("callback_url"))),
            Self::Request(Source::Body(body)) => Self::Request(Source::Body(body.to_spec())),
            Self::Response(Source::Body(body)) => Self::Response(Source::Body(body.to_spec())),
            other => other.clone(),
        }
    }

    /// Whether evaluating this expression needs the request body.
    pub fn reads_request_body(&self) -> bool {
        matches!(self, Self::Request(Source::Body(_)))
    }

    /// The pointer into the request body this expression reads, if it reads the request body
    /// (the root pointer for the whole body).
    pub fn request_body_pointer(&self) -> Option<&JsonPointer> {
        match self {
            Self::Request(Source::Body(body)) => Some(body.pointer()),
            _ => None,
        }
    }

    /// Whether evaluating this expression needs a response (`$statusCode`, `$response.…`).
    pub fn needs_response(&self) -> bool {
        matches!(self, Self::StatusCode | Self::Response(_))
    }

    /// The request query parameter this expression reads, if any (`$callback_url` reads
    /// `callback_url`).
    pub fn query_param(&self) -> Option<&str> {
        match self {
            Self::Request(Source::Query(name)) => Some(name.as_str()),
            Self::CallbackUrl => Some("callback_url"),
            _ => None,
        }
    }

    /// The request path parameter this expression reads, if any.
    pub fn path_param(&self) -> Option<&str> {
        match self {
            Self::Request(Source::Path(name)) => Some(name.as_str()),
            _ => None,
        }
    }

    /// The request header this expression reads, if any, as written.
    pub fn request_header(&self) -> Option<&str> {
        match self {
            Self::Request(Source::Header(name)) => Some(name.as_str()),
            _ => None,
        }
    }
}

impl fmt::Display for RuntimeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url => f.write_str("$url"),
            Self::Method => f.write_str("$method"),
            Self::StatusCode => f.write_str("$statusCode"),
            Self::Request(source) => write!(f, "$request.{source}"),
            Self::Response(source) => write!(f, "$response.{source}"),
            Self::CallbackUrl => f.write_str("$callback_url"),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(name) => write!(f, "header.{name}"),
            Self::Query(name) => write!(f, "query.{name}"),
            Self::Path(name) => write!(f, "path.{name}"),
            Self::Body(body) => write!(f, "{body}"),
        }
    }
}

impl fmt::Display for BodyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("body")?;
        match self.spelling {
            BodySpelling::Plain => Ok(()),
            BodySpelling::Pointer => write!(f, "#{}", self.pointer),
            BodySpelling::Dotted => {
                for token in self.pointer.tokens() {
                    write!(f, ".{token}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for RuntimeExpr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for RuntimeExpr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RuntimeExpr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}
