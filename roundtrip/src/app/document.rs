//! Assembling the app's OpenAPI document: its head (info, servers, tags), the webhooks,
//! then, once every operation is documented, the paths, the schemas, the security
//! schemes and the version; problems worth a warning (two types of one name, duplicate
//! operation ids) are logged.

use std::collections::HashMap;

use indexmap::IndexMap;
use roundtrip_openapi::model::{
    ExternalDocs, Info, Method, OpenApi, PathItem, SecurityScheme, Server, Tag,
};
use roundtrip_openapi::schema::SchemaRegistry;

use crate::callback::WebhookSpec;

/// A document with the app's head and nothing else yet.
pub(super) fn start(
    info: Info,
    servers: Vec<Server>,
    tags: Vec<Tag>,
    external_docs: Option<ExternalDocs>,
) -> OpenApi {
    let mut doc = OpenApi::new(info.title.clone(), info.version.clone());
    doc.info = info;
    doc.servers = servers;
    doc.tags = tags;
    doc.external_docs = external_docs;
    doc
}

/// Documents the app's webhooks under the document's `webhooks`; a webhook declared
/// twice for one method is a problem.
pub(super) fn add_webhooks(
    doc: &mut OpenApi,
    webhooks: &[WebhookSpec],
    registry: &mut SchemaRegistry,
    problems: &mut Vec<String>,
) {
    for webhook in webhooks {
        let item = doc.webhooks.entry(webhook.event.clone()).or_default();
        let documented = webhook.document(registry);
        if item.operation(webhook.method).is_some() {
            problems.push(format!(
                "webhook `{}` is declared twice for {}",
                webhook.event, webhook.method
            ));
        }
        *item.operation_mut(webhook.method) = documented.operation(webhook.method).cloned();
    }
}

/// Completes the document once every operation is documented: the paths, the schemas,
/// the security schemes, the events a subscription may name (`subscribed`: the app's
/// webhooks, when it has subscriptions) and the OpenAPI version.
pub(super) fn finish(
    doc: &mut OpenApi,
    paths: IndexMap<String, PathItem>,
    registry: SchemaRegistry,
    security_schemes: IndexMap<String, SecurityScheme>,
    subscribed: Option<&[WebhookSpec]>,
) {
    doc.paths = paths;
    registry.publish_into(doc);
    if let Some(webhooks) = subscribed {
        let mut events: Vec<String> = Vec::new();
        for webhook in webhooks {
            if !events.contains(&webhook.event) {
                events.push(webhook.event.clone());
            }
        }
        crate::subscriptions::document_events(doc, &events);
    }
    doc.components.security_schemes = security_schemes;
    if uses_item_schemas(doc) {
        // `itemSchema` is OpenAPI 3.2's; a 3.1 document may not carry it.
        doc.openapi = "3.2.0".to_owned();
    }

    for collision in registry.collisions() {
        tracing::warn!(
            "two types are named `{}`: `{}` is published as `{}`; rename one of them (schemars: #[schemars(rename = \"...\")])",
            collision.requested,
            collision.rust_type,
            collision.published
        );
    }
    warn_duplicate_operation_ids(doc);
}

/// Whether any operation documents a sequence with OpenAPI 3.2's `itemSchema`.
fn uses_item_schemas(doc: &OpenApi) -> bool {
    doc.operations().any(|(_, _, op)| {
        op.responses
            .values()
            .flat_map(|r| r.content.values())
            .any(|m| m.item_schema.is_some())
    })
}

fn warn_duplicate_operation_ids(doc: &OpenApi) {
    let mut seen: HashMap<&str, (String, Method)> = HashMap::new();
    for (path, method, op) in doc.operations() {
        if let Some(id) = op.operation_id.as_deref()
            && let Some((other_path, other_method)) = seen.insert(id, (path.to_owned(), method))
        {
            tracing::warn!(
                "duplicate operation id `{id}`: {other_method} {other_path} and {method} {path}; set `.operation_id(..)` on one of them"
            );
        }
    }
}
