//! Why a deliveries operation failed, and what it answers.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use roundtrip_openapi::validate::ValidationError;

use crate::error::{HttpError, RequestValidationError};
use crate::operation::OperationOutput;

/// Why a deliveries operation failed. It answers as the API should: FastAPI's 422 for a
/// refused input, 404 for an unknown id, 409 for a state that forbids it, 503 when the
/// store cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The input was refused; every problem, in FastAPI's shape.
    Invalid(Vec<ValidationError>),
    /// Nothing has the id.
    NotFound(String),
    /// The message or endpoint is in a state that forbids the operation.
    Conflict(String),
    /// The store cannot be used right now.
    Unavailable(String),
    /// The webhook endpoint store refused or failed.
    Subscriptions(crate::subscriptions::SubscriptionError),
}

impl DeliveryError {
    pub(super) fn store(err: roundtrip_delivery::outbox::Error) -> Self {
        if err.is_not_found() {
            DeliveryError::NotFound(err.to_string())
        } else if err.is_conflict() {
            DeliveryError::Conflict(err.to_string())
        } else {
            DeliveryError::Unavailable(err.to_string())
        }
    }

    /// The problems of a refused input.
    pub fn errors(&self) -> &[ValidationError] {
        match self {
            DeliveryError::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Invalid(errors) => {
                write!(f, "refused: {}", crate::error::summarize(errors))
            }
            DeliveryError::NotFound(m) | DeliveryError::Conflict(m) => f.write_str(m),
            DeliveryError::Unavailable(m) => write!(f, "the outbox is unavailable: {m}"),
            DeliveryError::Subscriptions(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for DeliveryError {}

impl IntoResponse for DeliveryError {
    fn into_response(self) -> Response {
        match self {
            DeliveryError::Invalid(errors) => RequestValidationError::new(errors).into_response(),
            DeliveryError::NotFound(m) => HttpError::not_found(m).into_response(),
            DeliveryError::Conflict(m) => HttpError::conflict(m).into_response(),
            DeliveryError::Subscriptions(err) => err.into_response(),
            DeliveryError::Unavailable(m) => {
                tracing::error!(error = %m, "the deliveries API cannot use the outbox");
                HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
                    .header(
                        http::header::RETRY_AFTER,
                        http::HeaderValue::from_static("5"),
                    )
                    .into_response()
            }
        }
    }
}

/// Not documented, as FastAPI documents no `HTTPException`: the router declares its 404 and
/// 409 on each operation, and the 422 comes with every operation that has input.
impl OperationOutput for DeliveryError {}
