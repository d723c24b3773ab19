//! String formats pydantic checks: URLs, UUIDs, e-mail and IP addresses.

use super::LocItem;
use super::error::ValidationError;
use serde_json::Value;

/// A URL check that failed, with pydantic's error type, message and context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlError {
    /// Longer than the allowed number of bytes (`url_too_long`).
    TooLong(usize),
    /// Empty, or refused by the `url` crate (`url_parsing`); holds the reason.
    Parsing(String),
    /// A scheme outside the allowed ones (`url_scheme`); holds `'http' or 'https'`.
    Scheme(String),
}

impl UrlError {
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            UrlError::TooLong(_) => "url_too_long",
            UrlError::Parsing(_) => "url_parsing",
            UrlError::Scheme(_) => "url_scheme",
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            UrlError::TooLong(max) => format!(
                "URL should have at most {max} character{}",
                super::error::plural(*max)
            ),
            UrlError::Parsing(reason) => format!("Input should be a valid URL, {reason}"),
            UrlError::Scheme(expected) => format!("URL scheme should be {expected}"),
        }
    }

    pub(crate) fn into_validation_error(self, loc: Vec<LocItem>, input: Value) -> ValidationError {
        let error = ValidationError::new(self.error_type(), loc, self.message(), input);
        match self {
            UrlError::TooLong(max) => error.with_ctx("max_length", max),
            UrlError::Parsing(reason) => error.with_ctx("error", reason),
            UrlError::Scheme(expected) => error.with_ctx("expected_schemes", expected),
        }
    }
}

/// Parses `s` as pydantic-core does for `AnyUrl`/`HttpUrl`: length first (in bytes), then
/// emptiness, then the `url` crate (whose error texts pydantic reports verbatim), then the
/// scheme. `expected` is the rendered list of `schemes` (`'http' or 'https'`).
pub(crate) fn parse_url<S: AsRef<str>>(
    s: &str,
    max_length: Option<usize>,
    schemes: Option<(&[S], &str)>,
) -> Result<url::Url, UrlError> {
    if let Some(max) = max_length
        && s.len() > max
    {
        return Err(UrlError::TooLong(max));
    }
    if s.is_empty() {
        return Err(UrlError::Parsing("input is empty".to_owned()));
    }
    let url = url::Url::parse(s).map_err(|e| UrlError::Parsing(e.to_string()))?;
    if let Some((allowed, expected)) = schemes
        && !allowed.iter().any(|scheme| scheme.as_ref() == url.scheme())
    {
        return Err(UrlError::Scheme(expected.to_owned()));
    }
    Ok(url)
}

/// The `uuid` crate's parse error, as pydantic words it (`invalid group count: ...`).
pub(crate) fn uuid_error(s: &str) -> Option<String> {
    let (body, offset, simple) =
        if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            (inner, 1, false)
        } else if let Some(inner) = s.strip_prefix("urn:uuid:") {
            (inner, 9, false)
        } else {
            (s, 0, true)
        };
    let shape_ok = match body.len() {
        32 => simple && body.bytes().all(|b| b.is_ascii_hexdigit()),
        36 => body.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        }),
        _ => false,
    };
    if shape_ok {
        return None;
    }
    let mut hyphens = 0;
    let mut bounds = [0usize; 4];
    for (index, c) in body.char_indices() {
        if c == '-' {
            if hyphens < 4 {
                bounds[hyphens] = index;
            }
            hyphens += 1;
        } else if !c.is_ascii_hexdigit() {
            // The `uuid` crate counts this position in bytes, from 1.
            return Some(format!(
                "invalid character: found `{c}` at {}",
                index + offset + 1
            ));
        }
    }
    if hyphens == 0 && simple {
        return Some(format!(
            "invalid length: expected length 32 for simple format, found {}",
            s.len()
        ));
    }
    if hyphens != 4 {
        return Some(format!(
            "invalid group count: expected 5, found {}",
            hyphens + 1
        ));
    }
    const STARTS: [usize; 5] = [0, 9, 14, 19, 24];
    const LENGTHS: [usize; 5] = [8, 4, 4, 4, 12];
    for group in 0..4 {
        if bounds[group] != STARTS[group + 1] - 1 {
            let found = bounds[group] - if group == 0 { 0 } else { bounds[group - 1] + 1 };
            return Some(format!(
                "invalid group length in group {group}: expected {}, found {found}",
                LENGTHS[group]
            ));
        }
    }
    Some(format!(
        "invalid group length in group 4: expected 12, found {}",
        body.len() - bounds[3] - 1
    ))
}

/// Why `s` is not an e-mail address, in the words of python-email-validator (which
/// pydantic's `EmailStr` uses); `None` when it looks like one.
pub(crate) fn email_error(s: &str) -> Option<&'static str> {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return Some("An email address must have an @-sign.");
    };
    if local.is_empty() {
        return Some("There must be something before the @-sign.");
    }
    if domain.is_empty() {
        return Some("There must be something after the @-sign.");
    }
    if local
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '@')
        && !(local.starts_with('"') && local.ends_with('"'))
    {
        return Some("The email address contains invalid characters before the @-sign.");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Some("The email address contains a period in an invalid position.");
    }
    if domain.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '@' | '_' | ',' | ';' | '<' | '>' | '(' | ')' | '[' | ']' | '\\' | '"'
            )
    }) {
        return Some("The part after the @-sign contains invalid characters.");
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Some("An email address cannot have a period in this position.");
    }
    if !domain.contains('.') {
        return Some("The part after the @-sign is not valid. It should have a period.");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_errors_match_pydantic() {
        let http: &[&str] = &["http", "https"];
        let check = |s: &str| {
            parse_url(s, Some(2083), Some((http, "'http' or 'https'")))
                .map(|u| u.to_string())
                .map_err(|e| (e.error_type(), e.message()))
        };
        assert_eq!(
            check("not-a-url"),
            Err((
                "url_parsing",
                "Input should be a valid URL, relative URL without a base".to_owned()
            ))
        );
        assert_eq!(
            check("ftp://example.com/x"),
            Err((
                "url_scheme",
                "URL scheme should be 'http' or 'https'".to_owned()
            ))
        );
        assert_eq!(
            check(""),
            Err((
                "url_parsing",
                "Input should be a valid URL, input is empty".to_owned()
            ))
        );
        assert_eq!(
            check("http://"),
            Err((
                "url_parsing",
                "Input should be a valid URL, empty host".to_owned()
            ))
        );
        assert_eq!(
            check("http://a b.com"),
            Err((
                "url_parsing",
                "Input should be a valid URL, invalid international domain name".to_owned()
            ))
        );
        assert_eq!(
            check("http://example.com:99999"),
            Err((
                "url_parsing",
                "Input should be a valid URL, invalid port number".to_owned()
            ))
        );
        assert_eq!(
            check("http://[::1"),
            Err((
                "url_parsing",
                "Input should be a valid URL, invalid IPv6 address".to_owned()
            ))
        );
        let long = format!("http://a.com/{}", "é".repeat(1100));
        assert_eq!(
            check(&long),
            Err((
                "url_too_long",
                "URL should have at most 2083 characters".to_owned()
            ))
        );
        assert_eq!(check(" HTTP://A.COM ").as_deref(), Ok("http://a.com/"));
        assert_eq!(check("http:a.com").as_deref(), Ok("http://a.com/"));
    }

    #[test]
    fn uuid_errors_match_pydantic() {
        assert_eq!(uuid_error("00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(uuid_error("00000000000000000000000000000000"), None);
        assert_eq!(uuid_error("{00000000-0000-0000-0000-000000000000}"), None);
        assert_eq!(
            uuid_error("urn:uuid:00000000-0000-0000-0000-000000000000"),
            None
        );
        let cases = [
            (
                "abc",
                "invalid length: expected length 32 for simple format, found 3",
            ),
            (
                "0000000000000000000000000000000",
                "invalid length: expected length 32 for simple format, found 31",
            ),
            (
                "00000000-0000-0000-0000-0000000000000",
                "invalid group length in group 4: expected 12, found 13",
            ),
            (
                "0000000-00000-0000-0000-000000000000",
                "invalid group length in group 0: expected 8, found 7",
            ),
            (
                "00000000-0000-0000-000-0000000000000",
                "invalid group length in group 3: expected 4, found 3",
            ),
            (
                "00000000-0000-0000-0000",
                "invalid group count: expected 5, found 4",
            ),
            ("zz", "invalid character: found `z` at 1"),
            (
                "0000000000000000000000000000000z",
                "invalid character: found `z` at 32",
            ),
            (
                "00000000-0000-0000-0000-00000000000é",
                "invalid character: found `é` at 36",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(uuid_error(input).as_deref(), Some(message), "{input}");
        }
    }

    #[test]
    fn email_reasons() {
        assert_eq!(email_error("a@example.com"), None);
        assert_eq!(
            email_error("example.com"),
            Some("An email address must have an @-sign.")
        );
        assert_eq!(
            email_error("@example.com"),
            Some("There must be something before the @-sign.")
        );
        assert_eq!(
            email_error("a@"),
            Some("There must be something after the @-sign.")
        );
        assert_eq!(
            email_error("a@localhost"),
            Some("The part after the @-sign is not valid. It should have a period.")
        );
    }
}
