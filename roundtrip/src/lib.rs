#![doc = include_str!("../README.md")]

mod app;
mod background;
mod binding;
mod callback;
mod cli;
pub mod deliveries;
pub mod delivery;
pub mod depends;
pub mod error;
mod exceptions;
pub mod extract;
mod handler;
mod invoke;
mod lifespan;
pub mod metrics;
pub mod middleware;
pub mod openapi;
mod operation;
pub mod portal;
pub mod receive;
pub mod response;
mod response_docs;
mod response_model;
mod router;
mod routing;
mod scope;
mod secret;
pub mod security;
mod serve;
mod server_limits;
pub mod subscriptions;
#[cfg(feature = "opentelemetry")]
pub mod telemetry;
#[cfg(feature = "templates")]
pub mod templates;

pub use app::OperationInfo;
pub use app::{App, BuildError, BuiltApp, DEFAULT_BODY_LIMIT};
/// Shared application state in a handler: `State(db): State<Db>` (axum's, re-exported).
pub use axum::extract::State;
pub use background::BackgroundTasks;
pub use callback::{Callback, Webhook};
pub use delivery::config::{
    DATABASE_URL_ENV, DEFAULT_MAX_PAYLOAD_BYTES, SIGNING_SECRET_ENV, WORKER_ID_ENV,
};
pub use delivery::error::DeliverySetupError;
pub use delivery::notify::{Notify, SendOptions};
pub use delivery::publish::Publisher;
pub use delivery::runtime::DeliveryWorkers;
pub use delivery::send_error::SendError;
pub use depends::{Dependency, DependencyOverrides, Depends, Fresh};
pub use error::{HttpError, Rejection, RequestValidationError};
pub use exceptions::Error;
pub use extract::{
    Cookie, Form, Header, Json, Multipart, MultipartLimits, Path, Query, UploadFile,
};
pub use handler::Handler;
/// HTTP status codes, for [`HttpError::new`] and `(StatusCode, Json<T>)` answers.
pub use http::StatusCode;
pub use lifespan::{Lifespan, Started, StartupError};
pub use metrics::DeliveryMetrics;
pub use operation::{OperationContext, OperationInput, OperationOutput};
pub use response::{Html, NoContent, Redirect};
pub use router::Router;
pub use routing::{Route, delete, get, head, on, options, patch, post, put, trace};
pub use secret::SecretString;
pub use serve::{SHUTDOWN_GRACE, ServeError, shutdown_signal};
pub use server_limits::{DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, ServerLimits};
pub use subscriptions::{SubscriptionError, Subscriptions};

/// Websockets (FastAPI's `@app.websocket`): axum's, served with
/// [`App::websocket`] and tested with `roundtrip_test::TestClient::websocket`.
pub use axum::extract::ws;

pub use roundtrip_macros::handler;
pub use roundtrip_openapi::HttpUrl;
/// An HTTP method, as routes ([`on`]) and callbacks ([`Callback::on`], [`Callback::also`])
/// name it.
pub use roundtrip_openapi::model::Method;

#[doc(hidden)]
pub mod __private {
    pub use crate::app::HandlerDoc;
    pub use inventory;
}
