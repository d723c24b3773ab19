//! Pieces of the OpenAPI document shared by operations, callbacks and webhooks: Response
//! Objects declared by hand, JSON Response Objects, and FastAPI's `422`.

use indexmap::IndexMap;
use roundtrip_openapi::model::{MediaType, Operation, Response};
use roundtrip_openapi::schema::{
    SchemaRegistry, component_ref, http_validation_error_schema, validation_error_schema,
};
use schemars::JsonSchema;
use serde_json::Value;

/// A documented response declared by hand, as FastAPI's `responses=`.
#[derive(Clone)]
pub(crate) struct ExtraResponse {
    pub(crate) status: u16,
    pub(crate) description: String,
    pub(crate) schema: Option<fn(&mut SchemaRegistry) -> Value>,
}

impl ExtraResponse {
    pub(crate) fn with_body<T: JsonSchema>(status: u16, description: &str) -> Self {
        ExtraResponse {
            status,
            description: description.to_owned(),
            schema: Some(|r| r.output_schema_for::<T>()),
        }
    }

    pub(crate) fn status_only(status: u16, description: &str) -> Self {
        ExtraResponse {
            status,
            description: description.to_owned(),
            schema: None,
        }
    }

    pub(crate) fn document(
        &self,
        registry: &mut SchemaRegistry,
    ) -> roundtrip_openapi::model::Response {
        match self.schema {
            Some(schema) => json_response_object(&self.description, schema(registry)),
            None => roundtrip_openapi::model::Response {
                description: self.description.clone(),
                ..Default::default()
            },
        }
    }
}

/// A Response Object (not an HTTP response) whose body is JSON of `schema` (`true`, any
/// JSON, is written `{}`).
pub(crate) fn json_response_object(description: &str, schema: Value) -> Response {
    let schema = match schema {
        Value::Bool(true) => Value::Object(Default::default()),
        other => other,
    };
    let mut content = IndexMap::new();
    content.insert(
        "application/json".to_owned(),
        MediaType {
            schema: Some(schema),
            ..MediaType::default()
        },
    );
    Response {
        description: description.to_owned(),
        content,
        ..Response::default()
    }
}

/// Adds FastAPI's `422 Validation Error` response and the components it refers to.
pub(crate) fn add_validation_error_response(registry: &mut SchemaRegistry, op: &mut Operation) {
    if !registry.contains("ValidationError") {
        registry.insert("ValidationError", validation_error_schema());
    }
    if !registry.contains("HTTPValidationError") {
        registry.insert("HTTPValidationError", http_validation_error_schema());
    }
    op.responses.insert(
        "422".to_owned(),
        json_response_object("Validation Error", component_ref("HTTPValidationError")),
    );
}
