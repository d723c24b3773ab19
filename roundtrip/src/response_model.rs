//! Response models: answers filtered through an output type, FastAPI's `response_model=`
//! and `response_model_exclude_unset=`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Method, Uri, header};
use roundtrip_openapi::schema::SchemaRegistry;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A route's response model, as declared (the app fills in what it needs when built).
#[derive(Clone, Copy)]
pub(crate) struct ResponseModelSpec {
    pub(crate) schema: fn(&mut SchemaRegistry) -> Value,
    pub(crate) computed: fn(&mut SchemaRegistry) -> Vec<String>,
    convert: fn(Value) -> Result<Value, String>,
    pub(crate) exclude_unset: bool,
}

impl ResponseModelSpec {
    pub(crate) fn of<M>(exclude_unset: bool) -> Self
    where
        M: Serialize + DeserializeOwned + JsonSchema + 'static,
    {
        ResponseModelSpec {
            schema: |registry| registry.output_schema_for::<M>(),
            computed: |registry| registry.output_only_properties::<M>(),
            convert: |value| {
                let model = M::deserialize(&value).map_err(|e| e.to_string())?;
                serde_json::to_value(model).map_err(|e| e.to_string())
            },
            exclude_unset,
        }
    }

    pub(crate) fn build(self, registry: &mut SchemaRegistry) -> ResponseModel {
        ResponseModel {
            convert: self.convert,
            exclude_unset: self.exclude_unset,
            computed: if self.exclude_unset {
                (self.computed)(registry)
            } else {
                Vec::new()
            },
        }
    }
}

/// What a response model does to each successful JSON answer.
pub(crate) struct ResponseModel {
    convert: fn(Value) -> Result<Value, String>,
    exclude_unset: bool,
    computed: Vec<String>,
}

impl ResponseModel {
    pub(crate) async fn apply(&self, response: Response, method: &Method, uri: &Uri) -> Response {
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let filtered = async {
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .map_err(|e| e.to_string())?;
            let original: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            let mut value = (self.convert)(original.clone())?;
            if self.exclude_unset {
                keep_set(&mut value, &original, &self.computed);
            }
            serde_json::to_vec(&value).map_err(|e| e.to_string())
        };
        match filtered.await {
            Ok(bytes) => {
                parts.headers.remove(header::CONTENT_LENGTH);
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Response::from_parts(parts, Body::from(bytes))
            }
            Err(err) => {
                tracing::error!(
                    method = %method,
                    path = uri.path(),
                    "the answer of {method} {} does not fit its response model: {err}",
                    uri.path()
                );
                crate::scope::internal_server_error()
            }
        }
    }
}

/// Drops the fields of `value` that `original` (the handler's answer) did not have, at
/// every level, except the top-level `computed` ones, which answers always carry.
fn keep_set(value: &mut Value, original: &Value, computed: &[String]) {
    let (Value::Object(fields), Value::Object(set)) = (value, original) else {
        return;
    };
    fields.retain(|name, _| set.contains_key(name) || computed.contains(name));
    for (name, field) in fields.iter_mut() {
        if let Some(set_field) = set.get(name) {
            keep_set(field, set_field, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unset_fields_are_left_out_but_computed_ones_stay() {
        let mut value = json!({"name": "Foo", "price": 50.2, "tags": [], "total": 60.24,
            "owner": {"id": 1, "role": "user"}});
        let original = json!({"name": "Foo", "price": 50.2, "owner": {"id": 1}});
        keep_set(&mut value, &original, &["total".to_owned()]);
        assert_eq!(
            value,
            json!({"name": "Foo", "price": 50.2, "total": 60.24, "owner": {"id": 1}})
        );
    }
}
