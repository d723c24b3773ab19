//! The receiving side: an extractor for apps that receive Standard Webhooks, which
//! verifies the signature before the handler sees the payload.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Extension, Router, routing::post};
//! use roundtrip::receive::Verified;
//! use roundtrip::delivery::signing::{Secret, Verifier};
//!
//! async fn on_event(Verified { id, payload, .. }: Verified<serde_json::Value>) -> &'static str {
//!     println!("{id}: {payload}");
//!     "ok"
//! }
//!
//! let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
//! let app: Router = Router::new()
//!     .route("/events", post(on_event))
//!     .layer(Extension(Arc::new(Verifier::new(secret))));
//! ```

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use roundtrip_delivery::signing::{Verifier, VerifyError};
use serde::de::DeserializeOwned;

use crate::error::{HttpError, detail_response};
use crate::operation::OperationInput;

/// A request whose `webhook-signature` was checked against the `Verifier` in the request
/// extensions (add it with `.layer(Extension(Arc::new(verifier)))`), with a timestamp
/// inside the verifier's tolerance (5 minutes by default), and whose body parsed as `T`.
///
/// Deduplicate on `id`: a sender delivers at least once.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The `webhook-id`: the same for every retry of one message.
    pub id: String,
    /// The `webhook-timestamp` of this attempt (Unix seconds).
    pub timestamp: i64,
    /// The payload.
    pub payload: T,
    /// The raw body, exactly as signed.
    pub body: Bytes,
}

/// Why a webhook request was refused.
#[derive(Debug)]
pub enum VerifyRejection {
    /// No `Verifier` was installed in the request extensions: a server bug, 500.
    NoVerifier,
    /// The signature headers are missing, stale or wrong: 401.
    Signature(VerifyError),
    /// The body could not be read: 400.
    Body(String),
    /// The body is not the expected JSON: 400.
    Payload(serde_json::Error),
}

impl IntoResponse for VerifyRejection {
    fn into_response(self) -> Response {
        match self {
            VerifyRejection::NoVerifier => crate::error::operation_error_response(
                "Verified<T> needs a `Verifier` in the request extensions: add `.layer(Extension(Arc::new(verifier)))`",
            ),
            VerifyRejection::Signature(err) => HttpError::new(
                StatusCode::UNAUTHORIZED,
                format!("invalid webhook signature: {err}"),
            )
            .into_response(),
            VerifyRejection::Body(reason) => detail_response(
                StatusCode::BAD_REQUEST,
                &format!("the body could not be read: {reason}"),
            ),
            VerifyRejection::Payload(err) => detail_response(
                StatusCode::BAD_REQUEST,
                &format!("the payload is not the expected JSON: {err}"),
            ),
        }
    }
}

impl<T, S> FromRequest<S> for Verified<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = VerifyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = req
            .extensions()
            .get::<Arc<Verifier>>()
            .cloned()
            .ok_or(VerifyRejection::NoVerifier)?;
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| VerifyRejection::Body(e.body_text()))?;
        let verified = verifier
            .verify(&headers, &body)
            .map_err(VerifyRejection::Signature)?;
        let payload = serde_json::from_slice(&body).map_err(VerifyRejection::Payload)?;
        Ok(Verified {
            id: verified.id,
            timestamp: verified.timestamp,
            payload,
            body,
        })
    }
}

impl<T> OperationInput for Verified<T> {}
