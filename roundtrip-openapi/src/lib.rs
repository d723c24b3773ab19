//! The OpenAPI side of roundtrip: the 3.1 document model, the schema registry over
//! schemars, runtime expressions, and FastAPI-style validation of input against the
//! published schemas.
//!
//! This crate does no I/O and knows nothing about HTTP servers; the `roundtrip` crate
//! builds on it.

pub mod expr;
pub mod http_url;
pub mod lint;
pub mod model;
pub mod naming;
pub mod schema;
pub mod validate;

pub use http_url::HttpUrl;
