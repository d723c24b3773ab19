//! Escaping for the two contexts the pages interpolate into: HTML text or attributes, and
//! JavaScript inside a `<script>` element.

use std::fmt::Write as _;

use serde_json::Value;

/// Escapes `s` for HTML text and for a double- or single-quoted attribute value.
pub(crate) fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes `value` as a JavaScript expression that is safe inside a `<script>` element.
///
/// JSON is valid JavaScript, but a string holding `</script>` or `<!--` would end or
/// change the script element, and U+2028/U+2029 end a line in older engines. `<`, `>` and
/// `&` can only occur inside JSON strings, so writing them as `\u00XX` escapes changes
/// no value.
pub(crate) fn script_json(value: &Value) -> String {
    let json = value.to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// A string as a JavaScript string literal that is safe inside a `<script>` element.
pub(crate) fn script_str(s: &str) -> String {
    script_json(&Value::String(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#x27;y&#x27;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn script_strings_cannot_close_the_script_element() {
        let s = script_str("</script><!-- \u{2028}\"'\\");
        assert!(!s.contains('<') && !s.contains('>'), "{s}");
        assert_eq!(s, r#""\u003c/script\u003e\u003c!-- \u2028\"'\\""#);
        // Still the same string once parsed back.
        let back: String = serde_json::from_str(&s).expect("valid JSON");
        assert_eq!(back, "</script><!-- \u{2028}\"'\\");
    }
}
