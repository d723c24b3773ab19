//! Why a subscription operation failed, and what it answers.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use roundtrip_delivery::endpoints::Error as EndpointError;
use roundtrip_openapi::validate::{LocItem, ValidationError};
use serde_json::Value;

use crate::error::{HttpError, RequestValidationError, value_error};
use crate::operation::OperationOutput;

/// Why a subscription operation failed.
///
/// It answers the client as the management API should: 422 in FastAPI's shape for a refused
/// endpoint, 404 for an unknown id, 409 for a duplicate, 503 when the store cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// The endpoint was refused before anything was written; every problem, in FastAPI's
    /// shape.
    Invalid(Vec<ValidationError>),
    /// The endpoint store refused or failed.
    Store(EndpointError),
    /// The endpoint store cannot be opened.
    Unavailable(String),
}

impl SubscriptionError {
    /// The endpoint (URL, event types or secret) was refused.
    pub fn is_invalid(&self) -> bool {
        match self {
            SubscriptionError::Invalid(_) => true,
            SubscriptionError::Store(err) => err.is_invalid(),
            SubscriptionError::Unavailable(_) => false,
        }
    }

    /// No endpoint has the id.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SubscriptionError::Store(err) if err.is_not_found())
    }

    /// Another endpoint has the same URL and event types.
    pub fn is_conflict(&self) -> bool {
        matches!(self, SubscriptionError::Store(err) if err.is_conflict())
    }

    /// The store could not be opened or used right now.
    pub fn is_unavailable(&self) -> bool {
        match self {
            SubscriptionError::Unavailable(_) => true,
            SubscriptionError::Store(err) => err.is_unavailable(),
            SubscriptionError::Invalid(_) => false,
        }
    }

    /// The problems of a refused endpoint.
    pub fn errors(&self) -> &[ValidationError] {
        match self {
            SubscriptionError::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

impl std::fmt::Display for SubscriptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscriptionError::Invalid(errors) => write!(
                f,
                "the webhook endpoint is refused: {}",
                crate::error::summarize(errors)
            ),
            SubscriptionError::Store(err) => err.fmt(f),
            SubscriptionError::Unavailable(reason) => {
                write!(f, "the webhook endpoint store is unavailable: {reason}")
            }
        }
    }
}

impl std::error::Error for SubscriptionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SubscriptionError::Store(err) => Some(err),
            _ => None,
        }
    }
}

impl IntoResponse for SubscriptionError {
    fn into_response(self) -> Response {
        match self {
            SubscriptionError::Invalid(errors) => {
                RequestValidationError::new(errors).into_response()
            }
            SubscriptionError::Store(err) if err.is_not_found() => {
                HttpError::not_found(err.message().to_owned()).into_response()
            }
            SubscriptionError::Store(err) if err.is_conflict() || err.is_disabled() => {
                HttpError::conflict(err.message().to_owned()).into_response()
            }
            SubscriptionError::Store(err) if err.is_invalid() => {
                RequestValidationError::new(vec![value_error(
                    vec![LocItem::key("body")],
                    err.message(),
                    Value::Null,
                )])
                .into_response()
            }
            other => {
                tracing::error!(error = %other, "the webhook endpoint store failed");
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
impl OperationOutput for SubscriptionError {}
