//! `Json<T>`: a JSON request body, validated and documented; and a JSON response.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use roundtrip_openapi::validate::{LocItem, ValidationError};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::validation::type_validator;
use super::{BodyKind, BodyRejection, body_kind, read_body};
use crate::error::{RequestValidationError, json_response};
use crate::operation::{OperationContext, OperationInput, OperationOutput};

/// A JSON body: in a handler's arguments, the request body parsed and validated against
/// `T`'s schema; as a return value, `T` serialized with `application/json`.
///
/// Every error in the body is reported at once, in FastAPI's shape, with `loc` starting
/// at `body`. Values are read in pydantic's lax mode, so `"9999"` is accepted for a number
/// as FastAPI accepts it.
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct Json<T>(pub T);

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned + JsonSchema + 'static,
    S: Send + Sync,
{
    type Rejection = BodyRejection;

    // Not an `async fn`: the headers are read and the request taken apart first, so the
    // future holds the body alone (see `read_body`).
    fn from_request(
        req: Request,
        _state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let kind = body_kind(req.headers());
        let slot = req
            .extensions()
            .get::<crate::extract::request::OperationRequest>()
            .and_then(|operation| operation.body.clone());
        let body = read_body(req);
        async move {
            let bytes = body.await?;
            if let Some(slot) = slot {
                slot.fill(bytes.clone());
            }
            match kind {
                BodyKind::Json => {}
                BodyKind::Form | BodyKind::Missing if !bytes.is_empty() => {
                    // FastAPI hands a form body, or one without a Content-Type (strict
                    // Content-Type, FastAPI 0.165), to a JSON model as a string, which the
                    // model refuses as "not a dictionary"; clients see the same 422.
                    return Err(single_error(ValidationError::model_attributes_type(
                        vec![body_loc()],
                        Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                    )));
                }
                BodyKind::Form | BodyKind::Missing => {}
                BodyKind::Other(content_type) => {
                    return Err(BodyRejection::unsupported(
                        &content_type,
                        "application/json",
                    ));
                }
            }
            parse_json::<T>(&bytes).map(Json)
        }
    }
}

fn body_loc() -> LocItem {
    LocItem::Key("body".to_owned())
}

fn single_error(error: ValidationError) -> BodyRejection {
    BodyRejection::Invalid(RequestValidationError::new(vec![error]))
}

/// Parses and validates a JSON body: serde straight into `T` first, and the schema's
/// validator only where it is needed (constraints, or serde refused the input).
pub(crate) fn parse_json<T>(bytes: &Bytes) -> Result<T, BodyRejection>
where
    T: DeserializeOwned + JsonSchema + 'static,
{
    if bytes.is_empty() {
        return Err(single_error(ValidationError::missing(vec![body_loc()])));
    }
    let bytes = super::strip_bom(bytes);
    let validator = type_validator::<T>().ok();
    if validator.is_none_or(|v| v.serde_covers)
        && let Ok(value) = serde_json::from_slice::<T>(bytes)
    {
        return Ok(value);
    }
    let mut value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(err) => {
            return Err(single_error(ValidationError::json_invalid(
                &[body_loc()],
                bytes,
                &err,
            )));
        }
    };
    if let Some(tv) = validator {
        let mut errors = Vec::new();
        tv.validator
            .validate(&mut value, &[body_loc()], &mut errors);
        if !errors.is_empty() {
            return Err(BodyRejection::Invalid(RequestValidationError::new(errors)));
        }
    }
    deserialize_value(value, vec![body_loc()]).map_err(|err| {
        let keys = validator
            .map(|tv| tv.validator.secret_keys())
            .unwrap_or(&[]);
        let mut errors = err.into_errors();
        for error in &mut errors {
            roundtrip_openapi::validate::hide_secrets(error, keys);
        }
        BodyRejection::Invalid(RequestValidationError::new(errors))
    })
}

/// Deserializes a value the validator accepted. A failure here means serde and the
/// schema disagree (a custom `Deserialize`, say); it is still the client's input that
/// was refused, so it is a 422 naming serde's reason.
pub(crate) fn deserialize_value<T: DeserializeOwned>(
    value: Value,
    loc: Vec<LocItem>,
) -> Result<T, RequestValidationError> {
    // Borrowed: the value is needed again only to echo it in an error.
    T::deserialize(&value).map_err(|err| {
        RequestValidationError::new(vec![ValidationError {
            error_type: "value_error".into(),
            loc,
            msg: format!("Value error, {err}"),
            input: value,
            ctx: None,
        }])
    })
}

impl<T: JsonSchema + 'static> OperationInput for Json<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let schema = ctx.schema_for::<T>();
        ctx.set_request_body("application/json", schema, true);
        ctx.shares_body = true;
        if let Err(err) = type_validator::<T>() {
            ctx.error(err);
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => json_response(StatusCode::OK, body),
            Err(err) => crate::error::operation_error_response(&format!(
                "failed to serialize a JSON response: {err}"
            )),
        }
    }
}

impl<T: JsonSchema> OperationOutput for Json<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let schema = ctx.output_schema_for::<T>();
        ctx.success(None, Some(("application/json", schema)));
    }
}

impl<T: JsonSchema> OperationOutput for axum::Json<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let schema = ctx.output_schema_for::<T>();
        ctx.success(None, Some(("application/json", schema)));
    }
}

impl<T: JsonSchema> OperationInput for axum::Json<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let schema = ctx.schema_for::<T>();
        ctx.set_request_body("application/json", schema, true);
    }
}
