//! What a plain axum app does for the tour's `POST /items/`: deserialize with serde,
//! check `1 <= len(name) <= 50` and `price > 0` by hand, answer 201 with the item.
//! The peer of roundtrip's documented and validated version in bench/tour.

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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

async fn root() -> Json<Value> {
    Json(json!({"hello": "world"}))
}

async fn create_item(Json(item): Json<Item>) -> Result<(StatusCode, Json<ItemOut>), StatusCode> {
    let chars = item.name.chars().count();
    if !(1..=50).contains(&chars)
        || item.price.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
    {
        return Err(StatusCode::UNPROCESSABLE_ENTITY);
    }
    Ok((
        StatusCode::CREATED,
        Json(ItemOut {
            id: 1,
            name: item.name,
            price: item.price,
        }),
    ))
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8000);
    let app = Router::new()
        .route("/", get(root))
        .route("/items/", post(create_item));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
