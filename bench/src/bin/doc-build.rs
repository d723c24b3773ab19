//! How long building an app and its OpenAPI document takes for 1,000 operations.
//!
//! 250 paths × 4 methods, each with a path parameter, a query struct and (for writes) a JSON
//! body, over a handful of component types: the shape of a large real API. Prints the
//! median and the fastest of several builds (release build: `cargo run --release -p
//! roundtrip-bench --bin doc-build`).

use std::time::{Duration, Instant};

use roundtrip::{App, HttpError, Json, Path, Query, Router, get};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
struct Page {
    #[serde(default)]
    skip: i64,
    #[schemars(range(max = 100))]
    limit: Option<i64>,
    tag: Option<Vec<String>>,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Item {
    #[schemars(length(min = 1, max = 50))]
    name: String,
    price: f64,
    tags: Vec<String>,
    owner: Owner,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Owner {
    id: i64,
    email: String,
}

async fn read(Path(_id): Path<i64>, Query(_p): Query<Page>) -> Result<Json<Item>, HttpError> {
    Err(HttpError::not_found("nothing here"))
}

async fn write(Path(_id): Path<i64>, Json(item): Json<Item>) -> Json<Item> {
    Json(item)
}

async fn remove(Path(_id): Path<i64>) -> roundtrip::NoContent {
    roundtrip::NoContent
}

fn app() -> App {
    let mut app = App::new().title("Big API");
    for group in 0..25 {
        let mut router = Router::new()
            .prefix(format!("/group{group}"))
            .tag(format!("group{group}"));
        for resource in 0..10 {
            router = router.route(
                format!("/resource{resource}/{{id}}"),
                get(read)
                    .put(write)
                    .post(write)
                    .operation_id(format!("create_{group}_{resource}"))
                    .delete(remove),
            );
        }
        app = app.include(router);
    }
    app
}

fn main() {
    // The first build also compiles each type's validator once; measure it on its own.
    let start = Instant::now();
    let built = app().build().expect("the app builds");
    let first = start.elapsed();
    let operations = built.openapi.operations().count();
    let mut times: Vec<Duration> = (0..15)
        .map(|_| {
            let start = Instant::now();
            let built = app().build().expect("the app builds");
            let elapsed = start.elapsed();
            assert_eq!(built.openapi.operations().count(), operations);
            elapsed
        })
        .collect();
    times.sort();
    println!(
        "operations={operations} first_build_ms={:.1} median_ms={:.1} min_ms={:.1}",
        first.as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
}
