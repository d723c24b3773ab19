//! The schema registry: JSON Schema 2020-12 from schemars, hoisted into
//! `components.schemas`.
//!
//! One registry serves a whole document, so a type used by several operations is
//! published once and referenced as `#/components/schemas/<Name>`. Two distinct types
//! with the same name never overwrite each other: the second one is published under a
//! suffixed name (`Item2`) and the collision is reported by [`SchemaRegistry::collisions`],
//! so the app can warn about it and `openapi lint` can flag it.
//!
//! Schemas may carry private keywords starting with `x-rt-` (for example the URL schemes
//! an [`HttpUrl`](crate::HttpUrl) accepts). Validators read them; the published document
//! never shows them.

mod modes;

use std::collections::BTreeSet;

use indexmap::IndexMap;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value};

use crate::naming::field_title;

/// Where component schemas live, as a JSON pointer fragment.
pub const COMPONENTS_PREFIX: &str = "#/components/schemas/";

/// A schema name that had to be changed because another type already used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCollision {
    /// The name the type asked for.
    pub requested: String,
    /// The name it was published under.
    pub published: String,
    /// The Rust type that got the new name.
    pub rust_type: &'static str,
}

/// Collects the schemas of one document.
#[derive(Debug)]
pub struct SchemaRegistry {
    generator: SchemaGenerator,
    /// The same types written with serde's serialize contract, for answers.
    output: SchemaGenerator,
    /// Types whose output schema could not be matched to their input one by name.
    untrusted_output: BTreeSet<String>,
    collisions: Vec<NameCollision>,
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl SchemaRegistry {
    /// An empty registry producing JSON Schema 2020-12 with definitions under
    /// `#/components/schemas/`.
    pub fn new() -> Self {
        SchemaRegistry {
            generator: generator(),
            output: output_generator(),
            untrusted_output: BTreeSet::new(),
            collisions: Vec::new(),
        }
    }

    /// The schema of `T` as it appears where `T` is used: a `$ref` for named types, the
    /// schema itself for inline ones (strings, numbers, options, lists...).
    pub fn schema_for<T: JsonSchema + ?Sized>(&mut self) -> Value {
        let schema = self.generator.subschema_for::<T>().to_value();
        if let Some(name) = ref_name(&schema) {
            let requested = T::schema_name();
            if name != requested && !self.collisions.iter().any(|c| c.published == name) {
                self.collisions.push(NameCollision {
                    requested: requested.into_owned(),
                    published: name.to_owned(),
                    rust_type: std::any::type_name::<T>(),
                });
            }
        }
        schema
    }

    /// The schema of `T` where an answer carries it: the same reference as
    /// [`schema_for`](Self::schema_for), and `T`'s output schema is recorded too, so a type
    /// whose answers differ from its input is published as `Name-Input` and `Name-Output`
    /// (see [`publish_into`](Self::publish_into)).
    pub fn output_schema_for<T: JsonSchema + ?Sized>(&mut self) -> Value {
        let schema = self.schema_for::<T>();
        let output = self.output.subschema_for::<T>().to_value();
        if let Some(name) = ref_name(&schema)
            && ref_name(&output) != Some(name)
        {
            self.untrusted_output.insert(name.to_owned());
        }
        schema
    }

    /// The schema of `T` with a top-level `$ref` followed, for callers that need the
    /// object's properties (each field of a query struct is one parameter).
    pub fn resolved_schema_for<T: JsonSchema + ?Sized>(&mut self) -> Value {
        let schema = self.schema_for::<T>();
        self.resolve(&schema).clone()
    }

    /// The object schema of a parameter struct (`Query<T>`, `Header<T>`...): its fields
    /// become parameters, so the struct itself is not published as a component, while
    /// the named types of its fields are.
    pub fn parameter_object_for<T: JsonSchema + ?Sized>(&mut self) -> Value {
        let schema = self.schema_for::<T>();
        let Some(name) = ref_name(&schema).map(str::to_owned) else {
            return schema;
        };
        let still_referenced = |defs: &Map<String, Value>| {
            let needle = Value::String(format!("{COMPONENTS_PREFIX}{name}"));
            defs.values().any(|d| contains_value(d, &needle))
        };
        let definitions = self.generator.definitions_mut();
        let object = definitions.get(&name).cloned().unwrap_or(schema);
        if !still_referenced(definitions) {
            definitions.remove(&name);
        }
        object
    }

    /// The schema of `T` with every named type inlined, registering no component: for
    /// inputs that FastAPI publishes under a name of its own (`Body_<operation id>`).
    pub fn inline_schema_for<T: JsonSchema + ?Sized>(&mut self) -> Value {
        let mut generator = SchemaSettings::draft2020_12()
            .with(|s| {
                s.inline_subschemas = true;
                s.meta_schema = None;
            })
            .into_generator();
        let mut schema = generator.root_schema_for::<T>().to_value();
        if let Value::Object(map) = &mut schema {
            map.remove("title");
        }
        schema
    }

    /// Follows a `$ref` to a component; other schemas are returned as they are.
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut current = schema;
        // Bounded: a chain of refs longer than the number of definitions is a cycle.
        for _ in 0..=self.generator.definitions().len() {
            match ref_name(current).and_then(|n| self.generator.definitions().get(n)) {
                Some(target) => current = target,
                None => return current,
            }
        }
        current
    }

    /// Adds a schema under a name of the caller's choosing (FastAPI's `HTTPValidationError`,
    /// or a form body's `Body_<operation id>`), replacing any schema of that name that
    /// was registered the same way. Returns the `$ref` to it.
    pub fn insert(&mut self, name: &str, schema: Value) -> Value {
        self.generator
            .definitions_mut()
            .insert(name.to_owned(), schema);
        component_ref(name)
    }

    /// True when a component of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.generator.definitions().contains_key(name)
    }

    /// The raw definitions, private keywords included: what validators compile from.
    pub fn definitions(&self) -> &Map<String, Value> {
        self.generator.definitions()
    }

    /// Names that had to be changed to avoid overwriting another type's schema.
    pub fn collisions(&self) -> &[NameCollision] {
        &self.collisions
    }

    /// The components as published: sorted by name, with pydantic's titles added and
    /// private keywords removed.
    pub fn published_components(&self) -> IndexMap<String, Value> {
        let mut names: Vec<&String> = self.generator.definitions().keys().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| {
                let schema = self.generator.definitions().get(name)?;
                let mut schema = publish(schema);
                if let Value::Object(map) = &mut schema
                    && !map.contains_key("title")
                {
                    map.insert("title".to_owned(), Value::String(name.clone()));
                }
                Some((name.clone(), schema))
            })
            .collect()
    }
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator()
}

fn output_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
            s.contract = schemars::generate::Contract::Serialize;
        })
        .into_generator()
}

fn contains_value(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::Object(map) => map
            .values()
            .any(|v| v == needle || contains_value(v, needle)),
        Value::Array(items) => items
            .iter()
            .any(|v| v == needle || contains_value(v, needle)),
        _ => false,
    }
}

/// The `$ref` schema pointing at a component.
pub fn component_ref(name: &str) -> Value {
    let mut map = Map::new();
    map.insert(
        "$ref".to_owned(),
        Value::String(format!("{COMPONENTS_PREFIX}{name}")),
    );
    Value::Object(map)
}

/// The component name a `{"$ref": "#/components/schemas/Name"}` schema points at.
pub fn ref_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")?
        .as_str()?
        .strip_prefix(COMPONENTS_PREFIX)
}

/// A schema as the document shows it: private `x-rt-` keywords removed, and a pydantic
/// title on every property that is not a bare `$ref`.
pub fn publish(schema: &Value) -> Value {
    let mut schema = schema.clone();
    strip_private(&mut schema);
    add_property_titles(&mut schema);
    schema
}

/// Removes private `x-rt-` keywords, recursively.
pub fn strip_private(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with("x-rt-"));
            map.values_mut().for_each(strip_private);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_private),
        _ => {}
    }
}

/// Gives each property of an object schema the title pydantic would: `monthly_fee`
/// becomes `Monthly Fee`. Nested inline objects get the same treatment.
fn add_property_titles(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            set_title(prop, &field_title(name));
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = map.get_mut(key) {
            add_property_titles(sub);
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(subs)) = map.get_mut(key) {
            subs.iter_mut().for_each(add_property_titles);
        }
    }
}

/// Sets `title` on a schema unless it has one or is a bare `$ref` (pydantic leaves
/// references untitled).
pub fn set_title(schema: &mut Value, title: &str) {
    if let Value::Object(map) = schema {
        let bare_ref = map.len() == 1 && map.contains_key("$ref");
        if !bare_ref && !map.contains_key("title") {
            map.insert("title".to_owned(), Value::String(title.to_owned()));
        }
        add_property_titles(schema);
    } else if let Value::Bool(true) = schema {
        let mut map = Map::new();
        map.insert("title".to_owned(), Value::String(title.to_owned()));
        *schema = Value::Object(map);
    }
}

/// FastAPI's `ValidationError` component, exactly as FastAPI publishes it.
pub fn validation_error_schema() -> Value {
    serde_json::json!({
        "properties": {
            "loc": {
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "title": "Location",
                "type": "array"
            },
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string"},
            "input": {"title": "Input"},
            "ctx": {"title": "Context", "type": "object"}
        },
        "required": ["loc", "msg", "type"],
        "title": "ValidationError",
        "type": "object"
    })
}

/// FastAPI's `HTTPValidationError` component, the body of every 422.
pub fn http_validation_error_schema() -> Value {
    serde_json::json!({
        "properties": {
            "detail": {
                "items": {"$ref": "#/components/schemas/ValidationError"},
                "title": "Detail",
                "type": "array"
            }
        },
        "title": "HTTPValidationError",
        "type": "object"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Invoice {
        id: String,
        title: Option<String>,
        monthly_fee: f64,
    }

    mod other {
        #[allow(dead_code)]
        #[derive(schemars::JsonSchema)]
        pub(super) struct Invoice {
            pub(super) x: i32,
        }
    }

    #[test]
    fn named_types_are_hoisted_and_titled() {
        let mut reg = SchemaRegistry::new();
        assert_eq!(
            reg.schema_for::<Invoice>(),
            json!({"$ref": "#/components/schemas/Invoice"})
        );
        let comps = reg.published_components();
        let inv = &comps["Invoice"];
        assert_eq!(inv["title"], "Invoice");
        assert_eq!(inv["properties"]["monthly_fee"]["title"], "Monthly Fee");
        assert_eq!(inv["required"], json!(["id", "monthly_fee"]));
    }

    #[test]
    fn same_name_types_do_not_overwrite_each_other() {
        let mut reg = SchemaRegistry::new();
        reg.schema_for::<Invoice>();
        let second = reg.schema_for::<other::Invoice>();
        assert_eq!(ref_name(&second), Some("Invoice2"));
        let comps = reg.published_components();
        assert!(comps["Invoice"]["properties"].get("monthly_fee").is_some());
        assert!(comps["Invoice2"]["properties"].get("x").is_some());
        assert_eq!(reg.collisions().len(), 1);
        assert_eq!(reg.collisions()[0].requested, "Invoice");
    }

    #[test]
    fn private_keywords_are_not_published() {
        let schema =
            json!({"type": "string", "x-rt-url-schemes": ["http"], "anyOf": [{"x-rt-a": 1}]});
        assert_eq!(publish(&schema), json!({"type": "string", "anyOf": [{}]}));
    }
}
