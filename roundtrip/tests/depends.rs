//! Dependencies document their parameters on the operations that use them, join their
//! validation errors to the handler's one 422, nest, read the app's state and security,
//! and can be replaced in tests as FastAPI's `dependency_overrides` replaces them.

use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use roundtrip::depends::{Dependency, DependencyOverrides, Depends};
use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
use roundtrip::{App, Header, HttpError, Json, OperationContext, Query, get, post};
use roundtrip_test::TestClient;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize, JsonSchema)]
struct PageParams {
    #[serde(default)]
    #[schemars(range(min = 0))]
    skip: i64,
    #[serde(default = "ten")]
    #[schemars(range(min = 1, max = 100))]
    limit: i64,
}

fn ten() -> i64 {
    10
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
struct Pagination {
    skip: i64,
    limit: i64,
}

impl Dependency for Pagination {
    type Inputs = Query<PageParams>;
    type Rejection = HttpError;

    async fn resolve(Query(p): Query<PageParams>) -> Result<Self, HttpError> {
        Ok(Pagination {
            skip: p.skip,
            limit: p.limit,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
struct Tenant {
    #[schemars(length(min = 3))]
    x_tenant: String,
}

#[derive(Deserialize, JsonSchema)]
struct Region {
    #[schemars(pattern(r"^[a-z]{2}$"))]
    region: String,
}

/// Two inputs of two kinds: a header and a query parameter.
#[derive(Debug, Clone, Serialize, JsonSchema)]
struct Scope {
    tenant: String,
    region: String,
}

impl Dependency for Scope {
    type Inputs = (Header<Tenant>, Query<Region>);
    type Rejection = HttpError;

    async fn resolve((Header(t), Query(r)): Self::Inputs) -> Result<Self, HttpError> {
        Ok(Scope {
            tenant: t.x_tenant,
            region: r.region,
        })
    }
}

/// A dependency of a dependency: FastAPI's sub-dependencies.
#[derive(Debug, Clone, Serialize, JsonSchema)]
struct Listing {
    scope: Scope,
    page: Pagination,
}

impl Dependency for Listing {
    type Inputs = (Depends<Scope>, Depends<Pagination>);
    type Rejection = HttpError;

    async fn resolve((Depends(scope), Depends(page)): Self::Inputs) -> Result<Self, HttpError> {
        if page.skip > 1000 {
            return Err(HttpError::bad_request("Too deep"));
        }
        Ok(Listing { scope, page })
    }

    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.response(400, "Too deep", None);
    }
}

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

/// A dependency that reads the app's state.
struct Greeting(&'static str);

impl Dependency for Greeting {
    type Inputs = State<AppState>;
    type Rejection = HttpError;

    async fn resolve(State(state): State<AppState>) -> Result<Self, HttpError> {
        Ok(Greeting(state.greeting))
    }
}

struct Keys;
impl ApiKeyConfig for Keys {
    const NAME: &'static str = "X-API-Key";
}

/// FastAPI's `get_current_user`: security, then a check only the application can make.
#[derive(Debug, Clone)]
struct CurrentUser {
    name: String,
}

impl Dependency for CurrentUser {
    type Inputs = ApiKeyHeader<Keys>;
    type Rejection = HttpError;

    async fn resolve(key: ApiKeyHeader<Keys>) -> Result<Self, HttpError> {
        match key.key.strip_prefix("user-") {
            Some(name) => Ok(CurrentUser {
                name: name.to_owned(),
            }),
            None => Err(HttpError::forbidden("Unknown key")),
        }
    }
}

/// No inputs at all.
struct Now(u64);

impl Dependency for Now {
    type Inputs = ();
    type Rejection = HttpError;

    async fn resolve((): ()) -> Result<Self, HttpError> {
        Ok(Now(42))
    }
}

#[derive(Deserialize, JsonSchema)]
struct NewItem {
    #[schemars(length(min = 1))]
    name: String,
}

async fn list(Depends(page): Depends<Pagination>) -> Json<Pagination> {
    Json(page)
}

async fn scoped(Depends(scope): Depends<Scope>) -> Json<Scope> {
    Json(scope)
}

async fn listing(Depends(listing): Depends<Listing>) -> Json<Listing> {
    Json(listing)
}

async fn create(
    Depends(scope): Depends<Scope>,
    Depends(page): Depends<Pagination>,
    Json(item): Json<NewItem>,
) -> Json<Value> {
    Json(json!({"scope": scope, "page": page, "name": item.name}))
}

async fn greet(Depends(g): Depends<Greeting>, Depends(now): Depends<Now>) -> Json<Value> {
    Json(json!({"greeting": g.0, "now": now.0}))
}

async fn me(Depends(user): Depends<CurrentUser>) -> Json<Value> {
    Json(json!({"user": user.name}))
}

fn app() -> App<AppState> {
    App::with_state(AppState { greeting: "hello" })
        .route("/items", get(list).post(create))
        .route("/scoped", get(scoped))
        .route("/listing", get(listing))
        .route("/greet", get(greet))
        .route("/me", get(me))
}

fn client() -> TestClient {
    TestClient::new(app().into_router().expect("the app builds"))
}

async fn document() -> Value {
    client().get("/openapi.json").send().await.json()
}

fn parameters(doc: &Value, path: &str, method: &str) -> Vec<(String, String, bool)> {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["in"].as_str().unwrap_or_default().to_owned(),
                        p["name"].as_str().unwrap_or_default().to_owned(),
                        p["required"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn detail(body: &Value) -> Vec<(String, Value)> {
    body["detail"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|e| {
                    (
                        e["type"].as_str().unwrap_or("").to_owned(),
                        e["loc"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_dependencys_parameters_are_documented_on_the_operation() {
    let doc = document().await;
    assert_eq!(
        parameters(&doc, "/items", "get"),
        [
            ("query".to_owned(), "skip".to_owned(), false),
            ("query".to_owned(), "limit".to_owned(), false),
        ]
    );
    let limit = &doc["paths"]["/items"]["get"]["parameters"][1]["schema"];
    assert_eq!(limit["maximum"], 100);
    assert_eq!(limit["default"], 10);
    assert!(
        doc["paths"]["/items"]["get"]["responses"]
            .get("422")
            .is_some()
    );
    // The parameter struct is not a component of its own.
    assert!(doc["components"]["schemas"].get("PageParams").is_none());
}

#[tokio::test]
async fn nested_dependencies_document_every_parameter_once() {
    let doc = document().await;
    assert_eq!(
        parameters(&doc, "/listing", "get"),
        [
            ("header".to_owned(), "x-tenant".to_owned(), true),
            ("query".to_owned(), "region".to_owned(), true),
            ("query".to_owned(), "skip".to_owned(), false),
            ("query".to_owned(), "limit".to_owned(), false),
        ]
    );
    assert_eq!(
        doc["paths"]["/listing"]["get"]["responses"]["400"]["description"],
        "Too deep"
    );
}

#[tokio::test]
async fn a_dependency_reads_its_parameters() {
    let response = client().get("/items?skip=5").send().await;
    assert_eq!(response.json::<Value>(), json!({"skip": 5, "limit": 10}));
}

#[tokio::test]
async fn errors_of_every_input_and_the_handler_come_in_one_422() {
    let response = client()
        .post("/items?skip=-1&limit=500&region=FRA")
        .header("x-tenant", "ab")
        .json(&json!({"name": ""}))
        .send()
        .await;
    assert_eq!(response.status(), 422, "{}", response.text());
    assert_eq!(
        detail(&response.json()),
        [
            (
                "string_pattern_mismatch".to_owned(),
                json!(["query", "region"])
            ),
            ("greater_than_equal".to_owned(), json!(["query", "skip"])),
            ("less_than_equal".to_owned(), json!(["query", "limit"])),
            ("string_too_short".to_owned(), json!(["header", "x-tenant"])),
            ("string_too_short".to_owned(), json!(["body", "name"])),
        ]
    );
}

#[tokio::test]
async fn both_inputs_of_one_dependency_are_checked() {
    let response = client().get("/scoped").send().await;
    assert_eq!(
        detail(&response.json()),
        [
            ("missing".to_owned(), json!(["query", "region"])),
            ("missing".to_owned(), json!(["header", "x-tenant"])),
        ]
    );
    let ok = client()
        .get("/scoped?region=fr")
        .header("x-tenant", "acme")
        .send()
        .await;
    assert_eq!(
        ok.json::<Value>(),
        json!({"tenant": "acme", "region": "fr"})
    );
}

#[tokio::test]
async fn a_nested_dependency_resolves_and_can_refuse() {
    let client = client();
    let ok = client
        .get("/listing?region=fr&limit=3")
        .header("x-tenant", "acme")
        .send()
        .await;
    assert_eq!(
        ok.json::<Value>(),
        json!({"scope": {"tenant": "acme", "region": "fr"}, "page": {"skip": 0, "limit": 3}})
    );
    let refused = client
        .get("/listing?region=fr&skip=5000")
        .header("x-tenant", "acme")
        .send()
        .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>(), json!({"detail": "Too deep"}));
}

#[tokio::test]
async fn a_dependency_reads_the_state_and_tests_replace_the_state() {
    let response = client().get("/greet").send().await;
    assert_eq!(
        response.json::<Value>(),
        json!({"greeting": "hello", "now": 42})
    );
    let test_app = App::with_state(AppState {
        greeting: "hi, test",
    })
    .route("/greet", get(greet));
    let response = TestClient::new(test_app.into_router().expect("the app builds"))
        .get("/greet")
        .send()
        .await;
    assert_eq!(response.json::<Value>()["greeting"], "hi, test");
}

#[tokio::test]
async fn a_dependency_on_a_scheme_documents_and_enforces_it() {
    let client = client();
    let doc = document().await;
    assert_eq!(
        doc["paths"]["/me"]["get"]["security"],
        json!([{"APIKeyHeader": []}])
    );
    let missing = client.get("/me").send().await;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.header("www-authenticate"), Some("APIKey"));
    let unknown = client.get("/me").header("x-api-key", "nope").send().await;
    assert_eq!(unknown.status(), 403);
    let known = client
        .get("/me")
        .header("x-api-key", "user-alice")
        .send()
        .await;
    assert_eq!(known.json::<Value>(), json!({"user": "alice"}));
}

#[tokio::test]
async fn an_override_replaces_the_dependency_and_skips_its_inputs() {
    let overrides = DependencyOverrides::new().value(CurrentUser {
        name: "test-user".to_owned(),
    });
    let client = client().extension(overrides);
    // No key at all: the replaced dependency's security is not consulted.
    let response = client.get("/me").send().await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.json::<Value>(), json!({"user": "test-user"}));
    // Other dependencies are untouched.
    let page = client.get("/items?limit=500").send().await;
    assert_eq!(page.status(), 422);
}

#[tokio::test]
async fn an_override_can_read_the_request_and_refuse_it() {
    let overrides = DependencyOverrides::new().with(|parts| {
        match parts
            .headers
            .get("x-test-user")
            .and_then(|v| v.to_str().ok())
        {
            Some(name) => Ok(CurrentUser {
                name: name.to_owned(),
            }),
            None => Err(StatusCode::FORBIDDEN),
        }
    });
    let client = client().extension(overrides);
    let named = client.get("/me").header("x-test-user", "bob").send().await;
    assert_eq!(named.json::<Value>(), json!({"user": "bob"}));
    assert_eq!(client.get("/me").send().await.status(), 403);
}

#[tokio::test]
async fn overrides_apply_per_client_and_per_app() {
    // A client without overrides still runs the real dependency.
    assert_eq!(client().get("/me").send().await.status(), 401);
    // The same overrides as an app-wide layer.
    let overrides = DependencyOverrides::new().value(Pagination { skip: 7, limit: 7 });
    let router = app()
        .layer(axum::Extension(overrides))
        .into_router()
        .expect("the app builds");
    let response = TestClient::new(router).get("/items").send().await;
    assert_eq!(response.json::<Value>(), json!({"skip": 7, "limit": 7}));
}

async fn create_only(Json(item): Json<NewItem>) -> String {
    item.name
}

#[tokio::test]
async fn an_operation_without_dependencies_documents_none_of_their_parameters() {
    let router = App::new()
        .route("/new", post(create_only))
        .into_router()
        .expect("the app builds");
    let doc: Value = TestClient::new(router)
        .get("/openapi.json")
        .send()
        .await
        .json();
    assert!(doc["paths"]["/new"]["post"].get("parameters").is_none());
}

/// An extractor of the user's own that validates a header itself and rejects with
/// roundtrip's [`Rejection`]: its errors are sorted by type and join the handler's 422.
struct Signed;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Signed {
    type Rejection = roundtrip::Rejection;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, roundtrip::Rejection> {
        use roundtrip::openapi::validate::{LocItem, ValidationError};
        match parts.headers.get("x-signature") {
            Some(value) if value.as_bytes().starts_with(b"v1,") => Ok(Signed),
            Some(_) => Err(
                roundtrip::RequestValidationError::new(vec![ValidationError::new(
                    "value_error",
                    vec![LocItem::from("header"), LocItem::from("x-signature")],
                    "Value error, not a v1 signature",
                    json!("?"),
                )])
                .into(),
            ),
            None => Err(roundtrip::Rejection::Response(
                (StatusCode::UNAUTHORIZED, "unsigned").into_response(),
            )),
        }
    }
}

impl roundtrip::OperationInput for Signed {}

async fn signed(_signed: Signed, Json(item): Json<NewItem>) -> String {
    item.name
}

#[tokio::test]
async fn an_extractors_typed_rejection_joins_the_422_or_answers_at_once() {
    let client = TestClient::new(
        App::new()
            .route("/signed", post(signed))
            .into_router()
            .expect("the app builds"),
    );
    let merged = client
        .post("/signed")
        .header("x-signature", "v0,abc")
        .json(&json!({"name": ""}))
        .send()
        .await;
    assert_eq!(merged.status(), 422, "{}", merged.text());
    assert_eq!(
        detail(&merged.json()),
        [
            ("value_error".to_owned(), json!(["header", "x-signature"])),
            ("string_too_short".to_owned(), json!(["body", "name"])),
        ]
    );

    // Any other refusal is the answer, whatever the body holds.
    let unsigned = client
        .post("/signed")
        .json(&json!({"name": ""}))
        .send()
        .await;
    assert_eq!(unsigned.status(), 401);
    assert_eq!(unsigned.text(), "unsigned");

    let accepted = client
        .post("/signed")
        .header("x-signature", "v1,abc")
        .json(&json!({"name": "pen"}))
        .send()
        .await;
    assert_eq!(accepted.status(), 200, "{}", accepted.text());
    assert_eq!(accepted.text(), "pen");
}
