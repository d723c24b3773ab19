//! Compiling a JSON Schema into the node graph the validator walks.
//!
//! Each schema object becomes one [`Node`]: a `Kind` that says how pydantic would validate
//! it (string, integer, model, union, ...) with its constraints pre-parsed and its messages'
//! numbers pre-rendered, so that validating allocates only for errors and coercions.
//! `$ref`s become node ids, compiled once per definition, which makes recursive types
//! finite.

use std::collections::HashMap;

use indexmap::IndexMap;
use regex::Regex;
use serde_json::{Map, Value};

use super::error::{py_alternatives, py_repr_str};

mod graph;
mod keywords;

pub use self::graph::*;
use self::keywords::*;

const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
    "$schema",
    "$id",
    "$anchor",
    "$defs",
    "definitions",
    "contentMediaType",
    "contentEncoding",
];

/// Formats whose only content is a type serde checks for itself.
const NUMERIC_FORMATS: &[&str] = &[
    "int8", "int16", "int32", "int64", "int128", "int", "uint8", "uint16", "uint32", "uint64",
    "uint128", "uint", "float", "double",
];

/// The range a Rust integer type implies, from schemars' `format`.
fn implied_range(format: &str) -> Option<(i128, i128)> {
    Some(match format {
        "int8" => (i128::from(i8::MIN), i128::from(i8::MAX)),
        "int16" => (i128::from(i16::MIN), i128::from(i16::MAX)),
        "int32" => (i128::from(i32::MIN), i128::from(i32::MAX)),
        "int64" | "int" => (i128::from(i64::MIN), i128::from(i64::MAX)),
        "uint8" => (0, i128::from(u8::MAX)),
        "uint16" => (0, i128::from(u16::MAX)),
        "uint32" => (0, i128::from(u32::MAX)),
        "uint64" | "uint" => (0, i128::from(u64::MAX)),
        "uint128" => (0, i128::MAX),
        _ => return None,
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

const T_STRING: u8 = 1;
const T_INTEGER: u8 = 2;
const T_NUMBER: u8 = 4;
const T_BOOLEAN: u8 = 8;
const T_ARRAY: u8 = 16;
const T_OBJECT: u8 = 32;
const T_NULL: u8 = 64;

fn type_bit(name: &str) -> u8 {
    match name {
        "string" => T_STRING,
        "integer" => T_INTEGER,
        "number" => T_NUMBER,
        "boolean" => T_BOOLEAN,
        "array" => T_ARRAY,
        "object" => T_OBJECT,
        "null" => T_NULL,
        _ => 0,
    }
}

pub(crate) struct Compiler<'s> {
    definitions: &'s Map<String, Value>,
    nodes: Vec<Node>,
    refs: HashMap<&'s str, NodeId>,
    covered: bool,
    secret_keys: Vec<String>,
}

impl<'s> Compiler<'s> {
    pub(crate) fn compile(
        schema: &'s Value,
        definitions: &'s Map<String, Value>,
    ) -> Result<Compiled, SchemaError> {
        let mut compiler = Compiler {
            definitions,
            nodes: Vec::new(),
            refs: HashMap::new(),
            covered: true,
            secret_keys: Vec::new(),
        };
        let root = compiler.add(schema, "schema")?;
        compiler.check_ref_cycles()?;
        compiler.refine_unions();
        let params = compiler.params(root);
        Ok(Compiled {
            nodes: compiler.nodes,
            root,
            params,
            serde_covers: compiler.covered,
            secret_keys: compiler.secret_keys,
        })
    }

    /// Whether a property's schema marks a secret: `format: password` or `writeOnly: true`
    /// on it, on the one it refers to, or on a member of its `anyOf`/`oneOf` (an `Option`).
    fn is_secret(&self, schema: &Value, depth: usize) -> bool {
        let Some(obj) = schema.as_object() else {
            return false;
        };
        if depth > 4 {
            return false;
        }
        if obj.get("format").and_then(Value::as_str) == Some("password")
            || obj.get("writeOnly") == Some(&Value::Bool(true))
        {
            return true;
        }
        if let Some(target) = obj
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
            .and_then(|name| self.definitions.get(name))
            && self.is_secret(target, depth + 1)
        {
            return true;
        }
        ["anyOf", "oneOf", "allOf"].iter().any(|key| {
            obj.get(*key)
                .and_then(Value::as_array)
                .is_some_and(|members| members.iter().any(|m| self.is_secret(m, depth + 1)))
        })
    }

    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn add(&mut self, schema: &'s Value, keyword: &str) -> Result<NodeId, SchemaError> {
        let node = self.build(schema, keyword)?;
        Ok(self.push(node))
    }

    fn build(&mut self, schema: &'s Value, keyword: &str) -> Result<Node, SchemaError> {
        let obj = match schema {
            Value::Bool(true) => return Ok(node(Kind::Any)),
            Value::Bool(false) => return Ok(node(Kind::Never)),
            Value::Object(obj) => obj,
            other => {
                return Err(SchemaError::NotASchema {
                    keyword: keyword.to_owned(),
                    found: json_type(other),
                });
            }
        };
        if !is_covered(obj) {
            self.covered = false;
        }

        let mut nullable = false;
        let mut also = Vec::new();
        let mut types = match obj.get("type") {
            Some(Value::String(t)) => type_bit(t),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .map(type_bit)
                .fold(0, |a, b| a | b),
            _ => 0,
        };
        if types & T_NULL != 0 && types != T_NULL {
            nullable = true;
            types &= !T_NULL;
        }
        // Without a `type`, the keywords present tell what the schema is about.
        if types == 0 && !obj.contains_key("enum") && !obj.contains_key("const") {
            types = inferred_types(obj);
        }

        let mut kind = if let Some(values) = enum_values(obj) {
            let (kind, has_null) = enum_kind(values, obj.contains_key("const"));
            nullable |= has_null;
            Some(kind)
        } else if types == T_NULL {
            Some(Kind::Null)
        } else if types.count_ones() == 1 {
            Some(self.typed(obj, types)?)
        } else if types != 0 {
            let mut branches = Vec::new();
            for bit in [T_STRING, T_INTEGER, T_NUMBER, T_BOOLEAN, T_ARRAY, T_OBJECT] {
                // `integer` is a subset of `number`: keep only the wider branch.
                if types & bit != 0 && !(bit == T_INTEGER && types & T_NUMBER != 0) {
                    let kind = self.typed(obj, bit)?;
                    branches.push(self.push(node(kind)));
                }
            }
            Some(union(branches))
        } else {
            None
        };

        if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
            let target = self.resolve(reference)?;
            match kind {
                None => kind = Some(Kind::Ref(target)),
                Some(_) => also.push(target),
            }
        }

        for keyword in ["anyOf", "oneOf"] {
            let Some(list) = obj.get(keyword) else {
                continue;
            };
            let Value::Array(list) = list else {
                return Err(SchemaError::NotASchema {
                    keyword: keyword.to_owned(),
                    found: json_type(list),
                });
            };
            let mut branches = Vec::with_capacity(list.len());
            for branch in list {
                let built = self.build(branch, keyword)?;
                // `Option<T>` is `anyOf: [T, {type: null}]`: null is accepted up front, and
                // the errors are T's own, as pydantic reports them for optional fields.
                if matches!(built.kind, Kind::Null) && built.also.is_empty() && built.not.is_none()
                {
                    nullable = true;
                } else {
                    branches.push(self.push(built));
                }
            }
            let combined = match branches.as_slice() {
                [] => Kind::Null,
                [only] => Kind::Ref(*only),
                _ => union(branches),
            };
            match kind {
                None => kind = Some(combined),
                Some(_) => also.push(self.push(node(combined))),
            }
        }

        if let Some(list) = obj.get("allOf") {
            let Value::Array(list) = list else {
                return Err(SchemaError::NotASchema {
                    keyword: "allOf".to_owned(),
                    found: json_type(list),
                });
            };
            for branch in list {
                also.push(self.add(branch, "allOf")?);
            }
        }

        let not = match obj.get("not") {
            Some(schema) => {
                let message = match (schema.get("const"), schema.get("enum")) {
                    (Some(value), _) => {
                        format!(
                            "Input should not be {}",
                            py_alternatives(std::iter::once(value))
                        )
                    }
                    (None, Some(Value::Array(values))) => {
                        format!("Input should not be {}", py_alternatives(values.iter()))
                    }
                    _ => "Input should not match the excluded schema".to_owned(),
                };
                Some(Box::new(Not {
                    node: self.add(schema, "not")?,
                    message,
                }))
            }
            None => None,
        };

        let kind = match kind {
            Some(kind) => kind,
            None if also.len() == 1 && not.is_none() => Kind::Ref(also.remove(0)),
            None => Kind::Any,
        };
        Ok(Node {
            nullable,
            kind,
            also: also.into_boxed_slice(),
            not,
        })
    }

    /// The node of a definition, compiling it on first use. The id is reserved before the
    /// definition is compiled, so a recursive type refers back to it instead of recursing.
    fn resolve(&mut self, reference: &str) -> Result<NodeId, SchemaError> {
        let unresolved = || SchemaError::UnresolvedRef {
            reference: reference.to_owned(),
        };
        let name = ["#/components/schemas/", "#/$defs/", "#/definitions/"]
            .iter()
            .find_map(|prefix| reference.strip_prefix(prefix))
            .ok_or_else(unresolved)?;
        let name = if name.contains('~') {
            name.replace("~1", "/").replace("~0", "~")
        } else {
            name.to_owned()
        };
        let Some((key, schema)) = self.definitions.get_key_value(&name) else {
            return Err(unresolved());
        };
        if let Some(&id) = self.refs.get(key.as_str()) {
            return Ok(id);
        }
        let id = self.push(node(Kind::Any));
        self.refs.insert(key.as_str(), id);
        let built = self.build(schema, reference)?;
        self.nodes[id] = built;
        Ok(id)
    }

    fn typed(&mut self, obj: &'s Map<String, Value>, bit: u8) -> Result<Kind, SchemaError> {
        Ok(match bit {
            T_STRING => Kind::Str(Box::new(string_rules(obj)?)),
            T_INTEGER => Kind::Int(Box::new(number_rules(obj, true))),
            T_NUMBER => Kind::Float(Box::new(number_rules(obj, false))),
            T_BOOLEAN => Kind::Bool,
            T_ARRAY => Kind::Array(Box::new(self.array_rules(obj)?)),
            T_OBJECT => Kind::Object(Box::new(self.object_rules(obj)?)),
            _ => Kind::Null,
        })
    }

    fn array_rules(&mut self, obj: &'s Map<String, Value>) -> Result<ArrayRules, SchemaError> {
        let mut prefix = Vec::new();
        if let Some(Value::Array(list)) = obj.get("prefixItems") {
            for item in list {
                prefix.push(self.add(item, "prefixItems")?);
            }
        }
        let (items, closed) = match obj.get("items") {
            None | Some(Value::Bool(true)) => (None, false),
            Some(Value::Bool(false)) => (None, true),
            // Draft 7 tuples: `items` as an array.
            Some(Value::Array(list)) if prefix.is_empty() => {
                for item in list {
                    prefix.push(self.add(item, "items")?);
                }
                (
                    None,
                    matches!(obj.get("additionalItems"), Some(Value::Bool(false))),
                )
            }
            Some(schema) => (Some(self.add(schema, "items")?), false),
        };
        let unique = obj
            .get("uniqueItems")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let field_type = if !prefix.is_empty() {
            "Tuple"
        } else if unique {
            "Set"
        } else {
            "List"
        };
        Ok(ArrayRules {
            prefix: prefix.into_boxed_slice(),
            items,
            closed,
            min_items: usize_keyword(obj, "minItems"),
            max_items: usize_keyword(obj, "maxItems"),
            unique,
            field_type,
        })
    }

    fn object_rules(&mut self, obj: &'s Map<String, Value>) -> Result<ObjectRules, SchemaError> {
        let required: Vec<&str> = match obj.get("required") {
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let mut props = IndexMap::new();
        if let Some(Value::Object(declared)) = obj.get("properties") {
            for (name, schema) in declared {
                if self.is_secret(schema, 0) && !self.secret_keys.contains(name) {
                    self.secret_keys.push(name.clone());
                }
                let node = self.add(schema, name)?;
                let required = required.contains(&name.as_str());
                props.insert(name.clone(), Prop { node, required });
            }
        }
        // A required name without a declared schema must still be present.
        for name in &required {
            if !props.contains_key(*name) {
                let node = self.push(node(Kind::Any));
                props.insert(
                    (*name).to_owned(),
                    Prop {
                        node,
                        required: true,
                    },
                );
            }
        }
        let mut pattern_props = Vec::new();
        if let Some(Value::Object(patterns)) = obj.get("patternProperties") {
            for (pattern, schema) in patterns {
                let regex = compile_regex(pattern)?;
                pattern_props.push((regex, self.add(schema, pattern)?));
            }
        }
        let additional = match obj.get("additionalProperties") {
            None | Some(Value::Bool(true)) => Additional::Allow,
            Some(Value::Bool(false)) => Additional::Forbid,
            Some(schema) => Additional::Schema(self.add(schema, "additionalProperties")?),
        };
        let model = obj.contains_key("properties")
            || (matches!(additional, Additional::Forbid) && pattern_props.is_empty());
        Ok(ObjectRules {
            props,
            pattern_props: pattern_props.into_boxed_slice(),
            additional,
            model,
            min_props: usize_keyword(obj, "minProperties"),
            max_props: usize_keyword(obj, "maxProperties"),
        })
    }

    fn check_ref_cycles(&self) -> Result<(), SchemaError> {
        for start in 0..self.nodes.len() {
            let mut id = start;
            for _ in 0..=self.nodes.len() {
                match self.nodes[id].kind {
                    Kind::Ref(next) if self.nodes[id].also.is_empty() => id = next,
                    _ => break,
                }
                if id == start {
                    let reference = self
                        .refs
                        .iter()
                        .find(|(_, node)| **node == start)
                        .map_or_else(|| format!("node {start}"), |(name, _)| (*name).to_owned());
                    return Err(SchemaError::RefCycle { reference });
                }
            }
        }
        Ok(())
    }

    /// Follows bare `$ref`s (and single-branch unions) to the node that does the work.
    fn target(&self, mut id: NodeId) -> NodeId {
        for _ in 0..self.nodes.len() {
            match self.nodes[id].kind {
                Kind::Ref(next)
                    if self.nodes[id].also.is_empty() && self.nodes[id].not.is_none() =>
                {
                    id = next;
                }
                _ => break,
            }
        }
        id
    }

    /// Union refinements that need every definition compiled first: unions of constants
    /// become one enum (a documented unit enum is a `oneOf` of `const`s), and unions of
    /// models with a constant tag property become tagged unions.
    fn refine_unions(&mut self) {
        for id in 0..self.nodes.len() {
            let Kind::Union(rules) = &self.nodes[id].kind else {
                continue;
            };
            let targets: Vec<NodeId> = rules.branches.iter().map(|&b| self.target(b)).collect();
            let constants: Option<Vec<&Value>> = targets
                .iter()
                .map(|&t| match &self.nodes[t] {
                    Node {
                        kind: Kind::Enum(rules),
                        nullable: false,
                        also,
                        not: None,
                    } if also.is_empty() => Some(rules.values.iter()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(|lists| lists.into_iter().flatten().collect());
            if let Some(values) = constants {
                let values: Vec<Value> = values.into_iter().cloned().collect();
                let expected = py_alternatives(values.iter());
                self.nodes[id].kind = Kind::Enum(Box::new(EnumRules {
                    values: values.into_boxed_slice(),
                    error_type: "enum",
                    expected,
                }));
                continue;
            }
            let tagged = self.find_tag(&targets);
            if let Kind::Union(rules) = &mut self.nodes[id].kind {
                rules.tagged = tagged;
            }
        }
    }

    fn find_tag(&self, targets: &[NodeId]) -> Option<Tagged> {
        let models: Vec<&ObjectRules> = targets
            .iter()
            .map(|&t| match &self.nodes[t].kind {
                Kind::Object(rules) if rules.model => Some(&**rules),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let first = models.first()?;
        'candidates: for (property, prop) in &first.props {
            if !prop.required {
                continue;
            }
            let mut tags: Vec<(String, NodeId)> = Vec::with_capacity(models.len());
            for (model, &target) in models.iter().zip(targets) {
                let Some(prop) = model.props.get(property).filter(|p| p.required) else {
                    continue 'candidates;
                };
                let tag = match &self.nodes[self.target(prop.node)].kind {
                    Kind::Enum(rules) => match &*rules.values {
                        [Value::String(tag)] => tag.clone(),
                        _ => continue 'candidates,
                    },
                    _ => continue 'candidates,
                };
                if tags.iter().any(|(seen, _)| *seen == tag) {
                    continue 'candidates;
                }
                tags.push((tag, target));
            }
            let mut property_repr = String::new();
            py_repr_str(property, &mut property_repr);
            let mut expected_tags = String::new();
            for (i, (tag, _)) in tags.iter().enumerate() {
                if i > 0 {
                    expected_tags.push_str(", ");
                }
                py_repr_str(tag, &mut expected_tags);
            }
            return Some(Tagged {
                property: property.clone(),
                property_repr,
                tags: tags.into_boxed_slice(),
                expected_tags,
            });
        }
        None
    }

    fn params(&self, root: NodeId) -> Vec<ParamInfo> {
        let Kind::Object(rules) = &self.nodes[self.target(root)].kind else {
            return Vec::new();
        };
        rules
            .props
            .iter()
            .map(|(name, prop)| ParamInfo {
                name: name.clone(),
                list: self.is_list(prop.node, 0),
                required: prop.required,
            })
            .collect()
    }

    fn is_list(&self, id: NodeId, depth: usize) -> bool {
        if depth > 16 {
            return false;
        }
        let id = self.target(id);
        match &self.nodes[id].kind {
            Kind::Array(_) => true,
            Kind::Union(rules) => rules.branches.iter().any(|&b| self.is_list(b, depth + 1)),
            _ => false,
        }
    }
}
