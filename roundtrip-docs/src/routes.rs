//! The router that serves the Swagger UI and ReDoc pages and their embedded assets.

use axum::Router;
use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use crate::assets::{
    Asset, OAUTH2_REDIRECT_JS, REDOC_BUNDLE, REDOC_FAVICON, SWAGGER_UI_BUNDLE, SWAGGER_UI_CSS,
    SWAGGER_UI_FAVICON,
};
use crate::html::{
    OAUTH2_REDIRECT, RedocConfig, SwaggerUiConfig, oauth2_redirect_html, redoc_html,
    swagger_ui_html,
};

const HTML: &str = "text/html; charset=utf-8";

/// The interactive docs of an API: Swagger UI at `/docs` and ReDoc at `/redoc`, as FastAPI
/// serves them, with every asset embedded in the binary.
///
/// The OpenAPI document itself is not served here: pass the URL where the application
/// serves it.
///
/// | route (defaults) | content |
/// |---|---|
/// | `/docs` | the Swagger UI page |
/// | `/docs/swagger-ui-bundle.js`, `/docs/swagger-ui.css`, `/docs/favicon-32x32.png` | Swagger UI's assets |
/// | `/docs/oauth2-redirect` (and `/docs/oauth2-redirect.js`) | Swagger UI's OAuth2 redirect page |
/// | `/redoc` | the ReDoc page |
/// | `/redoc/redoc.standalone.js`, `/redoc/favicon-32x32.png` | ReDoc's assets |
///
/// Assets are sent with `Cache-Control: public, max-age=31536000, immutable` (the pages
/// link them with the version in the URL) and a strong `ETag`; a matching `If-None-Match`
/// gets `304 Not Modified`.
///
/// ```
/// use axum::{Router, routing::get};
/// use roundtrip_docs::DocsRoutes;
///
/// async fn openapi() -> &'static str { "{}" }
///
/// let app: Router = Router::new()
///     .route("/openapi.json", get(openapi))
///     .merge(DocsRoutes::new("/openapi.json").title("Invoices").router());
///
/// // Swagger UI elsewhere, and no ReDoc (FastAPI's `docs_url=..., redoc_url=None`).
/// let app: Router = Router::new().merge(
///     DocsRoutes::new("/openapi.json")
///         .docs_url(Some("/api-docs"))
///         .redoc_url(None)
///         .router(),
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DocsRoutes {
    openapi_url: String,
    title: String,
    docs_url: Option<String>,
    redoc_url: Option<String>,
    swagger_ui_parameters: Map<String, Value>,
    swagger_ui_init_oauth: Option<Map<String, Value>>,
    redoc_options: Map<String, Value>,
    root_path: String,
}

impl DocsRoutes {
    /// Docs for the OpenAPI document served at `openapi_url` (e.g. `/openapi.json`), with
    /// Swagger UI at `/docs` and ReDoc at `/redoc`.
    pub fn new(openapi_url: impl Into<String>) -> Self {
        Self {
            openapi_url: openapi_url.into(),
            title: "API".to_owned(),
            docs_url: Some("/docs".to_owned()),
            redoc_url: Some("/redoc".to_owned()),
            swagger_ui_parameters: Map::new(),
            swagger_ui_init_oauth: None,
            redoc_options: Map::new(),
            root_path: String::new(),
        }
    }

    /// The prefix a proxy in front of the application strips (FastAPI's `root_path`):
    /// the pages load the document and their assets under it. The routes themselves do
    /// not move.
    pub fn root_path(mut self, root_path: impl Into<String>) -> Self {
        self.root_path = root_path.into().trim_end_matches('/').to_owned();
        self
    }

    /// Sets the API's title; the pages are titled `"{title} - Swagger UI"` and
    /// `"{title} - ReDoc"`, as in FastAPI.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets where Swagger UI is served (default `/docs`); `None` serves neither the page
    /// nor its assets.
    pub fn docs_url(mut self, url: Option<&str>) -> Self {
        self.docs_url = url.map(str::to_owned);
        self
    }

    /// Sets where ReDoc is served (default `/redoc`); `None` serves neither the page nor
    /// its bundle.
    pub fn redoc_url(mut self, url: Option<&str>) -> Self {
        self.redoc_url = url.map(str::to_owned);
        self
    }

    /// Adds Swagger UI parameters over the defaults, like FastAPI's
    /// `swagger_ui_parameters` (see [`SwaggerUiConfig::parameters`]).
    pub fn swagger_ui_parameters(mut self, parameters: Map<String, Value>) -> Self {
        self.swagger_ui_parameters.extend(parameters);
        self
    }

    /// Calls Swagger UI's `initOAuth` with these settings, like FastAPI's
    /// `swagger_ui_init_oauth`.
    pub fn swagger_ui_init_oauth(mut self, init_oauth: Map<String, Value>) -> Self {
        self.swagger_ui_init_oauth = Some(init_oauth);
        self
    }

    /// Adds ReDoc options (see [`RedocConfig::options`]).
    pub fn redoc_options(mut self, options: Map<String, Value>) -> Self {
        self.redoc_options.extend(options);
        self
    }

    /// The Swagger UI page's configuration, or `None` if Swagger UI is turned off.
    pub fn swagger_ui_config(&self) -> Option<SwaggerUiConfig> {
        let docs_url = self.docs_url.as_deref()?;
        let root = &self.root_path;
        let mut config = SwaggerUiConfig::new(format!("{root}{}", self.openapi_url))
            .title(format!("{} - Swagger UI", self.title))
            .assets_under(&format!("{root}{}", normalize_base(docs_url)))
            .parameters(self.swagger_ui_parameters.clone());
        if let Some(init_oauth) = &self.swagger_ui_init_oauth {
            config = config.init_oauth(init_oauth.clone());
        }
        Some(config)
    }

    /// The ReDoc page's configuration, or `None` if ReDoc is turned off.
    pub fn redoc_config(&self) -> Option<RedocConfig> {
        let redoc_url = self.redoc_url.as_deref()?;
        let root = &self.root_path;
        Some(
            RedocConfig::new(format!("{root}{}", self.openapi_url))
                .title(format!("{} - ReDoc", self.title))
                .assets_under(&format!("{root}{}", normalize_base(redoc_url)))
                .options(self.redoc_options.clone()),
        )
    }

    /// Builds the router, for any application state. The pages are rendered once, here.
    ///
    /// A URL is a plain path (no `{capture}`): a missing leading `/` is added and a
    /// trailing `/` dropped.
    ///
    /// # Panics
    ///
    /// As [`Router::route`] does if two routes collide: if the docs and ReDoc URLs are the
    /// same, or one of them is a route of the other (e.g. `/docs/swagger-ui.css`).
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        self.router_behind(|_: &Parts| String::new())
    }

    /// Builds the router for an application behind a proxy that strips a prefix:
    /// `root_path` tells, for each request, the prefix the pages must load everything
    /// under (read from a header, a setting, or where the application is mounted).
    /// Pages for an empty prefix are rendered once, here; others on each request.
    pub fn router_behind<S, F>(&self, root_path: F) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(&Parts) -> String + Clone + Send + Sync + 'static,
    {
        let mut router = Router::new();
        if let (Some(docs_url), Some(config)) = (&self.docs_url, self.swagger_ui_config()) {
            let base = normalize_base(docs_url);
            let render = self.renderer(DocsRoutes::swagger_ui_config, swagger_ui_html);
            router = page(
                router,
                &base,
                swagger_ui_html(&config),
                root_path.clone(),
                render,
            );
            let redirect = oauth2_redirect_html();
            router = page(
                router,
                &format!("{base}/{OAUTH2_REDIRECT}"),
                redirect.clone(),
                |_: &Parts| String::new(),
                move |_: &str| redirect.clone(),
            );
            for asset in [
                &SWAGGER_UI_BUNDLE,
                &SWAGGER_UI_CSS,
                &SWAGGER_UI_FAVICON,
                &OAUTH2_REDIRECT_JS,
            ] {
                router = asset_route(router, &base, asset);
            }
        }
        if let (Some(redoc_url), Some(config)) = (&self.redoc_url, self.redoc_config()) {
            let base = normalize_base(redoc_url);
            let render = self.renderer(DocsRoutes::redoc_config, redoc_html);
            router = page(router, &base, redoc_html(&config), root_path, render);
            for asset in [&REDOC_BUNDLE, &REDOC_FAVICON] {
                router = asset_route(router, &base, asset);
            }
        }
        router
    }
}

impl DocsRoutes {
    /// Writes a page for a root path: `config` of these docs moved under it, as `html`.
    fn renderer<C: 'static>(
        &self,
        config: fn(&DocsRoutes) -> Option<C>,
        html: fn(&C) -> String,
    ) -> impl Fn(&str) -> String + Clone + Send + Sync + 'static {
        let docs = self.clone();
        move |root: &str| {
            config(&docs.clone().root_path(root))
                .map(|c| html(&c))
                .unwrap_or_default()
        }
    }
}

/// `/docs/` → `/docs`, `docs` → `/docs`, `/` → `` (so that `{base}/file` is `/file`).
pub(crate) fn normalize_base(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    if trimmed.is_empty() || trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

/// The route for a page whose base may be empty (docs served at the root).
fn route_path(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

/// A page rendered once for requests without a root path, and for each request with one.
fn page<S, F, R>(router: Router<S>, path: &str, html: String, root_path: F, render: R) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    F: Fn(&Parts) -> String + Clone + Send + Sync + 'static,
    R: Fn(&str) -> String + Clone + Send + Sync + 'static,
{
    let body = Bytes::from(html);
    router.route(
        route_path(path),
        get(move |parts: Parts| {
            let root = root_path(&parts);
            let body = if root.is_empty() {
                body.clone()
            } else {
                Bytes::from(render(&root))
            };
            async move { ([(CONTENT_TYPE, HeaderValue::from_static(HTML))], body).into_response() }
        }),
    )
}

fn asset_route<S>(router: Router<S>, base: &str, asset: &'static Asset) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route(
        &format!("{base}/{}", asset.name),
        get(move |headers: HeaderMap| async move { asset.respond(&headers) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_normalized() {
        assert_eq!(normalize_base("/docs"), "/docs");
        assert_eq!(normalize_base("/docs/"), "/docs");
        assert_eq!(normalize_base("docs"), "/docs");
        assert_eq!(normalize_base("/"), "");
        assert_eq!(normalize_base(""), "");
        assert_eq!(route_path(""), "/");
    }
}
