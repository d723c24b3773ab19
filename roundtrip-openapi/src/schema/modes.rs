//! One type, two schemas: what a client sends (`Input`) and what it receives
//! (`Output`), as FastAPI publishes them.
//!
//! schemars writes each type twice, with serde's deserialize and serialize contracts. A
//! type whose two schemas differ (a field only in answers, such as a computed one) and
//! that is used both ways is published twice, as `Item-Input` and `Item-Output`, and every
//! reference is pointed at the right one: request bodies and parameters at `-Input`,
//! responses at `-Output`. A type used one way only keeps its plain name. This is what
//! pydantic's two JSON schema modes produce for FastAPI.
//!
//! As in pydantic, a field with a default is not required in the output schema either
//! (schemars' serialize contract would require it, since it is always sent); only fields
//! that exist in answers alone are added to `required`, and they are marked `readOnly`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{COMPONENTS_PREFIX, SchemaRegistry, publish, ref_name};
use crate::model::{OpenApi, Operation, PathItem};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Input,
    Output,
}

impl Mode {
    fn index(self) -> usize {
        match self {
            Mode::Input => 0,
            Mode::Output => 1,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Mode::Input => "-Input",
            Mode::Output => "-Output",
        }
    }
}

impl SchemaRegistry {
    /// Publishes the components into `doc`, splitting the types whose input and output
    /// schemas differ into `Name-Input` and `Name-Output` and pointing every reference of
    /// the document at the right one.
    pub fn publish_into(&self, doc: &mut OpenApi) {
        let mut roots: Vec<(String, Mode)> = Vec::new();
        each_schema(doc, &mut |schema, mode| {
            for name in refs_in(schema) {
                roots.push((name, mode));
            }
        });

        // Which components each mode reaches, following references.
        let mut used: BTreeMap<String, [bool; 2]> = BTreeMap::new();
        while let Some((name, mode)) = roots.pop() {
            let Some(def) = self.definition(&name, mode) else {
                continue;
            };
            let seen = used.entry(name.clone()).or_default();
            if seen[mode.index()] {
                continue;
            }
            seen[mode.index()] = true;
            roots.extend(refs_in(&def).into_iter().map(|r| (r, mode)));
        }

        // A type splits when its two schemas differ, or when it refers to one that splits.
        let both: Vec<&String> = used
            .iter()
            .filter(|(_, u)| u[0] && u[1])
            .map(|(n, _)| n)
            .collect();
        let mut split: BTreeSet<String> = both
            .iter()
            .filter(|n| self.definition(n, Mode::Input) != self.definition(n, Mode::Output))
            .map(|n| (*n).clone())
            .collect();
        loop {
            let before = split.len();
            for name in &both {
                if split.contains(*name) {
                    continue;
                }
                let refers_to_split = [Mode::Input, Mode::Output].iter().any(|&mode| {
                    self.definition(name, mode)
                        .is_some_and(|d| refs_in(&d).iter().any(|r| split.contains(r)))
                });
                if refers_to_split {
                    split.insert((*name).clone());
                }
            }
            if split.len() == before {
                break;
            }
        }

        let mut components: Vec<(String, Value)> = Vec::new();
        for name in self.generator.definitions().keys() {
            let uses = used.get(name).copied().unwrap_or([false, false]);
            if split.contains(name) {
                for mode in [Mode::Input, Mode::Output] {
                    if let Some(def) = self.definition(name, mode) {
                        components.push((
                            format!("{name}{}", mode.suffix()),
                            published(def, name, mode, &split),
                        ));
                    }
                }
                continue;
            }
            let mode = if uses[1] && !uses[0] {
                Mode::Output
            } else {
                Mode::Input
            };
            if let Some(def) = self.definition(name, mode) {
                components.push((name.clone(), published(def, name, mode, &split)));
            }
        }
        components.sort_by(|a, b| a.0.cmp(&b.0));
        doc.components.schemas = components.into_iter().collect();

        if !split.is_empty() {
            each_schema(doc, &mut |schema, mode| rewrite_refs(schema, mode, &split));
        }
    }

    /// The properties of `T` that only its output schema has (computed fields): they are
    /// in every answer, set or not.
    pub fn output_only_properties<T: schemars::JsonSchema + ?Sized>(&mut self) -> Vec<String> {
        let schema = self.output_schema_for::<T>();
        let Some(name) = ref_name(&schema).map(str::to_owned) else {
            return Vec::new();
        };
        let (Some(input), Some(output)) = (
            self.definition(&name, Mode::Input),
            self.definition(&name, Mode::Output),
        ) else {
            return Vec::new();
        };
        let input_props = properties(&input);
        properties(&output)
            .into_iter()
            .filter(|p| !input_props.contains(p))
            .collect()
    }

    /// A component's schema as one mode sees it. The output schema is the serialize
    /// contract's, with pydantic's `required`; a type schemars wrote for input only (or
    /// whose output name could not be matched) has its input schema for both.
    fn definition(&self, name: &str, mode: Mode) -> Option<Value> {
        let input = self.generator.definitions().get(name)?;
        if mode == Mode::Input || self.untrusted_output.contains(name) {
            return Some(input.clone());
        }
        match self.output.definitions().get(name) {
            Some(output) => Some(normalized_output(input, output)),
            None => Some(input.clone()),
        }
    }
}

/// The output schema with the input's `required` (defaults are not required in answers
/// either), plus the fields that only answers have, which are `readOnly` and required.
fn normalized_output(input: &Value, output: &Value) -> Value {
    let (Some(Value::Object(in_props)), Some(Value::Object(out_props))) =
        (input.get("properties"), output.get("properties"))
    else {
        return output.clone();
    };
    let mut normalized = output.clone();
    let mut required: Vec<Value> = input
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter(|n| n.as_str().is_some_and(|n| out_props.contains_key(n)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut props = out_props.clone();
    for (name, prop) in props.iter_mut() {
        if !in_props.contains_key(name) {
            required.push(Value::String(name.clone()));
            if let Value::Object(prop) = prop {
                prop.insert("readOnly".to_owned(), Value::Bool(true));
                // A field clients never send has no default (schemars writes the one
                // serde would use when skipping it).
                prop.remove("default");
            }
        }
    }
    if let Value::Object(map) = &mut normalized {
        map.insert("properties".to_owned(), Value::Object(props));
        if required.is_empty() {
            map.remove("required");
        } else {
            map.insert("required".to_owned(), Value::Array(required));
        }
    }
    if normalized == *input {
        input.clone()
    } else {
        normalized
    }
}

fn properties(schema: &Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// A component as published: its references pointed at this mode's split types, private
/// keywords removed, property titles added, and titled with the type's own name.
fn published(def: Value, name: &str, mode: Mode, split: &BTreeSet<String>) -> Value {
    let mut def = def;
    rewrite_refs(&mut def, mode, split);
    let mut def = publish(&def);
    if let Value::Object(map) = &mut def
        && !map.contains_key("title")
    {
        map.insert("title".to_owned(), Value::String(name.to_owned()));
    }
    def
}

/// The component names a schema refers to.
fn refs_in(schema: &Value) -> Vec<String> {
    let mut names = Vec::new();
    collect_refs(schema, &mut names);
    names
}

fn collect_refs(schema: &Value, names: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = ref_name(schema) {
                names.push(name.to_owned());
            }
            map.values().for_each(|v| collect_refs(v, names));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, names)),
        _ => {}
    }
}

fn rewrite_refs(schema: &mut Value, mode: Mode, split: &BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref")
                && let Some(name) = reference.strip_prefix(COMPONENTS_PREFIX)
                && split.contains(name)
            {
                *reference = format!("{COMPONENTS_PREFIX}{name}{}", mode.suffix());
            }
            map.values_mut().for_each(|v| rewrite_refs(v, mode, split));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, mode, split)),
        _ => {}
    }
}

/// Calls `f` on every schema of the document's operations (callbacks and webhooks too),
/// with the mode it is read in: parameters and request bodies are input, responses output.
fn each_schema(doc: &mut OpenApi, f: &mut impl FnMut(&mut Value, Mode)) {
    for item in doc.paths.values_mut().chain(doc.webhooks.values_mut()) {
        each_in_item(item, f);
    }
}

fn each_in_item(item: &mut PathItem, f: &mut impl FnMut(&mut Value, Mode)) {
    for method in crate::model::Method::ALL {
        if let Some(op) = item.operation_mut(method).as_mut() {
            each_in_operation(op, f);
        }
    }
}

fn each_in_operation(op: &mut Operation, f: &mut impl FnMut(&mut Value, Mode)) {
    for parameter in &mut op.parameters {
        if let Some(schema) = &mut parameter.schema {
            f(schema, Mode::Input);
        }
    }
    if let Some(body) = &mut op.request_body {
        for media in body.content.values_mut() {
            each_in_media(media, Mode::Input, f);
        }
    }
    for response in op.responses.values_mut() {
        for media in response.content.values_mut() {
            each_in_media(media, Mode::Output, f);
        }
    }
    for callback in op.callbacks.values_mut() {
        for item in callback.values_mut() {
            each_in_item(item, f);
        }
    }
}

fn each_in_media(
    media: &mut crate::model::MediaType,
    mode: Mode,
    f: &mut impl FnMut(&mut Value, Mode),
) {
    for schema in [&mut media.schema, &mut media.item_schema]
        .into_iter()
        .flatten()
    {
        f(schema, mode);
    }
}
