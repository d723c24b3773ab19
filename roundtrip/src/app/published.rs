//! Serving the document and the docs pages where clients find them: behind a proxy that
//! strips a prefix (the root path), and for apps mounted under a path.
//!
//! The root path of a request is, in order: the app's `root_path(..)`, an outer app's,
//! or the request's `X-Forwarded-Prefix` header; followed by the path the app is mounted
//! at. It is listed as the document's first server (unless a server has that URL
//! already), and the docs pages load the document and their assets under it, as FastAPI
//! does with `root_path`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::NestedPath;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, VARY};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use roundtrip_openapi::model::{OpenApi, Server};

use super::setup::Mount;
use crate::error::detail_response;
use crate::lifespan::LifespanHook;

/// The root path an outer app was given, for the apps mounted in it.
#[derive(Debug, Clone)]
pub(crate) struct RootPath(pub(crate) String);

const FORWARDED_PREFIX: &str = "x-forwarded-prefix";

/// A prefix a proxy announced, if it is a plain path: `/` and then unreserved path
/// characters only, so it cannot smuggle anything into the pages.
fn forwarded_prefix(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(FORWARDED_PREFIX)?.to_str().ok()?.trim();
    let plain = value.starts_with('/')
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
        && !value.contains("//");
    plain.then(|| value.trim_end_matches('/').to_owned())
}

/// The prefix this request's pages and document must use.
pub(crate) fn request_root(parts: &Parts, configured: Option<&str>) -> String {
    let outer = configured
        .map(str::to_owned)
        .or_else(|| parts.extensions.get::<RootPath>().map(|r| r.0.clone()))
        .or_else(|| forwarded_prefix(&parts.headers))
        .unwrap_or_default();
    let mounted = parts
        .extensions
        .get::<NestedPath>()
        .map(|n| n.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    format!("{outer}{mounted}")
}

/// The document with `root` as its first server.
fn with_root_server(doc: &OpenApi, root: &str) -> OpenApi {
    let mut doc = doc.clone();
    if !doc.servers.iter().any(|s| s.url == root) {
        doc.servers.insert(
            0,
            Server {
                url: root.to_owned(),
                ..Server::default()
            },
        );
    }
    doc
}

/// Adds the document at `openapi_url` and the docs pages, both aware of the root path.
pub(crate) fn document_routes<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    openapi: &Arc<OpenApi>,
    openapi_url: &str,
    docs: &roundtrip_docs::DocsRoutes,
    configured: Option<String>,
) -> axum::Router<S> {
    let plain = Bytes::from(serde_json::to_vec(&**openapi).unwrap_or_default());
    let doc = openapi.clone();
    let root_of = move |parts: &Parts| request_root(parts, configured.as_deref());
    let document_root = root_of.clone();
    let router = router.route(
        openapi_url,
        axum::routing::get(move |parts: Parts| {
            let root = document_root(&parts);
            let body = if root.is_empty() {
                plain.clone()
            } else {
                Bytes::from(serde_json::to_vec(&with_root_server(&doc, &root)).unwrap_or_default())
            };
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if parts.headers.contains_key(FORWARDED_PREFIX) {
                headers.insert(VARY, HeaderValue::from_static("X-Forwarded-Prefix"));
            }
            async move { (headers, body) }
        }),
    );
    router.merge(docs.router_behind(root_of))
}

/// Serves a mounted app or a static directory under its path.
pub(crate) fn mount<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    mount: Mount,
    lifespans: &mut Vec<Arc<dyn LifespanHook>>,
) -> Result<axum::Router<S>, (axum::Router<S>, String)> {
    let path = match &mount {
        Mount::App(path, _) | Mount::Static(path, _) => path.clone(),
    };
    if !path.starts_with('/') || path.ends_with('/') || path.contains('{') {
        return Err((
            router,
            format!(
                "the mount path `{path}` must start with `/`, not end with `/`, and hold no `{{parameter}}`"
            ),
        ));
    }
    match mount {
        Mount::App(_, build) => match build() {
            Ok(built) => {
                lifespans.extend(built.lifespans);
                Ok(router.nest_service(&path, built.router))
            }
            Err(err) => Err((
                router,
                format!(
                    "the app mounted at `{path}` cannot be built: {}",
                    err.problems().join("; ")
                ),
            )),
        },
        Mount::Static(_, dir) => Ok(router.nest_service(&path, static_files(dir))),
    }
}

fn static_files(dir: PathBuf) -> tower_http::services::ServeDir<NotFound> {
    tower_http::services::ServeDir::new(dir)
        .append_index_html_on_directories(false)
        .fallback(NotFound)
}

/// FastAPI's 404 for a file that is not there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotFound;

impl<B: Send + 'static> tower::Service<http::Request<B>> for NotFound {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: http::Request<B>) -> Self::Future {
        std::future::ready(Ok(
            detail_response(StatusCode::NOT_FOUND, "Not Found").into_response()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(prefix: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            FORWARDED_PREFIX,
            HeaderValue::from_str(prefix).expect("a value"),
        );
        headers
    }

    #[test]
    fn only_plain_prefixes_are_trusted() {
        assert_eq!(
            forwarded_prefix(&headers("/api/v1/")),
            Some("/api/v1".to_owned())
        );
        for hostile in [
            "api",
            "/a'b",
            "/a\"><script>",
            "//evil.example",
            "/a b",
            "/a?x=1",
        ] {
            if let Ok(value) = HeaderValue::from_str(hostile) {
                let mut h = HeaderMap::new();
                h.insert(FORWARDED_PREFIX, value);
                assert_eq!(forwarded_prefix(&h), None, "{hostile}");
            }
        }
    }
}
