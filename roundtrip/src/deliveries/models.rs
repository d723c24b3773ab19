//! What the deliveries API reads and answers, as its document publishes it.

use chrono::{DateTime, Utc};
use roundtrip_delivery::message::{Attempt, MessageKind, MessageMeta, MessageStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::subscriptions::WebhookEndpoint;

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (new, or backing off after a failed one).
    Pending,
    /// An attempt is running.
    Leased,
    /// A receiver answered 2xx.
    Succeeded,
    /// Retries exhausted, 410 Gone, or abandoned.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl From<DeliveryStatus> for MessageStatus {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => MessageStatus::Pending,
            DeliveryStatus::Leased => MessageStatus::Leased,
            DeliveryStatus::Succeeded => MessageStatus::Succeeded,
            DeliveryStatus::Failed => MessageStatus::Failed,
            DeliveryStatus::Cancelled => MessageStatus::Cancelled,
        }
    }
}

impl From<MessageStatus> for DeliveryStatus {
    fn from(status: MessageStatus) -> Self {
        match status {
            MessageStatus::Pending => DeliveryStatus::Pending,
            MessageStatus::Leased => DeliveryStatus::Leased,
            MessageStatus::Succeeded => DeliveryStatus::Succeeded,
            MessageStatus::Failed => DeliveryStatus::Failed,
            MessageStatus::Cancelled => DeliveryStatus::Cancelled,
        }
    }
}

/// The statuses a finished message can have: what a replay puts back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FinishedStatus {
    /// A receiver answered 2xx.
    Succeeded,
    /// Retries exhausted, 410 Gone, or abandoned.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl From<FinishedStatus> for MessageStatus {
    fn from(status: FinishedStatus) -> Self {
        match status {
            FinishedStatus::Succeeded => MessageStatus::Succeeded,
            FinishedStatus::Failed => MessageStatus::Failed,
            FinishedStatus::Cancelled => MessageStatus::Cancelled,
        }
    }
}

/// A callback (to a URL a request gave) or a webhook (to a subscribed endpoint or a URL the
/// app chose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    /// Sent because of a request, to the URL it named.
    Callback,
    /// An event sent to the endpoints that want it.
    Webhook,
}

impl From<DeliveryKind> for MessageKind {
    fn from(kind: DeliveryKind) -> Self {
        match kind {
            DeliveryKind::Callback => MessageKind::Callback,
            DeliveryKind::Webhook => MessageKind::Webhook,
        }
    }
}

impl From<MessageKind> for DeliveryKind {
    fn from(kind: MessageKind) -> Self {
        match kind {
            MessageKind::Callback => DeliveryKind::Callback,
            _ => DeliveryKind::Webhook,
        }
    }
}

/// Which messages to list. Every filter narrows; repeat `status` or `id` for several.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct MessageQuery {
    /// Only messages in these states.
    #[serde(default)]
    pub status: Vec<DeliveryStatus>,
    /// Only callbacks or only webhooks.
    #[serde(default)]
    pub kind: Option<DeliveryKind>,
    /// Only this webhook event type or callback name.
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub event: Option<String>,
    /// Only messages for this webhook endpoint (`ep_...`).
    #[serde(default)]
    #[schemars(pattern(r"^ep_[0-9A-Za-z]{27}$"))]
    pub endpoint_id: Option<String>,
    /// Only messages sent to this host (a name, an IPv4 address, or an IPv6 address in
    /// brackets), on any port.
    #[serde(default)]
    #[schemars(
        length(max = 255),
        pattern(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)$")
    )]
    pub host: Option<String>,
    /// Only messages created at or after this time (RFC 3339).
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Only messages created before this time (RFC 3339).
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// Only these messages (`msg_...`).
    #[serde(default)]
    #[schemars(length(max = 100), inner(pattern(r"^msg_[0-9A-Za-z]{27}$")))]
    pub id: Vec<String>,
    /// Only messages older than this one: the `next` of the previous page.
    #[serde(default)]
    #[schemars(pattern(r"^msg_[0-9A-Za-z]{27}$"))]
    pub before: Option<String>,
    /// At most this many (50 by default).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

/// The message a path names.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MessagePath {
    /// The message's id (`msg_...`).
    #[schemars(pattern(r"^msg_[0-9A-Za-z]{27}$"))]
    pub message_id: String,
}

/// The endpoint a path names.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EndpointPath {
    /// The endpoint's id (`ep_...`).
    #[schemars(pattern(r"^ep_[0-9A-Za-z]{27}$"))]
    pub endpoint_id: String,
}

/// A message, without its payload.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MessageSummary {
    /// Its id, which receivers see as `webhook-id`.
    pub id: String,
    /// Where it is in its life.
    pub status: DeliveryStatus,
    /// A callback or a webhook.
    pub kind: DeliveryKind,
    /// The webhook's event type or the callback's name.
    pub event: String,
    /// The HTTP method it is sent with.
    pub method: String,
    /// Where it goes (without credentials).
    pub url: String,
    /// The host it goes to.
    pub host: String,
    /// The webhook endpoint it is for, if any.
    pub endpoint_id: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// How many attempts were made.
    pub attempts: u32,
    /// When the next attempt is due, while it is pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// What went wrong last.
    pub last_error: Option<String>,
}

pub(crate) fn utc(time: std::time::SystemTime) -> DateTime<Utc> {
    time.into()
}

impl From<&MessageMeta> for MessageSummary {
    fn from(m: &MessageMeta) -> Self {
        MessageSummary {
            id: m.id.to_string(),
            status: m.status.into(),
            kind: m.kind.into(),
            event: m.name.clone(),
            method: m.method.to_string(),
            url: roundtrip_delivery::message::redact_url(&m.url),
            host: m.url.host_str().unwrap_or_default().to_owned(),
            endpoint_id: m.endpoint_id.clone(),
            created_at: utc(m.created_at),
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at.map(utc),
            finished_at: m.finished_at.map(utc),
            last_error: m.last_error.clone(),
        }
    }
}

/// One page of messages, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MessageList {
    /// The messages.
    pub data: Vec<MessageSummary>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next: Option<String>,
}

/// One attempt to deliver a message.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AttemptView {
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// The receiver's status code, when it answered.
    pub response_status: Option<u16>,
    /// The start of the receiver's answer, as text (invalid UTF-8 replaced).
    pub response_body: String,
    /// Whether the answer was longer than what was kept.
    pub response_truncated: bool,
    /// The receiver's response headers as `[name, value]` pairs, in order (at most 64,
    /// values cut at 1 KiB, `Set-Cookie` values not kept).
    pub response_headers: Vec<(String, String)>,
    /// What kind of failure it was (`timeout`, `connect`, ...), when it failed without an
    /// answer or on the sender's side.
    pub error_kind: Option<String>,
    /// The failure, in words.
    pub error: Option<String>,
    /// How a 2xx answer broke the callback's documented response, if it did.
    pub contract_violation: Option<String>,
    /// What was decided: `succeeded`, `retry` or `failed`.
    pub outcome: String,
    /// When the next attempt was due, after a `retry`.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> Self {
        AttemptView {
            number: a.number,
            started_at: utc(a.started_at),
            duration_ms: a.duration.as_secs_f64() * 1000.0,
            response_status: a.response_status,
            response_body: String::from_utf8_lossy(&a.response_body).into_owned(),
            response_truncated: a.response_truncated,
            response_headers: a.response_headers.clone(),
            error_kind: a.error.as_ref().map(|e| e.kind.as_str().to_owned()),
            error: a.error.as_ref().map(|e| e.message.clone()),
            contract_violation: a.contract_violation.clone(),
            outcome: a.decision.clone(),
            next_attempt_at: a.next_attempt_at.map(utc),
        }
    }
}

/// A message with its payload and every attempt.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MessageDetail {
    /// The message.
    pub message: MessageSummary,
    /// The payload as text (invalid UTF-8 replaced).
    pub payload: String,
    /// Whether the payload is valid UTF-8 (`payload` replaced what was not).
    pub payload_utf8: bool,
    /// The attempts, oldest first.
    pub attempts: Vec<AttemptView>,
}

/// Which finished messages to replay.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReplayRequest {
    /// Messages created at or after this time (RFC 3339).
    pub since: DateTime<Utc>,
    /// Messages created before this time (RFC 3339); now when left out.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// The statuses to replay (failed ones when left out).
    #[serde(default)]
    #[schemars(length(max = 3))]
    pub status: Vec<FinishedStatus>,
    /// Only callbacks or only webhooks.
    #[serde(default)]
    pub kind: Option<DeliveryKind>,
    /// Only this webhook event type or callback name.
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub event: Option<String>,
    /// Only messages for this webhook endpoint.
    #[serde(default)]
    #[schemars(pattern(r"^ep_[0-9A-Za-z]{27}$"))]
    pub endpoint_id: Option<String>,
}

/// How many messages a replay put back in the queue.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReplayResult {
    /// Messages put back, due now.
    pub replayed: u64,
}

/// How an endpoint has been doing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EndpointHealth {
    /// The window looked at, in seconds (messages created since then).
    pub window_seconds: u64,
    /// Messages of the window that succeeded.
    pub succeeded: u64,
    /// Messages of the window that failed (or were cancelled).
    pub failed: u64,
    /// Messages of the window still owed a delivery.
    pub pending: u64,
    /// Succeeded over finished, from 0 to 1; `null` when none finished.
    pub success_rate: Option<f64>,
    /// Whether the counts stopped at the most the window looks at (the newest 2 000 messages).
    pub capped: bool,
    /// The last error of the newest message that did not succeed.
    pub last_error: Option<String>,
    /// When the message with that error was created.
    pub last_error_at: Option<DateTime<Utc>>,
}

/// A webhook endpoint with its health.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EndpointView {
    /// The endpoint (never its secret); `disabled_at`, `disabled_by` and
    /// `disabled_reason` say when and why it was disabled.
    pub endpoint: WebhookEndpoint,
    /// Its deliveries over the health window.
    pub health: EndpointHealth,
}

/// One page of endpoints with their health.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EndpointViewList {
    /// The endpoints, oldest first.
    pub data: Vec<EndpointView>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}

/// Which endpoints to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct EndpointQuery {
    /// Only endpoints after this one: the `next` of the previous page.
    #[serde(default)]
    #[schemars(pattern(r"^ep_[0-9A-Za-z]{27}$"))]
    pub after: Option<String>,
    /// At most this many (20 by default).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

/// How to rotate an endpoint's secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct SecretRotationRequest {
    /// How long the current secret keeps signing, in seconds (24 hours by default; at most
    /// 30 days).
    #[serde(default)]
    #[schemars(range(max = 2_592_000))]
    pub grace_seconds: Option<u64>,
}

/// Which event to send as a test.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct TestEventRequest {
    /// A declared webhook event the endpoint wants (its first one by default).
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub event_type: Option<String>,
}

/// A test event, queued.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TestEventSent {
    /// The message that carries it.
    pub message_id: String,
    /// Its event type.
    pub event_type: String,
    /// Its payload: the event's example.
    pub payload: Value,
}

/// An event the API sends: a declared webhook or a callback of an operation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventInfo {
    /// A webhook or a callback.
    pub kind: DeliveryKind,
    /// The webhook's event type or the callback's name.
    pub name: String,
    /// The HTTP method it is sent with.
    pub method: String,
    /// For a callback: the operation that sends it (`METHOD /path`).
    pub operation: Option<String>,
    /// For a callback: the runtime expression of its URL.
    pub url_expression: Option<String>,
    /// What the document says of it.
    pub description: Option<String>,
    /// The payload's JSON Schema, references inlined.
    pub schema: Value,
    /// An example payload, made from the schema.
    pub example: Value,
}

/// The events the API sends.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventCatalogue {
    /// Webhooks first, then callbacks, in the document's order.
    pub data: Vec<EventInfo>,
}
