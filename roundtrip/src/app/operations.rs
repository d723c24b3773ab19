//! Building the routes of an app: each router's prefix, tags, responses, callbacks and
//! dependencies passed down to its routes, and each operation documented from its
//! handler and settings (FastAPI's defaults filled in) next to the handler it installs.

use std::collections::HashSet;
use std::sync::Arc;

use http::StatusCode;
use indexmap::IndexMap;
use roundtrip_openapi::model::{Method, Operation, PathItem, Response, SecurityScheme};
use roundtrip_openapi::naming::{clean_doc, function_name, operation_id, summary_from_name};
use roundtrip_openapi::schema::SchemaRegistry;
use serde_json::{Map, Value};

use super::handler_docs;
use crate::binding::CheckedCallbacks;
use crate::callback::CallbackSpec;
use crate::delivery::{BoundCallback, OperationCallbacks, PreparedDelivery};
use crate::error::is_body_allowed;
use crate::invoke::DependencyRunner;
use crate::invoke::OperationSettings;
use crate::operation::{OperationContext, Success};
use crate::response_docs::{ExtraResponse, add_validation_error_response, json_response_object};
use crate::router::{Entry, Router};
use crate::routing::{OperationMeta, PendingOperation, Route};

/// What a router passes down to the routes it contains.
pub(super) struct Inherited<S> {
    prefix: String,
    tags: Vec<String>,
    responses: Vec<ExtraResponse>,
    callbacks: Vec<CallbackSpec>,
    deprecated: bool,
    hidden: bool,
    dependencies: Vec<DependencyRunner<S>>,
    body_limit: Option<usize>,
}

impl<S> Default for Inherited<S> {
    fn default() -> Self {
        Inherited {
            prefix: String::new(),
            tags: Vec::new(),
            responses: Vec::new(),
            callbacks: Vec::new(),
            deprecated: false,
            hidden: false,
            dependencies: Vec::new(),
            body_limit: None,
        }
    }
}

impl<S> Clone for Inherited<S> {
    fn clone(&self) -> Self {
        Inherited {
            prefix: self.prefix.clone(),
            tags: self.tags.clone(),
            responses: self.responses.clone(),
            callbacks: self.callbacks.clone(),
            deprecated: self.deprecated,
            hidden: self.hidden,
            dependencies: self.dependencies.clone(),
            body_limit: self.body_limit,
        }
    }
}

/// A router whose handlers are installed once the delivery they send through is built
/// (after every route is walked, when the response contracts are known).
pub(super) type Deferred<S> = Box<dyn FnOnce(&PreparedDelivery) -> axum::Router<S> + Send>;

/// A route whose handlers wait for the delivery, as [`Deferred`].
type DeferredRoute<S> = Box<dyn FnOnce(&PreparedDelivery) -> axum::routing::MethodRouter<S> + Send>;

/// What a router holds, in order, once walked.
enum Walked<S> {
    Route(String, DeferredRoute<S>),
    Router(Deferred<S>),
    Axum(axum::Router<S>),
}

pub(super) struct Builder {
    pub(super) registry: SchemaRegistry,
    pub(super) paths: IndexMap<String, PathItem>,
    pub(super) seen: HashSet<(String, Method)>,
    pub(super) problems: Vec<String>,
    pub(super) security_schemes: IndexMap<String, SecurityScheme>,
    pub(super) callbacks: Vec<CallbackSpec>,
    pub(super) exceptions: Option<Arc<crate::exceptions::ExceptionHandlers>>,
    pub(super) operation_ids: Option<super::setup::OperationIds>,
}

impl Builder {
    pub(super) fn build_router<S: Clone + Send + Sync + 'static>(
        &mut self,
        router: Router<S>,
        parent: &Inherited<S>,
    ) -> Deferred<S> {
        let Router {
            prefix,
            tags,
            responses,
            callbacks,
            deprecated,
            hidden,
            entries,
            layers,
            dependencies,
            body_limit,
        } = router;
        if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.ends_with('/')) {
            self.problems.push(format!(
                "the router prefix `{prefix}` must start with `/` and must not end with `/`"
            ));
            return Box::new(|_| axum::Router::new());
        }
        let mut inherited = parent.clone();
        inherited.prefix.push_str(&prefix);
        inherited.tags.extend(tags);
        inherited.responses.extend(responses);
        inherited.callbacks.extend(callbacks);
        inherited.deprecated |= deprecated;
        inherited.hidden |= hidden;
        inherited.dependencies.extend(dependencies);
        inherited.body_limit = body_limit.or(inherited.body_limit);

        let mut walked = Vec::new();
        for entry in entries {
            match entry {
                Entry::Route(path, route) => {
                    let full = format!("{}{}", inherited.prefix, path);
                    if let Some(method_router) = self.build_route(&full, route, &inherited) {
                        walked.push(Walked::Route(full, method_router));
                    }
                }
                Entry::Router(child) => {
                    walked.push(Walked::Router(self.build_router(child, &inherited)));
                }
                Entry::Axum(plain) => walked.push(Walked::Axum(plain)),
            }
        }
        let prefix = inherited.prefix;
        Box::new(move |delivery| {
            let mut axum_router = axum::Router::new();
            for part in walked {
                axum_router = match part {
                    Walked::Route(full, method_router) => {
                        axum_router.route(&full, method_router(delivery))
                    }
                    Walked::Router(child) => axum_router.merge(child(delivery)),
                    Walked::Axum(plain) if prefix.is_empty() => axum_router.merge(plain),
                    Walked::Axum(plain) => axum_router.nest(&prefix, plain),
                };
            }
            for layer in layers {
                axum_router = layer(axum_router);
            }
            axum_router
        })
    }

    fn build_route<S: Clone + Send + Sync + 'static>(
        &mut self,
        path: &str,
        route: Route<S>,
        inherited: &Inherited<S>,
    ) -> Option<DeferredRoute<S>> {
        if !path.starts_with('/') {
            self.problems
                .push(format!("the path `{path}` must start with `/`"));
            return None;
        }
        let params = match path_params(path) {
            Ok(params) => params,
            Err(problem) => {
                self.problems.push(problem);
                return None;
            }
        };
        let doc_path = openapi_path(path);
        let dependencies: Arc<[DependencyRunner<S>]> = inherited.dependencies.clone().into();
        let mut installs = Vec::new();
        for pending in route.operations {
            if pending.handler_type.is_empty() {
                continue;
            }
            if !self.seen.insert((path.to_owned(), pending.method)) {
                self.problems
                    .push(format!("{} {path} is declared twice", pending.method));
                continue;
            }
            let (operation, settings, callbacks) =
                self.document_operation(&doc_path, &params, &pending, inherited);
            if let Some(operation) = operation {
                *self
                    .paths
                    .entry(doc_path.clone())
                    .or_default()
                    .operation_mut(pending.method) = Some(operation);
            }
            installs.push((pending.install, settings, callbacks));
        }
        let layers = route.layers;
        Some(Box::new(move |delivery| {
            let mut method_router = axum::routing::MethodRouter::new();
            for (install, mut settings, callbacks) in installs {
                settings.callbacks = Arc::new(OperationCallbacks(
                    callbacks
                        .into_iter()
                        .map(|(spec, template)| {
                            BoundCallback::new(spec, template, delivery.clone())
                        })
                        .collect(),
                ));
                method_router = install(method_router, Arc::new(settings), dependencies.clone());
            }
            for layer in layers {
                method_router = layer(method_router);
            }
            method_router
        }))
    }

    fn document_operation<S>(
        &mut self,
        path: &str,
        params: &[String],
        pending: &PendingOperation<S>,
        inherited: &Inherited<S>,
    ) -> (Option<Operation>, OperationSettings, CheckedCallbacks) {
        let meta: &OperationMeta = &pending.meta;
        let method = pending.method;
        let name = meta
            .name
            .clone()
            .or_else(|| function_name(pending.handler_type).map(str::to_owned))
            .unwrap_or_else(|| method.as_lower().to_owned());
        let mut tags: Vec<String> = Vec::new();
        for tag in inherited.tags.iter().chain(&meta.tags) {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        let id = match (&meta.operation_id, &self.operation_ids) {
            (Some(id), _) => id.clone(),
            (None, Some(custom)) => custom(&super::setup::OperationInfo {
                name: &name,
                path,
                method,
                tags: &tags,
            }),
            (None, None) => operation_id(&name, path, method.as_lower()),
        };
        let mut operation = Operation {
            operation_id: Some(id),
            ..Operation::default()
        };
        let mut ctx = OperationContext {
            registry: &mut self.registry,
            operation: &mut operation,
            path_params: params,
            success: Success::default(),
            in_error_branch: false,
            has_inputs: false,
            security_schemes: &mut self.security_schemes,
            requirements: Vec::new(),
            errors: Vec::new(),
            scoped: false,
            shares_body: false,
        };
        (pending.describe)(&mut ctx);
        // The app's and routers' dependencies, after the handler's own parameters (as
        // FastAPI lists them).
        for dependency in &inherited.dependencies {
            (dependency.describe)(&mut ctx);
        }
        if let Some(model) = &meta.response_model {
            let schema = (model.schema)(ctx.registry);
            ctx.success(None, Some(("application/json", schema)));
        }
        let OperationContext {
            success,
            has_inputs,
            requirements,
            errors,
            scoped,
            shares_body,
            ..
        } = ctx;
        let here = format!("{method} {path}");
        self.problems
            .extend(errors.into_iter().map(|e| format!("{here}: {e}")));

        // Responses: the success first, then what the output's error type declared, then
        // the router's and the route's, then the 422 when there is input to validate.
        let status = meta.status.or(success.status).unwrap_or(200);
        let mut success_response = Response {
            description: meta
                .response_description
                .clone()
                .unwrap_or_else(|| "Successful Response".to_owned()),
            ..Response::default()
        };
        let body_allowed = StatusCode::from_u16(status).map_or(true, is_body_allowed);
        if body_allowed {
            match success.content {
                Some((media, schema)) if success.item_schema => {
                    success_response.content.insert(
                        media,
                        roundtrip_openapi::model::MediaType {
                            item_schema: Some(schema),
                            ..Default::default()
                        },
                    );
                }
                Some((media, schema)) => {
                    success_response.content = json_response_object("", schema)
                        .content
                        .into_iter()
                        .map(|(_, m)| (media.clone(), m))
                        .collect();
                }
                None if !success.declared => {
                    success_response.content =
                        json_response_object("", Value::Object(Map::new())).content;
                }
                None => {}
            }
            if let Some(media) = &meta.media_type {
                let documented = std::mem::take(&mut success_response.content)
                    .into_values()
                    .next();
                let schema = documented.unwrap_or_else(|| {
                    json_response_object("", Value::Object(Map::new()))
                        .content
                        .into_values()
                        .next()
                        .unwrap_or_default()
                });
                success_response.content.insert(media.clone(), schema);
            }
        }
        let declared_by_output = std::mem::take(&mut operation.responses);
        operation
            .responses
            .insert(status.to_string(), success_response);
        for (code, response) in declared_by_output {
            operation.responses.entry(code).or_insert(response);
        }
        for extra in inherited.responses.iter().chain(&meta.responses) {
            let documented = extra.document(&mut self.registry);
            operation
                .responses
                .insert(extra.status.to_string(), documented);
        }
        if has_inputs {
            add_validation_error_response(&mut self.registry, &mut operation);
        }
        sort_responses(&mut operation.responses);

        operation.tags = tags;
        operation.summary = Some(
            meta.summary
                .clone()
                .unwrap_or_else(|| summary_from_name(&name)),
        );
        operation.description = meta.description.clone().or_else(|| {
            handler_docs()
                .get(pending.handler_type)
                .map(|d| clean_doc(d))
                .filter(|d| !d.is_empty())
        });
        operation.deprecated = meta.deprecated || inherited.deprecated;

        let mut checked = CheckedCallbacks::new();
        let mut settings = OperationSettings {
            status: meta.status.and_then(|s| StatusCode::from_u16(s).ok()),
            scoped,
            response_model: meta.response_model.map(|m| m.build(&mut self.registry)),
            exceptions: self.exceptions.clone(),
            body_limit: meta.body_limit.or(inherited.body_limit),
            ..OperationSettings::default()
        };
        crate::binding::OperationBinding {
            here: &here,
            path_params: params,
            status,
            shares_body,
            security_schemes: &self.security_schemes,
        }
        .bind(
            &mut operation,
            inherited.callbacks.iter().chain(&meta.callbacks),
            requirements,
            &mut self.registry,
            &mut self.callbacks,
            &mut settings,
            &mut checked,
            &mut self.problems,
        );

        if let Some(extra) = &meta.openapi_extra
            && let Err(problem) = merge_openapi_extra(&mut operation, extra)
        {
            self.problems.push(format!("{here}: {problem}"));
        }
        let documented = !(meta.hidden || inherited.hidden);
        (documented.then_some(operation), settings, checked)
    }
}

/// Merges a route's `openapi_extra` into its operation, key by key (objects merge,
/// anything else replaces), as FastAPI does.
fn merge_openapi_extra(operation: &mut Operation, extra: &Value) -> Result<(), String> {
    fn merge(into: &mut Value, extra: &Value) {
        match (into, extra) {
            (Value::Object(into), Value::Object(extra)) => {
                for (key, value) in extra {
                    merge(into.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
            (into, extra) => *into = extra.clone(),
        }
    }
    if !extra.is_object() {
        return Err("openapi_extra must be a JSON object".to_owned());
    }
    let mut value = serde_json::to_value(&*operation).map_err(|e| e.to_string())?;
    merge(&mut value, extra);
    *operation = serde_json::from_value(value)
        .map_err(|e| format!("openapi_extra makes the operation invalid: {e}"))?;
    Ok(())
}

/// Numeric status codes in order, then ranges (`4XX`) and `default`.
fn sort_responses(responses: &mut IndexMap<String, Response>) {
    responses.sort_by(|a, _, b, _| {
        let key = |code: &str| (code.parse::<u16>().map_or(1, |_| 0), code.to_owned());
        key(a).cmp(&key(b))
    });
}

/// The `{name}` parameters of an axum path template, in order.
fn path_params(path: &str) -> Result<Vec<String>, String> {
    // axum 0.7's `:id` and `*rest` would make axum 0.8 panic; say what to write instead.
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix(':') {
            return Err(format!(
                "the path `{path}` has the segment `{segment}`, axum 0.7's spelling of a path parameter; write `{{{name}}}`"
            ));
        }
        if let Some(name) = segment.strip_prefix('*') {
            return Err(format!(
                "the path `{path}` has the segment `{segment}`, axum 0.7's spelling of a catch-all; write `{{*{name}}}`"
            ));
        }
    }
    let mut params = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("the path `{path}` has a `{{` without its `}}`"));
        };
        let name = rest[start + 1..start + len].trim_start_matches('*');
        if name.is_empty() {
            return Err(format!("the path `{path}` has an empty `{{}}`"));
        }
        params.push(name.to_owned());
        rest = &rest[start + len + 1..];
    }
    Ok(params)
}

/// axum's catch-all `{*rest}` is written `{rest}` in OpenAPI.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_are_read_in_order() {
        assert_eq!(
            path_params("/a/{x}/b/{*rest}").ok(),
            Some(vec!["x".to_owned(), "rest".to_owned()])
        );
        assert!(path_params("/a/{x").is_err());
        assert!(path_params("/a/{}").is_err());
    }

    #[test]
    fn responses_sort_numerically() {
        let mut r: IndexMap<String, Response> = ["422", "default", "201", "404", "4XX"]
            .into_iter()
            .map(|k| (k.to_owned(), Response::default()))
            .collect();
        sort_responses(&mut r);
        let keys: Vec<&str> = r.keys().map(String::as_str).collect();
        assert_eq!(keys, ["201", "404", "422", "4XX", "default"]);
    }
}
