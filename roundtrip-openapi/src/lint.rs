//! Lints a document for what a validator lets through but a reader or a client generator
//! would trip on: FastAPI-only runtime expressions, dangling `$ref`s, duplicate operation
//! ids, and operations or callbacks with nothing to read.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::expr::{Declared, Template};
use crate::model::{Method, OpenApi, Operation, PathItem};
use crate::schema::COMPONENTS_PREFIX;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth a look; the document works.
    Warning,
    /// The document is wrong: a client or a tool will fail on it.
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding: where, what, and how much it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How much it matters.
    pub severity: Severity,
    /// Where in the document, e.g. `paths./invoices/.post.callbacks.invoice_notification`.
    pub location: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.severity, self.location, self.message)
    }
}

/// Lints a whole document. Findings come in document order.
pub fn lint(doc: &OpenApi) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let definitions: Map<String, Value> = doc
        .components
        .schemas
        .iter()
        .map(|(name, schema)| (name.clone(), schema.clone()))
        .collect();
    let mut linter = Linter {
        doc,
        definitions: &definitions,
        ids: &mut ids,
        findings: &mut findings,
    };
    for (path, item) in &doc.paths {
        linter.path_item(&format!("paths.{path}"), Some(path), item);
    }
    for (name, item) in &doc.webhooks {
        linter.path_item(&format!("webhooks.{name}"), None, item);
    }
    lint_refs(doc, &mut findings);
    findings
}

/// What linting one document carries from operation to operation.
struct Linter<'a> {
    doc: &'a OpenApi,
    definitions: &'a Map<String, Value>,
    ids: &'a mut HashMap<String, String>,
    findings: &'a mut Vec<Finding>,
}

impl Linter<'_> {
    /// `path` is the template of a path item under `paths` (its callbacks' expressions
    /// are read against its operations); `None` for webhooks and callback operations.
    fn path_item(&mut self, location: &str, path: Option<&str>, item: &PathItem) {
        for (method, op) in item.operations() {
            let here = format!("{location}.{}", method.as_lower());
            self.operation(&here, path.map(|p| (p, method)), op);
        }
    }

    fn operation(&mut self, here: &str, at: Option<(&str, Method)>, op: &Operation) {
        let findings = &mut *self.findings;
        match &op.operation_id {
            Some(id) => {
                if let Some(first) = self.ids.insert(id.clone(), here.to_owned()) {
                    findings.push(Finding {
                        severity: Severity::Error,
                        location: here.to_owned(),
                        message: format!(
                            "operationId `{id}` is also used by {first}; client generators need unique ids"
                        ),
                    });
                }
            }
            None => findings.push(Finding {
                severity: Severity::Warning,
                location: here.to_owned(),
                message: "no operationId".to_owned(),
            }),
        }
        if op.summary.is_none() && op.description.is_none() {
            findings.push(Finding {
                severity: Severity::Warning,
                location: here.to_owned(),
                message: "no summary and no description: readers of the docs see only the path"
                    .to_owned(),
            });
        }
        for (code, response) in &op.responses {
            if response.description.trim().is_empty() {
                findings.push(Finding {
                    severity: Severity::Warning,
                    location: format!("{here}.responses.{code}"),
                    message: "the response has an empty description".to_owned(),
                });
            }
        }
        let declared = at.map(|(path, method)| {
            Declared::from_operation(
                format!("{method} {path}"),
                op,
                &path_params(path),
                success_status(op),
                &self.doc.components.security_schemes,
                self.definitions,
            )
        });
        for (name, callback) in &op.callbacks {
            for (expression, item) in callback {
                let location = format!("{here}.callbacks.{name}.{expression}");
                match Template::parse(expression) {
                    Ok(template) => {
                        let warnings = match &declared {
                            Some(declared) => template.lint_for(declared),
                            None => template.lint(),
                        };
                        for warning in warnings {
                            self.findings.push(Finding {
                                severity: Severity::Warning,
                                location: location.clone(),
                                message: warning.to_string(),
                            });
                        }
                    }
                    Err(err) => self.findings.push(Finding {
                        severity: Severity::Error,
                        location: location.clone(),
                        message: err.to_string(),
                    }),
                }
                self.path_item(&location, None, item);
            }
        }
    }
}

/// The `{name}` parameters of a path template.
fn path_params(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// The status of an operation's success response: its first 2xx, or 200.
fn success_status(op: &Operation) -> u16 {
    op.responses
        .keys()
        .filter_map(|code| code.parse::<u16>().ok())
        .find(|code| (200..300).contains(code))
        .unwrap_or(200)
}

fn lint_refs(doc: &OpenApi, findings: &mut Vec<Finding>) {
    let Ok(value) = serde_json::to_value(doc) else {
        return;
    };
    let mut refs = BTreeSet::new();
    collect_refs(&value, &mut refs);
    for reference in refs {
        let resolves = match reference.strip_prefix(COMPONENTS_PREFIX) {
            Some(name) => doc.components.schemas.contains_key(name),
            None => reference
                .strip_prefix('#')
                .is_some_and(|pointer| value.pointer(pointer).is_some()),
        };
        if !resolves {
            findings.push(Finding {
                severity: Severity::Error,
                location: reference.clone(),
                message: format!("`$ref` to `{reference}` points at nothing"),
            });
        }
    }
}

fn collect_refs(value: &Value, refs: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                refs.insert(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Method, Response};
    use indexmap::IndexMap;
    use serde_json::json;

    fn op(id: &str) -> Operation {
        let mut responses = IndexMap::new();
        responses.insert(
            "200".to_owned(),
            Response {
                description: "ok".to_owned(),
                ..Response::default()
            },
        );
        Operation {
            operation_id: Some(id.to_owned()),
            summary: Some("S".to_owned()),
            responses,
            ..Operation::default()
        }
    }

    #[test]
    fn finds_duplicates_dangling_refs_dialect_and_missing_text() {
        let mut doc = OpenApi::new("t", "1");
        let mut a = op("same");
        a.request_body = Some(
            serde_json::from_value(json!({
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Nope"}}}
            }))
            .expect("body"),
        );
        let mut cb_item = PathItem::default();
        *cb_item.operation_mut(Method::Post) = Some(op("cb"));
        let mut callback = IndexMap::new();
        callback.insert("{$callback_url}/x".to_owned(), cb_item);
        a.callbacks.insert("notify".to_owned(), callback);
        let mut b = op("same");
        b.summary = None;
        let mut item = PathItem::default();
        *item.operation_mut(Method::Get) = Some(a);
        *item.operation_mut(Method::Post) = Some(b);
        doc.paths.insert("/x".to_owned(), item);

        let findings = lint(&doc);
        let messages: Vec<String> = findings.iter().map(ToString::to_string).collect();
        let has = |needle: &str| messages.iter().any(|m| m.contains(needle));
        assert!(has("operationId `same` is also used"), "{messages:#?}");
        assert!(has("points at nothing"), "{messages:#?}");
        assert!(has("$request.query.callback_url"), "{messages:#?}");
        assert!(has("no summary and no description"), "{messages:#?}");
        assert_eq!(
            findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count(),
            2
        );
    }

    #[test]
    fn callback_url_is_suggested_in_the_spelling_of_the_input_it_names() {
        let mut doc = OpenApi::new("t", "1");
        doc.components.schemas.insert(
            "NewShipment".to_owned(),
            json!({"type": "object", "properties": {"callback_url": {"type": "string"}}}),
        );
        let mut create = op("create");
        create.request_body = Some(
            serde_json::from_value(json!({
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewShipment"}}}
            }))
            .expect("body"),
        );
        let mut callback = IndexMap::new();
        let mut cb_item = PathItem::default();
        *cb_item.operation_mut(Method::Post) = Some(op("cb"));
        callback.insert("{$callback_url}/shipped".to_owned(), cb_item);
        create.callbacks.insert("shipped".to_owned(), callback);
        let mut item = PathItem::default();
        *item.operation_mut(Method::Post) = Some(create);
        doc.paths.insert("/shipments/".to_owned(), item);

        let messages: Vec<String> = lint(&doc).iter().map(ToString::to_string).collect();
        assert!(
            messages
                .iter()
                .any(|m| m
                    .contains("tools that follow the spec expect \"$request.body#/callback_url\"")),
            "{messages:#?}"
        );
    }
}
