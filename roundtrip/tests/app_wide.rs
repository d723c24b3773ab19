//! What an app declares once for everything it serves: dependencies on the app and on a
//! router (documented and enforced on each operation), exception handlers, middleware
//! that wraps every answer (the document, the docs pages and the fallbacks included),
//! and body limits per app, router and route.

use std::convert::Infallible;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use roundtrip::depends::Dependency;
use roundtrip::middleware::{TrustedHostLayer, from_fn};
use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
use roundtrip::{App, Header, HttpError, Json, Query, RequestValidationError, Router, get, post};
use roundtrip_test::{CapturedLogs, TestClient};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{Any, CorsLayer};

#[derive(Deserialize, JsonSchema)]
struct TenantHeader {
    #[schemars(pattern(r"^[a-z]{2,16}$"))]
    #[expect(dead_code, reason = "checked and documented; its value is not needed")]
    x_tenant: Option<String>,
}

/// An app-wide dependency: an optional, checked header.
struct Tenant;

impl Dependency for Tenant {
    type Inputs = Header<TenantHeader>;
    type Rejection = Infallible;

    async fn resolve(_: Header<TenantHeader>) -> Result<Self, Infallible> {
        Ok(Tenant)
    }
}

struct Keys;

impl ApiKeyConfig for Keys {
    const NAME: &'static str = "X-API-Key";
}

/// A router-wide guard: a key, and the right one.
struct AdminKey;

impl Dependency for AdminKey {
    type Inputs = ApiKeyHeader<Keys>;
    type Rejection = HttpError;

    async fn resolve(key: ApiKeyHeader<Keys>) -> Result<Self, HttpError> {
        if key.key == "s3cret" {
            Ok(AdminKey)
        } else {
            Err(HttpError::forbidden("Invalid API key"))
        }
    }
}

#[derive(Deserialize, JsonSchema)]
struct Page {
    #[schemars(range(max = 10))]
    limit: u32,
}

async fn stats() -> Json<Value> {
    Json(json!({"notes": 1}))
}

async fn items(Query(page): Query<Page>) -> Json<Value> {
    Json(json!({"limit": page.limit}))
}

async fn echo(body: bytes::Bytes) -> Json<Value> {
    Json(json!({"size": body.len()}))
}

#[derive(Debug, thiserror::Error)]
#[error("quota exceeded")]
struct QuotaExceeded {
    retry_after: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("the ledger is corrupt")]
struct Corrupt;

async fn use_quota() -> Result<Json<Value>, roundtrip::Error> {
    Err(QuotaExceeded { retry_after: 30 })?
}

async fn corrupt() -> Result<Json<Value>, roundtrip::Error> {
    Err(Corrupt)?
}

async fn missing() -> Result<Json<Value>, roundtrip::Error> {
    Err(HttpError::not_found("Item not found"))?
}

fn admin() -> Router {
    Router::new()
        .prefix("/admin")
        .tag("admin")
        .dependency::<AdminKey>()
        .route("/stats", get(stats))
        .route("/quota", post(use_quota))
}

fn app() -> App {
    App::new()
        .dependency::<Tenant>()
        .route("/items", get(items))
        .route("/corrupt", get(corrupt))
        .route("/missing", get(missing))
        .include(admin())
}

fn client(app: App) -> TestClient {
    TestClient::new(app.into_router().expect("the app builds"))
}

fn param_names(op: &Value) -> Vec<String> {
    op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    format!(
                        "{} {}",
                        p["in"].as_str().unwrap_or(""),
                        p["name"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn app_and_router_dependencies_are_documented_on_each_operation() {
    let doc: Value = client(app()).get("/openapi.json").send().await.json();
    let items = &doc["paths"]["/items"]["get"];
    assert_eq!(param_names(items), ["query limit", "header x-tenant"]);
    let stats = &doc["paths"]["/admin/stats"]["get"];
    assert_eq!(param_names(stats), ["header x-tenant"]);
    assert_eq!(stats["security"], json!([{"APIKeyHeader": []}]));
    assert!(
        stats["responses"].get("422").is_some(),
        "the header is validated"
    );
    assert!(
        items.get("security").is_none(),
        "only the router's operations are guarded"
    );
    let tenant = &stats["parameters"][0];
    assert_eq!(tenant["required"], false);
    assert!(
        tenant["schema"]
            .to_string()
            .contains(r#""pattern":"^[a-z]{2,16}$""#)
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["APIKeyHeader"],
        json!({"type": "apiKey", "in": "header", "name": "X-API-Key"})
    );
}

#[tokio::test]
async fn app_dependency_errors_join_the_handlers_in_one_422() {
    let response = client(app())
        .get("/items?limit=99")
        .header("x-tenant", "NOT VALID")
        .send()
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json();
    let locs: Vec<Value> = body["detail"]
        .as_array()
        .map(|d| d.iter().map(|e| e["loc"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        locs,
        [json!(["query", "limit"]), json!(["header", "x-tenant"])]
    );
    // Checked on an operation with no parameters of its own too.
    let response = client(app())
        .get("/admin/stats")
        .header("x-api-key", "s3cret")
        .header("x-tenant", "NOT VALID")
        .send()
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.json::<Value>()["detail"][0]["type"],
        "string_pattern_mismatch"
    );
}

#[tokio::test]
async fn a_router_dependency_guards_each_of_its_operations() {
    let client = client(app());
    let missing = client.get("/admin/stats").send().await;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.header("www-authenticate"), Some("APIKey"));
    let wrong = client
        .post("/admin/quota")
        .header("x-api-key", "nope")
        .send()
        .await;
    assert_eq!(wrong.status(), 403);
    assert_eq!(wrong.json::<Value>(), json!({"detail": "Invalid API key"}));
    let ok = client
        .get("/admin/stats")
        .header("x-api-key", "s3cret")
        .send()
        .await;
    assert_eq!(ok.json::<Value>(), json!({"notes": 1}));
    // Operations outside the router are not guarded, and the docs are not either.
    assert_eq!(client.get("/items?limit=1").send().await.status(), 200);
    assert_eq!(client.get("/openapi.json").send().await.status(), 200);
}

#[tokio::test]
async fn exception_handlers_answer_raised_errors_and_replace_builtin_answers() {
    let app = app()
        .exception_handler(|err: &QuotaExceeded| {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", err.retry_after.to_string())],
                Json(json!({"detail": "Quota exceeded", "retry_after": err.retry_after})),
            )
        })
        .exception_handler(|err: &HttpError| {
            (err.status(), Json(json!({"error": err.detail()}))).into_response()
        })
        .exception_handler(|err: &RequestValidationError| {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"invalid": err.errors().len()})),
            )
        });
    let client = client(app);
    let quota = client
        .post("/admin/quota")
        .header("x-api-key", "s3cret")
        .send()
        .await;
    assert_eq!(quota.status(), 429);
    assert_eq!(quota.header("retry-after"), Some("30"));
    assert_eq!(
        quota.json::<Value>(),
        json!({"detail": "Quota exceeded", "retry_after": 30})
    );
    // An HttpError from a handler, from a dependency, and the router's own 404.
    let raised = client.get("/missing").send().await;
    assert_eq!(
        (raised.status(), raised.json::<Value>()),
        (StatusCode::NOT_FOUND, json!({"error": "Item not found"}))
    );
    let refused = client
        .get("/admin/stats")
        .header("x-api-key", "x")
        .send()
        .await;
    assert_eq!(refused.json::<Value>(), json!({"error": "Invalid API key"}));
    let not_found = client.get("/nowhere").send().await;
    assert_eq!(not_found.json::<Value>(), json!({"error": "Not Found"}));
    let invalid = client.get("/items?limit=99").send().await;
    assert_eq!(invalid.status(), 400);
    assert_eq!(invalid.json::<Value>(), json!({"invalid": 1}));
}

#[tokio::test]
async fn an_error_nobody_handles_is_a_plain_500_logged_with_the_request() {
    let captured = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let client = client(app());
    let response = client.get("/corrupt").send().await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.text(), "Internal Server Error");
    let log = captured.text();
    assert!(
        log.contains("unhandled error in GET /corrupt: the ledger is corrupt"),
        "{log}"
    );
    assert_eq!(client.get("/items?limit=1").send().await.status(), 200);
}

async fn stamp(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("x-stamped", http::HeaderValue::from_static("yes"));
    response
}

fn layered() -> App {
    app()
        .layer(from_fn(stamp))
        .layer(CompressionLayer::new())
        .layer(
            CorsLayer::new()
                .allow_origin(["https://app.example.com"
                    .parse::<http::HeaderValue>()
                    .expect("an origin")])
                .allow_methods(Any)
                .allow_headers(Any)
                .expose_headers(["x-stamped".parse::<http::HeaderName>().expect("a name")]),
        )
        .layer(TrustedHostLayer::new(["testserver"]))
}

#[tokio::test]
async fn middleware_wraps_routes_the_document_the_docs_and_the_fallbacks() {
    let client = client(layered());
    for (method, path, status) in [
        ("GET", "/items?limit=1", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/docs", 200),
        ("GET", "/redoc", 200),
        ("GET", "/docs/swagger-ui.css", 200),
        ("GET", "/nowhere", 404),
        ("DELETE", "/items", 405),
    ] {
        let response = client
            .request(method.parse().expect("a method"), path)
            .header("origin", "https://app.example.com")
            .send()
            .await;
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(response.header("x-stamped"), Some("yes"), "{method} {path}");
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("https://app.example.com"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn cors_answers_preflights_even_to_a_guarded_router_and_ignores_other_origins() {
    let client = client(layered());
    let preflight = client
        .options("/admin/quota")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-api-key")
        .send()
        .await;
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(preflight.header("access-control-allow-methods").is_some());
    assert!(preflight.header("access-control-allow-headers").is_some());
    let other = client
        .get("/items?limit=1")
        .header("origin", "https://evil.example")
        .send()
        .await;
    assert_eq!(other.status(), 200);
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn compression_and_trusted_hosts_cover_the_document() {
    let client = client(layered());
    let zipped = client
        .get("/openapi.json")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(zipped.bytes()[..2], [0x1f, 0x8b], "a gzip stream");
    let plain = client.get("/openapi.json").send().await;
    assert_eq!(plain.header("content-encoding"), None);
    let forged = client
        .get("/openapi.json")
        .header("host", "evil.example")
        .send()
        .await;
    assert_eq!(forged.status(), 400);
    assert_eq!(forged.text(), "Invalid host header");
    let with_port = client
        .get("/items?limit=1")
        .header("host", "testserver:8000")
        .send()
        .await;
    assert_eq!(with_port.status(), 200);
}

#[tokio::test]
async fn body_limits_apply_per_app_router_and_route_with_413() {
    let limited = Router::new()
        .prefix("/small")
        .body_limit(8)
        .route("/echo", post(echo))
        .route("/roomy", post(echo).body_limit(64));
    let app = App::new()
        .body_limit(32)
        .route("/echo", post(echo))
        .route("/tiny", post(echo).body_limit(4))
        .include(limited);
    let client = client(app);
    for (path, size, status) in [
        ("/echo", 32, 200),
        ("/echo", 33, 413),
        ("/tiny", 4, 200),
        ("/tiny", 5, 413),
        ("/small/echo", 8, 200),
        ("/small/echo", 9, 413),
        ("/small/roomy", 64, 200),
        ("/small/roomy", 65, 413),
    ] {
        let response = client
            .post(path)
            .header("content-type", "text/plain")
            .body(vec![b'x'; size])
            .send()
            .await;
        assert_eq!(response.status(), status, "{size} bytes to {path}");
        if status == 200 {
            assert_eq!(response.json::<Value>(), json!({"size": size}));
        }
    }
}
