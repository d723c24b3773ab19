//! Checking a template against the operation it is attached to, so that a callback that
//! builds is a callback that can be sent.
//!
//! In roundtrip an expression decides where a message goes, so it is checked like code:
//! every parameter it reads must be declared by the operation, and every body path must
//! be one the body's schema can have. A value that is declared but optional passes; when
//! it is absent at run time, evaluation reports it as missing.

use std::fmt;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::ast::{BodyRef, ParamName, RuntimeExpr, Source};
use super::pointer::{JsonPointer, array_index};
use super::template::Template;
use crate::model::{MediaType, Operation, ParameterIn, SecurityScheme};
use crate::schema::COMPONENTS_PREFIX;

/// What an operation declares, as the expressions of its callbacks read it.
///
/// Names are the wire names the document publishes; schemas may be `$ref`s into
/// `definitions` (the registry's components).
#[derive(Debug, Clone)]
pub struct Declared<'a> {
    /// How messages name the operation, such as `POST /shipments/`.
    pub operation: String,
    /// The query parameters.
    pub query: Vec<String>,
    /// The path parameters.
    pub path: Vec<String>,
    /// The request headers, parameters and API keys alike (compared without regard to case).
    pub headers: Vec<String>,
    /// The cookies (runtime expressions cannot read them; named in messages only).
    pub cookies: Vec<String>,
    /// The request body: its media type and schema.
    pub body: Option<(String, Value)>,
    /// The success response: its status, and its media type and schema when it has a body.
    pub response: (u16, Option<(String, Value)>),
    /// The component schemas that `$ref`s point into.
    pub definitions: &'a Map<String, Value>,
}

impl<'a> Declared<'a> {
    /// What a documented operation declares: its parameters (and the path template's),
    /// the header API keys its security requirements name, its request body, and the
    /// response of `status`.
    pub fn from_operation(
        name: impl Into<String>,
        operation: &Operation,
        path_params: &[String],
        status: u16,
        security_schemes: &IndexMap<String, SecurityScheme>,
        definitions: &'a Map<String, Value>,
    ) -> Self {
        let named = |location: ParameterIn| -> Vec<String> {
            operation
                .parameters
                .iter()
                .filter(|p| p.location == location)
                .map(|p| p.name.clone())
                .collect()
        };
        let mut path = path_params.to_vec();
        for name in named(ParameterIn::Path) {
            if !path.contains(&name) {
                path.push(name);
            }
        }
        let mut headers = named(ParameterIn::Header);
        for scheme in operation.security.iter().flatten().flat_map(|r| r.keys()) {
            if let Some(SecurityScheme::ApiKey {
                name,
                location: ParameterIn::Header,
                ..
            }) = security_schemes.get(scheme)
            {
                headers.push(name.clone());
            }
        }
        let first_content = |content: &IndexMap<String, MediaType>| {
            content.iter().next().map(|(media, m)| {
                let schema = m.schema.clone().unwrap_or(Value::Bool(true));
                (media.clone(), schema)
            })
        };
        Declared {
            operation: name.into(),
            query: named(ParameterIn::Query),
            path,
            headers,
            cookies: named(ParameterIn::Cookie),
            body: operation
                .request_body
                .as_ref()
                .and_then(|b| first_content(&b.content)),
            response: (
                status,
                operation
                    .responses
                    .get(&status.to_string())
                    .and_then(|r| first_content(&r.content)),
            ),
            definitions,
        }
    }
}

/// An expression that does not fit the operation it is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    template: String,
    position: usize,
    expression: RuntimeExpr,
    message: String,
}

impl Mismatch {
    /// The template, as written.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The position of the expression's `$` in the template, counted in characters from 1.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The expression, as written.
    pub fn expression(&self) -> &RuntimeExpr {
        &self.expression
    }

    /// What is wrong, and what the operation declares instead.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{{{}}}\" at position {} of \"{}\": {}",
            self.expression, self.position, self.template, self.message
        )
    }
}

impl std::error::Error for Mismatch {}

impl Template {
    /// Checks every expression against what the operation declares, and binds FastAPI's
    /// `$callback_url` to the one input it names: the template to evaluate for this
    /// operation, or every mismatch found.
    ///
    /// - `$request.query.x`, `$request.path.x` and `$request.header.x` must name a
    ///   declared parameter (a header without regard to case);
    /// - `$request.body#/a/b` must be a path the request body's JSON schema can have, and
    ///   `$response.body#/a/b` one the success response's can have (following `$ref`,
    ///   `properties`, `items`, `anyOf`/`oneOf`/`allOf` and `additionalProperties`); the
    ///   value there must be able to be a string, number or boolean;
    /// - `$callback_url` must name exactly one declared query, path or header parameter
    ///   or top-level body field called `callback_url`;
    /// - `$url`, `$method`, `$statusCode` and `$response.header.x` are always accepted
    ///   (response headers are not described by the document).
    pub fn check(&self, declared: &Declared<'_>) -> Result<Template, Vec<Mismatch>> {
        let mut mismatches = Vec::new();
        let mut callback_url = None;
        for (position, expr) in self.positioned_expressions() {
            let problem = match expr {
                RuntimeExpr::CallbackUrl => match bind_callback_url(declared) {
                    Ok(target) => {
                        callback_url = Some(target);
                        None
                    }
                    Err(problem) => Some(problem),
                },
                other => check_expression(other, declared),
            };
            if let Some(message) = problem {
                mismatches.push(Mismatch {
                    template: self.to_string(),
                    position,
                    expression: expr.clone(),
                    message,
                });
            }
        }
        if !mismatches.is_empty() {
            return Err(mismatches);
        }
        Ok(match callback_url {
            Some(target) => self.with_callback_url(&target),
            None => self.clone(),
        })
    }
}

fn check_expression(expr: &RuntimeExpr, declared: &Declared<'_>) -> Option<String> {
    let op = &declared.operation;
    match expr {
        RuntimeExpr::Request(Source::Query(name)) => {
            check_name("query parameter", &declared.query, name, op, false)
        }
        RuntimeExpr::Request(Source::Path(name)) => {
            check_name("path parameter", &declared.path, name, op, false)
        }
        RuntimeExpr::Request(Source::Header(name)) => {
            check_name("header", &declared.headers, name, op, true)
        }
        RuntimeExpr::Request(Source::Body(body)) => {
            let Some((media, schema)) = &declared.body else {
                return Some(format!("{op} has no request body"));
            };
            if !is_json(media) {
                return Some(format!(
                    "the body of {op} is `{media}`; callback expressions read JSON bodies only"
                ));
            }
            let place = format!("the body of {op}");
            check_pointer(schema, body.pointer(), declared.definitions, &place)
        }
        RuntimeExpr::Response(Source::Body(body)) => {
            let (status, content) = &declared.response;
            let Some((media, schema)) = content else {
                return Some(format!(
                    "the success response of {op} ({status}) has no body"
                ));
            };
            if !is_json(media) {
                return Some(format!(
                    "the success response of {op} ({status}) is `{media}`; callback expressions \
                     read JSON bodies only"
                ));
            }
            let place = format!("the response of {op} ({status})");
            check_pointer(schema, body.pointer(), declared.definitions, &place)
        }
        _ => None,
    }
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

fn check_name(
    what: &str,
    declared: &[String],
    name: &ParamName,
    op: &str,
    any_case: bool,
) -> Option<String> {
    let name = name.as_str();
    let found = declared.iter().any(|d| {
        if any_case {
            d.eq_ignore_ascii_case(name)
        } else {
            d == name
        }
    });
    if found {
        return None;
    }
    let has = if declared.is_empty() {
        "it declares none".to_owned()
    } else {
        format!("it declares {}", quoted_list(declared))
    };
    Some(format!("{op} has no {what} `{name}`; {has}"))
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one declared input `$callback_url` stands for.
pub(super) fn bind_callback_url(declared: &Declared<'_>) -> Result<RuntimeExpr, String> {
    const NAME: &str = "callback_url";
    let mut found: Vec<(&str, RuntimeExpr)> = Vec::new();
    if declared.query.iter().any(|q| q == NAME) {
        found.push((
            "query parameter",
            RuntimeExpr::Request(Source::Query(ParamName::new(NAME))),
        ));
    }
    if declared.path.iter().any(|p| p == NAME) {
        found.push((
            "path parameter",
            RuntimeExpr::Request(Source::Path(ParamName::new(NAME))),
        ));
    }
    if let Some(header) = declared
        .headers
        .iter()
        .find(|h| h.eq_ignore_ascii_case(NAME) || h.eq_ignore_ascii_case("callback-url"))
    {
        found.push((
            "header",
            RuntimeExpr::Request(Source::Header(ParamName::new(header.clone()))),
        ));
    }
    let body_fields = match &declared.body {
        Some((media, schema)) if is_json(media) => {
            top_level_fields(schema, declared.definitions, 0)
        }
        _ => Vec::new(),
    };
    if body_fields.iter().any(|f| f == NAME) {
        found.push((
            "body field",
            RuntimeExpr::Request(Source::Body(BodyRef::pointer_form(
                JsonPointer::from_tokens([NAME]),
            ))),
        ));
    }
    let op = &declared.operation;
    match found.len() {
        1 => Ok(found.remove(0).1),
        0 => {
            let mut has = Vec::new();
            for (what, names) in [
                ("query parameters", &declared.query),
                ("path parameters", &declared.path),
                ("headers", &declared.headers),
                ("body fields", &body_fields),
            ] {
                if !names.is_empty() {
                    has.push(format!("{what} {}", quoted_list(names)));
                }
            }
            let has = if has.is_empty() {
                "it declares no inputs".to_owned()
            } else {
                format!("it declares {}", has.join("; "))
            };
            let cookie = if declared.cookies.iter().any(|c| c == NAME) {
                " (runtime expressions cannot read cookies)"
            } else {
                ""
            };
            Err(format!(
                "`$callback_url` stands for an input named `callback_url`, and {op} has no query, \
                 path or header parameter or body field of that name{cookie}; {has}"
            ))
        }
        _ => {
            let places: Vec<String> = found.iter().map(|(what, _)| what.to_string()).collect();
            let spellings: Vec<String> = found.iter().map(|(_, e)| format!("`{{{e}}}`")).collect();
            Err(format!(
                "`$callback_url` is ambiguous: {op} has a {} named `callback_url`; write {} instead",
                places.join(" and a "),
                spellings.join(" or ")
            ))
        }
    }
}

/// The property names of an object schema (through `$ref` and combinators), in order.
fn top_level_fields(schema: &Value, definitions: &Map<String, Value>, depth: usize) -> Vec<String> {
    let schema = follow_refs(schema, definitions);
    let mut fields: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    if depth < 8 {
        for branch in branches(schema) {
            for field in top_level_fields(branch, definitions, depth + 1) {
                if !fields.contains(&field) {
                    fields.push(field);
                }
            }
        }
    }
    fields
}

/// Follows `$ref`s to components; a reference that leads nowhere (or a cycle) stops there.
fn follow_refs<'a>(mut schema: &'a Value, definitions: &'a Map<String, Value>) -> &'a Value {
    for _ in 0..=definitions.len() {
        let target = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(COMPONENTS_PREFIX))
            .and_then(|name| definitions.get(name));
        match target {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

fn branches(schema: &Value) -> impl Iterator<Item = &Value> + '_ {
    ["anyOf", "oneOf", "allOf"]
        .into_iter()
        .filter_map(|key| schema.get(key).and_then(Value::as_array))
        .flatten()
}

/// Why a pointer cannot be followed, at which depth.
#[derive(Debug)]
struct Miss {
    depth: usize,
    problem: Problem,
}

#[derive(Debug)]
enum Problem {
    /// An object without the field; its declared fields.
    NoField(Vec<String>),
    /// A list, and the token is not an index.
    NotIndex,
    /// A list whose items cannot exist.
    NoItem,
    /// A scalar has no fields; its JSON type.
    Scalar(&'static str),
    /// The value at the end cannot be put in a URL; its JSON type.
    NotScalar(&'static str),
}

impl Miss {
    /// Of two misses, the one that tells more: the deeper, an object's fields over a type,
    /// and fields of alternatives at one depth merged.
    fn merge(self, other: Miss) -> Miss {
        if other.depth != self.depth {
            return if other.depth > self.depth {
                other
            } else {
                self
            };
        }
        match (self.problem, other.problem) {
            (Problem::NoField(mut a), Problem::NoField(b)) => {
                for field in b {
                    if !a.contains(&field) {
                        a.push(field);
                    }
                }
                Miss {
                    depth: other.depth,
                    problem: Problem::NoField(a),
                }
            }
            (Problem::NoField(a), _) | (_, Problem::NoField(a)) => Miss {
                depth: other.depth,
                problem: Problem::NoField(a),
            },
            (first, _) => Miss {
                depth: other.depth,
                problem: first,
            },
        }
    }
}

fn check_pointer(
    schema: &Value,
    pointer: &JsonPointer,
    definitions: &Map<String, Value>,
    place: &str,
) -> Option<String> {
    let tokens: Vec<&str> = pointer.tokens().collect();
    let miss = walk(schema, &tokens, 0, definitions, definitions.len() + 8).err()?;
    let at = JsonPointer::from_tokens(tokens[..miss.depth].iter().copied());
    let here = if at.is_root() {
        place.to_owned()
    } else {
        format!("`{at}` in {place}")
    };
    let token = tokens.get(miss.depth).copied().unwrap_or_default();
    Some(match miss.problem {
        Problem::NoField(fields) if fields.is_empty() => {
            format!("{here} has no field `{token}`; it has no fields")
        }
        Problem::NoField(fields) => format!(
            "{here} has no field `{token}`; it has {}",
            quoted_list(&fields)
        ),
        Problem::NotIndex => format!(
            "{here} is a list, and `{token}` is not an index (write `{at}/0` for its first item)"
        ),
        Problem::NoItem => format!("{here} is a list that has no item `{token}`"),
        Problem::Scalar(kind) => format!("{here} is {kind}, which has no field `{token}`"),
        Problem::NotScalar(kind) => {
            format!("{here} is {kind}; only a string, number or boolean can be put into a URL")
        }
    })
}

fn type_names(schema: &Map<String, Value>) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn kind_name(type_name: &str) -> &'static str {
    match type_name {
        "object" => "an object",
        "array" => "a list",
        "string" => "a string",
        "integer" | "number" => "a number",
        "boolean" => "a boolean",
        _ => "null",
    }
}

/// Whether `schema` can have a value at `tokens`, and a scalar one at that.
fn walk(
    schema: &Value,
    tokens: &[&str],
    depth: usize,
    definitions: &Map<String, Value>,
    budget: usize,
) -> Result<(), Miss> {
    let miss = |problem| Err(Miss { depth, problem });
    let schema = follow_refs(schema, definitions);
    let object = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return miss(Problem::NoField(Vec::new())),
        Value::Object(object) => object,
        _ => return Ok(()),
    };
    if budget == 0 {
        return Ok(());
    }
    // Alternatives: the combinators' branches, and the schema's own keywords if it has any.
    let alternatives: Vec<&Value> = branches(schema).collect();
    let own = [
        "type",
        "properties",
        "items",
        "prefixItems",
        "additionalProperties",
    ]
    .iter()
    .any(|k| object.contains_key(*k));
    if !alternatives.is_empty() {
        let mut best: Option<Miss> = None;
        if own {
            match walk_own(object, tokens, depth, definitions, budget) {
                Ok(()) => return Ok(()),
                Err(m) => best = Some(m),
            }
        }
        for branch in alternatives {
            match walk(branch, tokens, depth, definitions, budget - 1) {
                Ok(()) => return Ok(()),
                Err(m) => {
                    best = Some(match best {
                        Some(b) => b.merge(m),
                        None => m,
                    })
                }
            }
        }
        return best.map_or(Ok(()), Err);
    }
    walk_own(object, tokens, depth, definitions, budget)
}

/// [`walk`] over a schema's own keywords, combinators aside.
fn walk_own(
    object: &Map<String, Value>,
    tokens: &[&str],
    depth: usize,
    definitions: &Map<String, Value>,
    budget: usize,
) -> Result<(), Miss> {
    let miss = |problem| Err(Miss { depth, problem });
    let types = type_names(object);
    let properties = object.get("properties").and_then(Value::as_object);
    let is_object = types.contains(&"object") || properties.is_some();
    let is_array = types.contains(&"array")
        || object.contains_key("items")
        || object.contains_key("prefixItems");
    let Some((token, rest)) = tokens.split_first() else {
        // The end: the value must be able to be a scalar.
        let scalar = types.is_empty() && !is_object && !is_array
            || types
                .iter()
                .any(|t| matches!(*t, "string" | "integer" | "number" | "boolean"));
        if scalar {
            return Ok(());
        }
        let kind = types
            .first()
            .map_or(if is_object { "an object" } else { "a list" }, |t| {
                kind_name(t)
            });
        return miss(Problem::NotScalar(kind));
    };
    if !is_object && !is_array {
        if let Some(t) = types.first() {
            return miss(Problem::Scalar(kind_name(t)));
        }
        if object.contains_key("enum") || object.contains_key("const") {
            return miss(Problem::Scalar("a fixed value"));
        }
        // No type at all: any value, so any path.
        return Ok(());
    }
    let mut found: Option<Miss> = None;
    if is_object {
        let next = match properties.and_then(|p| p.get(*token)) {
            Some(sub) => Some(sub),
            None if object.contains_key("patternProperties") => return Ok(()),
            None => match object.get("additionalProperties") {
                None if properties.is_none() => return Ok(()),
                None | Some(Value::Bool(false)) => None,
                Some(sub) => Some(sub),
            },
        };
        match next {
            Some(sub) => match walk(sub, rest, depth + 1, definitions, budget - 1) {
                Ok(()) => return Ok(()),
                Err(m) => found = Some(m),
            },
            None => {
                let fields = properties
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default();
                found = Some(Miss {
                    depth,
                    problem: Problem::NoField(fields),
                });
            }
        }
    }
    if is_array {
        let result = match array_index(token) {
            None => miss(Problem::NotIndex),
            Some(index) => {
                let positional = object
                    .get("prefixItems")
                    .and_then(Value::as_array)
                    .and_then(|items| items.get(index));
                match positional.or_else(|| object.get("items")) {
                    Some(Value::Bool(false)) => miss(Problem::NoItem),
                    Some(sub) => walk(sub, rest, depth + 1, definitions, budget - 1),
                    None => Ok(()),
                }
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(m) => {
                found = Some(match found {
                    Some(f) => f.merge(m),
                    None => m,
                })
            }
        }
    }
    found.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn shipments(definitions: &Map<String, Value>) -> Declared<'_> {
        Declared {
            operation: "POST /shipments/".to_owned(),
            query: vec!["priority".to_owned()],
            path: Vec::new(),
            headers: vec!["x-trace".to_owned()],
            cookies: Vec::new(),
            body: Some((
                "application/json".to_owned(),
                json!({"$ref": "#/components/schemas/NewShipment"}),
            )),
            response: (
                201,
                Some((
                    "application/json".to_owned(),
                    json!({"$ref": "#/components/schemas/Shipment"}),
                )),
            ),
            definitions,
        }
    }

    fn definitions() -> Map<String, Value> {
        let defs = json!({
            "NewShipment": {
                "type": "object",
                "properties": {
                    "weight_kg": {"type": "number"},
                    "destination": {"$ref": "#/components/schemas/Address"},
                    "callback_url": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "extra": {"type": "object", "additionalProperties": {"type": "string"}},
                    "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}
                },
                "required": ["weight_kg", "destination", "callback_url"]
            },
            "Address": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}
            },
            "Shipment": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "status": {"type": "string"}}
            }
        });
        match defs {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn problems(template: &str) -> Vec<String> {
        let defs = definitions();
        let template = Template::parse(template).expect("parses");
        match template.check(&shipments(&defs)) {
            Ok(_) => Vec::new(),
            Err(mismatches) => mismatches.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn declared_inputs_and_paths_pass() {
        for ok in [
            "{$callback_url}/shipments/{$response.body#/id}",
            "{$request.body#/callback_url}/{$request.body.destination.city}",
            "{$callback_url}/{$request.body#/tags/0}/{$request.body#/extra/anything}",
            "{$callback_url}/{$request.query.priority}/{$request.header.X-Trace}",
            "{$callback_url}/{$request.body#/note}/{$statusCode}/{$method}",
        ] {
            assert_eq!(problems(ok), Vec::<String>::new(), "{ok}");
        }
    }

    #[test]
    fn a_field_the_body_lacks_names_what_it_has() {
        let found = problems("{$callback_url}/shipments/{$request.body.id}");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("at position 28")
                && found[0].contains(
                    "the body of POST /shipments/ has no field `id`; it has `weight_kg`, \
                     `destination`, `callback_url`"
                ),
            "{found:?}"
        );
        let nested = problems("{$callback_url}/{$request.body#/destination/street}");
        assert!(
            nested[0].contains("`/destination` in the body of POST /shipments/ has no field `street`; it has `city`, `zip`"),
            "{nested:?}"
        );
    }

    #[test]
    fn undeclared_parameters_and_unusable_values_are_named() {
        for (template, says) in [
            (
                "{$request.query.callback}/x",
                "has no query parameter `callback`; it declares `priority`",
            ),
            (
                "{$callback_url}/{$request.path.id}",
                "no path parameter `id`; it declares none",
            ),
            (
                "{$callback_url}/{$request.body#/destination}",
                "is an object; only a string",
            ),
            (
                "{$callback_url}/{$request.body#/tags/first}",
                "is a list, and `first` is not an index",
            ),
            (
                "{$callback_url}/{$response.body#/tracking}",
                "the response of POST /shipments/ (201) has no field `tracking`",
            ),
        ] {
            let found = problems(template);
            assert!(
                found.len() == 1 && found[0].contains(says),
                "{template}: {found:?}"
            );
        }
    }

    #[test]
    fn callback_url_binds_to_the_one_input_of_that_name() {
        let defs = definitions();
        let template = Template::parse("{$callback_url}/shipments").expect("parses");
        let bound = template.check(&shipments(&defs)).expect("binds");
        assert_eq!(
            bound.to_string(),
            "{$callback_url}/shipments",
            "prints as written"
        );
        assert!(bound.needs_request_body(), "reads the body field now");

        let mut both = shipments(&defs);
        both.query.push("callback_url".to_owned());
        let err = template.check(&both).expect_err("ambiguous");
        assert!(
            err[0].message().contains("ambiguous")
                && err[0]
                    .message()
                    .contains("`{$request.query.callback_url}` or `{$request.body#/callback_url}`"),
            "{err:?}"
        );

        let mut none = shipments(&defs);
        none.body = None;
        let err = template.check(&none).expect_err("nothing of that name");
        assert!(
            err[0]
                .message()
                .contains("it declares query parameters `priority`; headers `x-trace`"),
            "{err:?}"
        );
    }
}
