//! Checks a document against the OpenAPI specification's own JSON Schema for its version
//! (`schemas/oas-3.1.json`, the 2022-10-07 schema, and `schemas/oas-3.2.json`, the
//! 2025-11-23 schema, both published by the OpenAPI Initiative), and every schema in it
//! against the JSON Schema 2020-12 meta-schema.
//!
//! roundtrip writes 3.1 documents, and 3.2 ones only when they use a 3.2 keyword
//! (`itemSchema`, for server-sent events).

use serde_json::Value;

const OAS_31_SCHEMA: &str = include_str!("../schemas/oas-3.1.json");
const OAS_32_SCHEMA: &str = include_str!("../schemas/oas-3.2.json");
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every way `document` breaks the OpenAPI schema of its version (3.1 or 3.2), or the
/// JSON Schema 2020-12 meta-schema in one of its component schemas; empty when it is
/// valid.
pub fn violations(document: &Value) -> Vec<String> {
    let version = document
        .get("openapi")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (name, text) = if version.starts_with("3.2.") {
        ("3.2", OAS_32_SCHEMA)
    } else {
        ("3.1", OAS_31_SCHEMA)
    };
    let schema: Value = match serde_json::from_str(text) {
        Ok(schema) => schema,
        Err(err) => {
            return vec![format!(
                "the bundled OpenAPI {name} schema does not parse: {err}"
            )];
        }
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(validator) => validator,
        Err(err) => {
            return vec![format!(
                "the bundled OpenAPI {name} schema does not compile: {err}"
            )];
        }
    };
    let mut problems: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, schema) in schemas {
            let mut with_dialect = schema.clone();
            if let Value::Object(map) = &mut with_dialect {
                map.insert(
                    "$schema".to_owned(),
                    Value::String(DRAFT_2020_12.to_owned()),
                );
            }
            if let Err(err) = jsonschema::meta::validate(&with_dialect) {
                problems.push(format!(
                    "components.schemas.{name} is not valid JSON Schema 2020-12: {err}"
                ));
            }
        }
    }
    problems
}

/// Panics with every violation when `document` is not a valid OpenAPI 3.1 document.
///
/// # Panics
///
/// When [`violations`] finds any, or the document is not a 3.1 one.
pub fn assert_valid_openapi_31(document: &Value) {
    assert_eq!(
        document.get("openapi").and_then(Value::as_str),
        Some("3.1.0"),
        "not an OpenAPI 3.1.0 document"
    );
    assert_valid_openapi(document);
}

/// Panics with every violation when `document` is not valid under the OpenAPI version it
/// declares (3.1 or 3.2).
///
/// # Panics
///
/// When [`violations`] finds any.
pub fn assert_valid_openapi(document: &Value) {
    let problems = violations(document);
    assert!(
        problems.is_empty(),
        "the document is not valid OpenAPI:\n  - {}",
        problems.join("\n  - ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_documents_are_valid_and_broken_ones_are_not() {
        let reference: Value = serde_json::from_str(include_str!(
            "../../tests/refs/fastapi/callbacks-openapi.json"
        ))
        .expect("reference parses");
        assert_valid_openapi_31(&reference);
        let broken = json!({"openapi": "3.1.0", "info": {"title": "x"}, "paths": {"/a": {"get": {"responses": {"200": {}}}}}});
        let problems = violations(&broken);
        assert!(!problems.is_empty());
    }

    #[test]
    fn item_schemas_are_valid_in_32_only() {
        let sse = |version: &str| {
            json!({"openapi": version, "info": {"title": "x", "version": "1"}, "paths": {"/e": {"get": {
                "responses": {"200": {"description": "ok", "content": {"text/event-stream": {
                    "itemSchema": {"type": "object"}}}}}}}}})
        };
        assert!(
            violations(&sse("3.2.0")).is_empty(),
            "{:?}",
            violations(&sse("3.2.0"))
        );
        assert!(!violations(&sse("3.1.0")).is_empty());
    }
}
