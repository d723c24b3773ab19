//! Properties of the validator on arbitrary input:
//!
//! - it never panics, on any JSON value, parameter object or body bytes;
//! - every error's `loc` starts with the caller's prefix;
//! - what it accepts, serde accepts: a value with no errors deserializes into the Rust
//!   type the schema came from (the framework's contract);
//! - coercion is idempotent: a coerced value validates again unchanged, without errors.

#![allow(clippy::unwrap_used)]
// The models exist for their schemas and `Deserialize`; their fields are not read.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU8;

use proptest::prelude::*;
use roundtrip_openapi::HttpUrl;
use roundtrip_openapi::validate::{LocItem, ValidationError, Validator};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value, json};

#[derive(Debug, Deserialize, JsonSchema)]
struct Item {
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
enum Color {
    Red,
    Green,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "type")]
enum Pet {
    Cat { meows: i32 },
    Dog { barks: f64 },
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
enum Untagged {
    Number(i32),
    Text(String),
}

#[derive(Debug, Deserialize, JsonSchema)]
enum Shape {
    Point,
    Circle { radius: f32 },
    Label(String),
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Tree {
    value: i32,
    #[serde(default)]
    children: Vec<Tree>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Everything {
    small: u8,
    signed: i32,
    big: u64,
    ratio: f32,
    #[schemars(range(min = 1, max = 10))]
    bounded: Option<u16>,
    nonzero: Option<NonZeroU8>,
    set: HashSet<i8>,
    pair: (i32, String),
    map: BTreeMap<String, f64>,
    when: chrono::DateTime<chrono::Utc>,
    day: chrono::NaiveDate,
    local: chrono::NaiveDateTime,
    at: chrono::NaiveTime,
    color: Color,
    pet: Pet,
    either: Untagged,
    shape: Shape,
    tree: Tree,
    url: HttpUrl,
    letter: char,
    flag: bool,
    #[schemars(length(max = 3))]
    few: Vec<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Query {
    #[schemars(length(min = 3, max = 20), pattern("^[a-z]+$"))]
    q: Option<String>,
    #[serde(default)]
    verbose: bool,
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    limit: i64,
    tag: Option<Vec<String>>,
    callback_url: Option<HttpUrl>,
    ratio: Option<f64>,
    color: Option<Color>,
}

struct Case {
    validator: Validator,
    deserializes: fn(&Value) -> Result<(), String>,
    sample: Value,
}

fn deserializes<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
    serde_json::from_value::<T>(value.clone())
        .map(drop)
        .map_err(|e| e.to_string())
}

fn case<T: JsonSchema + DeserializeOwned>(sample: Value) -> Case {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let schema = generator.subschema_for::<T>().to_value();
    let definitions = generator.take_definitions(true);
    let case = Case {
        validator: Validator::new(&schema, &definitions).unwrap(),
        deserializes: deserializes::<T>,
        sample,
    };
    assert_eq!(
        (case.deserializes)(&case.sample),
        Ok(()),
        "the sample must be valid"
    );
    case
}

fn cases() -> Vec<Case> {
    vec![
        case::<Item>(json!({"name": "Foo", "price": 2.5, "tags": ["a", "b"], "description": null})),
        case::<User>(json!({"username": "bob", "address": {"city": "X", "zip": "12345"}})),
        case::<Everything>(json!({
            "small": 7, "signed": -3, "big": 12, "ratio": 0.5, "bounded": 3, "nonzero": null,
            "set": [1, 2], "pair": [1, "a"], "map": {"a": 1.5},
            "when": "2024-01-01T00:00:00Z", "day": "2024-01-01", "local": "2024-01-01T10:00:00",
            "at": "12:00:00", "color": "Red", "pet": {"type": "Cat", "meows": 3},
            "either": 5, "shape": {"Circle": {"radius": 1.0}},
            "tree": {"value": 1, "children": [{"value": 2, "children": []}]},
            "url": "https://example.com/x", "letter": "é", "flag": true, "few": [true]
        })),
    ]
}

fn query_case() -> Case {
    case::<Query>(
        json!({"q": "abc", "verbose": true, "limit": 5, "tag": ["a"], "callback_url": "http://a.com/"}),
    )
}

const INTERESTING: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "2.0",
    "1.5",
    "1e3",
    "1_000",
    " 12 ",
    "9223372036854775808",
    "255",
    "256",
    "-129",
    "yes",
    "off",
    "true",
    "maybe",
    "null",
    "inf",
    "nan",
    "2024-01-01",
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00",
    "2024-01-01 10:00+01:00",
    "2024-02-30",
    "12:00",
    "12:00:00Z",
    "1700000000",
    "http://a.com",
    "HTTPS://A.COM/x",
    "ftp://a",
    "not-a-url",
    "a@b.c",
    "00000000-0000-0000-0000-000000000000",
    "Red",
    "Blue",
    "Cat",
    "Dog",
    "cat",
    "é",
    "ab",
    "abc",
    "ABC",
    "12345",
    "1234",
    "Point",
    "Circle",
];

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(INTERESTING).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-300i64..300).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        prop::sample::select(&[0.0, 0.5, 1.0, 2.0, -1.5, 1e20, 1.7e19][..]).prop_map(Value::from),
        arb_string().prop_map(Value::String),
    ]
}

const KEYS: &[&str] = &[
    "name",
    "price",
    "tags",
    "description",
    "username",
    "address",
    "city",
    "zip",
    "type",
    "meows",
    "barks",
    "value",
    "children",
    "Circle",
    "radius",
    "small",
    "pet",
    "tree",
    "x",
];

fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (prop_oneof![3 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => any::<String>()], inner),
                0..5
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Replaces the `picks`-chosen nodes of `sample` (in depth-first order) with new values.
fn mutate(sample: &Value, edits: &[(usize, Value)]) -> Value {
    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(map) => map.values().map(count).sum(),
            _ => 0,
        }
    }
    fn replace(v: &mut Value, mut target: usize, with: &Value) -> usize {
        if target == 0 {
            *v = with.clone();
            return usize::MAX;
        }
        target -= 1;
        let children: Vec<&mut Value> = match v {
            Value::Array(items) => items.iter_mut().collect(),
            Value::Object(map) => map.values_mut().collect(),
            _ => Vec::new(),
        };
        for child in children {
            let size = count(child);
            if target < size {
                return replace(child, target, with);
            }
            target -= size;
        }
        target
    }
    let mut value = sample.clone();
    for (pick, with) in edits {
        let total = count(&value);
        replace(&mut value, pick % total, with);
    }
    value
}

fn check_errors(errors: &[ValidationError], prefix: &[LocItem]) -> Result<(), TestCaseError> {
    for e in errors {
        prop_assert!(
            e.loc.starts_with(prefix),
            "loc {:?} lacks the prefix",
            e.loc
        );
        prop_assert!(!e.msg.is_empty());
    }
    Ok(())
}

/// Validates `input` with `validate` and checks every property.
fn properties(
    case: &Case,
    mut value: Value,
    validate: impl Fn(&Validator, &mut Value, &[LocItem], &mut Vec<ValidationError>),
) -> Result<(), TestCaseError> {
    let prefix = [LocItem::key("body")];
    let mut errors = Vec::new();
    validate(&case.validator, &mut value, &prefix, &mut errors);
    check_errors(&errors, &prefix)?;
    if errors.is_empty() {
        prop_assert_eq!(
            (case.deserializes)(&value),
            Ok(()),
            "accepted but serde refuses {}",
            value
        );
        let mut again = value.clone();
        validate(&case.validator, &mut again, &prefix, &mut errors);
        prop_assert!(errors.is_empty(), "coerced value fails again: {:?}", errors);
        prop_assert_eq!(again, value, "coercion is not idempotent");
    }
    Ok(())
}

fn body(v: &Validator, value: &mut Value, loc: &[LocItem], errors: &mut Vec<ValidationError>) {
    v.validate(value, loc, errors);
}

fn params(v: &Validator, value: &mut Value, loc: &[LocItem], errors: &mut Vec<ValidationError>) {
    v.validate_params(value, loc, errors);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics_and_accepted_values_deserialize(input in arb_json()) {
        for case in &cases() {
            properties(case, input.clone(), body)?;
        }
        properties(&query_case(), input, params)?;
    }

    #[test]
    fn mutated_samples_keep_the_contract(edits in prop::collection::vec((any::<usize>(), arb_json()), 1..4)) {
        for case in &cases() {
            properties(case, mutate(&case.sample, &edits), body)?;
        }
    }

    #[test]
    fn string_parameters_keep_the_contract(
        pairs in prop::collection::vec(
            (prop::sample::select(&["q", "verbose", "limit", "tag", "callback_url", "ratio", "color", "other"][..]), arb_string()),
            0..8,
        )
    ) {
        let case = query_case();
        let mut object = Map::new();
        for param in case.validator.params() {
            let values: Vec<Value> = pairs
                .iter()
                .filter(|(k, _)| *k == param.name())
                .map(|(_, v)| Value::String(v.clone()))
                .collect();
            if let Some(last) = values.last() {
                let value = if param.is_list() { Value::Array(values.clone()) } else { last.clone() };
                object.insert(param.name().to_owned(), value);
            }
        }
        properties(&case, Value::Object(object), params)?;
    }

    #[test]
    fn malformed_bodies_get_a_located_json_error(bytes in prop::collection::vec(any::<u8>(), 0..64), text in "[\\[\\]{}\",:0-9a-z. \\\\-]{0,40}") {
        for body in [bytes.as_slice(), text.as_bytes()] {
            if let Err(err) = serde_json::from_slice::<Value>(body) {
                let e = ValidationError::json_invalid(&[LocItem::key("body")], body, &err);
                prop_assert_eq!(e.error_type.as_ref(), "json_invalid");
                prop_assert_eq!(&e.loc[0], &LocItem::key("body"));
                let Some(LocItem::Index(position)) = e.loc.get(1) else {
                    return Err(TestCaseError::fail("no position"));
                };
                prop_assert!(*position <= body.len());
                prop_assert!(e.ctx.as_ref().and_then(|c| c.get("error")).and_then(Value::as_str).is_some_and(|m| !m.is_empty()));
            }
        }
    }
}

const STACK: usize = 2 * 1024 * 1024;

/// Runs `f` on a thread with the stack of a tokio worker (2 MiB), as the server would.
fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn nested_tree(levels: usize) -> Value {
    let mut tree = json!({"value": "x", "children": []});
    for _ in 0..levels {
        // Built by hand: `json!` would serialize (deeply recursively) an embedded `Value`.
        let mut node = Map::new();
        node.insert("value".to_owned(), Value::from(0));
        node.insert("children".to_owned(), Value::Array(vec![tree]));
        tree = Value::Object(node);
    }
    tree
}

#[test]
fn the_deepest_body_serde_json_parses_validates_on_a_worker_stack() {
    // serde_json stops at 128 nested arrays and objects: a tree 62 levels deep.
    let text = nested_tree(62).to_string();
    let errors = on_worker_stack(move || {
        let mut value: Value = serde_json::from_str(&text).unwrap();
        let mut errors = Vec::new();
        case_validator_for_tree().validate(&mut value, &[LocItem::key("body")], &mut errors);
        errors
            .into_iter()
            .map(|e| (e.error_type.into_owned(), e.loc.len()))
            .collect::<Vec<_>>()
    });
    assert_eq!(errors, [("int_parsing".to_owned(), 1 + 62 * 2 + 1)]);
}

#[test]
fn deeper_values_are_cut_off_without_overflowing() {
    let found = on_worker_stack(|| {
        let mut value = nested_tree(1000);
        let mut errors = Vec::new();
        case_validator_for_tree().validate(&mut value, &[LocItem::key("body")], &mut errors);
        let found = errors.iter().any(|e| e.error_type == "recursion_loop");
        // Dropping deep values recurses too; take them apart here instead.
        let mut stack = vec![value];
        stack.extend(errors.into_iter().map(|e| e.input));
        while let Some(mut v) = stack.pop() {
            match &mut v {
                Value::Array(items) => stack.append(items),
                Value::Object(map) => stack.extend(std::mem::take(map).into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
        found
    });
    assert!(found);
}

fn case_validator_for_tree() -> Validator {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let schema = generator.subschema_for::<Tree>().to_value();
    Validator::new(&schema, &generator.take_definitions(true)).unwrap()
}
