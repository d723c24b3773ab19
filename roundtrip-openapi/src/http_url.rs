//! [`HttpUrl`]: FastAPI's (pydantic's) `HttpUrl` in Rust.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::validate::formats::{UrlError, parse_url};

const SCHEMES: [&str; 2] = ["http", "https"];
const EXPECTED_SCHEMES: &str = "'http' or 'https'";

/// An absolute `http` or `https` URL of at most 2083 bytes, checked as pydantic's
/// `HttpUrl` checks it.
///
/// Use it where a FastAPI app declares `callback_url: HttpUrl`. Parsing goes through the
/// `url` crate (as pydantic-core's does), so the URL is normalized the same way
/// (`HTTP://A.COM` becomes `http://a.com/`), and a refused input carries pydantic's error:
///
/// ```
/// use roundtrip_openapi::HttpUrl;
///
/// let url: HttpUrl = "https://www.external.org/events".parse()?;
/// assert_eq!(url.as_str(), "https://www.external.org/events");
/// assert_eq!(url.host_str(), Some("www.external.org")); // `Deref` to `url::Url`
///
/// let err = "ftp://example.com/x".parse::<HttpUrl>().unwrap_err();
/// assert_eq!(err.error_type(), "url_scheme");
/// assert_eq!(err.to_string(), "URL scheme should be 'http' or 'https'");
/// # Ok::<(), roundtrip_openapi::http_url::HttpUrlError>(())
/// ```
///
/// Its JSON Schema is inline:
/// `{"type": "string", "format": "uri", "minLength": 1, "maxLength": 2083,
/// "x-rt-url-schemes": ["http", "https"], "x-rt-serde-enforced": true}`. The `x-rt-*`
/// keys are private to roundtrip: the validator reads the schemes from the first, the second
/// tells it that `Deserialize` already enforces the rest, and the framework strips both
/// from the published document.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpUrl(url::Url);

impl HttpUrl {
    /// The longest accepted input, in bytes (pydantic's limit, from old browsers).
    pub const MAX_LENGTH: usize = 2083;

    /// Parses and checks `input`.
    ///
    /// # Errors
    ///
    /// Longer than [`MAX_LENGTH`](Self::MAX_LENGTH) (`url_too_long`), empty or not a URL
    /// (`url_parsing`), or a scheme other than `http` and `https` (`url_scheme`).
    pub fn parse(input: &str) -> Result<HttpUrl, HttpUrlError> {
        parse_url(
            input,
            Some(Self::MAX_LENGTH),
            Some((&SCHEMES[..], EXPECTED_SCHEMES)),
        )
        .map(HttpUrl)
        .map_err(HttpUrlError)
    }

    /// The normalized URL text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The underlying [`url::Url`].
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    /// Unwraps the [`url::Url`].
    pub fn into_url(self) -> url::Url {
        self.0
    }
}

/// Why a string is not an [`HttpUrl`]; `Display` gives pydantic's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrlError(UrlError);

impl HttpUrlError {
    /// Pydantic's error type: `url_parsing`, `url_scheme` or `url_too_long`.
    pub fn error_type(&self) -> &'static str {
        self.0.error_type()
    }
}

impl fmt::Display for HttpUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message())
    }
}

impl std::error::Error for HttpUrlError {}

impl FromStr for HttpUrl {
    type Err = HttpUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HttpUrl::parse(s)
    }
}

impl TryFrom<&str> for HttpUrl {
    type Error = HttpUrlError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        HttpUrl::parse(s)
    }
}

impl TryFrom<url::Url> for HttpUrl {
    type Error = HttpUrlError;

    fn try_from(url: url::Url) -> Result<Self, Self::Error> {
        HttpUrl::parse(url.as_str())
    }
}

impl From<HttpUrl> for url::Url {
    fn from(url: HttpUrl) -> Self {
        url.0
    }
}

impl From<HttpUrl> for String {
    fn from(url: HttpUrl) -> Self {
        url.0.into()
    }
}

impl Deref for HttpUrl {
    type Target = url::Url;

    fn deref(&self) -> &url::Url {
        &self.0
    }
}

impl AsRef<str> for HttpUrl {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<url::Url> for HttpUrl {
    fn as_ref(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HttpUrl").field(&self.as_str()).finish()
    }
}

impl Serialize for HttpUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = HttpUrl;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Pydantic's `url_type` message.
                f.write_str("URL input should be a string or URL")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<HttpUrl, E> {
                HttpUrl::parse(s).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for HttpUrl {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "HttpUrl".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "roundtrip_openapi::HttpUrl".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "uri",
            "minLength": 1,
            "maxLength": HttpUrl::MAX_LENGTH,
            "x-rt-url-schemes": SCHEMES,
            "x-rt-serde-enforced": true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalizes_http_urls() {
        let url = HttpUrl::parse(" HTTP://Example.COM:80/a?b=1#c ").ok();
        assert_eq!(
            url.as_ref().map(HttpUrl::as_str),
            Some("http://example.com/a?b=1#c")
        );
        assert_eq!(url.as_ref().and_then(|u| u.host_str()), Some("example.com"));
    }

    #[test]
    fn refuses_with_pydantic_errors() {
        let err = |s: &str| {
            HttpUrl::parse(s)
                .err()
                .map(|e| (e.error_type(), e.to_string()))
        };
        assert_eq!(
            err("not-a-url"),
            Some((
                "url_parsing",
                "Input should be a valid URL, relative URL without a base".to_owned()
            ))
        );
        assert_eq!(
            err("mailto:x@y"),
            Some((
                "url_scheme",
                "URL scheme should be 'http' or 'https'".to_owned()
            ))
        );
        assert_eq!(
            err(""),
            Some((
                "url_parsing",
                "Input should be a valid URL, input is empty".to_owned()
            ))
        );
        let long = format!("https://a.com/{}", "a".repeat(2070));
        assert_eq!(
            err(&long),
            Some((
                "url_too_long",
                "URL should have at most 2083 characters".to_owned()
            ))
        );
        assert_eq!(err(&long[..2083]), None);
    }

    #[test]
    fn serde_round_trip_as_a_string() {
        let url: Result<HttpUrl, _> = serde_json::from_str(r#""https://a.com/x""#);
        let json = url
            .as_ref()
            .ok()
            .and_then(|u| serde_json::to_string(u).ok());
        assert_eq!(json.as_deref(), Some(r#""https://a.com/x""#));
        let bad = serde_json::from_str::<HttpUrl>(r#""ftp://a.com""#)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            bad.as_deref(),
            Some("URL scheme should be 'http' or 'https' at line 1 column 13")
        );
        let wrong_type = serde_json::from_str::<HttpUrl>("5")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            wrong_type.as_deref(),
            Some(
                "invalid type: integer `5`, expected URL input should be a string or URL at line 1 column 1"
            )
        );
    }

    #[test]
    fn schema_is_inline_with_private_keys() {
        let schema = schemars::SchemaGenerator::default().subschema_for::<Option<HttpUrl>>();
        assert_eq!(
            schema.as_value(),
            &serde_json::json!({
                "type": ["string", "null"],
                "format": "uri",
                "minLength": 1,
                "maxLength": 2083,
                "x-rt-url-schemes": ["http", "https"],
                "x-rt-serde-enforced": true,
            })
        );
    }
}
