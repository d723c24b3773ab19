//! Python's `json` error for a body that serde_json refused: its message and character offset.
//!
//! FastAPI answers a malformed body with the message and position of `json.JSONDecodeError`.
//! serde_json's errors are worded and positioned differently (line and byte column, often
//! one character earlier), so this module re-scans the body the way CPython's C scanner
//! does (`Modules/_json.c`) and reports the first error it would raise. It runs only on the
//! error path. The scan is iterative, so deeply nested input cannot overflow the stack.

/// The message and character offset of the error in `body`.
pub(crate) fn describe(body: &[u8], err: &serde_json::Error) -> (String, usize) {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(utf8) => return utf8_error(body, &utf8),
    };
    // Starlette hands bytes to `json.loads`, which decodes them as `utf-8-sig`: a leading
    // byte order mark is dropped and positions count from after it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let scanner = Scanner { s: &chars };
    match scanner.document() {
        Err((message, position)) => (message.to_owned(), position),
        // Python would have accepted this (NaN, 1e400, nesting deeper than serde_json's
        // limit, a lone surrogate): fall back to serde_json's own words.
        Ok(()) => serde_fallback(text, err),
    }
}

/// Python's `UnicodeDecodeError` wording, located at the first character that fails.
fn utf8_error(body: &[u8], utf8: &std::str::Utf8Error) -> (String, usize) {
    let at = utf8.valid_up_to();
    let byte = body.get(at).copied().unwrap_or(0);
    let reason = match utf8.error_len() {
        None => "unexpected end of data",
        Some(_) if (0x80..0xc2).contains(&byte) || byte > 0xf4 => "invalid start byte",
        Some(_) => "invalid continuation byte",
    };
    let chars = std::str::from_utf8(body.get(..at).unwrap_or_default())
        .map(|s| s.chars().count())
        .unwrap_or(at);
    (
        format!("'utf-8' codec can't decode byte 0x{byte:02x} in position {at}: {reason}"),
        chars,
    )
}

fn serde_fallback(text: &str, err: &serde_json::Error) -> (String, usize) {
    let full = err.to_string();
    let message = match full.rfind(" at line ") {
        Some(cut) => full[..cut].to_owned(),
        None => full,
    };
    // serde_json counts lines from 1 and columns in bytes from 1.
    let line_start = if err.line() <= 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(err.line() - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    let mut byte = (line_start + err.column().saturating_sub(1)).min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    (message, text[..byte].chars().count())
}

type ScanResult<T> = Result<T, (&'static str, usize)>;

/// What the scanner is in the middle of, for the explicit stack.
enum Open {
    Array,
    Object,
}

struct Scanner<'a> {
    s: &'a [char],
}

impl Scanner<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while matches!(self.at(i), Some(' ' | '\t' | '\n' | '\r')) {
            i += 1;
        }
        i
    }

    /// `json.loads`: skip whitespace, one value, whitespace, then nothing else.
    fn document(&self) -> ScanResult<()> {
        let start = self.skip_ws(0);
        let end = self.value(start)?;
        let end = self.skip_ws(end);
        if end != self.s.len() {
            return Err(("Extra data", end));
        }
        Ok(())
    }

    /// Scans one value starting at `i` and returns the index after it.
    fn value(&self, i: usize) -> ScanResult<usize> {
        let mut stack: Vec<Open> = Vec::new();
        let mut i = i;
        'value: loop {
            // Read one value at `i`; containers push onto the stack and `continue 'value`.
            let mut end = match self.at(i) {
                None => return Err(("Expecting value", i)),
                Some('"') => self.string(i + 1)?,
                Some('{') => {
                    let j = self.skip_ws(i + 1);
                    if self.at(j) == Some('}') {
                        j + 1
                    } else {
                        stack.push(Open::Object);
                        i = self.key_and_colon(j)?;
                        continue 'value;
                    }
                }
                Some('[') => {
                    let j = self.skip_ws(i + 1);
                    if self.at(j) == Some(']') {
                        j + 1
                    } else {
                        stack.push(Open::Array);
                        i = j;
                        continue 'value;
                    }
                }
                Some(_) => self.literal_or_number(i)?,
            };
            // Close containers for as long as the input does.
            loop {
                let Some(open) = stack.last() else {
                    return Ok(end);
                };
                let j = self.skip_ws(end);
                match (open, self.at(j)) {
                    (Open::Array, Some(']')) | (Open::Object, Some('}')) => {
                        stack.pop();
                        end = j + 1;
                    }
                    (_, Some(',')) => {
                        let k = self.skip_ws(j + 1);
                        i = match open {
                            Open::Array => k,
                            Open::Object => self.key_and_colon(k)?,
                        };
                        continue 'value;
                    }
                    _ => return Err(("Expecting ',' delimiter", j)),
                }
            }
        }
    }

    /// A key string, `:`, and the whitespace before the value; returns the value's index.
    fn key_and_colon(&self, i: usize) -> ScanResult<usize> {
        if self.at(i) != Some('"') {
            return Err(("Expecting property name enclosed in double quotes", i));
        }
        let after_key = self.string(i + 1)?;
        let j = self.skip_ws(after_key);
        if self.at(j) != Some(':') {
            return Err(("Expecting ':' delimiter", j));
        }
        Ok(self.skip_ws(j + 1))
    }

    /// The body of a string whose opening quote is at `start - 1`; returns the index after
    /// the closing quote.
    fn string(&self, start: usize) -> ScanResult<usize> {
        let begin = start - 1;
        let len = self.s.len();
        let mut end = start;
        loop {
            let mut next = end;
            while next < len {
                let c = self.s[next];
                if c == '"' || c == '\\' {
                    break;
                }
                if (c as u32) <= 0x1f {
                    return Err(("Invalid control character at", next));
                }
                next += 1;
            }
            match self.at(next) {
                None => return Err(("Unterminated string starting at", begin)),
                Some('"') => return Ok(next + 1),
                _ => {}
            }
            // A backslash escape.
            next += 1;
            let Some(c) = self.at(next) else {
                return Err(("Unterminated string starting at", begin));
            };
            if c != 'u' {
                end = next + 1;
                if !matches!(c, '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') {
                    return Err(("Invalid \\escape", end - 2));
                }
                continue;
            }
            next += 1;
            end = next + 4;
            if end >= len {
                return Err(("Invalid \\uXXXX escape", next - 1));
            }
            let high = self.hex4(next).ok_or(("Invalid \\uXXXX escape", end - 5))?;
            // A high surrogate followed by a second `\u` escape forms a pair.
            if (0xd800..=0xdbff).contains(&high)
                && end + 6 < len
                && self.at(end) == Some('\\')
                && self.at(end + 1) == Some('u')
            {
                let low_at = end + 2;
                end += 6;
                let low = self
                    .hex4(low_at)
                    .ok_or(("Invalid \\uXXXX escape", end - 5))?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    // Not a pair after all: the second escape is scanned on its own.
                    end -= 6;
                }
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut value = 0;
        for k in at..at + 4 {
            value = value * 16 + self.at(k)?.to_digit(16)?;
        }
        Some(value)
    }

    /// `null`, `true`, `false`, `NaN`, `Infinity`, `-Infinity`, or a number.
    fn literal_or_number(&self, i: usize) -> ScanResult<usize> {
        for word in ["null", "true", "false", "NaN", "Infinity", "-Infinity"] {
            if self.starts_with(i, word) {
                return Ok(i + word.chars().count());
            }
        }
        self.number(i)
    }

    fn starts_with(&self, i: usize, word: &str) -> bool {
        word.chars()
            .enumerate()
            .all(|(k, c)| self.at(i + k) == Some(c))
    }

    fn number(&self, start: usize) -> ScanResult<usize> {
        let digit = |i: usize| self.at(i).is_some_and(|c| c.is_ascii_digit());
        let mut i = start;
        if self.at(i) == Some('-') {
            i += 1;
        }
        match self.at(i) {
            Some('1'..='9') => {
                i += 1;
                while digit(i) {
                    i += 1;
                }
            }
            Some('0') => i += 1,
            _ => return Err(("Expecting value", start)),
        }
        if self.at(i) == Some('.') && digit(i + 1) {
            i += 2;
            while digit(i) {
                i += 1;
            }
        }
        if matches!(self.at(i), Some('e' | 'E')) {
            let e_start = i;
            i += 1;
            if matches!(self.at(i), Some('-' | '+')) {
                i += 1;
            }
            let digits_from = i;
            while digit(i) {
                i += 1;
            }
            if i == digits_from {
                // No exponent digits: the number ends before the `e`.
                i = e_start;
            }
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python(body: &str) -> (String, usize) {
        match serde_json::from_str::<serde_json::Value>(body) {
            Err(err) => describe(body.as_bytes(), &err),
            Ok(_) => ("accepted".to_owned(), 0),
        }
    }

    #[test]
    fn matches_fastapi_reference_case() {
        let body = r#"{"id": "fooinvoice", "customer": "John", "total": 5.3"#;
        assert_eq!(python(body), ("Expecting ',' delimiter".to_owned(), 53));
    }

    #[test]
    fn matches_python_json_messages_and_positions() {
        // Produced with CPython 3.11 `json.loads`.
        let cases: &[(&str, &str, usize)] = &[
            ("", "Expecting value", 0),
            (" ", "Expecting value", 1),
            ("{", "Expecting property name enclosed in double quotes", 1),
            ("[", "Expecting value", 1),
            ("[1", "Expecting ',' delimiter", 2),
            ("[1,", "Expecting value", 3),
            ("[1,]", "Expecting value", 3),
            ("{\"a\"", "Expecting ':' delimiter", 4),
            ("{\"a\":", "Expecting value", 5),
            (
                "{\"a\":1,}",
                "Expecting property name enclosed in double quotes",
                7,
            ),
            ("{\"a\" 1}", "Expecting ':' delimiter", 5),
            (
                "{1:2}",
                "Expecting property name enclosed in double quotes",
                1,
            ),
            ("\"abc", "Unterminated string starting at", 0),
            ("\"a\\x\"", "Invalid \\escape", 2),
            ("\"\\u12\"", "Invalid \\uXXXX escape", 2),
            ("\"\\u12", "Invalid \\uXXXX escape", 2),
            ("\"\\uzzzz\"", "Invalid \\uXXXX escape", 2),
            ("[1] x", "Extra data", 4),
            ("nul", "Expecting value", 0),
            ("-", "Expecting value", 0),
            ("01", "Extra data", 1),
            ("1.", "Extra data", 1),
            ("[01]", "Expecting ',' delimiter", 2),
            ("{\"a\":1 \"b\":2}", "Expecting ',' delimiter", 7),
            ("\"a\u{1}\"", "Invalid control character at", 2),
            ("[\"a\" \"b\"]", "Expecting ',' delimiter", 5),
            ("{\"a\":1,\"b\"}", "Expecting ':' delimiter", 10),
            ("\"\\ud800\\uzz\"", "Invalid \\uXXXX escape", 8),
            ("{\"a\":1}}", "Extra data", 7),
            ("[1,2", "Expecting ',' delimiter", 4),
            ("{\"a\":[1,{\"b\":]}}", "Expecting value", 13),
            ("\"é\" x", "Extra data", 4),
            ("é", "Expecting value", 0),
            (
                "{,}",
                "Expecting property name enclosed in double quotes",
                1,
            ),
            ("[,]", "Expecting value", 1),
            ("1e+", "Extra data", 1),
            ("\"\\ud800\\udc00", "Invalid \\uXXXX escape", 8),
            ("\"\\ud800\\udc00x", "Unterminated string starting at", 0),
            ("\"\\u1234", "Invalid \\uXXXX escape", 2),
            ("\"\\", "Unterminated string starting at", 0),
            ("\"\\ud800\\u", "Invalid \\uXXXX escape", 8),
            (
                "{\"a\":1,  }",
                "Expecting property name enclosed in double quotes",
                9,
            ),
            ("[1,  ]", "Expecting value", 5),
            ("{  \"a\"  ", "Expecting ':' delimiter", 8),
            ("{\"a\":1  ", "Expecting ',' delimiter", 8),
            ("\n\n  {\"a\" 1}", "Expecting ':' delimiter", 9),
            ("{\"a\":1.e5}", "Expecting ',' delimiter", 6),
            ("[1.5e]", "Expecting ',' delimiter", 4),
            ("true false", "Extra data", 5),
            ("[\"\t\"]", "Invalid control character at", 2),
        ];
        for (body, message, position) in cases {
            assert_eq!(
                python(body),
                ((*message).to_owned(), *position),
                "body {body:?}"
            );
        }
    }

    #[test]
    fn python_accepts_what_serde_json_refuses_so_serde_words_are_used() {
        let (message, position) = python("[1, NaN]");
        assert_eq!(message, "expected value");
        assert_eq!(position, 4);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let body = "[".repeat(200_000);
        assert_eq!(python(&body), ("Expecting value".to_owned(), 200_000));
    }

    #[test]
    fn invalid_utf8_is_named_like_python() {
        let body = b"{\"a\": \"\xff\"}";
        let err = serde_json::from_slice::<serde_json::Value>(body).err();
        let Some(err) = err else {
            panic!("serde_json accepted invalid UTF-8");
        };
        assert_eq!(
            describe(body, &err),
            (
                "'utf-8' codec can't decode byte 0xff in position 7: invalid start byte".to_owned(),
                7
            )
        );
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        assert_eq!(
            python("\u{feff}{\"a\" 1}"),
            ("Expecting ':' delimiter".to_owned(), 5)
        );
    }
}
