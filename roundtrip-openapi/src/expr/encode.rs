//! Building a URL from a template's parts so that substituted values stay data.

use std::fmt::Write as _;

/// Bytes a value keeps as they are in the path: RFC 3986 `unreserved` and the sub-delimiters.
///
/// `:`, `@` and `;` are legal in a path segment but are encoded anyway: a value placed
/// right after the host (`https://example.com{$x}`) could otherwise turn the host into
/// userinfo (`@attacker.example`) or add a port, and some servers read `..;` as `..`.
fn keep_in_path(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'='
        )
}

/// Bytes a value keeps as they are in the query or fragment.
///
/// `&`, `=`, `+` and `;` are encoded, so that a value cannot add a parameter or turn into a
/// space; `#` is encoded so that it cannot start a fragment.
fn keep_in_query(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b',' | b':' | b'@' | b'/' | b'?'
        )
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn encode_into(out: &mut String, value: &str, keep: fn(u8) -> bool) {
    for &b in value.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A value that would have become a `.` or `..` path segment.
#[derive(Debug)]
pub(super) struct UnsafeValue {
    /// Index of the template part that gave the value.
    pub(super) part: usize,
    /// The whole path segment it would have formed.
    pub(super) segment: String,
}

/// Accumulates a URL from verbatim text and encoded values.
#[derive(Default)]
pub(super) struct UrlWriter {
    out: String,
    /// A `?` or `#` has been written, so values now go into the query or fragment.
    past_path: bool,
    /// Byte ranges of values written into the path, with the part each came from.
    path_values: Vec<(usize, usize, usize)>,
}

impl UrlWriter {
    /// Writes text as it is: the template's own literal text, or the base URL.
    pub(super) fn push_verbatim(&mut self, text: &str) {
        self.out.push_str(text);
        if text.contains(['?', '#']) {
            self.past_path = true;
        }
    }

    /// Writes a substituted value, percent-encoded for where it lands.
    pub(super) fn push_value(&mut self, value: &str, part: usize) {
        if self.past_path {
            encode_into(&mut self.out, value, keep_in_query);
        } else {
            let start = self.out.len();
            encode_into(&mut self.out, value, keep_in_path);
            if start < self.out.len() {
                self.path_values.push((start, self.out.len(), part));
            }
        }
    }

    /// The finished URL, unless a value formed a dot-segment.
    ///
    /// Encoding cannot make `..` harmless: URL parsers treat `%2e%2e` as `..` too, and
    /// either would climb out of the path the template put the value in.
    pub(super) fn finish(self) -> Result<String, UnsafeValue> {
        for &(start, end, part) in &self.path_values {
            let left = self.out[..start]
                .rfind(['/', '\\'])
                .map_or(0, |slash| slash + 1);
            let right = self.out[end..]
                .find(['/', '\\', '?', '#'])
                .map_or(self.out.len(), |stop| end + stop);
            let segment = &self.out[left..right];
            if is_dot_segment(segment) {
                return Err(UnsafeValue {
                    part,
                    segment: segment.to_owned(),
                });
            }
        }
        Ok(self.out)
    }
}

fn is_dot_segment(segment: &str) -> bool {
    let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
    decoded == "." || decoded == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(value: &str) -> String {
        let mut out = String::new();
        encode_into(&mut out, value, keep_in_path);
        out
    }

    fn query(value: &str) -> String {
        let mut out = String::new();
        encode_into(&mut out, value, keep_in_query);
        out
    }

    #[test]
    fn path_values_cannot_add_segments_query_or_fragment() {
        assert_eq!(path("../../admin"), "..%2F..%2Fadmin");
        assert_eq!(path("x?y#z"), "x%3Fy%23z");
        assert_eq!(path("a\\b"), "a%5Cb");
        assert_eq!(path("@evil.example:81"), "%40evil.example%3A81");
        assert_eq!(path("100%"), "100%25");
        assert_eq!(path("..;"), "..%3B");
        assert_eq!(path("a b"), "a%20b");
        assert_eq!(path("ünï"), "%C3%BCn%C3%AF");
        assert_eq!(path("2expen51ve"), "2expen51ve");
    }

    #[test]
    fn query_values_cannot_add_parameters() {
        assert_eq!(query("1&admin=true"), "1%26admin%3Dtrue");
        assert_eq!(query("a+b c"), "a%2Bb%20c");
        assert_eq!(query("x#frag"), "x%23frag");
        assert_eq!(
            query("https://hooks.example/x?y"),
            "https://hooks.example/x?y"
        );
    }

    #[test]
    fn dot_segments_from_values_are_refused() {
        let mut writer = UrlWriter::default();
        writer.push_verbatim("https://h.example/tenants/");
        writer.push_value("..", 1);
        writer.push_verbatim("/hook");
        let err = writer.finish().err();
        assert_eq!(err.map(|e| (e.part, e.segment)), Some((1, "..".to_owned())));

        let mut writer = UrlWriter::default();
        writer.push_verbatim("https://h.example/t/.");
        writer.push_value(".", 3);
        assert!(writer.finish().is_err());

        let mut writer = UrlWriter::default();
        writer.push_verbatim("https://h.example/t/");
        writer.push_value("...", 1);
        writer.push_verbatim("/v");
        writer.push_value("..", 3);
        assert_eq!(
            writer.finish().ok().as_deref(),
            Some("https://h.example/t/.../v..")
        );
    }

    #[test]
    fn values_after_a_question_mark_in_the_base_are_query_encoded() {
        let mut writer = UrlWriter::default();
        writer.push_verbatim("https://h.example/hook?token=abc");
        writer.push_verbatim("&id=");
        writer.push_value("1&admin=true", 2);
        assert_eq!(
            writer.finish().ok().as_deref(),
            Some("https://h.example/hook?token=abc&id=1%26admin%3Dtrue")
        );
    }
}
