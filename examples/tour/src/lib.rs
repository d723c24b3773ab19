//! A tour of roundtrip's foundation, one feature per operation: the Rust port of the
//! FastAPI app `tour.py`.
//!
//! Constraints (ranges, lengths, patterns) are declared once with schemars attributes:
//! they appear in the document and are checked on every request, with FastAPI's error
//! types and messages. Headers, cookies, repeated query keys, lax booleans, form bodies,
//! a dependency with its own parameters (`Depends<Pagination>`), three security
//! schemes, and every response class FastAPI offers are each used once.
//!
//! [`app`] builds the app with its default state; [`app_with`] takes another one, which
//! is how tests replace the state.

use std::convert::Infallible;

use axum::extract::State;
use roundtrip::openapi::model::{Contact, ExternalDocs, License, Tag};
use roundtrip::response::{FileResponse, Streaming};
use roundtrip::security::{
    ApiKeyConfig, ApiKeyHeader, HttpBasic, OAuth2PasswordBearer, OAuth2PasswordConfig,
};
use roundtrip::{
    App, Cookie, Dependency, Depends, Form, Header, Html, HttpError, Json, NoContent, Path, Query,
    Redirect, Router, get, post,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What the app shares with its handlers: the catalog's size, so that tests can run the
/// app against a smaller one.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The largest item id that exists; larger ids answer 404.
    pub largest_id: i64,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog { largest_id: 1000 }
    }
}

// The models carry no doc comment: FastAPI's have no docstring, so their components
// have no description. A field's doc comment is its description.

#[derive(Debug, Deserialize, JsonSchema)]
struct Item {
    /// The item's name
    #[schemars(length(min = 1, max = 50))]
    name: String,
    // `gt=0`: schemars has no exclusive bound attribute, so the keyword is written as is.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    price: f64,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "validated and documented; the tour answers without it"
    )]
    tags: Vec<String>,
    #[expect(
        dead_code,
        reason = "validated and documented; the tour answers without it"
    )]
    description: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct ItemOut {
    id: i64,
    name: String,
    price: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
struct Message {
    message: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct Address {
    city: String,
    #[schemars(pattern(r"^\d{5}$"))]
    zip: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct User {
    username: String,
    address: Address,
}

#[derive(Deserialize, JsonSchema)]
struct ItemPath {
    #[schemars(range(min = 1), title = "The ID of the item")]
    item_id: i64,
}

#[derive(Deserialize, JsonSchema)]
#[expect(
    dead_code,
    reason = "validated and documented; the tour answers without them"
)]
struct ReadItemQuery {
    #[schemars(length(min = 3, max = 20), pattern(r"^[a-z]+$"))]
    q: Option<String>,
    #[serde(default)]
    verbose: bool,
}

#[derive(Deserialize, JsonSchema)]
struct TagQuery {
    tag: Option<Vec<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[expect(
    dead_code,
    reason = "required and documented; the tour answers without it"
)]
struct RequestId {
    x_request_id: String,
}

#[derive(Deserialize, JsonSchema)]
struct Login {
    username: String,
    password: String,
}

#[derive(Deserialize, JsonSchema)]
struct Session {
    session_id: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct Agent {
    user_agent: Option<String>,
}

/// The query parameters of [`Pagination`].
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PageParams {
    #[serde(default)]
    skip: i64,
    #[serde(default = "default_limit")]
    #[schemars(range(max = 100))]
    limit: i64,
}

fn default_limit() -> i64 {
    10
}

/// A page of a list: FastAPI's `Depends(pagination)`. Its parameters, `skip` and
/// `limit` (at most 100), are documented and validated on every operation that uses it.
#[derive(Debug, Clone, Serialize)]
pub struct Pagination {
    /// How many items to skip.
    pub skip: i64,
    /// How many items to return at most.
    pub limit: i64,
}

impl Dependency for Pagination {
    type Inputs = Query<PageParams>;
    type Rejection = Infallible;

    async fn resolve(Query(params): Query<PageParams>) -> Result<Self, Infallible> {
        Ok(Pagination {
            skip: params.skip,
            limit: params.limit,
        })
    }
}

/// The API key of `GET /secure/key`: the `X-API-Key` header.
pub struct TourKey;

impl ApiKeyConfig for TourKey {
    const NAME: &'static str = "X-API-Key";
}

/// The OAuth2 scheme of `GET /secure/oauth`: tokens from `token`, one scope offered.
pub struct TourOAuth;

impl OAuth2PasswordConfig for TourOAuth {
    const TOKEN_URL: &'static str = "token";
    const SCOPES: &'static [(&'static str, &'static str)] = &[("items:read", "Read items")];
}

/// Read one item.
#[roundtrip::handler]
async fn read_item(
    State(catalog): State<Catalog>,
    Path(path): Path<ItemPath>,
    Query(_query): Query<ReadItemQuery>,
) -> Result<Json<ItemOut>, HttpError> {
    if path.item_id > catalog.largest_id {
        return Err(HttpError::not_found("Item not found"));
    }
    Ok(Json(ItemOut {
        id: path.item_id,
        name: "Foo".to_owned(),
        price: 1.5,
    }))
}

async fn list_items(
    Query(query): Query<TagQuery>,
    Depends(page): Depends<Pagination>,
) -> Json<Value> {
    Json(json!({"page": page, "tag": query.tag}))
}

/// Create an item with all the information.
#[roundtrip::handler]
async fn create_item(Json(item): Json<Item>) -> Json<ItemOut> {
    Json(ItemOut {
        id: 1,
        name: item.name,
        price: item.price,
    })
}

async fn replace_item(
    Path(item_id): Path<i64>,
    Header(_request_id): Header<RequestId>,
    Json(item): Json<Item>,
) -> Json<ItemOut> {
    Json(ItemOut {
        id: item_id,
        name: item.name,
        price: item.price,
    })
}

async fn delete_item(Path(_item_id): Path<i64>) -> NoContent {
    NoContent
}

async fn patch_item(Path(item_id): Path<i64>) -> Json<Value> {
    Json(json!({"id": item_id}))
}

async fn create_user(Json(user): Json<User>) -> Json<User> {
    Json(user)
}

async fn login(Form(form): Form<Login>) -> Json<Value> {
    // Checking the password is the application's business; the tour only echoes the name.
    let _ = form.password;
    Json(json!({"username": form.username}))
}

async fn read_me(Cookie(session): Cookie<Session>, Header(agent): Header<Agent>) -> Json<Value> {
    Json(json!({"session_id": session.session_id, "user_agent": agent.user_agent}))
}

async fn html_page() -> Html<&'static str> {
    Html("<h1>Hello</h1>")
}

async fn text() -> String {
    "plain".to_owned()
}

async fn old() -> Redirect {
    Redirect::to("/html")
}

async fn stream() -> Streaming {
    let chunks = futures_util::stream::iter([Ok::<_, Infallible>("a"), Ok("b")]);
    Streaming::new("text/event-stream", chunks)
}

async fn file() -> FileResponse {
    // As `tour.py` serves itself, the tour serves its own source.
    FileResponse::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs"))
        .media_type("text/plain; charset=utf-8")
}

async fn hidden() -> Json<Value> {
    Json(json!({}))
}

/// The tour's one valid token, key and credentials: the schemes read any, as FastAPI's do,
/// and each operation checks what it was given, so a wrong one answers 401.
const TOKEN: &str = "abc.def";
const API_KEY: &str = "k-123";

fn refused(detail: &'static str, challenge: &'static str) -> HttpError {
    HttpError::unauthorized(detail).header(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static(challenge),
    )
}

async fn secure_oauth(auth: OAuth2PasswordBearer<TourOAuth>) -> Result<Json<Value>, HttpError> {
    if auth.token != TOKEN {
        return Err(refused("Invalid token", "Bearer"));
    }
    Ok(Json(json!({"token": auth.token})))
}

/// As FastAPI's HTTP Basic tutorial: wrong or empty credentials answer 401.
async fn secure_basic(credentials: HttpBasic) -> Result<Json<Value>, HttpError> {
    if credentials.username != "bob" || credentials.password != "secret" {
        return Err(refused("Incorrect username or password", "Basic"));
    }
    Ok(Json(json!({"user": credentials.username})))
}

async fn secure_key(key: ApiKeyHeader<TourKey>) -> Result<Json<Value>, HttpError> {
    if key.key != API_KEY {
        return Err(refused("Invalid API key", "APIKey"));
    }
    Ok(Json(json!({"key": key.key})))
}

/// The items router: FastAPI's `APIRouter(prefix="/items", tags=["items"], ...)`.
fn items() -> Router<Catalog> {
    Router::new()
        .prefix("/items")
        .tag("items")
        .response_status(404, "Not found")
        .route(
            "/{item_id}",
            get(read_item)
                .put(replace_item)
                .delete(delete_item)
                .status(204)
                .patch(patch_item)
                .deprecated()
                .operation_id("patch_item_legacy"),
        )
        .route(
            "/",
            get(list_items)
                .post(create_item)
                .status(201)
                .summary("Create an item")
                .response_description("The created item")
                .response::<Message>(409, "Item already exists"),
        )
}

/// The users router.
fn users() -> Router<Catalog> {
    Router::new()
        .prefix("/users")
        .tag("users")
        .route("/", post(create_user))
        .route("/login", post(login))
        .route("/me", get(read_me))
}

/// The tour with its default state.
pub fn app() -> App<Catalog> {
    app_with(Catalog::default())
}

/// The tour with the given state (tests use a smaller catalog).
pub fn app_with(catalog: Catalog) -> App<Catalog> {
    App::with_state(catalog)
        .title("Tour API")
        .version("2.5.0")
        .summary("Every foundation feature once.")
        .description("A **tour** of path operations.")
        .terms_of_service("https://example.com/terms/")
        .contact(Contact {
            name: Some("Tour Team".to_owned()),
            url: Some("https://example.com/contact/".to_owned()),
            email: Some("team@example.com".to_owned()),
        })
        .license(License {
            name: "Apache 2.0".to_owned(),
            identifier: Some("Apache-2.0".to_owned()),
            url: None,
        })
        .server("https://api.example.com", Some("Production"))
        .tag(Tag {
            name: "items".to_owned(),
            description: Some("Operations with items.".to_owned()),
            external_docs: None,
        })
        .tag(Tag {
            name: "users".to_owned(),
            description: Some("Operations with users.".to_owned()),
            external_docs: Some(ExternalDocs {
                url: "https://example.com/users/".to_owned(),
                description: None,
            }),
        })
        .include(items())
        .include(users())
        .route("/html", get(html_page))
        .route("/text", get(text))
        .route("/old", get(old))
        // Their media types are chosen at run time: the document says which.
        .route("/stream", get(stream).media_type("text/event-stream"))
        .route("/file", get(file).media_type("text/plain"))
        .route("/hidden", get(hidden).hidden())
        .route("/secure/oauth", get(secure_oauth))
        .route("/secure/basic", get(secure_basic))
        .route("/secure/key", get(secure_key))
}
