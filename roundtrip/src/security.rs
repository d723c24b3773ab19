//! Security schemes: extractors that read credentials, publish their scheme in
//! `components.securitySchemes` and the operation's `security`, and answer FastAPI's
//! `401 {"detail":"Not authenticated"}` with a `WWW-Authenticate` challenge when the
//! credentials are missing.
//!
//! Checking the credentials stays with the application: an extractor only says *that*
//! credentials were sent and hands them over. The settings that FastAPI passes to the
//! scheme's constructor (the header name of an API key, the token URL of OAuth2) are
//! carried in the type, by a marker type that implements a small config trait, so the
//! same settings serve the document and every request:
//!
//! ```
//! use roundtrip::security::{ApiKeyConfig, ApiKeyHeader, OAuth2PasswordBearer, OAuth2PasswordConfig};
//!
//! struct TourKey;
//! impl ApiKeyConfig for TourKey {
//!     const NAME: &'static str = "X-API-Key";
//! }
//!
//! struct TourOAuth;
//! impl OAuth2PasswordConfig for TourOAuth {
//!     const TOKEN_URL: &'static str = "token";
//!     const SCOPES: &'static [(&'static str, &'static str)] = &[("items:read", "Read items")];
//! }
//!
//! async fn secure_key(key: ApiKeyHeader<TourKey>) -> String {
//!     key.key
//! }
//!
//! async fn secure_oauth(auth: OAuth2PasswordBearer<TourOAuth>) -> String {
//!     auth.token
//! }
//! ```
//!
//! Each scheme is published under FastAPI's component name (`APIKeyHeader`, `HTTPBasic`,
//! `OAuth2PasswordBearer`...) unless its config names it otherwise. Two configs that
//! publish different schemes under one name stop the app from being built.
//!
//! `Option<Scheme>` is FastAPI's `auto_error=False`: missing credentials give `None`
//! instead of a 401, and the operation still documents the scheme.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use http::{HeaderValue, header};
use indexmap::IndexMap;
use roundtrip_openapi::model::{OAuthFlow, OAuthFlows, ParameterIn, SecurityScheme};

use crate::error::HttpError;
use crate::operation::{OperationContext, OperationInput};

/// The detail FastAPI answers when credentials are missing.
pub const NOT_AUTHENTICATED: &str = "Not authenticated";

/// The 401 a scheme answers when credentials are missing, with its challenge.
fn not_authenticated(challenge: &str) -> HttpError {
    let value = HeaderValue::from_str(challenge).unwrap_or(HeaderValue::from_static("Bearer"));
    HttpError::unauthorized(NOT_AUTHENTICATED).header(header::WWW_AUTHENTICATE, value)
}

/// Publishes `scheme` under `name` and requires it on the operation; a name already used
/// by a different scheme is a build error, since the document could show only one.
fn require(
    ctx: &mut OperationContext<'_>,
    name: &str,
    scheme: SecurityScheme,
    scopes: Vec<String>,
) {
    if let Some(existing) = ctx.security_schemes.get(name)
        && *existing != scheme
    {
        ctx.error(format!(
            "two different security schemes are named `{name}`; give one of them its own `SCHEME_NAME`"
        ));
        return;
    }
    ctx.security(name, scheme, scopes);
}

/// The `Authorization` header split at its first space into scheme and credentials, as
/// FastAPI's `get_authorization_scheme_param` does.
fn authorization(parts: &Parts) -> Option<(&str, &str)> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if value.is_empty() {
        return None;
    }
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    Some((scheme, credentials.trim()))
}

/// Settings of an API key: its name, and optionally the scheme's component name and
/// description. Implement it on a marker type, and use that type as the parameter of
/// [`ApiKeyHeader`], [`ApiKeyQuery`] or [`ApiKeyCookie`].
pub trait ApiKeyConfig: 'static {
    /// The header, query parameter or cookie that carries the key (`X-API-Key`).
    const NAME: &'static str;
    /// The name in `components.securitySchemes`; by default `APIKeyHeader`,
    /// `APIKeyQuery` or `APIKeyCookie`, as FastAPI names them.
    const SCHEME_NAME: Option<&'static str> = None;
    /// The scheme's description in the document.
    const DESCRIPTION: Option<&'static str> = None;
}

macro_rules! api_key {
    ($(#[$doc:meta])* $name:ident, $default:literal, $location:expr, $read:expr) => {
        $(#[$doc])*
        pub struct $name<C> {
            /// The key the client sent; never empty.
            pub key: String,
            config: PhantomData<fn() -> C>,
        }

        impl<C> $name<C> {
            /// A key as if a client had sent it (for dependency overrides in tests).
            pub fn new(key: impl Into<String>) -> Self {
                $name {
                    key: key.into(),
                    config: PhantomData,
                }
            }
        }

        impl<C> std::fmt::Debug for $name<C> {
            // The key is a secret: it stays out of logs.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }

        impl<C> Clone for $name<C> {
            fn clone(&self) -> Self {
                Self::new(self.key.clone())
            }
        }

        impl<C: ApiKeyConfig> $name<C> {
            fn read(parts: &Parts) -> Option<Self> {
                let read: fn(&Parts, &str) -> Option<String> = $read;
                read(parts, C::NAME)
                    .filter(|key| !key.is_empty())
                    .map(Self::new)
            }
        }

        impl<C: ApiKeyConfig, S: Send + Sync> FromRequestParts<S> for $name<C> {
            type Rejection = HttpError;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
                Self::read(parts).ok_or_else(|| not_authenticated("APIKey"))
            }
        }

        impl<C: ApiKeyConfig, S: Send + Sync> OptionalFromRequestParts<S> for $name<C> {
            type Rejection = HttpError;

            async fn from_request_parts(
                parts: &mut Parts,
                _state: &S,
            ) -> Result<Option<Self>, HttpError> {
                Ok(Self::read(parts))
            }
        }

        impl<C: ApiKeyConfig> OperationInput for $name<C> {
            fn describe(ctx: &mut OperationContext<'_>) {
                let scheme = SecurityScheme::ApiKey {
                    name: C::NAME.to_owned(),
                    location: $location,
                    description: C::DESCRIPTION.map(str::to_owned),
                };
                require(ctx, C::SCHEME_NAME.unwrap_or($default), scheme, Vec::new());
            }
        }
    };
}

api_key!(
    /// An API key in a request header: FastAPI's `APIKeyHeader`.
    ///
    /// A missing or empty header answers 401 with `WWW-Authenticate: APIKey`.
    ApiKeyHeader,
    "APIKeyHeader",
    ParameterIn::Header,
    |parts, name| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
);

api_key!(
    /// An API key in the query string: FastAPI's `APIKeyQuery`.
    ///
    /// A missing or empty parameter answers 401 with `WWW-Authenticate: APIKey`.
    ApiKeyQuery,
    "APIKeyQuery",
    ParameterIn::Query,
    |parts, name| {
        let query = parts.uri.query()?;
        url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .last()
    }
);

api_key!(
    /// An API key in a cookie: FastAPI's `APIKeyCookie`.
    ///
    /// A missing or empty cookie answers 401 with `WWW-Authenticate: APIKey`.
    ApiKeyCookie,
    "APIKeyCookie",
    ParameterIn::Cookie,
    |parts, name| {
        parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.split_once('='))
            .filter(|(k, _)| k.trim() == name)
            .map(|(_, v)| {
                let v = v.trim();
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v)
                    .to_owned()
            })
            .next_back()
    }
);

/// Settings of HTTP Basic authentication. `()` is FastAPI's `HTTPBasic()`.
pub trait HttpBasicConfig: 'static {
    /// The name in `components.securitySchemes`.
    const SCHEME_NAME: &'static str = "HTTPBasic";
    /// The realm sent in the challenge: `WWW-Authenticate: Basic realm="..."`.
    const REALM: Option<&'static str> = None;
    /// The scheme's description in the document.
    const DESCRIPTION: Option<&'static str> = None;
}

impl HttpBasicConfig for () {}

/// HTTP Basic credentials (RFC 7617): FastAPI's `HTTPBasic` with its
/// `HTTPBasicCredentials`.
///
/// A missing `Authorization` header, another scheme, or credentials that are not
/// base64 of `username:password` answer 401 with `WWW-Authenticate: Basic` (and the
/// realm, when configured). FastAPI reads the decoded credentials as ASCII; roundtrip
/// reads UTF-8, as RFC 7617 allows.
pub struct HttpBasic<C = ()> {
    /// The user name.
    pub username: String,
    /// The password, as sent.
    pub password: String,
    config: PhantomData<fn() -> C>,
}

impl<C> HttpBasic<C> {
    /// Credentials as if a client had sent them (for dependency overrides in tests).
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        HttpBasic {
            username: username.into(),
            password: password.into(),
            config: PhantomData,
        }
    }
}

impl<C> std::fmt::Debug for HttpBasic<C> {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBasic")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl<C> Clone for HttpBasic<C> {
    fn clone(&self) -> Self {
        Self::new(self.username.clone(), self.password.clone())
    }
}

impl<C: HttpBasicConfig> HttpBasic<C> {
    fn challenge() -> String {
        match C::REALM {
            Some(realm) => format!("Basic realm=\"{}\"", realm.replace(['"', '\\'], "")),
            None => "Basic".to_owned(),
        }
    }

    fn read(parts: &Parts) -> BasicCredentials<Self> {
        let Some((scheme, encoded)) = authorization(parts) else {
            return BasicCredentials::Missing;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return BasicCredentials::Missing;
        }
        let decoded = decode_base64(encoded).and_then(|bytes| String::from_utf8(bytes).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((username, password)) => BasicCredentials::Found(Self::new(username, password)),
            None => BasicCredentials::Unreadable,
        }
    }
}

/// What a request's `Authorization` header holds for HTTP Basic.
enum BasicCredentials<T> {
    /// No header, or another scheme.
    Missing,
    /// Basic credentials that are not base64 of `username:password`; FastAPI refuses
    /// them even with `auto_error=False`.
    Unreadable,
    Found(T),
}

impl<C: HttpBasicConfig, S: Send + Sync> FromRequestParts<S> for HttpBasic<C> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        match Self::read(parts) {
            BasicCredentials::Found(credentials) => Ok(credentials),
            _ => Err(not_authenticated(&Self::challenge())),
        }
    }
}

impl<C: HttpBasicConfig, S: Send + Sync> OptionalFromRequestParts<S> for HttpBasic<C> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, HttpError> {
        match Self::read(parts) {
            BasicCredentials::Found(credentials) => Ok(Some(credentials)),
            BasicCredentials::Missing => Ok(None),
            BasicCredentials::Unreadable => Err(not_authenticated(&Self::challenge())),
        }
    }
}

impl<C: HttpBasicConfig> OperationInput for HttpBasic<C> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let scheme = SecurityScheme::Http {
            scheme: "basic".to_owned(),
            bearer_format: None,
            description: C::DESCRIPTION.map(str::to_owned),
        };
        require(ctx, C::SCHEME_NAME, scheme, Vec::new());
    }
}

/// Settings of HTTP Bearer authentication. `()` is FastAPI's `HTTPBearer()`.
pub trait HttpBearerConfig: 'static {
    /// The name in `components.securitySchemes`.
    const SCHEME_NAME: &'static str = "HTTPBearer";
    /// A hint about the token's format (`JWT`).
    const BEARER_FORMAT: Option<&'static str> = None;
    /// The scheme's description in the document.
    const DESCRIPTION: Option<&'static str> = None;
}

impl HttpBearerConfig for () {}

/// An HTTP Bearer token: FastAPI's `HTTPBearer` with its `HTTPAuthorizationCredentials`.
///
/// A missing `Authorization` header, an empty token, or another scheme answer 401 with
/// `WWW-Authenticate: Bearer`.
pub struct HttpBearer<C = ()> {
    /// The scheme as the client wrote it (`Bearer`, `bearer`).
    pub scheme: String,
    /// The token.
    pub credentials: String,
    config: PhantomData<fn() -> C>,
}

impl<C> HttpBearer<C> {
    /// A token as if a client had sent it (for dependency overrides in tests).
    pub fn new(credentials: impl Into<String>) -> Self {
        HttpBearer {
            scheme: "Bearer".to_owned(),
            credentials: credentials.into(),
            config: PhantomData,
        }
    }

    fn read(parts: &Parts) -> Option<Self> {
        let (scheme, credentials) = authorization(parts)?;
        if !scheme.eq_ignore_ascii_case("bearer") || credentials.is_empty() {
            return None;
        }
        Some(HttpBearer {
            scheme: scheme.to_owned(),
            credentials: credentials.to_owned(),
            config: PhantomData,
        })
    }
}

impl<C> std::fmt::Debug for HttpBearer<C> {
    // The token is a secret: it stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBearer")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl<C> Clone for HttpBearer<C> {
    fn clone(&self) -> Self {
        HttpBearer {
            scheme: self.scheme.clone(),
            credentials: self.credentials.clone(),
            config: PhantomData,
        }
    }
}

impl<C: HttpBearerConfig, S: Send + Sync> FromRequestParts<S> for HttpBearer<C> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        Self::read(parts).ok_or_else(|| not_authenticated("Bearer"))
    }
}

impl<C: HttpBearerConfig, S: Send + Sync> OptionalFromRequestParts<S> for HttpBearer<C> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, HttpError> {
        Ok(Self::read(parts))
    }
}

impl<C: HttpBearerConfig> OperationInput for HttpBearer<C> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let scheme = SecurityScheme::Http {
            scheme: "bearer".to_owned(),
            bearer_format: C::BEARER_FORMAT.map(str::to_owned),
            description: C::DESCRIPTION.map(str::to_owned),
        };
        require(ctx, C::SCHEME_NAME, scheme, Vec::new());
    }
}

/// Settings of OAuth2's password flow: the token URL and the scopes the API offers.
pub trait OAuth2PasswordConfig: 'static {
    /// Where clients get a token (FastAPI's `tokenUrl`), relative to the API or absolute.
    const TOKEN_URL: &'static str;
    /// The scopes the API offers, each with its description.
    const SCOPES: &'static [(&'static str, &'static str)] = &[];
    /// Where clients refresh a token.
    const REFRESH_URL: Option<&'static str> = None;
    /// The name in `components.securitySchemes`.
    const SCHEME_NAME: &'static str = "OAuth2PasswordBearer";
    /// The scheme's description in the document.
    const DESCRIPTION: Option<&'static str> = None;
}

/// The scopes an operation requires, as FastAPI's `Security(oauth2, scopes=[...])`.
///
/// They are published in the operation's `security` and given to the handler by
/// [`OAuth2PasswordBearer::required_scopes`]; whether the token grants them is for the
/// application to check.
pub trait Scopes: 'static {
    /// The scope names; each must be one the scheme offers.
    const SCOPES: &'static [&'static str];
}

/// No scope required: FastAPI's `Depends(oauth2)`.
impl Scopes for () {
    const SCOPES: &'static [&'static str] = &[];
}

/// A bearer token obtained with OAuth2's password flow: FastAPI's
/// `OAuth2PasswordBearer`.
///
/// A missing `Authorization` header or another scheme answers 401 with
/// `WWW-Authenticate: Bearer`. `R` lists the scopes the operation requires.
pub struct OAuth2PasswordBearer<C, R = ()> {
    /// The token.
    pub token: String,
    config: PhantomData<fn() -> (C, R)>,
}

impl<C, R> OAuth2PasswordBearer<C, R> {
    /// A token as if a client had sent it (for dependency overrides in tests).
    pub fn new(token: impl Into<String>) -> Self {
        OAuth2PasswordBearer {
            token: token.into(),
            config: PhantomData,
        }
    }

    fn read(parts: &Parts) -> Option<Self> {
        let (scheme, token) = authorization(parts)?;
        // FastAPI hands over an empty token; an empty token is no credential at all.
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| Self::new(token))
    }
}

impl<C, R: Scopes> OAuth2PasswordBearer<C, R> {
    /// The scopes this operation requires (FastAPI's `SecurityScopes.scopes`).
    pub fn required_scopes(&self) -> &'static [&'static str] {
        R::SCOPES
    }
}

impl<C, R> std::fmt::Debug for OAuth2PasswordBearer<C, R> {
    // The token is a secret: it stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2PasswordBearer")
            .finish_non_exhaustive()
    }
}

impl<C, R> Clone for OAuth2PasswordBearer<C, R> {
    fn clone(&self) -> Self {
        Self::new(self.token.clone())
    }
}

impl<C: OAuth2PasswordConfig, R: Scopes, S: Send + Sync> FromRequestParts<S>
    for OAuth2PasswordBearer<C, R>
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        Self::read(parts).ok_or_else(|| not_authenticated("Bearer"))
    }
}

impl<C: OAuth2PasswordConfig, R: Scopes, S: Send + Sync> OptionalFromRequestParts<S>
    for OAuth2PasswordBearer<C, R>
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, HttpError> {
        Ok(Self::read(parts))
    }
}

impl<C: OAuth2PasswordConfig, R: Scopes> OperationInput for OAuth2PasswordBearer<C, R> {
    fn describe(ctx: &mut OperationContext<'_>) {
        for scope in R::SCOPES {
            if !C::SCOPES.iter().any(|(offered, _)| offered == scope) {
                ctx.error(format!(
                    "the scope `{scope}` is required but `{}` does not offer it; add it to its `SCOPES`",
                    C::SCHEME_NAME
                ));
            }
        }
        let scopes: IndexMap<String, String> = C::SCOPES
            .iter()
            .map(|(name, description)| ((*name).to_owned(), (*description).to_owned()))
            .collect();
        let flows = OAuthFlows {
            password: Some(OAuthFlow {
                token_url: Some(C::TOKEN_URL.to_owned()),
                refresh_url: C::REFRESH_URL.map(str::to_owned),
                scopes,
                ..OAuthFlow::default()
            }),
            ..OAuthFlows::default()
        };
        let scheme = SecurityScheme::OAuth2 {
            flows: Box::new(flows),
            description: C::DESCRIPTION.map(str::to_owned),
        };
        let required = R::SCOPES.iter().map(|s| (*s).to_owned()).collect();
        require(ctx, C::SCHEME_NAME, scheme, required);
    }
}

/// The form of OAuth2's password flow, for the token endpoint: FastAPI's
/// `OAuth2PasswordRequestForm`. Read it with `Form<OAuth2PasswordRequestForm>`.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
pub struct OAuth2PasswordRequestForm {
    /// Must be `password` when sent.
    #[schemars(pattern(r"^password$"))]
    pub grant_type: Option<String>,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
    /// The requested scopes, separated by spaces.
    #[serde(default)]
    pub scope: String,
    /// The client's id, when the client authenticates in the form.
    pub client_id: Option<String>,
    /// The client's secret, when the client authenticates in the form.
    pub client_secret: Option<String>,
}

impl OAuth2PasswordRequestForm {
    /// The requested scopes, one by one.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }
}

/// Decodes standard base64 (padding optional); `None` for anything else.
fn decode_base64(input: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let trimmed = input.trim_end_matches('=');
    if input.len() - trimmed.len() > 2 || trimmed.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(
            decode_base64("Ym9iOnNlY3JldA==").as_deref(),
            Some(&b"bob:secret"[..])
        );
        assert_eq!(
            decode_base64("Ym9iOnNlY3JldA").as_deref(),
            Some(&b"bob:secret"[..])
        );
        assert_eq!(decode_base64("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
    }

    #[test]
    fn base64_refuses_what_is_not_base64() {
        for bad in ["Y", "Ym9i*", "Ym9iOn===", "a b c d", "Ym9iOnNlY3JldA=x"] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }
}
