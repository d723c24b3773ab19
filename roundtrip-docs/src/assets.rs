//! The vendored Swagger UI and ReDoc files, embedded in the binary, and their HTTP serving.

use std::sync::OnceLock;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderMap, HeaderValue, StatusCode};

/// The version of the `swagger-ui-dist` npm package embedded in this crate.
pub const SWAGGER_UI_VERSION: &str = include_str!("../assets/swagger-ui/VERSION");

/// The version of the `redoc` npm package whose standalone bundle is embedded in this crate.
pub const REDOC_VERSION: &str = include_str!("../assets/redoc/VERSION");

/// Asset URLs carry the version (`?v=`), so a browser may keep them for a year unasked.
const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const PNG: &str = "image/png";

/// One embedded file: its bytes, its content type, and a lazily computed strong `ETag`.
#[derive(Debug)]
pub(crate) struct Asset {
    /// The file name under which it is served, below the page's URL.
    pub(crate) name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    etag: OnceLock<HeaderValue>,
}

impl Asset {
    const fn new(name: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        Self {
            name,
            content_type,
            bytes,
            etag: OnceLock::new(),
        }
    }

    /// The embedded bytes.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &'static [u8] {
        self.bytes
    }

    /// A strong validator derived from the content, so it changes with every update.
    pub(crate) fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            let tag = format!("\"{:016x}-{:x}\"", fnv1a64(self.bytes), self.bytes.len());
            // Only hex digits, '-' and quotes: always a valid header value.
            HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
        })
    }

    /// Answers a GET (or HEAD) for this asset: 304 if `If-None-Match` matches, else 200.
    pub(crate) fn respond(&'static self, request_headers: &HeaderMap) -> Response {
        let etag = self.etag();
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(ETAG, etag.clone());
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_FOREVER));
        if if_none_match_matches(request_headers, etag) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        (headers, Body::from(self.bytes)).into_response()
    }
}

pub(crate) static SWAGGER_UI_BUNDLE: Asset = Asset::new(
    "swagger-ui-bundle.js",
    JS,
    include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
);
pub(crate) static SWAGGER_UI_CSS: Asset = Asset::new(
    "swagger-ui.css",
    CSS,
    include_bytes!("../assets/swagger-ui/swagger-ui.css"),
);
pub(crate) static SWAGGER_UI_FAVICON: Asset = Asset::new(
    "favicon-32x32.png",
    PNG,
    include_bytes!("../assets/swagger-ui/favicon-32x32.png"),
);
pub(crate) static OAUTH2_REDIRECT_JS: Asset = Asset::new(
    "oauth2-redirect.js",
    JS,
    include_bytes!("../assets/swagger-ui/oauth2-redirect.js"),
);
pub(crate) static REDOC_BUNDLE: Asset = Asset::new(
    "redoc.standalone.js",
    JS,
    include_bytes!("../assets/redoc/redoc.standalone.js"),
);
/// ReDoc ships no icon; its page reuses Swagger UI's under its own URL.
pub(crate) static REDOC_FAVICON: Asset = Asset::new(
    "favicon-32x32.png",
    PNG,
    include_bytes!("../assets/swagger-ui/favicon-32x32.png"),
);

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 §13.1.2 asks).
fn if_none_match_matches(request_headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = opaque_tag(etag.as_bytes());
    request_headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|candidate| candidate == b"*" || opaque_tag(candidate) == ours)
}

fn opaque_tag(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

/// FNV-1a, 64 bits: a content fingerprint for the `ETag`, not a security measure.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_inm(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_lists() {
        let etag = HeaderValue::from_static("\"abc\"");
        assert!(if_none_match_matches(&with_inm("\"abc\""), &etag));
        assert!(if_none_match_matches(&with_inm("W/\"abc\""), &etag));
        assert!(if_none_match_matches(&with_inm("\"x\", W/\"abc\""), &etag));
        assert!(if_none_match_matches(&with_inm("*"), &etag));
        assert!(!if_none_match_matches(&with_inm("\"abcd\""), &etag));
        assert!(!if_none_match_matches(&with_inm("abc"), &etag));
        assert!(!if_none_match_matches(&HeaderMap::new(), &etag));
    }

    #[test]
    fn etag_follows_the_content() {
        assert_ne!(SWAGGER_UI_BUNDLE.etag(), SWAGGER_UI_CSS.etag());
        assert_eq!(SWAGGER_UI_FAVICON.etag(), REDOC_FAVICON.etag());
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn versions_match_the_embedded_bundles() {
        let swagger = std::str::from_utf8(SWAGGER_UI_BUNDLE.bytes()).expect("UTF-8 bundle");
        assert!(
            swagger.contains(&format!("PACKAGE_VERSION:\"{SWAGGER_UI_VERSION}\"")),
            "assets/swagger-ui/VERSION ({SWAGGER_UI_VERSION}) is not the bundle's version"
        );
        let redoc = std::str::from_utf8(REDOC_BUNDLE.bytes()).expect("UTF-8 bundle");
        assert!(
            redoc.contains(&format!("ReDoc Version: \",\"{REDOC_VERSION}\"")),
            "assets/redoc/VERSION ({REDOC_VERSION}) is not the bundle's version"
        );
    }

    #[test]
    fn redoc_bundle_is_patched_not_to_load_its_logo_from_a_cdn() {
        let redoc = std::str::from_utf8(REDOC_BUNDLE.bytes()).expect("UTF-8 bundle");
        assert!(
            !redoc.contains("cdn.redoc.ly"),
            "run assets/update.sh to patch"
        );
        assert!(redoc.contains(r#"src:"data:,""#));
    }
}
