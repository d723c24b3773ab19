//! The docs router, driven in-process with `tower::ServiceExt::oneshot` (no socket).

use axum::Router;
use axum::body::{Body, Bytes};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use roundtrip_docs::{DocsRoutes, REDOC_VERSION, SWAGGER_UI_VERSION};
use serde_json::{Map, json};
use tower::ServiceExt as _;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    fn header(&self, name: http::header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .expect("ASCII header")
    }
}

async fn send(router: &Router, method: Method, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::empty()).expect("valid request");
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible router");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes(),
    }
}

async fn get(router: &Router, uri: &str) -> Reply {
    send(router, Method::GET, uri, &[]).await
}

fn default_router() -> Router {
    DocsRoutes::new("/openapi.json").title("Invoices").router()
}

#[tokio::test]
async fn swagger_page_links_the_document_and_the_versioned_assets() {
    let reply = get(&default_router(), "/docs").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(CONTENT_TYPE), "text/html; charset=utf-8");
    let html = reply.text();
    for expected in [
        "<title>Invoices - Swagger UI</title>".to_owned(),
        r#""url":"/openapi.json""#.to_owned(),
        format!(r#"<script src="/docs/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}"></script>"#),
        format!(r#"href="/docs/swagger-ui.css?v={SWAGGER_UI_VERSION}""#),
        format!(r#"href="/docs/favicon-32x32.png?v={SWAGGER_UI_VERSION}""#),
        r#"window.location.origin + "/docs/oauth2-redirect""#.to_owned(),
        r#""validatorUrl":null"#.to_owned(),
    ] {
        assert!(html.contains(&expected), "missing {expected} in\n{html}");
    }
}

#[tokio::test]
async fn redoc_page_links_the_document_and_the_versioned_bundle() {
    let reply = get(&default_router(), "/redoc").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(CONTENT_TYPE), "text/html; charset=utf-8");
    let html = reply.text();
    assert!(html.contains("<title>Invoices - ReDoc</title>"));
    assert!(html.contains(r#"Redoc.init("/openapi.json", {}, "#));
    assert!(html.contains(&format!(
        r#"<script src="/redoc/redoc.standalone.js?v={REDOC_VERSION}"></script>"#
    )));
    assert!(!html.contains("googleapis"));
}

#[tokio::test]
async fn assets_have_their_content_types_and_cache_forever() {
    let router = default_router();
    for (uri, content_type, min_len) in [
        (
            "/docs/swagger-ui-bundle.js",
            "text/javascript; charset=utf-8",
            1_000_000,
        ),
        ("/docs/swagger-ui.css", "text/css; charset=utf-8", 100_000),
        ("/docs/favicon-32x32.png", "image/png", 100),
        (
            "/docs/oauth2-redirect.js",
            "text/javascript; charset=utf-8",
            500,
        ),
        (
            "/redoc/redoc.standalone.js",
            "text/javascript; charset=utf-8",
            1_000_000,
        ),
        ("/redoc/favicon-32x32.png", "image/png", 100),
    ] {
        // The pages add `?v=`; the query must not change the answer.
        let reply = get(&router, &format!("{uri}?v=1")).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.header(CONTENT_TYPE), content_type, "{uri}");
        assert_eq!(
            reply.header(CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{uri}"
        );
        assert!(reply.header(ETAG).starts_with('"'), "{uri}");
        assert!(
            reply.body.len() >= min_len,
            "{uri}: {} bytes",
            reply.body.len()
        );
    }
    let png = get(&router, "/docs/favicon-32x32.png").await;
    assert!(png.body.starts_with(b"\x89PNG\r\n\x1a\n"));
}

#[tokio::test]
async fn oauth2_redirect_page_is_html_that_loads_its_script() {
    let reply = get(&default_router(), "/docs/oauth2-redirect").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(
        reply
            .text()
            .contains(r#"<script src="oauth2-redirect.js?v="#)
    );
}

#[tokio::test]
async fn matching_etag_gives_304_without_a_body() {
    let router = default_router();
    let first = get(&router, "/docs/swagger-ui.css").await;
    let etag = first.header(ETAG).to_owned();

    let again = send(
        &router,
        Method::GET,
        "/docs/swagger-ui.css",
        &[(IF_NONE_MATCH.as_str(), &etag)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header(ETAG), etag);
    assert_eq!(
        again.header(CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );

    let weak = format!("\"other\", W/{etag}");
    let again = send(
        &router,
        Method::GET,
        "/docs/swagger-ui.css",
        &[(IF_NONE_MATCH.as_str(), &weak)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    // Another file's tag does not match.
    let bundle = get(&router, "/docs/swagger-ui-bundle.js").await;
    assert_ne!(bundle.header(ETAG), etag);
    let other = send(
        &router,
        Method::GET,
        "/docs/swagger-ui-bundle.js",
        &[(IF_NONE_MATCH.as_str(), &etag)],
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body.len(), bundle.body.len());
}

#[tokio::test]
async fn head_answers_with_headers_only() {
    let reply = send(
        &default_router(),
        Method::HEAD,
        "/redoc/redoc.standalone.js",
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(CONTENT_TYPE), "text/javascript; charset=utf-8");
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn turned_off_docs_give_404_and_leave_redoc() {
    let router: Router = DocsRoutes::new("/openapi.json").docs_url(None).router();
    for uri in [
        "/docs",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/oauth2-redirect",
    ] {
        assert_eq!(
            get(&router, uri).await.status,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
    assert_eq!(get(&router, "/redoc").await.status, StatusCode::OK);
    assert_eq!(
        get(&router, "/redoc/redoc.standalone.js").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn turned_off_redoc_gives_404_and_leaves_docs() {
    let router: Router = DocsRoutes::new("/openapi.json").redoc_url(None).router();
    for uri in ["/redoc", "/redoc/redoc.standalone.js"] {
        assert_eq!(
            get(&router, uri).await.status,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
    assert_eq!(get(&router, "/docs").await.status, StatusCode::OK);
    let both_off: Router = DocsRoutes::new("/o.json")
        .docs_url(None)
        .redoc_url(None)
        .router();
    assert_eq!(get(&both_off, "/docs").await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&both_off, "/redoc").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn custom_urls_move_pages_and_assets_together() {
    let router: Router = DocsRoutes::new("/api/v1/openapi.json")
        .docs_url(Some("/api/v1/docs/"))
        .redoc_url(Some("reference"))
        .router();
    let docs = get(&router, "/api/v1/docs").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.text().contains(r#""url":"/api/v1/openapi.json""#));
    assert!(
        docs.text()
            .contains(r#"<script src="/api/v1/docs/swagger-ui-bundle.js?v="#)
    );
    assert!(docs.text().contains(r#""/api/v1/docs/oauth2-redirect""#));
    for uri in [
        "/api/v1/docs/swagger-ui-bundle.js",
        "/api/v1/docs/oauth2-redirect",
        "/reference",
        "/reference/redoc.standalone.js",
    ] {
        assert_eq!(get(&router, uri).await.status, StatusCode::OK, "{uri}");
    }
    assert_eq!(get(&router, "/docs").await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&router, "/redoc").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hostile_title_is_escaped_in_both_pages() {
    let router: Router = DocsRoutes::new("/openapi.json?x=</script><script>alert(2)</script>")
        .title("</title><script>alert(1)</script>")
        .router();
    for uri in ["/docs", "/redoc"] {
        let reply = get(&router, uri).await;
        let html = reply.text();
        assert!(!html.contains("<script>alert"), "{uri}: {html}");
        assert!(html.contains("&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains(r"\u003c/script\u003e\u003cscript\u003ealert(2)"));
        assert_eq!(html.matches("</script>").count(), 2, "{uri}: {html}");
    }
}

#[tokio::test]
async fn swagger_parameters_and_redoc_options_reach_the_pages() {
    let mut parameters = Map::new();
    parameters.insert("deepLinking".into(), json!(false));
    parameters.insert("syntaxHighlight".into(), json!({"theme": "obsidian"}));
    let mut options = Map::new();
    options.insert("hideDownloadButton".into(), json!(true));
    let router: Router = DocsRoutes::new("/openapi.json")
        .swagger_ui_parameters(parameters)
        .redoc_options(options)
        .router();
    let docs = get(&router, "/docs").await;
    assert!(docs.text().contains(r#""deepLinking":false"#));
    assert!(
        docs.text()
            .contains(r#""syntaxHighlight":{"theme":"obsidian"}"#)
    );
    let redoc = get(&router, "/redoc").await;
    assert!(redoc.text().contains(r#"{"hideDownloadButton":true}"#));
}

#[tokio::test]
async fn router_works_with_application_state() {
    #[derive(Clone)]
    struct AppState {
        document: &'static str,
    }
    async fn openapi(axum::extract::State(state): axum::extract::State<AppState>) -> String {
        state.document.to_owned()
    }
    let app: Router = Router::new()
        .route("/openapi.json", axum::routing::get(openapi))
        .merge(DocsRoutes::new("/openapi.json").router::<AppState>())
        .with_state(AppState { document: "{}" });
    assert_eq!(get(&app, "/openapi.json").await.text(), "{}");
    assert_eq!(get(&app, "/docs").await.status, StatusCode::OK);
}
