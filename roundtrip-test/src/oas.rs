//! Checks a document against the OpenAPI 3.1 specification's own JSON Schema
//! (`schemas/oas-3.1.json`, the 2022-10-07 schema published by the OpenAPI Initiative),
//! and every schema in it against the JSON Schema 2020-12 meta-schema.

use serde_json::Value;

const OAS_31_SCHEMA: &str = include_str!("../schemas/oas-3.1.json");
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every way `document` breaks the OpenAPI 3.1 schema, or the JSON Schema 2020-12
/// meta-schema in one of its component schemas; empty when it is valid.
pub fn violations(document: &Value) -> Vec<String> {
    let schema: Value = match serde_json::from_str(OAS_31_SCHEMA) {
        Ok(schema) => schema,
        Err(err) => {
            return vec![format!(
                "the bundled OpenAPI 3.1 schema does not parse: {err}"
            )];
        }
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(validator) => validator,
        Err(err) => {
            return vec![format!(
                "the bundled OpenAPI 3.1 schema does not compile: {err}"
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
/// When [`violations`] finds any.
pub fn assert_valid_openapi_31(document: &Value) {
    let problems = violations(document);
    assert!(
        problems.is_empty(),
        "the document is not valid OpenAPI 3.1:\n  - {}",
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
}
