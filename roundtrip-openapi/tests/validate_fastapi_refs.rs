//! Replays FastAPI's recorded answers (`tests/refs/fastapi/`) through validators
//! compiled from schemars schemas of Rust versions of the same models, and requires the
//! same 422 bodies, byte for byte.
//!
//! The harness plays the framework's part: it routes, builds parameter objects from
//! strings, parses bodies, runs the fast path, then the validator, then deserializes the
//! Rust type from the coerced value.

#![allow(clippy::unwrap_used)]
// The models mirror FastAPI's; the tests deserialize them but read few fields.
#![allow(dead_code)]

use std::collections::HashSet;

use roundtrip_openapi::HttpUrl;
use roundtrip_openapi::validate::{LocItem, ValidationError, Validator};
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

// ---- callbacks_tutorial001.py ----

#[derive(Debug, Deserialize, JsonSchema)]
struct Invoice {
    id: String,
    title: Option<String>,
    customer: String,
    total: f64,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct InvoiceQuery {
    callback_url: Option<HttpUrl>,
}

// ---- tour.py ----

#[derive(Debug, Deserialize, JsonSchema)]
struct Item {
    /// The item's name
    #[schemars(length(min = 1, max = 50))]
    name: String,
    #[schemars(extend("exclusiveMinimum" = 0))]
    price: f64,
    #[serde(default)]
    tags: Vec<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Address {
    city: String,
    #[schemars(regex(pattern = r"^\d{5}$"))]
    zip: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct User {
    username: String,
    address: Address,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ReadItemPath {
    #[schemars(range(min = 1), title = "The ID of the item")]
    item_id: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ItemIdPath {
    item_id: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ReadItemQuery {
    #[schemars(length(min = 3, max = 20), pattern("^[a-z]+$"))]
    q: Option<String>,
    #[serde(default)]
    verbose: bool,
}

fn default_limit() -> i64 {
    10
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ListItemsQuery {
    #[serde(default)]
    skip: i64,
    #[serde(default = "default_limit")]
    #[schemars(range(max = 100))]
    limit: i64,
    tag: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ReplaceItemHeaders {
    #[serde(rename = "x-request-id")]
    x_request_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct LoginForm {
    username: String,
    password: String,
}

/// A compiled schema plus the typed check the framework does after validation.
struct Part {
    validator: Validator,
    /// Deserializes the Rust type from a value: the fast path, and the last step.
    typed: fn(&Value) -> bool,
}

fn typed<T: DeserializeOwned>(value: &Value) -> bool {
    serde_json::from_value::<T>(value.clone()).is_ok()
}

fn part<T: JsonSchema + DeserializeOwned>() -> Part {
    let mut generator: SchemaGenerator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let schema = generator.subschema_for::<T>().to_value();
    let definitions = generator.take_definitions(true);
    Part {
        validator: Validator::new(&schema, &definitions).unwrap(),
        typed: typed::<T>,
    }
}

enum Body {
    None,
    Json(Part),
    Form(Part),
}

struct Operation {
    method: &'static str,
    template: &'static str,
    path: Option<Part>,
    query: Option<Part>,
    header: Option<Part>,
    body: Body,
}

fn operations() -> Vec<Operation> {
    vec![
        Operation {
            method: "POST",
            template: "/invoices/",
            path: None,
            query: Some(part::<InvoiceQuery>()),
            header: None,
            body: Body::Json(part::<Invoice>()),
        },
        Operation {
            method: "GET",
            template: "/items/{item_id}",
            path: Some(part::<ReadItemPath>()),
            query: Some(part::<ReadItemQuery>()),
            header: None,
            body: Body::None,
        },
        Operation {
            method: "GET",
            template: "/items/",
            path: None,
            query: Some(part::<ListItemsQuery>()),
            header: None,
            body: Body::None,
        },
        Operation {
            method: "POST",
            template: "/items/",
            path: None,
            query: None,
            header: None,
            body: Body::Json(part::<Item>()),
        },
        Operation {
            method: "PUT",
            template: "/items/{item_id}",
            path: Some(part::<ItemIdPath>()),
            query: None,
            header: Some(part::<ReplaceItemHeaders>()),
            body: Body::Json(part::<Item>()),
        },
        Operation {
            method: "POST",
            template: "/users/",
            path: None,
            query: None,
            header: None,
            body: Body::Json(part::<User>()),
        },
        Operation {
            method: "POST",
            template: "/users/login",
            path: None,
            query: None,
            header: None,
            body: Body::Form(part::<LoginForm>()),
        },
    ]
}

fn refs(file: &str) -> Vec<Value> {
    let path = format!(
        "{}/../tests/refs/fastapi/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

/// The path parameters of `path` under `template`, or `None` when it does not match.
fn match_path(template: &str, path: &str) -> Option<Map<String, Value>> {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut params = Map::new();
    for (t, p) in t.iter().zip(&p) {
        match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(name) if !p.is_empty() => {
                params.insert(name.to_owned(), Value::String((*p).to_owned()));
            }
            None if t == p => {}
            _ => return None,
        }
    }
    Some(params)
}

/// Builds the object of one parameter location, as the framework does: a list-typed
/// parameter collects every occurrence, any other takes the last.
fn param_object(validator: &Validator, pairs: &[(String, String)]) -> Value {
    let mut object = Map::new();
    for param in validator.params() {
        let values: Vec<&String> = pairs
            .iter()
            .filter(|(k, _)| k == param.name())
            .map(|(_, v)| v)
            .collect();
        if values.is_empty() {
            continue;
        }
        let value = if param.is_list() {
            Value::Array(
                values
                    .into_iter()
                    .map(|v| Value::String(v.clone()))
                    .collect(),
            )
        } else {
            Value::String(values[values.len() - 1].clone())
        };
        object.insert(param.name().to_owned(), value);
    }
    Value::Object(object)
}

/// Validates one parameter location, the way the framework will: fast path first.
fn run_params(part: &Part, mut object: Value, loc: &str, errors: &mut Vec<ValidationError>) {
    if part.validator.serde_covers() && (part.typed)(&object) {
        return;
    }
    let before = errors.len();
    part.validator
        .validate_params(&mut object, &[LocItem::key(loc)], errors);
    if errors.len() == before {
        assert!(
            (part.typed)(&object),
            "validated {loc} object does not deserialize: {object}"
        );
    }
}

fn run_body(part: &Part, mut body: Value, errors: &mut Vec<ValidationError>) {
    if part.validator.serde_covers() && (part.typed)(&body) {
        return;
    }
    let before = errors.len();
    part.validator
        .validate(&mut body, &[LocItem::key("body")], errors);
    if errors.len() == before {
        assert!(
            (part.typed)(&body),
            "validated body does not deserialize: {body}"
        );
    }
}

/// FastAPI's `detail` for one recorded request.
fn replay(ops: &[Operation], request: &Value) -> Vec<ValidationError> {
    let method = request["method"].as_str().unwrap();
    let url = request["url"].as_str().unwrap();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let (op, path_params) = ops
        .iter()
        .filter(|op| op.method == method)
        .find_map(|op| match_path(op.template, path).map(|p| (op, p)))
        .unwrap_or_else(|| panic!("no operation for {method} {url}"));
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let headers: Vec<(String, String)> = request["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    (
                        k.to_ascii_lowercase(),
                        v.as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();

    // FastAPI's order: path, query, header, cookie parameters, then the body.
    let mut errors = Vec::new();
    if let Some(part) = &op.path {
        run_params(part, Value::Object(path_params), "path", &mut errors);
    }
    if let Some(part) = &op.query {
        run_params(
            part,
            param_object(&part.validator, &query),
            "query",
            &mut errors,
        );
    }
    if let Some(part) = &op.header {
        run_params(
            part,
            param_object(&part.validator, &headers),
            "header",
            &mut errors,
        );
    }
    match &op.body {
        Body::None => {}
        Body::Json(part) => {
            if let Some(json) = request.get("json") {
                run_body(part, json.clone(), &mut errors);
            } else if let Some(content) = request.get("content").and_then(Value::as_str) {
                match serde_json::from_str::<Value>(content) {
                    Ok(body) => run_body(part, body, &mut errors),
                    Err(err) => errors.push(ValidationError::json_invalid(
                        &[LocItem::key("body")],
                        content.as_bytes(),
                        &err,
                    )),
                }
            } else if let Some(form) = request.get("data").and_then(Value::as_object) {
                // A form sent to a JSON endpoint: FastAPI hands the raw text to the model.
                let text = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(
                        form.iter()
                            .map(|(k, v)| (k, v.as_str().unwrap_or_default())),
                    )
                    .finish();
                errors.push(ValidationError::model_attributes_type(
                    vec![LocItem::key("body")],
                    Value::String(text),
                ));
            } else {
                errors.push(ValidationError::missing(vec![LocItem::key("body")]));
            }
        }
        Body::Form(part) => {
            let pairs: Vec<(String, String)> = request["data"]
                .as_object()
                .map(|d| {
                    d.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            run_params(
                part,
                param_object(&part.validator, &pairs),
                "body",
                &mut errors,
            );
        }
    }
    errors
}

fn assert_replays(file: &str, names: &[&str]) {
    let ops = operations();
    let cases = refs(file);
    let mut seen = HashSet::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        if !names.contains(&name) {
            continue;
        }
        seen.insert(name);
        let errors = replay(&ops, &case["request"]);
        let status = case["status_code"].as_u64().unwrap();
        if status == 422 {
            // Compare wire bytes: key order, float spelling and all.
            let expected: Value = serde_json::from_str(case["raw_body"].as_str().unwrap()).unwrap();
            let ours = serde_json::to_string(&json!({ "detail": errors })).unwrap();
            assert_eq!(
                ours,
                serde_json::to_string(&expected).unwrap(),
                "case {name}"
            );
            assert_eq!(
                ours,
                case["raw_body"].as_str().unwrap(),
                "case {name} (raw bytes)"
            );
        } else {
            assert!(
                errors.is_empty(),
                "case {name} should pass, got {}",
                serde_json::to_string(&errors).unwrap()
            );
        }
    }
    for name in names {
        assert!(
            seen.contains(name),
            "reference case {name} not found in {file}"
        );
    }
}

#[test]
fn callbacks_tutorial_cases_match_fastapi() {
    assert_replays(
        "validation-errors.json",
        &[
            "ok",
            "a_missing_required_field",
            "b_wrong_type",
            "c_malformed_json",
            "d_bad_callback_url",
            "e_missing_body",
            "f_multiple_errors",
            "g_callback_url_bad_scheme",
        ],
    );
}

#[test]
fn tour_cases_match_fastapi() {
    assert_replays(
        "tour-responses.json",
        &[
            "path_int_parsing",
            "path_ge",
            "query_too_short",
            "query_pattern",
            "query_bool",
            "query_bool_ok",
            "dependency_query_le",
            "list_query",
            "body_constraints",
            "body_created",
            "missing_header",
            "nested_body",
            "nested_missing",
            "form_missing",
            "form_ok",
            "wrong_content_type",
            "body_not_object",
        ],
    );
}

#[test]
fn serde_covers_plain_types_only() {
    assert!(part::<Invoice>().validator.serde_covers());
    assert!(part::<InvoiceQuery>().validator.serde_covers());
    assert!(part::<LoginForm>().validator.serde_covers());
    assert!(!part::<Item>().validator.serde_covers());
    assert!(!part::<User>().validator.serde_covers());
    assert!(!part::<ReadItemQuery>().validator.serde_covers());
    assert!(!part::<ListItemsQuery>().validator.serde_covers());
}

#[test]
fn coerced_values_deserialize_into_the_rust_types() {
    let item = part::<Item>();
    let mut body = json!({"name": "Foo", "price": "2", "tags": ["a"]});
    let mut errors = Vec::new();
    item.validator
        .validate(&mut body, &[LocItem::key("body")], &mut errors);
    assert!(errors.is_empty());
    let item: Item = serde_json::from_value(body).unwrap();
    assert_eq!(
        (
            item.name.as_str(),
            item.price,
            item.tags.len(),
            item.description
        ),
        ("Foo", 2.0, 1, None)
    );

    let query = part::<ListItemsQuery>();
    let mut params = json!({"skip": "5", "tag": ["a", "b"]});
    query
        .validator
        .validate_params(&mut params, &[LocItem::key("query")], &mut errors);
    assert!(errors.is_empty());
    let q: ListItemsQuery = serde_json::from_value(params).unwrap();
    assert_eq!(
        (q.skip, q.limit, q.tag),
        (5, 10, Some(vec!["a".to_owned(), "b".to_owned()]))
    );
}
