//! The event catalogue: the document's `webhooks` and every operation's callbacks, each with
//! its payload schema (references inlined) and an example made from it.

use roundtrip_openapi::model::{OpenApi, Operation};
use serde_json::{Map, Value, json};

use super::models::{DeliveryKind, EventInfo};

/// How deep references are inlined and examples are made; deeper (or recursive) schemas
/// stop there, with the reference kept or `null` as the example.
const MAX_DEPTH: usize = 12;

/// The catalogue of `doc`: webhooks first, then callbacks, in the document's order.
pub(crate) fn catalogue(doc: &OpenApi) -> Vec<EventInfo> {
    let mut events = Vec::new();
    for (name, item) in &doc.webhooks {
        for (method, op) in item.operations() {
            events.push(event(
                doc,
                DeliveryKind::Webhook,
                name,
                method.as_upper(),
                op,
                None,
                None,
            ));
        }
    }
    for (path, method, op) in doc.operations() {
        for (name, callback) in &op.callbacks {
            for (expression, item) in callback {
                for (cb_method, cb_op) in item.operations() {
                    events.push(event(
                        doc,
                        DeliveryKind::Callback,
                        name,
                        cb_method.as_upper(),
                        cb_op,
                        Some(format!("{} {path}", method.as_upper())),
                        Some(expression.clone()),
                    ));
                }
            }
        }
    }
    events
}

fn event(
    doc: &OpenApi,
    kind: DeliveryKind,
    name: &str,
    method: &str,
    op: &Operation,
    operation: Option<String>,
    url_expression: Option<String>,
) -> EventInfo {
    let schema = op
        .request_body
        .as_ref()
        .and_then(|body| {
            body.content
                .get("application/json")
                .or_else(|| body.content.values().next())
        })
        .and_then(|media| media.schema.clone())
        .unwrap_or(Value::Bool(true));
    let schema = inline(doc, &schema, 0);
    EventInfo {
        kind,
        name: name.to_owned(),
        method: method.to_ascii_uppercase(),
        operation,
        url_expression,
        description: op.description.clone().or_else(|| op.summary.clone()),
        example: example(&schema, 0),
        schema,
    }
}

/// `schema` with its `#/components/schemas/...` references replaced by what they name.
fn inline(doc: &OpenApi, schema: &Value, depth: usize) -> Value {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref")
                && let Some(name) = target.strip_prefix("#/components/schemas/")
                && let Some(found) = doc.components.schemas.get(name)
                && depth < MAX_DEPTH
            {
                return inline(doc, found, depth + 1);
            }
            let mut out = Map::with_capacity(map.len());
            for (key, value) in map {
                out.insert(key.clone(), inline(doc, value, depth + 1));
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| inline(doc, v, depth + 1)).collect())
        }
        other => other.clone(),
    }
}

/// An example value for `schema`: its own example or default if it has one, otherwise a
/// plausible value of its type, with every property of an object.
pub(crate) fn example(schema: &Value, depth: usize) -> Value {
    let Value::Object(map) = schema else {
        return Value::Null;
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(Value::Array(examples)) = map.get("examples")
        && let Some(first) = examples.first()
    {
        return first.clone();
    }
    for key in ["example", "default", "const"] {
        if let Some(value) = map.get(key) {
            return value.clone();
        }
    }
    if let Some(Value::Array(values)) = map.get("enum")
        && let Some(first) = values.first()
    {
        return first.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(choices)) = map.get(key) {
            let choice = choices
                .iter()
                .find(|c| c.get("type") != Some(&json!("null")))
                .or_else(|| choices.first());
            if let Some(choice) = choice {
                return example(choice, depth + 1);
            }
        }
    }
    if let Some(Value::Array(parts)) = map.get("allOf") {
        let mut merged = Map::new();
        for part in parts {
            match example(part, depth + 1) {
                Value::Object(fields) => merged.extend(fields),
                other if parts.len() == 1 => return other,
                _ => {}
            }
        }
        return Value::Object(merged);
    }
    let kind = match map.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if map.contains_key("properties") => "object",
        _ => return Value::Null,
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            if let Some(Value::Object(properties)) = map.get("properties") {
                for (name, property) in properties {
                    out.insert(name.clone(), example(property, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let item = map
                .get("items")
                .map(|items| example(items, depth + 1))
                .unwrap_or(Value::Null);
            let min = map
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1);
            Value::Array(vec![item; min.min(3) as usize])
        }
        "string" => Value::String(string_example(map)),
        "integer" => {
            let min = map.get("minimum").and_then(Value::as_i64);
            let exclusive = map.get("exclusiveMinimum").and_then(Value::as_i64);
            json!(exclusive.map(|m| m + 1).or(min).unwrap_or(0).max(0))
        }
        "number" => {
            let min = map.get("minimum").and_then(Value::as_f64);
            let exclusive = map.get("exclusiveMinimum").and_then(Value::as_f64);
            json!(exclusive.map(|m| m + 1.0).or(min).unwrap_or(0.0).max(0.0))
        }
        "boolean" => Value::Bool(true),
        _ => Value::Null,
    }
}

fn string_example(map: &Map<String, Value>) -> String {
    let text = match map.get("format").and_then(Value::as_str) {
        Some("date-time") => "2026-01-01T12:00:00Z",
        Some("date") => "2026-01-01",
        Some("time") => "12:00:00Z",
        Some("email") => "user@example.com",
        Some("uri" | "url") => "https://example.com/",
        Some("uuid") => "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        _ => "string",
    };
    let min = map.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = map
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    let mut text = text.to_owned();
    while text.chars().count() < min.min(1024) {
        text.push('x');
    }
    if let Some(max) = max
        && text.chars().count() > max
    {
        text = text.chars().take(max).collect();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_follow_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "email": {"type": "string", "format": "email"},
                "status": {"enum": ["paid", "void"]},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}},
                "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
                "at": {"type": "string", "format": "date-time"},
            }
        });
        assert_eq!(
            example(&schema, 0),
            json!({"id": 1, "email": "user@example.com", "status": "paid", "tags": ["str"],
                   "note": "string", "at": "2026-01-01T12:00:00Z"})
        );
    }

    #[test]
    fn recursive_schemas_stop() {
        let mut doc = OpenApi::new("t", "1");
        doc.components.schemas.insert(
            "Node".into(),
            json!({"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}}),
        );
        let inlined = inline(&doc, &json!({"$ref": "#/components/schemas/Node"}), 0);
        let made = example(&inlined, 0);
        assert!(made.is_object());
    }
}
