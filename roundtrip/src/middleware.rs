//! Middleware for the whole app ([`App::layer`](crate::App::layer)): any tower layer, a
//! custom one written as an async function ([`from_fn`]), and [`TrustedHostLayer`],
//! which tower-http does not have. CORS and compression come from tower-http
//! (`tower_http::cors::CorsLayer`, `tower_http::compression::CompressionLayer`).
//!
//! ```
//! use roundtrip::middleware::{Next, TrustedHostLayer, from_fn};
//! use axum::{extract::Request, response::Response};
//!
//! /// FastAPI's `@app.middleware("http")`.
//! async fn process_time(request: Request, next: Next) -> Response {
//!     let start = std::time::Instant::now();
//!     let mut response = next.run(request).await;
//!     let elapsed = format!("{:.6}", start.elapsed().as_secs_f64());
//!     if let Ok(value) = elapsed.parse() {
//!         response.headers_mut().insert("x-process-time", value);
//!     }
//!     response
//! }
//!
//! let app = roundtrip::App::new()
//!     .layer(from_fn(process_time))
//!     .layer(TrustedHostLayer::new(["example.com", "*.example.com"]));
//! # app.into_router().expect("the app builds");
//! ```

mod trusted_host;

pub use axum::middleware::{Next, from_fn, from_fn_with_state, map_request, map_response};
pub use trusted_host::{TrustedHost, TrustedHostLayer};
