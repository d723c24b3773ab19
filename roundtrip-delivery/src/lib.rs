//! Delivery of the callbacks and webhooks that a roundtrip app documents: a durable
//! outbox, workers that claim and send, retries, Standard Webhooks signing and an SSRF
//! guard.
//!
//! [`connect`] opens the stores of a database URL (`sqlite://...` or `postgres://...`), as
//! sqlx does; [`worker::Dispatcher`] runs the workers over the outbox.

mod database;
pub mod endpoints;
mod ids;
pub mod message;
pub mod outbox;
pub mod postgres;
mod redact;
pub mod retry;
pub mod signing;
pub mod sqlite;
pub mod ssrf;
mod store;
#[cfg(feature = "opentelemetry")]
pub mod telemetry;
pub mod worker;

pub use database::{Database, Stores, connect};
pub use redact::redact;
