//! Compares two OpenAPI documents "in meaning": what a client of the API would notice,
//! not how the JSON is spelled.
//!
//! Two documents have the same meaning when they have the same paths and methods, and
//! for each operation the same operationId, summary, parameters (name, location,
//! required), request body (media types, required, schema types), response codes and
//! descriptions, callbacks (names, expressions, and the same checks on their operations);
//! the same webhooks; and the same component names, with the same properties, required
//! lists and property types. JSON Schema spellings that mean the same thing are equal:
//! `{"type": ["string", "null"]}` and `{"anyOf": [{"type": "string"}, {"type": "null"}]}`
//! are both "string or null", and `format`, `title` and `description` are not compared.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every difference in meaning between `ours` and `reference`, one sentence each; empty
/// when they mean the same.
pub fn differences(ours: &Value, reference: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    compare_path_items(
        "paths",
        ours.get("paths"),
        reference.get("paths"),
        &mut diffs,
    );
    compare_path_items(
        "webhooks",
        ours.get("webhooks"),
        reference.get("webhooks"),
        &mut diffs,
    );
    compare_components(ours, reference, &mut diffs);
    diffs
}

/// Panics with every difference when the documents differ in meaning.
///
/// # Panics
///
/// When [`differences`] finds any.
pub fn assert_same_meaning(ours: &Value, reference: &Value) {
    let diffs = differences(ours, reference);
    assert!(
        diffs.is_empty(),
        "the documents differ in meaning:\n  - {}",
        diffs.join("\n  - ")
    );
}

/// `ours` without the responses it adds on purpose to a reference document, each named as
/// `(path, method, status)`: the 401 of a security scheme, the 404 an example declares...
/// (FastAPI documents neither). Comparing the result with [`assert_same_meaning`] keeps
/// every other difference an error.
///
/// # Panics
///
/// When a named addition is not in `ours`, so the list cannot go stale.
pub fn without_added_responses(ours: &Value, additions: &[(&str, &str, &str)]) -> Value {
    let mut doc = ours.clone();
    for (path, method, status) in additions {
        let removed = doc
            .get_mut("paths")
            .and_then(|paths| paths.get_mut(*path))
            .and_then(|item| item.get_mut(*method))
            .and_then(|op| op.get_mut("responses"))
            .and_then(Value::as_object_mut)
            .and_then(|responses| responses.remove(*status));
        assert!(
            removed.is_some(),
            "the named addition {method} {path} {status} is not in the document"
        );
    }
    doc
}

fn keys(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn compare_keys(
    what: &str,
    ours: &BTreeSet<String>,
    theirs: &BTreeSet<String>,
    diffs: &mut Vec<String>,
) {
    for missing in theirs.difference(ours) {
        diffs.push(format!("{what}: `{missing}` is missing"));
    }
    for extra in ours.difference(theirs) {
        diffs.push(format!("{what}: `{extra}` is extra"));
    }
}

fn compare_path_items(
    what: &str,
    ours: Option<&Value>,
    theirs: Option<&Value>,
    diffs: &mut Vec<String>,
) {
    let (our_keys, their_keys) = (keys(ours), keys(theirs));
    compare_keys(what, &our_keys, &their_keys, diffs);
    for path in our_keys.intersection(&their_keys) {
        let (a, b) = (
            ours.and_then(|o| o.get(path)),
            theirs.and_then(|t| t.get(path)),
        );
        let where_ = format!("{what} {path}");
        let methods = |v: Option<&Value>| -> BTreeSet<String> {
            keys(v)
                .into_iter()
                .filter(|k| METHODS.contains(&k.as_str()))
                .collect()
        };
        let (ma, mb) = (methods(a), methods(b));
        compare_keys(&where_, &ma, &mb, diffs);
        for method in ma.intersection(&mb) {
            compare_operation(
                &format!("{where_} {method}"),
                a.and_then(|v| v.get(method)),
                b.and_then(|v| v.get(method)),
                diffs,
            );
        }
    }
}

fn compare_scalar(what: &str, a: Option<&Value>, b: Option<&Value>, diffs: &mut Vec<String>) {
    if a != b {
        diffs.push(format!(
            "{what}: {} instead of {}",
            a.map_or("nothing".to_owned(), Value::to_string),
            b.map_or("nothing".to_owned(), Value::to_string)
        ));
    }
}

fn compare_operation(what: &str, a: Option<&Value>, b: Option<&Value>, diffs: &mut Vec<String>) {
    let (Some(a), Some(b)) = (a, b) else { return };
    for key in ["operationId", "summary", "description", "deprecated"] {
        compare_scalar(&format!("{what} {key}"), a.get(key), b.get(key), diffs);
    }
    let tags = |v: &Value| -> BTreeSet<String> {
        v.get("tags")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    compare_keys(&format!("{what} tags"), &tags(a), &tags(b), diffs);

    let params = |v: &Value| -> BTreeMap<(String, String), (bool, String)> {
        v.get("parameters")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                        let loc = p.get("in").and_then(Value::as_str).unwrap_or_default();
                        let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
                        let ty = p.get("schema").map(type_signature).unwrap_or_default();
                        ((loc.to_owned(), name.to_owned()), (required, ty))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (pa, pb) = (params(a), params(b));
    for (key, theirs) in &pb {
        match pa.get(key) {
            None => diffs.push(format!(
                "{what}: parameter {} `{}` is missing",
                key.0, key.1
            )),
            Some(ours) if ours != theirs => diffs.push(format!(
                "{what}: parameter {} `{}` is (required {}, {}) instead of (required {}, {})",
                key.0, key.1, ours.0, ours.1, theirs.0, theirs.1
            )),
            Some(_) => {}
        }
    }
    for key in pa.keys().filter(|k| !pb.contains_key(*k)) {
        diffs.push(format!("{what}: parameter {} `{}` is extra", key.0, key.1));
    }

    let body = |v: &Value| -> Option<(bool, BTreeMap<String, String>)> {
        let body = v.get("requestBody")?;
        let required = body
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let content = body
            .get("content")
            .and_then(Value::as_object)
            .map(|c| {
                c.iter()
                    .map(|(media, m)| {
                        (
                            media.clone(),
                            m.get("schema").map(type_signature).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some((required, content))
    };
    let (ba, bb) = (body(a), body(b));
    if ba != bb {
        diffs.push(format!("{what}: request body {ba:?} instead of {bb:?}"));
    }

    let responses = |v: &Value| -> BTreeMap<String, Option<String>> {
        v.get("responses")
            .and_then(Value::as_object)
            .map(|r| {
                r.iter()
                    .map(|(code, resp)| {
                        (
                            code.clone(),
                            resp.get("description")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (ra, rb) = (responses(a), responses(b));
    if ra != rb {
        diffs.push(format!("{what}: responses {ra:?} instead of {rb:?}"));
    }

    let security = |v: &Value| v.get("security").cloned();
    compare_scalar(
        &format!("{what} security"),
        security(a).as_ref(),
        security(b).as_ref(),
        diffs,
    );

    let (ca, cb) = (a.get("callbacks"), b.get("callbacks"));
    let (ka, kb) = (keys(ca), keys(cb));
    compare_keys(&format!("{what} callbacks"), &ka, &kb, diffs);
    for name in ka.intersection(&kb) {
        compare_path_items(
            &format!("{what} callback {name}"),
            ca.and_then(|c| c.get(name)),
            cb.and_then(|c| c.get(name)),
            diffs,
        );
    }
}

fn compare_components(ours: &Value, reference: &Value, diffs: &mut Vec<String>) {
    let schemas = |v: &Value| v.get("components").and_then(|c| c.get("schemas")).cloned();
    let (sa, sb) = (schemas(ours), schemas(reference));
    let (ka, kb) = (keys(sa.as_ref()), keys(sb.as_ref()));
    compare_keys("components.schemas", &ka, &kb, diffs);
    for name in ka.intersection(&kb) {
        let (a, b) = (
            sa.as_ref().and_then(|s| s.get(name)),
            sb.as_ref().and_then(|s| s.get(name)),
        );
        let (Some(a), Some(b)) = (a, b) else { continue };
        let what = format!("components.schemas.{name}");
        let props = |v: &Value| -> BTreeMap<String, String> {
            v.get("properties")
                .and_then(Value::as_object)
                .map(|p| {
                    p.iter()
                        .map(|(k, s)| (k.clone(), type_signature(s)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (pa, pb) = (props(a), props(b));
        for (prop, theirs) in &pb {
            match pa.get(prop) {
                None => diffs.push(format!("{what}: property `{prop}` is missing")),
                Some(ours) if ours != theirs => diffs.push(format!(
                    "{what}: property `{prop}` is {ours} instead of {theirs}"
                )),
                Some(_) => {}
            }
        }
        for prop in pa.keys().filter(|k| !pb.contains_key(*k)) {
            diffs.push(format!("{what}: property `{prop}` is extra"));
        }
        let required = |v: &Value| -> BTreeSet<String> {
            v.get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        compare_keys(
            &format!("{what} required"),
            &required(a),
            &required(b),
            diffs,
        );
        compare_scalar(&format!("{what} type"), a.get("type"), b.get("type"), diffs);
    }
    let schemes = |v: &Value| {
        v.get("components")
            .and_then(|c| c.get("securitySchemes"))
            .cloned()
    };
    compare_scalar(
        "components.securitySchemes",
        schemes(ours).as_ref(),
        schemes(reference).as_ref(),
        diffs,
    );
}

/// A canonical description of what values a schema admits, ignoring spelling:
/// `string|null`, `array<string>`, `ref:Address`, `any`.
pub fn type_signature(schema: &Value) -> String {
    let mut alternatives = BTreeSet::new();
    collect_types(schema, &mut alternatives);
    if alternatives.is_empty() {
        return "any".to_owned();
    }
    alternatives.into_iter().collect::<Vec<_>>().join("|")
}

fn collect_types(schema: &Value, out: &mut BTreeSet<String>) {
    let Some(map) = schema.as_object() else {
        if schema == &Value::Bool(true) {
            out.insert("any".to_owned());
        }
        return;
    };
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        out.insert(format!(
            "ref:{}",
            reference.rsplit('/').next().unwrap_or(reference)
        ));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = map.get(key).and_then(Value::as_array) {
            for branch in branches {
                collect_types(branch, out);
            }
        }
    }
    if let Some([only]) = map
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        collect_types(only, out);
    }
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for t in types {
        match t {
            "array" => {
                let items = map
                    .get("items")
                    .map(type_signature)
                    .unwrap_or_else(|| "any".to_owned());
                out.insert(format!("array<{items}>"));
            }
            // JSON Schema's integer is a number; pydantic says integer where Rust does too.
            other => {
                out.insert(other.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nullable_spellings_are_the_same_type() {
        assert_eq!(
            type_signature(&json!({"type": ["string", "null"]})),
            type_signature(&json!({"anyOf": [{"type": "string"}, {"type": "null"}]}))
        );
        assert_eq!(type_signature(&json!({})), "any");
        assert_eq!(
            type_signature(&json!({"type": "array", "items": {"$ref": "#/components/schemas/A"}})),
            "array<ref:A>"
        );
    }

    #[test]
    fn differences_are_found() {
        let a = json!({"paths": {"/a": {"get": {"operationId": "x", "responses": {"200": {"description": "ok"}}}}}});
        let b = json!({"paths": {"/a": {"get": {"operationId": "y", "responses": {"200": {"description": "ok"}}}}, "/b": {}}});
        let diffs = differences(&a, &b);
        assert!(
            diffs.iter().any(|d| d.contains("`/b` is missing")),
            "{diffs:?}"
        );
        assert!(diffs.iter().any(|d| d.contains("operationId")), "{diffs:?}");
        assert!(differences(&a, &a).is_empty());
    }
}
