//! The parser for runtime expressions and templates, and its error.

use std::fmt;

use super::ast::{BodyRef, ParamName, RuntimeExpr, Source};
use super::pointer::JsonPointer;
use super::template::{Part, Template};

/// The roots an expression can start with, as the spec spells them; FastAPI's
/// `$callback_url` is accepted but not suggested.
const ROOTS: &[&str] = &[
    "\"$url\"",
    "\"$method\"",
    "\"$statusCode\"",
    "\"$request.\"",
    "\"$response.\"",
];
const SOURCES: &[&str] = &["\"header.\"", "\"query.\"", "\"path.\"", "\"body\""];
const RESPONSE_SOURCES: &[&str] = &["\"header.\"", "\"body\""];

/// How many characters of the remaining input an error quotes.
const SNIPPET_CHARS: usize = 10;

/// A runtime expression or template that does not follow the grammar.
///
/// It says where the problem is, what the grammar allowed there, and what was found
/// instead. Its [`Display`](fmt::Display) reads like
/// `invalid runtime expression "{$reqest.body}" at position 2: expected one of "$url",
/// "$method", "$statusCode", "$request.", "$response.", found "$reqest.bo..."`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    input: String,
    byte_offset: usize,
    expected: Vec<&'static str>,
    note: Option<String>,
}

impl ParseError {
    fn new(input: &str, byte_offset: usize, expected: &[&'static str]) -> Self {
        Self {
            input: input.to_owned(),
            byte_offset,
            expected: expected.to_vec(),
            note: None,
        }
    }

    fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The whole text that was parsed.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The position of the problem, counted in characters from 1 (as shown in the message).
    pub fn position(&self) -> usize {
        char_position(&self.input, self.byte_offset)
    }

    /// The position of the problem as a byte offset into [`input`](Self::input), from 0.
    pub fn byte_offset(&self) -> usize {
        self.byte_offset
    }

    /// What the grammar allowed at that position, as shown in the message: literal text in
    /// double quotes, descriptions (such as `a header name`) without.
    pub fn expected(&self) -> &[&'static str] {
        &self.expected
    }

    /// The text found at that position (at most ten characters, then `...`), or `None` at
    /// the end of the input.
    pub fn found(&self) -> Option<String> {
        let rest = self.input.get(self.byte_offset..).unwrap_or_default();
        let mut chars = rest.chars();
        let snippet: String = chars.by_ref().take(SNIPPET_CHARS).collect();
        if snippet.is_empty() {
            None
        } else if chars.next().is_some() {
            Some(format!("{snippet}..."))
        } else {
            Some(snippet)
        }
    }
}

/// 1-based character position of a byte offset.
fn char_position(input: &str, byte_offset: usize) -> usize {
    input
        .get(..byte_offset)
        .map_or(0, |before| before.chars().count())
        + 1
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid runtime expression \"{}\" at position {}: expected ",
            self.input,
            self.position()
        )?;
        if self.expected.len() > 1 {
            f.write_str("one of ")?;
        }
        f.write_str(&self.expected.join(", "))?;
        match self.found() {
            Some(found) => write!(f, ", found \"{found}\"")?,
            None => f.write_str(", found end of input")?,
        }
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// Where the expression being parsed stands, which decides what ends it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// The whole input is one expression.
    Bare,
    /// Inside `{…}` in a template: `}` ends the expression.
    Braced,
}

/// Parses a bare expression: the whole input.
pub(super) fn expression(input: &str) -> Result<RuntimeExpr, ParseError> {
    let mut parser = Parser {
        input,
        pos: 0,
        context: Context::Bare,
    };
    parser.expression()
}

/// Parses a template: literal text with expressions in braces, or one bare expression when
/// the input starts with `$` (a URL never does, and the spec's callback examples use
/// bare keys such as `$request.body#/url`).
pub(super) fn template(input: &str) -> Result<Template, ParseError> {
    if input.starts_with('$') {
        return expression(input).map(Template::bare);
    }
    let mut parser = Parser {
        input,
        pos: 0,
        context: Context::Braced,
    };
    let mut parts = Vec::new();
    let mut literal_start = 0;
    while let Some(c) = parser.peek() {
        match c {
            '{' => {
                if literal_start < parser.pos {
                    parts.push(Part::Literal(input[literal_start..parser.pos].to_owned()));
                }
                let open = parser.pos;
                parser.bump();
                let expr = parser.expression()?;
                // `expression` stops only at `}` or at the end of the input.
                if !parser.eat('}') {
                    return Err(ParseError::new(input, input.len(), &["\"}\""]).with_note(
                        format!(
                            "the \"{{\" at position {} is never closed",
                            char_position(input, open)
                        ),
                    ));
                }
                parts.push(Part::Expr(expr));
                literal_start = parser.pos;
            }
            '}' => {
                return Err(parser
                    .error(&["literal text", "\"{\""])
                    .with_note("this \"}\" closes no \"{\""));
            }
            _ => {
                parser.bump();
            }
        }
    }
    if literal_start < input.len() {
        parts.push(Part::Literal(input[literal_start..].to_owned()));
    }
    Ok(Template::braced(parts))
}

struct Parser<'a> {
    input: &'a str,
    /// Byte offset of the next character; always on a character boundary.
    pos: usize,
    context: Context,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.input.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.pos += expected.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes characters while `keep` holds and returns them.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !keep(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.input[start..self.pos]
    }

    /// Whether the expression ends here: at the end of the input, or at `}` inside braces.
    fn at_end(&self) -> bool {
        match self.peek() {
            None => true,
            Some('}') => self.context == Context::Braced,
            Some(_) => false,
        }
    }

    fn end_name(&self) -> &'static str {
        match self.context {
            Context::Bare => "end of expression",
            Context::Braced => "\"}\"",
        }
    }

    fn error(&self, expected: &[&'static str]) -> ParseError {
        ParseError::new(self.input, self.pos, expected)
    }

    fn error_at(&self, byte_offset: usize, expected: &[&'static str]) -> ParseError {
        ParseError::new(self.input, byte_offset, expected)
    }

    /// Fails unless the expression ends here; `alternatives` are what could also have
    /// continued it, for the message.
    fn expect_end(&self, alternatives: &[&'static str]) -> Result<(), ParseError> {
        if self.at_end() {
            return Ok(());
        }
        let mut expected = alternatives.to_vec();
        expected.push(self.end_name());
        Err(self.error(&expected))
    }

    fn expect_dot(&mut self) -> Result<(), ParseError> {
        if self.eat('.') {
            Ok(())
        } else {
            Err(self.error(&["\".\""]))
        }
    }

    fn word(&mut self) -> &'a str {
        self.take_while(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    fn expression(&mut self) -> Result<RuntimeExpr, ParseError> {
        let start = self.pos;
        if !self.eat('$') {
            return Err(self.error(ROOTS));
        }
        let expr = match self.word() {
            "url" => RuntimeExpr::Url,
            "method" => RuntimeExpr::Method,
            "statusCode" => RuntimeExpr::StatusCode,
            "callback_url" => RuntimeExpr::CallbackUrl,
            "request" => {
                self.expect_dot()?;
                RuntimeExpr::Request(self.source()?)
            }
            "response" => {
                self.expect_dot()?;
                RuntimeExpr::Response(self.response_source()?)
            }
            _ => return Err(self.error_at(start, ROOTS)),
        };
        self.expect_end(&[])?;
        Ok(expr)
    }

    fn source(&mut self) -> Result<Source, ParseError> {
        let start = self.pos;
        match self.word() {
            "header" => {
                self.expect_dot()?;
                Ok(Source::Header(self.header_token()?))
            }
            "query" => {
                self.expect_dot()?;
                Ok(Source::Query(self.name()?))
            }
            "path" => {
                self.expect_dot()?;
                Ok(Source::Path(self.name()?))
            }
            "body" => Ok(Source::Body(self.body()?)),
            "cookie" => Err(self.error_at(start, SOURCES).with_note(
                "runtime expressions cannot read cookies; send the value in a header, a query \
                 parameter or the body",
            )),
            _ => Err(self.error_at(start, SOURCES)),
        }
    }

    /// The source of a `$response.` expression.
    ///
    /// Stricter than the ABNF, which also allows `query.` and `path.` here: a response has
    /// neither, so such an expression could never have a value.
    fn response_source(&mut self) -> Result<Source, ParseError> {
        let start = self.pos;
        match self.word() {
            "header" => {
                self.expect_dot()?;
                Ok(Source::Header(self.header_token()?))
            }
            "body" => Ok(Source::Body(self.body()?)),
            "query" | "path" => Err(self
                .error_at(start, RESPONSE_SOURCES)
                .with_note("a response has no query or path parameters")),
            _ => Err(self.error_at(start, RESPONSE_SOURCES)),
        }
    }

    /// `token = 1*tchar` (RFC 9110).
    fn header_token(&mut self) -> Result<ParamName, ParseError> {
        let token = self.take_while(is_tchar);
        if token.is_empty() {
            return Err(self.error(&["a header name"]));
        }
        self.expect_end(&["a header name character"])?;
        Ok(ParamName::new(token))
    }

    /// `name = *( CHAR )`, where CHAR is any 7-bit character but NUL.
    ///
    /// An empty name is refused even though the ABNF allows it: no parameter has an empty
    /// name, so such an expression could never have a value.
    fn name(&mut self) -> Result<ParamName, ParseError> {
        let braced = self.context == Context::Braced;
        let name = self.take_while(|c| c.is_ascii() && c != '\0' && !(braced && c == '}'));
        if name.is_empty() {
            return Err(self.error(&["a parameter name"]));
        }
        self.expect_end(&["an ASCII character"])?;
        Ok(ParamName::new(name))
    }

    fn body(&mut self) -> Result<BodyRef, ParseError> {
        if self.eat('#') {
            return self.json_pointer().map(BodyRef::pointer_form);
        }
        if self.peek() == Some('.') {
            return self.dotted_path().map(BodyRef::dotted);
        }
        self.expect_end(&["\"#\"", "\".\""])?;
        Ok(BodyRef::whole())
    }

    /// `json-pointer = *( "/" reference-token )`, with `~0` and `~1` the only escapes.
    fn json_pointer(&mut self) -> Result<JsonPointer, ParseError> {
        let mut pointer = JsonPointer::root();
        while !self.at_end() {
            if !self.eat('/') {
                let expected = ["\"/\"", self.end_name()];
                return Err(self.error(&expected));
            }
            let mut token = String::new();
            while !self.at_end() && self.peek() != Some('/') {
                let at = self.pos;
                match self.bump() {
                    Some('~') => match self.bump() {
                        Some('0') => token.push('~'),
                        Some('1') => token.push('/'),
                        _ => return Err(self.error_at(at, &["\"~0\"", "\"~1\""])),
                    },
                    Some(c) => token.push(c),
                    None => break,
                }
            }
            pointer.push(token);
        }
        Ok(pointer)
    }

    /// FastAPI's `body.a.b`: one or more non-empty field names after dots.
    fn dotted_path(&mut self) -> Result<JsonPointer, ParseError> {
        let mut pointer = JsonPointer::root();
        while self.eat('.') {
            let segment = self.take_while(is_dotted_char);
            if segment.is_empty() {
                return Err(self.error(&["a body field name"]));
            }
            pointer.push(segment.to_owned());
        }
        self.expect_end(&["\".\"", "a body field name character"])
            .map_err(|err| {
                if self.peek() == Some('[') {
                    err.with_note(
                        "the dotted form has no indexing; write a JSON pointer such as \
                         $request.body#/items/0",
                    )
                } else {
                    err
                }
            })?;
        Ok(pointer)
    }
}

/// `tchar` from RFC 9110: the characters of a header name.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '!' | '#'
                | '$'
                | '%'
                | '&'
                | '\''
                | '*'
                | '+'
                | '-'
                | '.'
                | '^'
                | '_'
                | '`'
                | '|'
                | '~'
        )
}

/// A character of one field name in FastAPI's dotted body form.
///
/// FastAPI's dialect has no grammar of its own, so this takes the characters that cannot
/// be mistaken for structure: no dots, no pointer syntax (`/ ~ #`), no braces, no brackets
/// (which look like indexing but are not), no whitespace or control characters.
fn is_dotted_char(c: char) -> bool {
    !matches!(c, '.' | '/' | '~' | '#' | '{' | '}' | '[' | ']')
        && !c.is_whitespace()
        && !c.is_control()
}
