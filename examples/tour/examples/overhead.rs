//! Per-request cost of roundtrip over hand-written axum, in process (no sockets, no wrk):
//! the same request through each router, alternated, many times. On a busy machine this
//! is steadier than a load test, and it isolates what the framework adds.
//!
//!   cargo run --release -p example-tour --example overhead [-- ROUNDS REQUESTS [CASE]]
//!
//! With `CASE` (a number from 0, in the order printed), only that case runs, once: for a
//! profiler (`valgrind --tool=callgrind`, `perf record`), which then counts one router alone.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::ServiceExt;

const ITEM: &str = r#"{"name":"Foo","price":2.5,"tags":["a","b"],"description":"A foo"}"#;
const INVOICE: &str =
    r#"{"id":"inv-0001","title":"Consulting","customer":"ACME Corp","total":1234.5}"#;

#[allow(dead_code)]
#[derive(Deserialize)]
struct Item {
    name: String,
    price: f64,
    #[serde(default)]
    tags: Vec<String>,
    description: Option<String>,
}

#[derive(Serialize)]
struct ItemOut {
    id: i64,
    name: String,
    price: f64,
}

async fn bare_item(
    axum::Json(item): axum::Json<Item>,
) -> Result<(StatusCode, axum::Json<ItemOut>), StatusCode> {
    let chars = item.name.chars().count();
    if !(1..=50).contains(&chars)
        || item.price.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
    {
        return Err(StatusCode::UNPROCESSABLE_ENTITY);
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(ItemOut {
            id: 1,
            name: item.name,
            price: item.price,
        }),
    ))
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Invoice {
    id: String,
    title: Option<String>,
    customer: String,
    total: f64,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct CallbackQuery {
    callback_url: Option<String>,
}

async fn bare_invoice(
    axum::extract::Query(_q): axum::extract::Query<CallbackQuery>,
    axum::Json(_invoice): axum::Json<Invoice>,
) -> axum::Json<Value> {
    axum::Json(json!({"msg": "Invoice received"}))
}

/// The tour's item without its constraints: what roundtrip costs when serde alone
/// enforces the schema.
#[allow(dead_code)]
#[derive(Deserialize, schemars::JsonSchema)]
struct PlainItem {
    name: String,
    price: f64,
    #[serde(default)]
    tags: Vec<String>,
    description: Option<String>,
}

#[derive(Serialize, schemars::JsonSchema)]
struct PlainItemOut {
    id: i64,
    name: String,
    price: f64,
}

async fn plain_item(
    roundtrip::Json(item): roundtrip::Json<PlainItem>,
) -> roundtrip::Json<PlainItemOut> {
    roundtrip::Json(PlainItemOut {
        id: 1,
        name: item.name,
        price: item.price,
    })
}

fn request(path: &str, body: &'static str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a valid request")
}

/// Time per request over `n` requests, checking each status.
async fn measure(
    router: &axum::Router,
    path: &str,
    body: &'static str,
    status: u16,
    n: u32,
) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let response = router
            .clone()
            .oneshot(request(path, body))
            .await
            .expect("infallible");
        assert_eq!(response.status().as_u16(), status);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        std::hint::black_box(bytes);
    }
    start.elapsed() / n
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);

    let tour = example_tour::app().into_router().expect("the tour builds");
    let invoices = example_invoices::app()
        .database_url("sqlite::memory:")
        .into_router()
        .expect("the invoices app builds");
    let plain = roundtrip::App::new()
        .route("/items/", roundtrip::post(plain_item).status(201))
        .into_router()
        .expect("the plain app builds");
    let bare = axum::Router::new()
        .route("/items/", post(bare_item))
        .route("/invoices/", post(bare_invoice));

    let cases: [(&str, &axum::Router, &str, &'static str, u16); 5] = [
        ("axum POST /items/", &bare, "/items/", ITEM, 201),
        ("roundtrip POST /items/", &tour, "/items/", ITEM, 201),
        (
            "roundtrip POST /items/ without constraints",
            &plain,
            "/items/",
            ITEM,
            201,
        ),
        ("axum POST /invoices/", &bare, "/invoices/", INVOICE, 200),
        (
            "roundtrip POST /invoices/",
            &invoices,
            "/invoices/",
            INVOICE,
            200,
        ),
    ];
    if let Some(only) = args.next().and_then(|a| a.parse::<usize>().ok()) {
        let (name, router, path, body, status) = cases.get(only).expect("a case number");
        measure(router, path, body, *status, n).await;
        println!("{name}: {n} requests");
        return;
    }
    // Warm up: compile validators, fill allocator caches.
    for (_, router, path, body, status) in &cases {
        measure(router, path, body, *status, n / 10).await;
    }
    let mut best = [Duration::MAX; 5];
    for round in 0..rounds {
        for (i, (name, router, path, body, status)) in cases.iter().enumerate() {
            let t = measure(router, path, body, *status, n).await;
            best[i] = best[i].min(t);
            println!("round {round} {name}: {} ns/request", t.as_nanos());
        }
    }
    println!();
    println!("best of {rounds}, {n} requests each:");
    for (i, (name, ..)) in cases.iter().enumerate() {
        println!("  {name}: {} ns/request", best[i].as_nanos());
    }
    let items = best[0].as_secs_f64() / best[1].as_secs_f64();
    let plain = best[0].as_secs_f64() / best[2].as_secs_f64();
    let invoices = best[3].as_secs_f64() / best[4].as_secs_f64();
    println!(
        "throughput ratio roundtrip/axum: /items/ {items:.3} (without constraints {plain:.3}), /invoices/ {invoices:.3}"
    );
}
