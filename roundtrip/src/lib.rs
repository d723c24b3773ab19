#![doc = include_str!("../README.md")]

mod app;
mod callback;
mod delivery;
pub mod error;
pub mod extract;
mod handler;
mod notify;
mod operation;
pub mod response;
mod router;
mod routing;

pub use app::{App, BuildError, BuiltApp, DEFAULT_BODY_LIMIT};
pub use callback::{Callback, Webhook};
pub use error::{HttpError, RequestValidationError};
pub use extract::{Cookie, Form, Header, Json, Path, Query};
pub use handler::Handler;
pub use operation::{OperationContext, OperationInput, OperationOutput};
pub use response::{Html, NoContent, Redirect};
pub use router::Router;
pub use routing::{Route, delete, get, head, on, options, patch, post, put, trace};

pub use roundtrip_macros::handler;
/// The OpenAPI model, schema registry, runtime expressions and validation.
pub use roundtrip_openapi as openapi;
pub use roundtrip_openapi::HttpUrl;

#[doc(hidden)]
pub mod __private {
    pub use crate::app::HandlerDoc;
    pub use inventory;
}
