//! Cookies set on a response, with their attributes, written as Starlette writes them.

use axum::response::{IntoResponseParts, ResponseParts};
use http::HeaderValue;
use http::header::SET_COOKIE;

use crate::operation::{OperationContext, OperationOutput};

/// When a browser sends the cookie along with requests from other sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Only with requests from the same site.
    Strict,
    /// Also with top-level navigations from other sites (the browsers' default).
    Lax,
    /// With every request; browsers require `Secure` with it.
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "strict",
            SameSite::Lax => "lax",
            SameSite::None => "none",
        }
    }
}

/// A `Set-Cookie` header: FastAPI's `response.set_cookie(...)`. Return it beside the
/// body, `(SetCookie::new("session", "abc123").http_only(), Json(..))`; several cookies
/// are several headers.
///
/// The path is `/` unless set. Attributes are written in the order Python's
/// `http.cookies` writes them, so the header reads exactly as Starlette's:
/// `session=abc123; HttpOnly; Path=/; SameSite=lax`. A value with characters a cookie
/// may not hold (spaces, quotes, `;`, `,`, `\`, controls, non-ASCII) is percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SetCookie {
    name: String,
    value: String,
    max_age: Option<i64>,
    expires: Option<String>,
    path: Option<String>,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
}

impl SetCookie {
    /// A cookie `name=value` for the path `/`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        SetCookie {
            name: name.into(),
            value: value.into(),
            max_age: None,
            expires: None,
            path: Some("/".to_owned()),
            domain: None,
            secure: false,
            http_only: false,
            same_site: None,
        }
    }

    /// A cookie that tells the browser to forget `name` (FastAPI's `delete_cookie`).
    pub fn delete(name: impl Into<String>) -> Self {
        SetCookie::new(name, "")
            .max_age(0)
            .expires("Thu, 01 Jan 1970 00:00:00 GMT")
    }

    /// Seconds until the cookie expires (`Max-Age`).
    pub fn max_age(mut self, seconds: i64) -> Self {
        self.max_age = Some(seconds);
        self
    }

    /// The date the cookie expires, as an HTTP date (`Thu, 01 Jan 2026 00:00:00 GMT`).
    pub fn expires(mut self, http_date: impl Into<String>) -> Self {
        self.expires = Some(http_date.into());
        self
    }

    /// The path the cookie is sent for; `None` leaves it to the browser.
    pub fn path(mut self, path: Option<&str>) -> Self {
        self.path = path.map(str::to_owned);
        self
    }

    /// The domain the cookie is sent to.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sent over HTTPS only.
    pub fn secure(mut self) -> Self {
        self.secure = true;
        self
    }

    /// Hidden from the page's scripts.
    pub fn http_only(mut self) -> Self {
        self.http_only = true;
        self
    }

    /// The `SameSite` policy.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = Some(same_site);
        self
    }

    /// The header's value.
    pub fn to_header_value(&self) -> String {
        let mut out = format!("{}={}", token(&self.name), cookie_value(&self.value));
        // Python's `http.cookies` writes attributes sorted by their lower-case names.
        if let Some(domain) = &self.domain {
            out.push_str(&format!("; Domain={}", attribute(domain)));
        }
        if let Some(expires) = &self.expires {
            out.push_str(&format!("; expires={}", attribute(expires)));
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if let Some(max_age) = self.max_age {
            out.push_str(&format!("; Max-Age={max_age}"));
        }
        if let Some(path) = &self.path {
            out.push_str(&format!("; Path={}", attribute(path)));
        }
        if let Some(same_site) = self.same_site {
            out.push_str(&format!("; SameSite={}", same_site.as_str()));
        }
        if self.secure {
            out.push_str("; Secure");
        }
        out
    }
}

/// A cookie name keeps only token characters.
fn token(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(*c))
        .collect()
}

fn cookie_value(value: &str) -> String {
    let is_octet = |b: u8| {
        b == 0x21
            || (0x23..=0x2b).contains(&b)
            || (0x2d..=0x3a).contains(&b)
            || (0x3c..=0x5b).contains(&b)
            || (0x5d..=0x7e).contains(&b)
    };
    value
        .bytes()
        .map(|b| {
            if is_octet(b) && b != b'%' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An attribute value cannot end the attribute early.
fn attribute(value: &str) -> String {
    value
        .chars()
        .filter(|c| *c != ';' && !c.is_control())
        .collect()
}

impl IntoResponseParts for SetCookie {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if let Ok(value) = HeaderValue::from_str(&self.to_header_value()) {
            res.headers_mut().append(SET_COOKIE, value);
        }
        Ok(res)
    }
}

impl<R: OperationOutput> OperationOutput for (SetCookie, R) {
    fn describe(ctx: &mut OperationContext<'_>) {
        R::describe(ctx);
    }
}

impl<R: OperationOutput> OperationOutput for (SetCookie, SetCookie, R) {
    fn describe(ctx: &mut OperationContext<'_>) {
        R::describe(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_written_as_starlette_writes_them() {
        let cookie = SetCookie::new("session", "abc123")
            .http_only()
            .same_site(SameSite::Lax);
        assert_eq!(
            cookie.to_header_value(),
            "session=abc123; HttpOnly; Path=/; SameSite=lax"
        );
        let all = SetCookie::new("a", "b")
            .secure()
            .max_age(60)
            .domain("example.com")
            .same_site(SameSite::Strict);
        assert_eq!(
            all.to_header_value(),
            "a=b; Domain=example.com; Max-Age=60; Path=/; SameSite=strict; Secure"
        );
    }

    #[test]
    fn values_cannot_add_attributes() {
        let cookie = SetCookie::new("n;x", "v; Secure").path(Some("/a;b"));
        assert_eq!(cookie.to_header_value(), "nx=v%3B%20Secure; Path=/ab");
    }
}
