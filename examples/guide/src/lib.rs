//! FastAPI's advanced guide in one app: the Rust port of `guide.py`, each feature a real
//! application uses beyond the tutorial, once.
//!
//! | guide.py | here |
//! |---|---|
//! | `lifespan=` | [`App::lifespan`] builds a [`Guide`], read with `Lifespan<Guide>` |
//! | dependency with `yield` | `notes::Session`: `Cleanup::defer` commits or rolls back |
//! | per-request cache, `use_cache=False` | `deps`: `Depends<Calls>` twice, `Fresh<Calls>` |
//! | `FastAPI(dependencies=[...])` | `App::dependency::<Tenant>()` |
//! | `APIRouter(dependencies=[...])` | `Router::dependency::<AdminKey>()` |
//! | `@app.exception_handler` | `App::exception_handler(|err: &QuotaExceeded| ..)` |
//! | `@app.middleware("http")`, CORS, GZip, trusted hosts | `App::layer(..)`: `from_fn`, tower-http, `TrustedHostLayer` |
//! | `BackgroundTasks` | `pages::signup` |
//! | `response_model=`, `response_model_exclude_unset=` | `models` |
//! | `generate_unique_id_function=` | `App::operation_ids(..)` |
//! | `openapi_extra=` | `.openapi_extra(json!({"x-aperture-labs-portal": "blue"}))` |
//! | `max_body_size=` | `.body_limit(64)` |
//! | `EventSourceResponse`, `@app.websocket`, templates, `set_cookie` | `pages` |
//! | `app.mount(...)`, `StaticFiles` | `App::mount`, `App::static_files` |
//!
//! The template and the static file are read from [`files_dir`]: the `files/` folder of
//! this example (found through the path it was built from, so the binary works from any
//! working directory), or `GUIDE_FILES` when set (for a binary deployed elsewhere).

mod deps;
mod models;
mod notes;
mod pages;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::AtomicI64;

use axum::extract::Request;
use axum::response::Response;
use http::{HeaderName, HeaderValue, StatusCode};
use roundtrip::depends::Dependency;
use roundtrip::middleware::{Next, TrustedHostLayer, from_fn};
use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
use roundtrip::templates::Templates;
use roundtrip::{App, Header, HttpError, Json, Router, get, post};
use schemas::TenantHeader;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::{Any, CorsLayer};

/// The app's "database": notes, and counts of the sessions opened and closed.
#[derive(Debug, Default)]
pub struct Store {
    /// Committed notes by id.
    pub notes: Mutex<BTreeMap<i64, String>>,
    /// Sessions opened.
    pub opened: AtomicI64,
    /// Sessions closed.
    pub closed: AtomicI64,
    /// Sessions committed.
    pub committed: AtomicI64,
    /// Sessions rolled back.
    pub rolled_back: AtomicI64,
    /// What the background tasks did.
    pub log: Mutex<Vec<String>>,
}

/// What the lifespan builds before the first request: FastAPI's `app.state`.
#[derive(Debug)]
pub struct Guide {
    /// The store.
    pub store: Store,
    /// Proof that startup ran.
    pub started_at: String,
}

/// What handlers share for the app's whole life, known when it is built.
#[derive(Clone, Debug)]
pub struct Files {
    /// The page templates.
    pub templates: Templates,
}

/// Where the template and static file are: `GUIDE_FILES`, or this example's `files/`.
pub fn files_dir() -> PathBuf {
    std::env::var_os("GUIDE_FILES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/files")))
}

mod schemas {
    use schemars::JsonSchema;
    use serde::Deserialize;

    /// The app-wide header: optional, and checked when present.
    #[derive(Deserialize, JsonSchema)]
    pub struct TenantHeader {
        #[schemars(pattern(r"^[a-z]{2,16}$"))]
        pub x_tenant: Option<String>,
    }
}

/// App-wide dependency: an optional tenant header, checked on every operation.
pub struct Tenant(pub Option<String>);

impl Dependency for Tenant {
    type Inputs = Header<TenantHeader>;
    type Rejection = Infallible;

    async fn resolve(Header(header): Header<TenantHeader>) -> Result<Self, Infallible> {
        Ok(Tenant(header.x_tenant))
    }
}

/// The admin router's key: FastAPI's `APIKeyHeader(name="X-API-Key")`.
pub struct AdminKeys;

impl ApiKeyConfig for AdminKeys {
    const NAME: &'static str = "X-API-Key";
}

/// Every admin operation needs the right key.
pub struct AdminKey;

impl Dependency for AdminKey {
    type Inputs = ApiKeyHeader<AdminKeys>;
    type Rejection = HttpError;

    async fn resolve(key: ApiKeyHeader<AdminKeys>) -> Result<Self, HttpError> {
        if key.key == "s3cret" {
            Ok(AdminKey)
        } else {
            Err(HttpError::forbidden("Invalid API key"))
        }
    }
}

/// A domain error, answered by the app's exception handler.
#[derive(Debug, thiserror::Error)]
#[error("quota exceeded, retry in {retry_after} s")]
pub struct QuotaExceeded {
    /// Seconds until the quota is back.
    pub retry_after: u32,
}

async fn admin_stats(
    roundtrip::Lifespan(guide): roundtrip::Lifespan<Guide>,
) -> Json<BTreeMap<String, i64>> {
    let notes = guide.store.notes.lock().map(|n| n.len()).unwrap_or(0);
    Json(BTreeMap::from([("notes".to_owned(), notes as i64)]))
}

async fn use_quota() -> Result<Json<serde_json::Value>, roundtrip::Error> {
    Err(QuotaExceeded { retry_after: 30 })?
}

/// FastAPI's `@app.middleware("http")`: how long the app took, on every answer.
async fn process_time(request: Request, next: Next) -> Response {
    let start = std::time::Instant::now();
    let mut response = next.run(request).await;
    let elapsed = format!("{:.6}", start.elapsed().as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&elapsed) {
        response.headers_mut().insert("x-process-time", value);
    }
    response
}

async fn ping() -> Json<BTreeMap<String, String>> {
    Json(BTreeMap::from([("pong".to_owned(), "sub".to_owned())]))
}

/// The mounted sub-application, with its own document and docs.
pub fn subapi() -> App {
    App::new().title("Sub API").route("/ping", get(ping))
}

/// The guide app, reading its files from [`files_dir`].
pub fn app() -> App<Files> {
    app_with_files(files_dir())
}

/// The guide app, reading its template and static file from `files`.
pub fn app_with_files(files: PathBuf) -> App<Files> {
    let templates = Templates::new(files.join("templates"));
    let admin = Router::new()
        .prefix("/admin")
        .tag("admin")
        .dependency::<AdminKey>()
        .response_status(403, "Invalid API key")
        .route("/stats", get(admin_stats))
        .route("/quota", post(use_quota));
    let gzip = SizeAbove::new(500)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    let cors = CorsLayer::new()
        .allow_origin([HeaderValue::from_static("https://app.example.com")])
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers([HeaderName::from_static("x-process-time")]);
    App::with_state(Files { templates })
        .title("Guide API")
        .version("1.0.0")
        .lifespan(
            || async {
                Ok::<_, Infallible>(Guide {
                    store: Store::default(),
                    started_at: "startup ran".to_owned(),
                })
            },
            |_guide| async {},
        )
        .dependency::<Tenant>()
        .operation_ids(|op| match op.tags.first() {
            Some(tag) => format!("{tag}-{}", op.name),
            None => op.name.to_owned(),
        })
        .exception_handler(|err: &QuotaExceeded| {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", err.retry_after.to_string())],
                Json(
                    serde_json::json!({"detail": "Quota exceeded", "retry_after": err.retry_after}),
                ),
            )
        })
        // Like FastAPI's add_middleware: each layer wraps the ones before it.
        .layer(from_fn(process_time))
        .layer(CompressionLayer::new().compress_when(gzip))
        .layer(cors)
        .layer(TrustedHostLayer::new([
            "testserver",
            "localhost",
            "127.0.0.1",
        ]))
        .include(notes::router())
        .route("/sessions", get(notes::session_stats).tag("notes"))
        .route("/cached", get(deps::cached).tag("deps"))
        .route("/uncached", get(deps::not_cached).tag("deps"))
        .include(admin)
        .route(
            "/signup/{email}",
            post(pages::signup).tag("tasks").status(202),
        )
        .route("/signup/log", get(pages::signup_log).tag("tasks"))
        .route(
            "/users/",
            post(models::create_user)
                .response_model::<models::UserOut>()
                .tag("models"),
        )
        .route(
            "/items/{item_id}",
            get(models::read_item)
                .response_status(404, "Item not found")
                .response_model::<models::Item>()
                .response_model_exclude_unset()
                .tag("models")
                .put(models::replace_item)
                .tag("models")
                .openapi_extra(serde_json::json!({"x-aperture-labs-portal": "blue"})),
        )
        .route("/upload", post(pages::upload).tag("limits").body_limit(64))
        .route("/events", get(pages::events).tag("stream"))
        .websocket("/ws", pages::echo)
        .route("/hello/{name}", get(pages::hello).tag("pages"))
        .route("/login", post(pages::login).tag("pages"))
        .route("/lifespan", get(pages::lifespan_state).tag("pages"))
        .route(
            "/boom",
            get(pages::boom)
                .tag("pages")
                .response_status(500, "Internal Server Error"),
        )
        .mount("/subapi", subapi())
        .static_files("/static", files.join("static"))
}
