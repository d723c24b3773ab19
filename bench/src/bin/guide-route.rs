//! A route of the guide (`examples/guide`) served for load tests, in two modes:
//!
//! * `plain`: `POST /users/` (the body validated, the answer filtered through the
//!   `UserOut` response model) and nothing else.
//! * `full`: the same route with what the guide puts around it: the app-wide `Tenant`
//!   dependency (the `X-Tenant` header, checked against its pattern), CORS for one origin,
//!   and gzip over the whole app (answers under 500 bytes are left as they are, as
//!   FastAPI's `GZipMiddleware(minimum_size=500)` does).
//!
//! `GET /` answers `{"hello": "world"}` for the readiness check. Listens on 127.0.0.1.
//!
//! `guide-route --in-process ROUNDS REQUESTS` serves nothing: it sends the same request to
//! both apps' routers in process (no sockets, alternating, best round of each), which is
//! steadier than a load test on a busy machine and isolates what the layers and the
//! dependency add.

use std::convert::Infallible;
use std::process::ExitCode;

use http::HeaderValue;
use roundtrip::depends::Dependency;
use roundtrip::{App, Header, Json, get, post};
use roundtrip_bench::arg;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::{Any, CorsLayer};

#[derive(Serialize, Deserialize, JsonSchema)]
struct UserIn {
    username: String,
    password: String,
    email: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct UserOut {
    username: String,
    email: String,
}

#[derive(Deserialize, JsonSchema)]
struct TenantHeader {
    #[schemars(pattern(r"^[a-z]{2,16}$"))]
    x_tenant: Option<String>,
}

struct Tenant(#[allow(dead_code)] Option<String>);

impl Dependency for Tenant {
    type Inputs = Header<TenantHeader>;
    type Rejection = Infallible;

    async fn resolve(Header(h): Header<TenantHeader>) -> Result<Self, Infallible> {
        Ok(Tenant(h.x_tenant))
    }
}

async fn root() -> Json<Value> {
    Json(json!({"hello": "world"}))
}

async fn create_user(Json(user): Json<UserIn>) -> Json<UserIn> {
    Json(user)
}

fn app(mode: &str) -> Option<App> {
    let app = App::new()
        .title("Guide API")
        .route("/", get(root))
        .route("/users/", post(create_user).response_model::<UserOut>());
    let layers = |app: App| {
        let gzip = SizeAbove::new(500)
            .and(NotForContentType::GRPC)
            .and(NotForContentType::IMAGES)
            .and(NotForContentType::SSE);
        app.layer(CompressionLayer::new().compress_when(gzip))
            .layer(
                CorsLayer::new()
                    .allow_origin([HeaderValue::from_static("https://app.example.com")])
                    .allow_methods(Any)
                    .allow_headers(Any),
            )
    };
    match mode {
        "plain" => Some(app),
        "full" => Some(layers(app.dependency::<Tenant>())),
        // The two halves of `full`, for the in-process breakdown.
        "layers" => Some(layers(app)),
        "dependency" => Some(app.dependency::<Tenant>()),
        _ => None,
    }
}

/// Nanoseconds per request through each mode's router, the best of `rounds`.
async fn in_process(rounds: usize, requests: usize) -> Result<(), String> {
    use tower::ServiceExt;
    let modes = ["plain", "dependency", "layers", "full"];
    let routers = modes
        .into_iter()
        .map(|mode| {
            let app = app(mode).ok_or("no such mode")?;
            Ok((mode, app.into_router().map_err(|e| e.to_string())?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut best = [u128::MAX; 4];
    for _ in 0..rounds {
        for (i, (mode, router)) in routers.iter().enumerate() {
            let start = std::time::Instant::now();
            for _ in 0..requests {
                let request = http::Request::post("/users/")
                    .header("content-type", "application/json")
                    .header("origin", "https://app.example.com")
                    .header("x-tenant", "acme")
                    .header("accept-encoding", "gzip")
                    .body(axum::body::Body::from(
                        r#"{"username":"ada","password":"hunter2","email":"ada@example.com"}"#,
                    ))
                    .map_err(|e| e.to_string())?;
                let Ok(response) = router.clone().oneshot(request).await;
                if response.status() != 200 {
                    return Err(format!("{mode}: {}", response.status()));
                }
                axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            best[i] = best[i].min(start.elapsed().as_nanos() / requests as u128);
        }
    }
    println!("| POST /users/ with | ns per request (best of {rounds} x {requests}) | over plain |");
    println!("|---|---:|---:|");
    for (i, mode) in modes.iter().enumerate() {
        println!(
            "| {mode} | {} | {:+} |",
            best[i],
            best[i] as i128 - best[0] as i128
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(rounds) = arg("--in-process") {
        let requests = std::env::args()
            .skip_while(|a| a != "--in-process")
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        return match in_process(rounds.parse().unwrap_or(5), requests).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{err}");
                ExitCode::FAILURE
            }
        };
    }
    let mode = arg("--mode").unwrap_or_else(|| "plain".to_owned());
    let port = arg("--port").unwrap_or_else(|| "18080".to_owned());
    let Some(app) = app(&mode) else {
        eprintln!("unknown mode {mode}: plain or full");
        return ExitCode::from(2);
    };
    match app.serve(&format!("127.0.0.1:{port}")).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
