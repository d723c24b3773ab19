//! The reference files the tests compare against (`tests/refs/` of the repository, see
//! its README), and the comparison of FastAPI's 422 bodies entry by entry.

use serde_json::Value;

/// A JSON file of `tests/refs/fastapi/` (`"guide-openapi.json"`), parsed.
///
/// # Panics
///
/// If the file is missing or is not JSON: the test has nothing to compare against.
pub fn fastapi(name: &str) -> Value {
    let path = format!(
        "{}/../tests/refs/fastapi/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `cases` of a recorded-answers file of `tests/refs/fastapi/`
/// (`"tour-responses.json"`), in order.
pub fn fastapi_cases(name: &str) -> Vec<Value> {
    fastapi(name)["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// How a 422 body's `detail` differs from FastAPI's, entry by entry on `type`, `loc`,
/// `msg`, `input` and `ctx` (the keys clients read); one sentence each, named `case`.
pub fn detail_differences(case: &str, ours: &Value, theirs: &Value) -> Vec<String> {
    let ours = ours["detail"].as_array().cloned().unwrap_or_default();
    let theirs = theirs["detail"].as_array().cloned().unwrap_or_default();
    if ours.len() != theirs.len() {
        return vec![format!(
            "{case}: {} errors instead of {}: {}",
            ours.len(),
            theirs.len(),
            Value::Array(ours)
        )];
    }
    let mut found = Vec::new();
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        for key in ["type", "loc", "msg", "input", "ctx"] {
            if o.get(key) != t.get(key) {
                found.push(format!(
                    "{case} error {i}: {key} is {} instead of {}",
                    o.get(key).map_or("absent".to_owned(), Value::to_string),
                    t.get(key).map_or("absent".to_owned(), Value::to_string)
                ));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_differing_key_is_named() {
        let theirs = json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]});
        assert!(detail_differences("c", &theirs, &theirs).is_empty());
        let ours = json!({"detail": [{"type": "missing", "loc": ["query"], "msg": "Field required", "input": null, "ctx": {}}]});
        let found = detail_differences("c", &ours, &theirs);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("loc"), "{found:?}");
        assert!(
            detail_differences("c", &json!({"detail": []}), &theirs)[0]
                .contains("0 errors instead of 1")
        );
        assert!(!fastapi_cases("guide-responses.json").is_empty());
    }
}
