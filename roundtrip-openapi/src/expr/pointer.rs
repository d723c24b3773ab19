//! JSON Pointers (RFC 6901) as they appear after `#` in a body reference.

use std::fmt;

use serde_json::Value;

/// A JSON Pointer (RFC 6901): a path of reference tokens into a JSON document.
///
/// The tokens are kept decoded (`~1` is stored as `/`, `~0` as `~`); [`Display`](fmt::Display)
/// writes them escaped again, which gives back exactly the text that was parsed, because
/// RFC 6901 allows only one spelling of each token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct JsonPointer {
    tokens: Vec<String>,
}

impl JsonPointer {
    /// The empty pointer, which refers to the whole document.
    pub fn root() -> Self {
        Self::default()
    }

    /// A pointer made of the given decoded reference tokens.
    pub fn from_tokens<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            tokens: tokens.into_iter().map(Into::into).collect(),
        }
    }

    /// The decoded reference tokens, outermost first.
    pub fn tokens(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.tokens.iter().map(String::as_str)
    }

    /// Whether this is the empty pointer, which refers to the whole document.
    pub fn is_root(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The value this pointer refers to in `document`, if there is one.
    ///
    /// An array is indexed only by a token in RFC 6901's `array-index` form (`0`, or digits
    /// without a leading zero); `-` and anything else refers to nothing.
    pub fn resolve<'v>(&self, document: &'v Value) -> Option<&'v Value> {
        self.tokens
            .iter()
            .try_fold(document, |value, token| match value {
                Value::Object(map) => map.get(token),
                Value::Array(items) => array_index(token).and_then(|i| items.get(i)),
                _ => None,
            })
    }

    pub(super) fn push(&mut self, token: String) {
        self.tokens.push(token);
    }
}

/// The index an RFC 6901 `array-index` token names: `0`, or digits without a leading zero.
pub(super) fn array_index(token: &str) -> Option<usize> {
    let canonical = token == "0"
        || (!token.is_empty()
            && !token.starts_with('0')
            && token.bytes().all(|b| b.is_ascii_digit()));
    if canonical { token.parse().ok() } else { None }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for token in &self.tokens {
            f.write_str("/")?;
            for c in token.chars() {
                match c {
                    '~' => f.write_str("~0")?,
                    '/' => f.write_str("~1")?,
                    c => fmt::Write::write_char(f, c)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn resolves_objects_and_canonical_array_indices() {
        let doc = json!({"items": [{"id": "a"}, {"id": "b"}], "a/b": 1, "m~n": 2});
        let at = |tokens: &[&str]| JsonPointer::from_tokens(tokens.iter().copied()).resolve(&doc);
        assert_eq!(at(&["items", "1", "id"]), Some(&json!("b")));
        assert_eq!(at(&["items", "01", "id"]), None);
        assert_eq!(at(&["items", "-"]), None);
        assert_eq!(at(&["items", "+1"]), None);
        assert_eq!(at(&["items", "2"]), None);
        assert_eq!(at(&["a/b"]), Some(&json!(1)));
        assert_eq!(at(&["m~n"]), Some(&json!(2)));
        assert_eq!(at(&[]), Some(&doc));
        assert_eq!(at(&["items", "0", "id", "deeper"]), None);
    }

    #[test]
    fn display_escapes_tilde_then_slash() {
        let pointer = JsonPointer::from_tokens(["a/b", "m~n", "~1", ""]);
        assert_eq!(pointer.to_string(), "/a~1b/m~0n/~01/");
        assert_eq!(JsonPointer::root().to_string(), "");
    }

    #[test]
    fn huge_index_refers_to_nothing() {
        let doc = json!([1]);
        let pointer = JsonPointer::from_tokens(["99999999999999999999999999"]);
        assert_eq!(pointer.resolve(&doc), None);
    }
}
