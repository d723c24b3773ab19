//! Delivery of the callbacks and webhooks that a roundtrip app documents: a durable
//! outbox, workers that claim and send, retries, Standard Webhooks signing and an SSRF
//! guard.

pub mod endpoints;
mod ids;
pub mod message;
pub mod outbox;
pub mod postgres;
pub mod retry;
pub mod signing;
pub mod sqlite;
pub mod ssrf;
mod store;
pub mod worker;
