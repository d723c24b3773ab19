//! What the management API of webhook subscriptions reads and answers: endpoints, their
//! changes and pages, and the shape of a signing secret a user gives.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use roundtrip_delivery::endpoints::{DisableKind, Endpoint};
use roundtrip_delivery::signing::Secret;
use roundtrip_openapi::HttpUrl;
use roundtrip_openapi::validate::{LocItem, ValidationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::value_error;
use crate::secret::SecretString;

use super::HIDDEN;

/// What a signing secret looks like: `whsec_` and the padded base64 of 24 to 64 bytes (8 to
/// 21 groups of four characters, then at most one padded group), as
/// [`Secret::parse_strict`] reads it.
const SECRET_PATTERN: &str = "^whsec_(?:(?:[A-Za-z0-9+/]{4}){8,20}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?|(?:[A-Za-z0-9+/]{4}){21}(?:[A-Za-z0-9+/]{2}==)?)$";

/// A secret a user gave: `whsec_` and base64 of 24 to 64 bytes.
pub(super) fn given_secret(text: &str) -> Result<Secret, String> {
    Secret::parse_strict(text).map_err(|err| err.to_string())
}

/// The 422 entry of a refused secret, which is never echoed back.
pub(super) fn secret_error(why: &str) -> ValidationError {
    value_error(
        vec![LocItem::key("body"), LocItem::key("secret")],
        why,
        Value::String(HIDDEN.to_owned()),
    )
}

/// A webhook endpoint to register.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpointIn {
    /// Where to send the events: an `http` or `https` URL that does not point inside the
    /// server's network.
    pub url: HttpUrl,
    /// What the endpoint is for.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub description: String,
    /// The events to receive; none to receive every event.
    #[serde(default)]
    #[schemars(length(max = 256), inner(length(min = 1, max = 255)))]
    pub event_types: Vec<String>,
    /// The signing secret (`whsec_` and base64 of 24 to 64 bytes); generated when left out.
    #[serde(default)]
    #[schemars(pattern(SECRET_PATTERN))]
    pub secret: Option<SecretString>,
    /// Free-form JSON metadata.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// Changes to a webhook endpoint; what is left out stays as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpointPatch {
    /// A new URL.
    #[serde(default)]
    pub url: Option<HttpUrl>,
    /// A new description.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// New event types; an empty list receives every event.
    #[serde(default)]
    #[schemars(length(max = 256), inner(length(min = 1, max = 255)))]
    pub event_types: Option<Vec<String>>,
    /// New metadata, replacing the old.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

/// Which endpoints to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpointQuery {
    /// Only enabled (`true`) or disabled (`false`) endpoints.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Only endpoints that receive this event.
    #[serde(default)]
    pub event_type: Option<String>,
    /// Only endpoints after this one (the `next` of the previous page).
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many (100 by default).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

/// The endpoint a path names.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpointPath {
    /// The endpoint's id (`ep_...`).
    pub endpoint_id: String,
}

/// How to rotate a secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct WebhookSecretRotation {
    /// The new secret (`whsec_` and base64 of 24 to 64 bytes); generated when left out.
    #[serde(default)]
    #[schemars(pattern(SECRET_PATTERN))]
    pub secret: Option<SecretString>,
    /// How long the current secret keeps signing, in seconds (24 hours by default; at most
    /// 30 days).
    #[serde(default)]
    #[schemars(range(max = 2_592_000))]
    pub grace_seconds: Option<u64>,
}

/// Who or what disabled an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookEndpointDisabledBy {
    /// By hand, through the API or the application.
    Manual,
    /// The endpoint answered 410 Gone.
    Gone,
    /// Every delivery failed for the failure window.
    Failing,
}

/// A webhook endpoint, as the management API shows it: never with its secret.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpoint {
    /// The endpoint's id.
    pub id: String,
    /// Where its events go.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// The events it receives; empty means every event.
    pub event_types: Vec<String>,
    /// Whether it receives messages.
    pub enabled: bool,
    /// When it was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Who or what disabled it.
    pub disabled_by: Option<WebhookEndpointDisabledBy>,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Free-form JSON metadata.
    pub metadata: Map<String, Value>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When its current run of failed deliveries began.
    pub failing_since: Option<DateTime<Utc>>,
    /// When a delivery to it last succeeded.
    pub last_success_at: Option<DateTime<Utc>>,
    /// While a rotated-out secret still signs: when it stops.
    pub rotation_ends_at: Option<DateTime<Utc>>,
}

fn utc(time: SystemTime) -> DateTime<Utc> {
    time.into()
}

impl From<&Endpoint> for WebhookEndpoint {
    fn from(endpoint: &Endpoint) -> Self {
        let disabled = endpoint.disabled.as_ref();
        WebhookEndpoint {
            id: endpoint.id.clone(),
            url: endpoint.url.to_string(),
            description: endpoint.description.clone(),
            event_types: endpoint.event_types.clone(),
            enabled: endpoint.is_enabled(),
            disabled_at: disabled.map(|d| utc(d.at)),
            disabled_by: disabled.map(|d| match d.kind {
                DisableKind::Gone => WebhookEndpointDisabledBy::Gone,
                DisableKind::Failing => WebhookEndpointDisabledBy::Failing,
                _ => WebhookEndpointDisabledBy::Manual,
            }),
            disabled_reason: disabled.map(|d| d.reason.clone()),
            metadata: endpoint.metadata.clone(),
            created_at: utc(endpoint.created_at),
            updated_at: utc(endpoint.updated_at),
            failing_since: endpoint.failing_since.map(utc),
            last_success_at: endpoint.last_success_at.map(utc),
            rotation_ends_at: endpoint.rotation_ends_at.map(utc),
        }
    }
}

/// A registered endpoint and its secret: the only answer, with a rotation's, that carries it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpointCreated {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// Its signing secret (`whsec_...`): give it to the receiver, which verifies each
    /// message's `webhook-signature` with it.
    pub secret: String,
}

/// One page of endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpointList {
    /// The endpoints, oldest first.
    pub data: Vec<WebhookEndpoint>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}

/// A rotated secret.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookSecretRotated {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// The new signing secret (`whsec_...`).
    pub secret: String,
    /// When the previous secret stops signing.
    pub previous_expires_at: DateTime<Utc>,
}

/// Documents `event_types` as what it accepts: the events the app declares, as an enum (the
/// body types are static; the events are known once the app is built).
pub(crate) fn document_events(doc: &mut roundtrip_openapi::model::OpenApi, events: &[String]) {
    if events.is_empty() {
        return;
    }
    let names: Vec<Value> = events.iter().cloned().map(Value::String).collect();
    for (name, schema) in doc.components.schemas.iter_mut() {
        if !(name.starts_with("WebhookEndpointIn") || name.starts_with("WebhookEndpointPatch")) {
            continue;
        }
        let Some(event_types) = schema.pointer_mut("/properties/event_types") else {
            continue;
        };
        if let Some(Value::Object(items)) = event_types.get_mut("items") {
            items.insert("enum".to_owned(), Value::Array(names.clone()));
        } else if let Some(Value::Array(members)) = event_types.get_mut("anyOf") {
            for member in members {
                if let Some(Value::Object(items)) = member.get_mut("items") {
                    items.insert("enum".to_owned(), Value::Array(names.clone()));
                }
            }
        }
    }
}
