//! Security schemes document themselves as FastAPI's do, refuse missing credentials with
//! FastAPI's 401 and challenge, and hand the credentials they read to the handler.

use roundtrip::security::{
    ApiKeyConfig, ApiKeyCookie, ApiKeyHeader, ApiKeyQuery, HttpBasic, HttpBasicConfig, HttpBearer,
    HttpBearerConfig, OAuth2PasswordBearer, OAuth2PasswordConfig, OAuth2PasswordRequestForm,
    Scopes,
};
use roundtrip::{App, Form, Json, Query, get, post};
use roundtrip_test::{TestClient, oas};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

struct HeaderKey;
impl ApiKeyConfig for HeaderKey {
    const NAME: &'static str = "X-API-Key";
}

struct QueryKey;
impl ApiKeyConfig for QueryKey {
    const NAME: &'static str = "api_key";
    const DESCRIPTION: Option<&'static str> = Some("A key from the dashboard.");
}

struct CookieKey;
impl ApiKeyConfig for CookieKey {
    const NAME: &'static str = "session";
    const SCHEME_NAME: Option<&'static str> = Some("SessionCookie");
}

struct Realm;
impl HttpBasicConfig for Realm {
    const SCHEME_NAME: &'static str = "AdminBasic";
    const REALM: Option<&'static str> = Some("admin area");
}

struct Jwt;
impl HttpBearerConfig for Jwt {
    const BEARER_FORMAT: Option<&'static str> = Some("JWT");
}

struct Tokens;
impl OAuth2PasswordConfig for Tokens {
    const TOKEN_URL: &'static str = "/token";
    const SCOPES: &'static [(&'static str, &'static str)] =
        &[("items:read", "Read items"), ("items:write", "Write items")];
}

struct ReadItems;
impl Scopes for ReadItems {
    const SCOPES: &'static [&'static str] = &["items:read"];
}

async fn header_key(key: ApiKeyHeader<HeaderKey>) -> Json<Value> {
    Json(json!({"key": key.key}))
}

async fn query_key(key: ApiKeyQuery<QueryKey>) -> Json<Value> {
    Json(json!({"key": key.key}))
}

async fn cookie_key(key: ApiKeyCookie<CookieKey>) -> Json<Value> {
    Json(json!({"key": key.key}))
}

async fn basic(credentials: HttpBasic) -> Json<Value> {
    Json(json!({"username": credentials.username, "password": credentials.password}))
}

async fn admin(credentials: HttpBasic<Realm>) -> Json<Value> {
    Json(json!({"username": credentials.username}))
}

async fn bearer(token: HttpBearer<Jwt>) -> Json<Value> {
    Json(json!({"scheme": token.scheme, "credentials": token.credentials}))
}

async fn oauth(token: OAuth2PasswordBearer<Tokens>) -> Json<Value> {
    Json(json!({"token": token.token}))
}

async fn scoped(token: OAuth2PasswordBearer<Tokens, ReadItems>) -> Json<Value> {
    Json(json!({"token": token.token, "required": token.required_scopes()}))
}

async fn maybe_key(key: Option<ApiKeyHeader<HeaderKey>>) -> Json<Value> {
    Json(json!({"key": key.map(|k| k.key)}))
}

async fn maybe_basic(credentials: Option<HttpBasic>) -> Json<Value> {
    Json(json!({"username": credentials.map(|c| c.username)}))
}

#[derive(Deserialize, JsonSchema)]
struct Search {
    #[schemars(range(min = 1))]
    page: i64,
}

async fn secured_search(key: ApiKeyHeader<HeaderKey>, Query(q): Query<Search>) -> Json<Value> {
    Json(json!({"key": key.key, "page": q.page}))
}

async fn token(Form(form): Form<OAuth2PasswordRequestForm>) -> Json<Value> {
    let scopes: Vec<&str> = form.scopes().collect();
    Json(json!({"access_token": form.username, "scopes": scopes}))
}

fn app() -> App {
    App::new()
        .route("/header", get(header_key))
        .route("/query", get(query_key))
        .route("/cookie", get(cookie_key))
        .route("/basic", get(basic))
        .route("/admin", get(admin))
        .route("/bearer", get(bearer))
        .route("/oauth", get(oauth))
        .route("/scoped", get(scoped))
        .route("/maybe-key", get(maybe_key))
        .route("/maybe-basic", get(maybe_basic))
        .route("/search", get(secured_search))
        .route("/token", post(token))
}

fn client() -> TestClient {
    TestClient::new(app().into_router().expect("the app builds"))
}

async fn document() -> Value {
    client().get("/openapi.json").send().await.json()
}

#[tokio::test]
async fn every_scheme_is_published_as_fastapi_publishes_it() {
    let doc = document().await;
    assert_eq!(
        doc["components"]["securitySchemes"],
        json!({
            "APIKeyHeader": {"type": "apiKey", "name": "X-API-Key", "in": "header"},
            "APIKeyQuery": {"type": "apiKey", "name": "api_key", "in": "query", "description": "A key from the dashboard."},
            "SessionCookie": {"type": "apiKey", "name": "session", "in": "cookie"},
            "HTTPBasic": {"type": "http", "scheme": "basic"},
            "AdminBasic": {"type": "http", "scheme": "basic"},
            "HTTPBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "OAuth2PasswordBearer": {"type": "oauth2", "flows": {"password": {
                "tokenUrl": "/token",
                "scopes": {"items:read": "Read items", "items:write": "Write items"}
            }}}
        })
    );
    oas::assert_valid_openapi_31(&doc);
}

#[tokio::test]
async fn each_operation_requires_its_scheme_and_no_more() {
    let doc = document().await;
    let security = |path: &str| doc["paths"][path]["get"]["security"].clone();
    assert_eq!(security("/header"), json!([{"APIKeyHeader": []}]));
    assert_eq!(security("/cookie"), json!([{"SessionCookie": []}]));
    assert_eq!(security("/admin"), json!([{"AdminBasic": []}]));
    assert_eq!(security("/oauth"), json!([{"OAuth2PasswordBearer": []}]));
    assert_eq!(
        security("/scoped"),
        json!([{"OAuth2PasswordBearer": ["items:read"]}])
    );
    // `Option<_>` (FastAPI's `auto_error=False`) still documents the scheme.
    assert_eq!(security("/maybe-key"), json!([{"APIKeyHeader": []}]));
    assert!(doc["paths"]["/token"]["post"].get("security").is_none());
    // Credentials are not parameters: FastAPI adds no 422 for them.
    let responses = &doc["paths"]["/header"]["get"]["responses"];
    assert!(responses.get("422").is_none(), "{responses}");
    assert!(doc["paths"]["/header"]["get"].get("parameters").is_none());
    assert!(
        doc["paths"]["/search"]["get"]["responses"]
            .get("422")
            .is_some()
    );
}

async fn refused(request: roundtrip_test::TestRequest, challenge: &str) {
    let response = request.send().await;
    assert_eq!(response.status(), 401, "{}", response.text());
    assert_eq!(
        response.json::<Value>(),
        json!({"detail": "Not authenticated"})
    );
    assert_eq!(response.header("www-authenticate"), Some(challenge));
}

#[tokio::test]
async fn missing_credentials_get_fastapis_401_and_challenge() {
    let client = client();
    refused(client.get("/header"), "APIKey").await;
    refused(client.get("/header").header("x-api-key", ""), "APIKey").await;
    refused(client.get("/query"), "APIKey").await;
    refused(client.get("/query?api_key="), "APIKey").await;
    refused(client.get("/cookie"), "APIKey").await;
    refused(client.get("/cookie").cookie("other", "x"), "APIKey").await;
    refused(client.get("/basic"), "Basic").await;
    refused(client.get("/admin"), "Basic realm=\"admin area\"").await;
    refused(client.get("/bearer"), "Bearer").await;
    refused(
        client.get("/bearer").header("authorization", "Bearer "),
        "Bearer",
    )
    .await;
    refused(
        client.get("/bearer").header("authorization", "Token abc"),
        "Bearer",
    )
    .await;
    refused(client.get("/oauth"), "Bearer").await;
    refused(
        client
            .get("/oauth")
            .header("authorization", "Basic Ym9iOng="),
        "Bearer",
    )
    .await;
}

#[tokio::test]
async fn unreadable_basic_credentials_are_refused() {
    let client = client();
    // Not base64, and base64 of a string without a colon.
    for value in ["Basic !!!", "Basic Ym9i", "Basic"] {
        refused(client.get("/basic").header("authorization", value), "Basic").await;
        // FastAPI refuses them even when the credentials are optional.
        refused(
            client.get("/maybe-basic").header("authorization", value),
            "Basic",
        )
        .await;
    }
}

#[tokio::test]
async fn credentials_reach_the_handler() {
    let client = client();
    let get = |path: &str| client.get(path);
    let json = |r: roundtrip_test::TestResponse| {
        assert_eq!(r.status(), 200, "{}", r.text());
        r.json::<Value>()
    };
    assert_eq!(
        json(get("/header").header("x-api-key", "k1").send().await),
        json!({"key": "k1"})
    );
    assert_eq!(
        json(get("/query?api_key=k%202").send().await),
        json!({"key": "k 2"})
    );
    assert_eq!(
        json(get("/cookie").cookie("session", "k3").send().await),
        json!({"key": "k3"})
    );
    // "bob:pa:ss" in base64: the password keeps every colon after the first.
    assert_eq!(
        json(
            get("/basic")
                .header("authorization", "basic Ym9iOnBhOnNz")
                .send()
                .await
        ),
        json!({"username": "bob", "password": "pa:ss"})
    );
    assert_eq!(
        json(
            get("/bearer")
                .header("authorization", "bearer t0k")
                .send()
                .await
        ),
        json!({"scheme": "bearer", "credentials": "t0k"})
    );
    assert_eq!(
        json(
            get("/oauth")
                .header("authorization", "Bearer t1")
                .send()
                .await
        ),
        json!({"token": "t1"})
    );
    assert_eq!(
        json(
            get("/scoped")
                .header("authorization", "Bearer t2")
                .send()
                .await
        ),
        json!({"token": "t2", "required": ["items:read"]})
    );
}

#[tokio::test]
async fn optional_credentials_are_none_when_missing() {
    let client = client();
    let anonymous = client.get("/maybe-key").send().await;
    assert_eq!(anonymous.json::<Value>(), json!({"key": null}));
    let known = client
        .get("/maybe-key")
        .header("x-api-key", "k")
        .send()
        .await;
    assert_eq!(known.json::<Value>(), json!({"key": "k"}));
    let no_basic = client
        .get("/maybe-basic")
        .header("authorization", "Bearer x")
        .send()
        .await;
    assert_eq!(no_basic.json::<Value>(), json!({"username": null}));
}

#[tokio::test]
async fn validation_still_runs_beside_a_scheme() {
    let response = client()
        .get("/search?page=0")
        .header("x-api-key", "k")
        .send()
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json();
    assert_eq!(body["detail"][0]["type"], "greater_than_equal");
    assert_eq!(body["detail"][0]["loc"], json!(["query", "page"]));
}

#[tokio::test]
async fn the_password_form_is_documented_and_enforced() {
    let client = client();
    let doc = document().await;
    let form = &doc["components"]["schemas"]["Body_token_token_post"];
    assert_eq!(form["required"], json!(["username", "password"]));
    assert_eq!(
        doc["paths"]["/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
            ["schema"]["$ref"],
        "#/components/schemas/Body_token_token_post"
    );
    let ok = client
        .post("/token")
        .form(&[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", "x"),
            ("scope", "items:read items:write"),
        ])
        .send()
        .await;
    assert_eq!(
        ok.json::<Value>(),
        json!({"access_token": "bob", "scopes": ["items:read", "items:write"]})
    );
    let wrong_grant = client
        .post("/token")
        .form(&[
            ("grant_type", "code"),
            ("username", "bob"),
            ("password", "x"),
        ])
        .send()
        .await;
    assert_eq!(wrong_grant.status(), 422);
    let body: Value = wrong_grant.json();
    assert_eq!(body["detail"][0]["type"], "string_pattern_mismatch");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "grant_type"]));
}

#[test]
fn credentials_stay_out_of_debug_output() {
    let basic = HttpBasic::<()>::new("bob", "hunter2");
    let key = ApiKeyHeader::<HeaderKey>::new("sk-secret");
    let token = OAuth2PasswordBearer::<Tokens>::new("tok-secret");
    let bearer = HttpBearer::<()>::new("bear-secret");
    let shown = format!("{basic:?} {key:?} {token:?} {bearer:?}");
    assert!(shown.contains("bob"), "{shown}");
    for secret in ["hunter2", "sk-secret", "tok-secret", "bear-secret"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

struct OtherHeaderKey;
impl ApiKeyConfig for OtherHeaderKey {
    const NAME: &'static str = "X-Other-Key";
}

async fn other_key(key: ApiKeyHeader<OtherHeaderKey>) -> String {
    key.key
}

#[test]
fn two_schemes_under_one_name_stop_the_build() {
    let result = App::new()
        .route("/a", get(header_key))
        .route("/b", get(other_key))
        .into_router();
    let err = result.expect_err("two different `APIKeyHeader` schemes");
    assert!(
        err.problems()
            .iter()
            .any(|p| p.contains("GET /b") && p.contains("`APIKeyHeader`")),
        "{err}"
    );
}

struct Unknown;
impl Scopes for Unknown {
    const SCOPES: &'static [&'static str] = &["admin"];
}

async fn unknown_scope(_token: OAuth2PasswordBearer<Tokens, Unknown>) -> &'static str {
    "never"
}

#[test]
fn a_required_scope_the_scheme_does_not_offer_stops_the_build() {
    let err = App::new()
        .route("/x", get(unknown_scope))
        .into_router()
        .expect_err("`admin` is not offered");
    assert!(
        err.problems().iter().any(|p| p.contains("`admin`")),
        "{err}"
    );
}
