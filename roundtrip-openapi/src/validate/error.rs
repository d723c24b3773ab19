//! FastAPI's validation error entry, and the rendering helpers its messages need.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One step of an error location: an object key or a list index.
///
/// Serialized as a JSON string or integer, as FastAPI writes `loc`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LocItem {
    /// An object key, a parameter name, or a location root such as `"body"` or `"query"`.
    Key(String),
    /// A position in a list.
    Index(usize),
}

impl LocItem {
    /// A key step.
    pub fn key(key: impl Into<String>) -> Self {
        LocItem::Key(key.into())
    }
}

impl From<&str> for LocItem {
    fn from(key: &str) -> Self {
        LocItem::Key(key.to_owned())
    }
}

impl From<String> for LocItem {
    fn from(key: String) -> Self {
        LocItem::Key(key)
    }
}

impl From<usize> for LocItem {
    fn from(index: usize) -> Self {
        LocItem::Index(index)
    }
}

/// One entry of FastAPI's 422 `detail` list: `{"type", "loc", "msg", "input", "ctx"?}`.
///
/// Serializes with FastAPI's key order; `ctx` is left out when there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationError {
    /// Pydantic's error type, e.g. `missing`, `int_parsing`, `string_too_short`.
    #[serde(rename = "type")]
    pub error_type: Cow<'static, str>,
    /// Where the error is, starting with `body`, `query`, `path`, `header` or `cookie`.
    pub loc: Vec<LocItem>,
    /// The human-readable message, word for word as pydantic writes it.
    pub msg: String,
    /// The offending input as it was received (before any coercion).
    pub input: Value,
    /// The values the message was built from, e.g. `{"min_length": 3}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Map<String, Value>>,
}

impl ValidationError {
    /// An error without context.
    pub fn new(
        error_type: impl Into<Cow<'static, str>>,
        loc: Vec<LocItem>,
        msg: impl Into<String>,
        input: Value,
    ) -> Self {
        ValidationError {
            error_type: error_type.into(),
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    /// Adds one context entry.
    #[must_use]
    pub fn with_ctx(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.ctx
            .get_or_insert_with(Map::new)
            .insert(key.to_owned(), value.into());
        self
    }

    /// `Field required` for a missing parameter or a missing body (`input` is `null`).
    ///
    /// A field missing *inside* a JSON object carries the enclosing object as its input
    /// instead; the validator builds that one itself.
    pub fn missing(loc: Vec<LocItem>) -> Self {
        Self::missing_from(loc, Value::Null)
    }

    /// `Field required`, with the object the field was looked up in as `input`.
    pub fn missing_from(loc: Vec<LocItem>, input: Value) -> Self {
        ValidationError::new("missing", loc, "Field required", input)
    }

    /// The body (or a nested model) is not a JSON object, e.g. an array or a form body
    /// sent to a JSON endpoint.
    pub fn model_attributes_type(loc: Vec<LocItem>, input: Value) -> Self {
        ValidationError::new(
            "model_attributes_type",
            loc,
            "Input should be a valid dictionary or object to extract fields from",
            input,
        )
    }

    /// `JSON decode error` for a body that does not parse, located and worded as Python's
    /// `json` module reports it (`loc` ends with the character offset of the error).
    ///
    /// `err` is serde_json's error for the same bytes; it is used only where Python's
    /// decoder would have accepted the input (NaN, numbers out of range, deep nesting).
    pub fn json_invalid(loc_prefix: &[LocItem], body: &[u8], err: &serde_json::Error) -> Self {
        let (message, position) = super::json_error::describe(body, err);
        let mut loc = Vec::with_capacity(loc_prefix.len() + 1);
        loc.extend_from_slice(loc_prefix);
        loc.push(LocItem::Index(position));
        ValidationError::new(
            "json_invalid",
            loc,
            "JSON decode error",
            Value::Object(Map::new()),
        )
        .with_ctx("error", message)
    }
}

/// `"s"` unless `n` is one, for "1 character" against "3 characters".
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Python's `repr()` of a JSON value, as pydantic prints expected values (`'a'`, `1`, `None`).
pub(crate) fn py_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&py_float(n.as_f64().unwrap_or(0.0)));
            } else {
                let _ = write!(out, "{n}");
            }
        }
        Value::String(s) => py_repr_str(s, out),
        // Containers never come out of a Rust enum; JSON text is close enough to Python's.
        other => out.push_str(&other.to_string()),
    }
}

/// Python's `repr()` of a string: single quotes unless the text holds one and no double quote.
pub(crate) fn py_repr_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `repr()` of a float (`1.0`, `0.5`, `1e+20`).
pub(crate) fn py_float(f: f64) -> String {
    let mut s = format!("{f:?}");
    // Rust writes `1e20` where Python writes `1e+20`.
    if let Some(pos) = s.find('e')
        && s.as_bytes().get(pos + 1) != Some(&b'-')
    {
        s.insert(pos + 1, '+');
    }
    s
}

/// Pydantic's list of alternatives: `'a'`, `'a' or 'b'`, `'a', 'b' or 'c'`.
pub(crate) fn py_alternatives<'a>(items: impl ExactSizeIterator<Item = &'a Value>) -> String {
    let count = items.len();
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == count { " or " } else { ", " });
        }
        py_repr(item, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_in_fastapi_key_order_without_empty_ctx() {
        let e = ValidationError::missing_from(
            vec!["body".into(), "customer".into()],
            json!({"id": "x"}),
        );
        assert_eq!(
            serde_json::to_string(&e).ok().as_deref(),
            Some(
                r#"{"type":"missing","loc":["body","customer"],"msg":"Field required","input":{"id":"x"}}"#
            )
        );
        let e =
            ValidationError::new("x", vec![LocItem::Index(3)], "m", Value::Null).with_ctx("k", 1);
        assert_eq!(
            serde_json::to_string(&e).ok().as_deref(),
            Some(r#"{"type":"x","loc":[3],"msg":"m","input":null,"ctx":{"k":1}}"#)
        );
    }

    #[test]
    fn loc_items_round_trip_as_strings_and_integers() {
        let loc: Vec<LocItem> = serde_json::from_str(r#"["body", 0, "zip"]"#).unwrap_or_default();
        assert_eq!(
            loc,
            vec![LocItem::key("body"), LocItem::Index(0), LocItem::key("zip")]
        );
    }

    #[test]
    fn python_reprs() {
        let mut s = String::new();
        py_repr_str("it's", &mut s);
        assert_eq!(s, "\"it's\"");
        s.clear();
        py_repr_str("a'\"b", &mut s);
        assert_eq!(s, r#"'a\'"b'"#);
        assert_eq!(py_float(1e20), "1e+20");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(1.0), "1.0");
        let vals = [json!("a"), json!("b"), json!("c")];
        assert_eq!(py_alternatives(vals.iter()), "'a', 'b' or 'c'");
        assert_eq!(py_alternatives(vals[..1].iter()), "'a'");
        let vals = [json!(1), json!(2.5), json!(null), json!(true)];
        assert_eq!(py_alternatives(vals.iter()), "1, 2.5, None or True");
    }
}
