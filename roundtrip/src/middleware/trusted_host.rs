//! `TrustedHostLayer`: refuses requests whose `Host` is not one of the app's, as
//! Starlette's `TrustedHostMiddleware` (tower-http has no such layer).

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};
use http::{StatusCode, header};
use tower::{Layer, Service};

/// Answers `400 Invalid host header` to requests for any host but the allowed ones,
/// so a forged `Host` cannot reach the app (host-header poisoning of links and caches).
///
/// Names match exactly and without case; `*.example.com` matches any subdomain of
/// `example.com` (not `example.com` itself); `*` allows every host. The port is ignored.
/// The host is the `Host` header, or the URI's authority for HTTP/2.
#[derive(Debug, Clone)]
pub struct TrustedHostLayer {
    allowed: Arc<[String]>,
}

impl TrustedHostLayer {
    /// Allows these hosts only.
    pub fn new<I, H>(hosts: I) -> Self
    where
        I: IntoIterator<Item = H>,
        H: Into<String>,
    {
        TrustedHostLayer {
            allowed: hosts
                .into_iter()
                .map(|h| h.into().to_ascii_lowercase())
                .collect(),
        }
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed.iter().any(|pattern| {
            pattern == "*"
                || *pattern == host
                || pattern
                    .strip_prefix('*')
                    .is_some_and(|suffix| suffix.starts_with('.') && host.ends_with(suffix))
        })
    }
}

impl<S> Layer<S> for TrustedHostLayer {
    type Service = TrustedHost<S>;

    fn layer(&self, inner: S) -> TrustedHost<S> {
        TrustedHost {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`TrustedHostLayer`] wraps around an app.
#[derive(Debug, Clone)]
pub struct TrustedHost<S> {
    inner: S,
    layer: TrustedHostLayer,
}

/// The host a request names, without its port (`[::1]:8000` is `[::1]`).
fn request_host(request: &Request) -> Option<&str> {
    let raw = match request.headers().get(header::HOST) {
        Some(value) => value.to_str().ok()?,
        None => request.uri().authority()?.as_str(),
    };
    let raw = raw.rsplit('@').next().unwrap_or(raw);
    if raw.starts_with('[') {
        return raw.find(']').map(|end| &raw[..=end]);
    }
    Some(raw.split(':').next().unwrap_or(raw))
}

impl<S> Service<Request> for TrustedHost<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request_host(&request).is_some_and(|host| self.layer.allows(host)) {
            Either::Right(self.inner.call(request))
        } else {
            let refused = (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Invalid host header",
            )
                .into_response();
            Either::Left(ready(Ok(refused)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_by_subdomain_or_all() {
        let layer = TrustedHostLayer::new(["testserver", "*.example.com", "[::1]"]);
        assert!(layer.allows("testserver"));
        assert!(layer.allows("TestServer"));
        assert!(layer.allows("api.example.com"));
        assert!(layer.allows("[::1]"));
        assert!(!layer.allows("example.com"));
        assert!(!layer.allows("evilexample.com"));
        assert!(!layer.allows("evil.example"));
        assert!(TrustedHostLayer::new(["*"]).allows("anything"));
    }

    #[test]
    fn the_port_is_not_part_of_the_host() {
        let request = |host: &str| {
            Request::builder()
                .uri("/")
                .header(header::HOST, host)
                .body(axum::body::Body::empty())
                .expect("a request")
        };
        assert_eq!(request_host(&request("127.0.0.1:8000")), Some("127.0.0.1"));
        assert_eq!(request_host(&request("[::1]:8000")), Some("[::1]"));
        assert_eq!(request_host(&request("testserver")), Some("testserver"));
    }
}
