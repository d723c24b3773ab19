//! Messages and attempts: what the outbox stores.
//!
//! A [`NewMessage`] is one callback or webhook event bound for one URL. Its id is fixed when
//! it is built: it is the `webhook-id` header, the same on every attempt, so a receiver can
//! deduplicate. Once enqueued, a message is read back as a [`Message`] (its [`MessageMeta`]
//! plus the headers and body) and goes through these states:
//!
//! ```text
//!  enqueue ─► pending ──claim──► leased ──2xx──────────────► succeeded
//!               ▲                  │  ├──retries exhausted, 410──► failed ──retry/replay─┐
//!               └──── retry at ◄───┘  └──lease expired × crash cap─► failed              │
//!               ▲                                                                         │
//!               └─────────────────────────────────────────────────────────────────────────┘
//!  pending or leased ──cancel──► cancelled
//! ```
//!
//! Every try writes an [`Attempt`]: when it started, how long it took, the response status,
//! the first bytes of the response body, the error if there was no response, and whether the
//! response broke the declared contract.
//!
//! The secret that signs a message is never stored with it: a message carries a
//! `signing_key` reference, and the workers ask a [`SecretSource`](crate::worker::SecretSource)
//! for the secrets at send time, so rotating a secret needs no rewrite of queued messages.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use url::Url;

pub use crate::ids::{InvalidMessageId, MESSAGE_ID_PREFIX, MessageId};

/// Whether a message is a callback (to a URL from the request) or a webhook (to a subscriber).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// An OpenAPI callback, sent to a URL taken from the request that triggered it.
    Callback,
    /// A webhook event, sent to a subscriber's endpoint.
    Webhook,
}

impl MessageKind {
    /// The name used in storage and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Callback => "callback",
            MessageKind::Webhook => "webhook",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "callback" => Ok(MessageKind::Callback),
            "webhook" => Ok(MessageKind::Webhook),
            other => Err(UnknownName::new("message kind", other, "callback, webhook")),
        }
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Waiting for its `next_attempt_at`.
    Pending,
    /// Claimed by a worker, which holds a lease on it.
    Leased,
    /// A receiver answered 2xx. Final.
    Succeeded,
    /// Retries exhausted, 410 Gone, or abandoned by too many crashed workers. Can be retried.
    Failed,
    /// Cancelled by a user. Can be retried.
    Cancelled,
}

impl MessageStatus {
    /// The name used in storage and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Leased => "leased",
            MessageStatus::Succeeded => "succeeded",
            MessageStatus::Failed => "failed",
            MessageStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the message is still owed a delivery (pending or leased).
    pub fn is_live(self) -> bool {
        matches!(self, MessageStatus::Pending | MessageStatus::Leased)
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(MessageStatus::Pending),
            "leased" | "in_flight" | "in-flight" => Ok(MessageStatus::Leased),
            "succeeded" => Ok(MessageStatus::Succeeded),
            "failed" => Ok(MessageStatus::Failed),
            "cancelled" | "canceled" => Ok(MessageStatus::Cancelled),
            other => Err(UnknownName::new(
                "message status",
                other,
                "pending, leased, succeeded, failed, cancelled",
            )),
        }
    }
}

/// A name (status, kind, error kind) that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`: expected one of {expected}")]
pub struct UnknownName {
    what: &'static str,
    given: String,
    expected: &'static str,
}

impl UnknownName {
    fn new(what: &'static str, given: &str, expected: &'static str) -> Self {
        UnknownName {
            what,
            given: given.chars().take(60).collect(),
            expected,
        }
    }
}

/// A message to enqueue.
///
/// ```
/// use roundtrip_delivery::message::NewMessage;
/// let url = url::Url::parse("https://example.com/invoices/42").unwrap();
/// let msg = NewMessage::callback("invoice_notification", url, r#"{"paid":true}"#)
///     .idempotency_key("invoice-42-paid");
/// assert!(msg.id().as_str().starts_with("msg_"));
/// ```
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub(crate) id: MessageId,
    pub(crate) kind: MessageKind,
    pub(crate) name: String,
    pub(crate) url: Url,
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) endpoint_id: Option<String>,
    pub(crate) signing_key: Option<String>,
    pub(crate) ordering_key: Option<String>,
    pub(crate) metadata: serde_json::Map<String, serde_json::Value>,
}

impl NewMessage {
    /// A message of `kind` named `name`, POSTing the JSON `body` to `url`.
    ///
    /// With the `opentelemetry` feature, the current trace context (the span of the
    /// request that sends it, say) is stored with the message, and each attempt's span
    /// links to it.
    pub fn new(
        kind: MessageKind,
        name: impl Into<String>,
        url: Url,
        body: impl Into<Bytes>,
    ) -> Self {
        #[allow(unused_mut)]
        let mut metadata = serde_json::Map::new();
        #[cfg(feature = "opentelemetry")]
        crate::telemetry::capture(&mut metadata);
        NewMessage {
            id: MessageId::generate(),
            kind,
            name: name.into(),
            url,
            method: Method::POST,
            headers: HeaderMap::new(),
            body: body.into(),
            idempotency_key: None,
            endpoint_id: None,
            signing_key: None,
            ordering_key: None,
            metadata,
        }
    }

    /// A callback named `name` (the callback's name in the document).
    pub fn callback(name: impl Into<String>, url: Url, body: impl Into<Bytes>) -> Self {
        Self::new(MessageKind::Callback, name, url, body)
    }

    /// A webhook event named `name` (the key under the document's `webhooks`).
    pub fn webhook(name: impl Into<String>, url: Url, body: impl Into<Bytes>) -> Self {
        Self::new(MessageKind::Webhook, name, url, body)
    }

    /// Sends with `method` instead of POST.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Adds a header sent with every attempt.
    ///
    /// The Standard Webhooks headers, `content-type` and `user-agent` are set by the workers
    /// and override a header of the same name given here.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Deduplicates sends: a second message with the same name and key is not stored, and
    /// enqueue answers with the first one's id. Keys are kept while the message is live and
    /// for the store's idempotency retention after it. A manual retry or replay is never
    /// deduplicated.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The webhook subscription (endpoint) this message is for.
    pub fn endpoint_id(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint_id = Some(endpoint.into());
        self
    }

    /// Which secrets sign this message: a reference the [`SecretSource`] resolves at send
    /// time (for example a customer id). Never the secret itself.
    ///
    /// [`SecretSource`]: crate::worker::SecretSource
    pub fn signing_key(mut self, key: impl Into<String>) -> Self {
        self.signing_key = Some(key.into());
        self
    }

    /// The FIFO ordering key (stored now; ordered delivery per key comes later).
    pub fn ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }

    /// Free-form metadata stored with the message (room for rate-limit keys, signature
    /// schemes and other later features).
    pub fn metadata(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }

    /// Gives the message an id handed out before it was built (a send whose URL is known
    /// only once the response is, say). Ids must be unique: use [`MessageId::generate`].
    pub fn with_id(mut self, id: MessageId) -> Self {
        self.id = id;
        self
    }

    /// The id this message will have: its `webhook-id`.
    pub fn id(&self) -> &MessageId {
        &self.id
    }

    /// The name: the callback's, or the webhook's event.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The target URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The body, as it will be sent.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// The result of enqueueing one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The id of the stored message: this message's, or the earlier one it duplicates.
    pub id: MessageId,
    /// Whether an earlier message with the same name and idempotency key was found, so
    /// nothing new was stored.
    pub deduplicated: bool,
}

/// The lease a worker holds on a claimed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The worker that holds it.
    pub owner: String,
    /// When it runs out; after that another worker may take the message over.
    pub expires_at: SystemTime,
}

/// Everything about a message except its headers and body.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MessageMeta {
    /// The id, also the `webhook-id`.
    pub id: MessageId,
    /// Callback or webhook.
    pub kind: MessageKind,
    /// The callback or webhook name.
    pub name: String,
    /// Where it is sent. Can hold credentials: use [`redact_url`] before logging it.
    pub url: Url,
    /// The HTTP method.
    pub method: Method,
    /// When it was enqueued.
    pub created_at: SystemTime,
    /// Its state.
    pub status: MessageStatus,
    /// How many attempts have been recorded.
    pub attempts: u32,
    /// When the next attempt is due (live messages only).
    pub next_attempt_at: Option<SystemTime>,
    /// The lease, while a worker holds one.
    pub lease: Option<Lease>,
    /// How many times a worker claimed it and vanished without recording an outcome.
    pub lost_leases: u32,
    /// When it reached a final state (finished messages only).
    pub finished_at: Option<SystemTime>,
    /// Why it failed or what the last attempt's error was.
    pub last_error: Option<String>,
    /// The idempotency key it was sent with.
    pub idempotency_key: Option<String>,
    /// The webhook endpoint it is for.
    pub endpoint_id: Option<String>,
    /// The reference to the secrets that sign it.
    pub signing_key: Option<String>,
    /// The FIFO ordering key.
    pub ordering_key: Option<String>,
    /// Free-form metadata.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl MessageMeta {
    /// The number the next attempt will have (1 for the first).
    pub fn next_attempt_number(&self) -> u32 {
        self.attempts.saturating_add(1)
    }
}

/// A stored message: its metadata, headers and body.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Message {
    /// Everything but the headers and body.
    pub meta: MessageMeta,
    /// Extra headers sent with every attempt.
    pub headers: HeaderMap,
    /// The JSON body, as sent.
    pub body: Bytes,
}

/// What kind of failure an attempt without a usable response had: the error kind of its
/// [`AttemptOutcome`](crate::retry::AttemptOutcome) ([`error_kind`]), as stored on the attempt.
///
/// [`error_kind`]: crate::retry::AttemptOutcome::error_kind
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptErrorKind {
    /// No connection could be made (refused, unreachable, DNS failure, TLS handshake).
    Connect,
    /// The connect or total timeout ran out.
    Timeout,
    /// The connection broke while sending the request or reading the response (reset).
    Io,
    /// The SSRF guard refused the target before connecting.
    Refused,
    /// The secrets to sign the message could not be found.
    Secret,
    /// Anything else.
    Other,
}

impl AttemptErrorKind {
    /// The name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptErrorKind::Connect => "connect",
            AttemptErrorKind::Timeout => "timeout",
            AttemptErrorKind::Io => "io",
            AttemptErrorKind::Refused => "refused",
            AttemptErrorKind::Secret => "secret",
            AttemptErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for AttemptErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AttemptErrorKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "connect" => AttemptErrorKind::Connect,
            "timeout" => AttemptErrorKind::Timeout,
            "io" => AttemptErrorKind::Io,
            "refused" => AttemptErrorKind::Refused,
            "secret" => AttemptErrorKind::Secret,
            "other" => AttemptErrorKind::Other,
            other => {
                return Err(UnknownName::new(
                    "attempt error kind",
                    other,
                    "connect, timeout, io, refused, secret, other",
                ));
            }
        })
    }
}

/// Why an attempt got no usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    /// The kind of failure.
    pub kind: AttemptErrorKind,
    /// A description, with URLs redacted.
    pub message: String,
}

/// What was decided for a message after an attempt, placed in time: the form the outbox
/// stores and observers see.
///
/// It is the [`retry::Decision`](crate::retry::Decision) of the schedule (a wait, a reason)
/// turned into the message's next state (a due time, the reason in words). What happened on
/// the attempt itself is an [`AttemptOutcome`](crate::retry::AttemptOutcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Delivered: the message succeeded.
    Succeeded,
    /// Try again at this time.
    Retry {
        /// When the next attempt is due.
        at: SystemTime,
    },
    /// Give up: the message failed.
    Failed {
        /// Why (retries exhausted, 410 Gone, ...).
        reason: String,
    },
}

impl Decision {
    /// The name used in storage: `succeeded`, `retry` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Succeeded => "succeeded",
            Decision::Retry { .. } => "retry",
            Decision::Failed { .. } => "failed",
        }
    }
}

/// One try to deliver a message, as a worker reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewAttempt {
    /// 1 for the first attempt of the message, and so on (kept across retries and replays).
    pub number: u32,
    /// When the request started.
    pub started_at: SystemTime,
    /// How long until the response (or the error).
    pub duration: Duration,
    /// The HTTP status of the response, if one came.
    pub response_status: Option<u16>,
    /// The first bytes of the response body (capped by the workers).
    pub response_body: Bytes,
    /// Whether the body was longer than what is stored.
    pub response_truncated: bool,
    /// The response's headers, in order (capped by the workers: see
    /// [`MAX_RESPONSE_HEADERS`]).
    pub response_headers: Vec<(String, String)>,
    /// Why there was no usable response.
    pub error: Option<AttemptError>,
    /// Why a 2xx response broke the declared response contract, if it did.
    pub contract_violation: Option<String>,
}

/// The most response headers an attempt keeps; the rest are dropped.
pub const MAX_RESPONSE_HEADERS: usize = 64;

/// The longest response header value an attempt keeps, in bytes; a longer one is cut.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 1024;

impl NewAttempt {
    /// An attempt that started at `started_at` and took `duration`, with no response yet.
    pub fn new(number: u32, started_at: SystemTime, duration: Duration) -> Self {
        NewAttempt {
            number,
            started_at,
            duration,
            response_status: None,
            response_body: Bytes::new(),
            response_truncated: false,
            response_headers: Vec::new(),
            error: None,
            contract_violation: None,
        }
    }

    /// Sets the response's headers, keeping at most [`MAX_RESPONSE_HEADERS`] of them and
    /// [`MAX_RESPONSE_HEADER_BYTES`] of each value. Values that are not text are shown
    /// with their invalid bytes replaced; `Set-Cookie` values are not kept.
    pub fn response_headers(mut self, headers: &http::HeaderMap) -> Self {
        self.response_headers = headers
            .iter()
            .take(MAX_RESPONSE_HEADERS)
            .map(|(name, value)| {
                let text = if name == http::header::SET_COOKIE {
                    "[not kept]".to_owned()
                } else {
                    let bytes = value.as_bytes();
                    let cut = &bytes[..bytes.len().min(MAX_RESPONSE_HEADER_BYTES)];
                    String::from_utf8_lossy(cut).into_owned()
                };
                (name.as_str().to_owned(), text)
            })
            .collect();
        self
    }

    /// Sets the response status and the (already capped) start of its body.
    pub fn response(mut self, status: u16, body: Bytes, truncated: bool) -> Self {
        self.response_status = Some(status);
        self.response_body = body;
        self.response_truncated = truncated;
        self
    }

    /// Sets the error.
    pub fn error(mut self, kind: AttemptErrorKind, message: impl Into<String>) -> Self {
        self.error = Some(AttemptError {
            kind,
            message: message.into(),
        });
        self
    }

    /// Sets the contract violation.
    pub fn contract_violation(mut self, violation: Option<String>) -> Self {
        self.contract_violation = violation;
        self
    }
}

/// A recorded attempt, read back from the store.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Attempt {
    /// The message it belongs to.
    pub message_id: MessageId,
    /// Its number (1 for the first).
    pub number: u32,
    /// The worker that made it.
    pub worker: String,
    /// When the request started.
    pub started_at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// The HTTP status, if a response came.
    pub response_status: Option<u16>,
    /// The first bytes of the response body.
    pub response_body: Bytes,
    /// Whether the body was cut.
    pub response_truncated: bool,
    /// The response's headers, as kept (empty when there was no answer).
    pub response_headers: Vec<(String, String)>,
    /// Why there was no usable response.
    pub error: Option<AttemptError>,
    /// Why the response broke the declared contract.
    pub contract_violation: Option<String>,
    /// What was decided after it, as [`Decision::as_str`] names it: `succeeded`, `retry`
    /// or `failed`.
    pub decision: String,
    /// When the next attempt was scheduled, for a `retry` decision.
    pub next_attempt_at: Option<SystemTime>,
}

/// A worker's report on one claimed message: the attempt and what follows from it.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The message.
    pub message_id: MessageId,
    /// The worker that holds the lease.
    pub owner: String,
    /// The attempt to record.
    pub attempt: NewAttempt,
    /// What was decided: the new state of the message.
    pub decision: Decision,
}

/// Whether a [`Completion`]'s worker still held the message's lease when the outbox
/// recorded it: the answer of [`Outbox::complete`](crate::outbox::Outbox::complete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseCheck {
    /// The worker held the lease: the attempt was recorded and the decision applied.
    Held,
    /// The worker no longer held the lease (it expired and another worker took over, or the
    /// message was cancelled): the attempt was recorded, the message left as it was.
    Lost,
}

/// Returns `url` as it may be logged: no user name, password, query or fragment.
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?…");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_hide_credentials_and_queries() {
        let url = Url::parse("https://user:pw@example.com/hook?token=abc#frag")
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = redact_url(&url);
        assert_eq!(shown, "https://example.com/hook?…");
    }

    #[test]
    fn names_round_trip() {
        for s in [
            MessageStatus::Pending,
            MessageStatus::Leased,
            MessageStatus::Succeeded,
            MessageStatus::Failed,
            MessageStatus::Cancelled,
        ] {
            assert_eq!(s.as_str().parse::<MessageStatus>(), Ok(s));
        }
        assert!("done".parse::<MessageStatus>().is_err());
        assert_eq!("webhook".parse::<MessageKind>(), Ok(MessageKind::Webhook));
    }
}
