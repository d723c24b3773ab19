//! Sending callbacks and webhooks: [`Notify<P>`], a callback sender bound to the current
//! request, and [`Publisher`], which sends declared webhooks to a given URL.
//!
//! `send` does, in order: resolve the callback's expression against the request (a value
//! the expression needs but the request lacks is a typed error, never a panic), refuse URLs
//! the SSRF guard forbids, validate the payload against its declared schema (a bug fails
//! the sender's test, never a customer's receiver), refuse payloads over the size limit,
//! and commit the message to the outbox. It returns only once the message is durable; the
//! workers deliver it from there.

use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use axum::extract::{FromRequestParts, RawPathParams};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use roundtrip_delivery::message::{MessageKind, NewMessage};
use roundtrip_delivery::outbox::MessageId;
use roundtrip_openapi::expr::{EvalError, RequestSource, Template};
use roundtrip_openapi::model::Method;
use roundtrip_openapi::validate::ValidationError;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::callback::{BoundCallback, WebhookSpec};
use crate::error::detail_response;
use crate::extract::validation::type_validator;
use crate::operation::{OperationContext, OperationInput, Requirement};
use crate::outbound::PreparedDelivery;
use crate::routing::OperationSettings;

/// The raw request body, shared with `Notify` so that `$request.body` expressions can be
/// resolved after the body extractor has consumed the body.
#[derive(Clone, Default)]
pub(crate) struct RequestBodySlot(Arc<OnceLock<Bytes>>);

impl RequestBodySlot {
    pub(crate) fn fill(&self, body: Bytes) {
        let _ = self.0.set(body);
    }

    fn get(&self) -> Option<&Bytes> {
        self.0.get()
    }
}

/// Why a message was not sent.
///
/// Each kind answers a sensible default response when a handler returns it with `?`: a
/// request that lacks what the callback needs is the client's mistake (400), a payload
/// that breaks its own schema is the server's (500), and an outbox that cannot be written
/// is a temporary outage (503).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The expression could not be resolved against this request (a missing
    /// `callback_url`, a body field that is not there, a value that is not a URL).
    #[error("cannot send `{name}`: {source}")]
    Resolve {
        /// The callback's name.
        name: String,
        /// What was missing or wrong.
        source: EvalError,
    },
    /// The URL is refused by the SSRF guard (a private address, a `file:` URL).
    #[error("cannot send `{name}`: the URL is refused: {reason}")]
    Refused {
        /// The callback or webhook name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The payload does not match the schema it is declared with.
    #[error("cannot send `{name}`: the payload does not match its schema: {}", summarize(.errors))]
    InvalidPayload {
        /// The callback or webhook name.
        name: String,
        /// Every mismatch, in FastAPI's shape.
        errors: Vec<ValidationError>,
    },
    /// The payload is larger than the app accepts.
    #[error("cannot send `{name}`: the payload is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The callback or webhook name.
        name: String,
        /// The payload's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The outbox could not store the message; nothing was sent.
    #[error("cannot send `{name}`: the outbox is unavailable: {reason}")]
    Unavailable {
        /// The callback or webhook name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The app has no webhook subscriptions to publish to (a wiring mistake: add them with
    /// `App::subscriptions`).
    #[error(
        "cannot publish `{name}`: the app has no webhook subscriptions; add them with `App::subscriptions(..)`"
    )]
    NoSubscriptions {
        /// The webhook name.
        name: String,
    },
    /// The operation has no callback with this payload type (a wiring mistake the app's
    /// build normally catches).
    #[error("no callback with payload `{payload}` is attached to this operation")]
    NotAttached {
        /// The payload type.
        payload: &'static str,
    },
}

/// A short account of validation errors for logs and messages: `loc: msg; ...`.
pub(crate) fn summarize(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .take(3)
        .map(|e| {
            let loc: Vec<String> = e
                .loc
                .iter()
                .map(|l| match l {
                    roundtrip_openapi::validate::LocItem::Key(k) => k.clone(),
                    roundtrip_openapi::validate::LocItem::Index(i) => i.to_string(),
                })
                .collect();
            format!("{}: {}", loc.join("."), e.msg)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl SendError {
    /// True when the request lacked what the expression needs, or gave a value that is
    /// not a usable URL.
    pub fn is_resolve(&self) -> bool {
        matches!(self, SendError::Resolve { .. })
    }

    /// True when the SSRF guard refused the URL.
    pub fn is_refused(&self) -> bool {
        matches!(self, SendError::Refused { .. })
    }

    /// True when the message could not be stored (the outbox is down or full).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SendError::Unavailable { .. })
    }

    /// The resolution error, to ask what was missing.
    pub fn eval_error(&self) -> Option<&EvalError> {
        match self {
            SendError::Resolve { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl IntoResponse for SendError {
    fn into_response(self) -> Response {
        match &self {
            SendError::Resolve { .. } | SendError::Refused { .. } => {
                detail_response(StatusCode::BAD_REQUEST, &self.to_string())
            }
            SendError::Unavailable { .. } => {
                tracing::error!("{self}");
                let mut response =
                    detail_response(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static("5"),
                );
                response
            }
            SendError::InvalidPayload { .. }
            | SendError::TooLarge { .. }
            | SendError::NoSubscriptions { .. }
            | SendError::NotAttached { .. } => {
                tracing::error!("{self}");
                detail_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

/// The responses a failed send produces are not documented, as FastAPI documents no
/// `HTTPException`; declare them on the route when clients should know.
impl crate::operation::OperationOutput for SendError {}

/// What a send may add to the message.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    idempotency_key: Option<String>,
    signing_key: Option<String>,
}

impl SendOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// A key under which a second send of the same callback is recognised as a duplicate
    /// while the first is live (a client retrying its request, say). A manual retry or
    /// replay is never swallowed by it.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Which secrets sign the message, as the app's secret source understands it (a
    /// customer id, say). By default the app's own secrets sign.
    pub fn signing_key(mut self, key: impl Into<String>) -> Self {
        self.signing_key = Some(key.into());
        self
    }
}

/// What `Notify` keeps of the request, to resolve the expression when `send` is called.
struct Captured {
    method: String,
    url: String,
    path: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: RequestBodySlot,
}

struct View<'a> {
    captured: &'a Captured,
    body: Option<Value>,
}

impl RequestSource for View<'_> {
    fn method(&self) -> &str {
        &self.captured.method
    }

    fn url(&self) -> &str {
        &self.captured.url
    }

    fn path_param(&self, name: &str) -> Option<&str> {
        let found = self.captured.path.iter().find(|(k, _)| k == name);
        found.map(|(_, v)| v.as_str())
    }

    fn query_param(&self, name: &str) -> Option<&str> {
        // The last value wins, as it does for `Query<T>`, so the URL sent is the one the
        // handler validated.
        let found = self.captured.query.iter().rev().find(|(k, _)| k == name);
        found.map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.captured.headers.get(name)?.to_str().ok()
    }

    fn body(&self) -> Option<&Value> {
        self.body.as_ref()
    }
}

/// A callback sender bound to the current request: the handler's way to send the
/// callback whose payload type is `P`.
///
/// ```ignore
/// async fn create_invoice(
///     Query(q): Query<CallbackUrl>,
///     notify: Notify<InvoiceEvent>,
///     Json(invoice): Json<Invoice>,
/// ) -> Result<Json<Value>, SendError> {
///     notify.send(InvoiceEvent { description: "paid".into(), paid: true }).await?;
///     Ok(Json(json!({"msg": "Invoice received"})))
/// }
/// ```
///
/// The route must carry a callback with payload `P` (`.callback(invoice_notification())`);
/// the app refuses to build otherwise. `Notify` must come before the body extractor, as
/// every non-body extractor does.
pub struct Notify<P> {
    callback: BoundCallback,
    captured: Captured,
    _payload: PhantomData<fn(P)>,
}

impl<P> std::fmt::Debug for Notify<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notify")
            .field("callback", &self.callback.spec.name)
            .finish_non_exhaustive()
    }
}

impl<P, S> FromRequestParts<S> for Notify<P>
where
    P: Serialize + JsonSchema + 'static,
    S: Send + Sync,
{
    type Rejection = SendError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let not_attached = || SendError::NotAttached {
            payload: std::any::type_name::<P>(),
        };
        let settings = parts
            .extensions
            .get::<Arc<OperationSettings>>()
            .ok_or_else(not_attached)?;
        let callback = settings
            .callbacks
            .iter()
            .find(|c| c.spec.payload_type == TypeId::of::<P>())
            .cloned()
            .ok_or_else(not_attached)?;
        let template = callback.spec.template.as_ref().ok();
        let body = RequestBodySlot::default();
        if template.is_some_and(Template::needs_request_body) {
            parts.extensions.insert(body.clone());
        }
        // Keep only what the expression reads: most requests never send, and those that
        // do need a query parameter and a body field, not the whole request.
        let needs_headers =
            template.is_some_and(|t| t.request_headers().next().is_some() || uses_url(t));
        let path = if template.is_some_and(|t| t.path_params().next().is_some()) {
            match RawPathParams::from_request_parts(parts, state).await {
                Ok(raw) => raw
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                Err(_) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let query = if template.is_some_and(|t| t.query_params().next().is_some()) {
            url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Notify {
            captured: Captured {
                method: parts.method.as_str().to_owned(),
                url: if template.is_some_and(uses_url) {
                    request_url(parts)
                } else {
                    String::new()
                },
                path,
                query,
                headers: if needs_headers {
                    parts.headers.clone()
                } else {
                    HeaderMap::new()
                },
                body,
            },
            callback,
            _payload: PhantomData,
        })
    }
}

/// The request's URL as a client addressed it, for `$url`.
fn request_url(parts: &Parts) -> String {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    format!("http://{host}{path_and_query}")
}

/// Whether the template reads `$url`, which is rebuilt from the `Host` header.
fn uses_url(template: &Template) -> bool {
    template
        .expressions()
        .any(|e| matches!(e, roundtrip_openapi::expr::RuntimeExpr::Url))
}

impl<P: 'static> OperationInput for Notify<P> {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.require(Requirement::Callback {
            payload: TypeId::of::<P>(),
            payload_name: std::any::type_name::<P>(),
        });
    }
}

impl<P> Notify<P>
where
    P: Serialize + JsonSchema + 'static,
{
    /// The URL this request's callback goes to, without sending anything.
    pub fn url(&self) -> Result<url::Url, SendError> {
        let spec = &self.callback.spec;
        let template = spec.template.as_ref().map_err(|_| SendError::NotAttached {
            payload: spec.payload_type_name,
        })?;
        let body = self
            .captured
            .body
            .get()
            .and_then(|b| serde_json::from_slice(b).ok());
        let view = View {
            captured: &self.captured,
            body,
        };
        template
            .resolve_url(&view, None)
            .map_err(|source| SendError::Resolve {
                name: spec.name.clone(),
                source,
            })
    }

    /// Resolves the callback's URL against this request, validates `payload`, and commits
    /// the message to the outbox. Returns the message id (the `webhook-id` receivers see)
    /// once the message is durable.
    pub async fn send(&self, payload: P) -> Result<MessageId, SendError> {
        self.send_with(payload, SendOptions::default()).await
    }

    /// [`send`](Self::send) with an idempotency key or a signing key.
    pub async fn send_with(
        &self,
        payload: P,
        options: SendOptions,
    ) -> Result<MessageId, SendError> {
        let message = self.message(payload, options)?;
        store(
            &self.callback.delivery,
            MessageKind::Callback,
            &self.callback.spec.name,
            message,
        )
        .await
    }

    /// Builds, checks and returns the message [`send`](Self::send) would store, without
    /// storing it: for an enqueue inside the application's own database transaction, so
    /// that a business row and its callback commit together or not at all.
    ///
    /// ```ignore
    /// let message = notify.message(event, SendOptions::new())?;
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("INSERT INTO invoices (id) VALUES ($1)").bind(&id).execute(&mut *tx).await?;
    /// outbox.enqueue_in(&mut tx, vec![message]).await?;   // PgOutbox or SqliteOutbox
    /// tx.commit().await?;
    /// ```
    pub fn message(&self, payload: P, options: SendOptions) -> Result<NewMessage, SendError> {
        let url = self.url()?;
        let spec = &self.callback.spec;
        let method = spec.methods.first().copied().unwrap_or(Method::Post);
        prepare(
            &self.callback.delivery,
            MessageKind::Callback,
            &spec.name,
            url,
            method,
            &payload,
            options,
        )
    }
}

/// Checks a message and builds it: the part of sending that callbacks and webhooks share.
/// Synchronous, so no reference to the payload lives across an await.
fn prepare<P: Serialize + JsonSchema + 'static>(
    delivery: &PreparedDelivery,
    kind: MessageKind,
    name: &str,
    url: url::Url,
    method: Method,
    payload: &P,
    options: SendOptions,
) -> Result<NewMessage, SendError> {
    roundtrip_delivery::ssrf::check_url(&url, delivery.ssrf()).map_err(|err| {
        SendError::Refused {
            name: name.to_owned(),
            reason: err.to_string(),
        }
    })?;
    let body = serialize_checked(name, payload, delivery.max_payload_bytes())?;
    let mut message = match kind {
        MessageKind::Webhook => NewMessage::webhook(name, url, body),
        _ => NewMessage::callback(name, url, body),
    }
    .method(http_method(method));
    if let Some(key) = options.idempotency_key {
        message = message.idempotency_key(key);
    }
    if let Some(key) = options.signing_key {
        message = message.signing_key(key);
    }
    Ok(message)
}

/// Commits a message to the outbox and answers its id once it is durable.
async fn store(
    delivery: &PreparedDelivery,
    kind: MessageKind,
    name: &str,
    message: NewMessage,
) -> Result<MessageId, SendError> {
    let unavailable = |reason: String| SendError::Unavailable {
        name: name.to_owned(),
        reason,
    };
    let outbox = delivery.outbox().await.map_err(unavailable)?;
    let mut stored = outbox
        .enqueue(vec![message])
        .await
        .map_err(|err| unavailable(err.to_string()))?;
    if let Some(metrics) = delivery.metrics() {
        let new = stored.iter().filter(|e| !e.deduplicated).count();
        metrics.count_enqueued(kind, name, new as u64);
    }
    stored
        .pop()
        .map(|enqueued| enqueued.id)
        .ok_or_else(|| unavailable("the outbox stored nothing".to_owned()))
}

/// Serializes a payload after checking it against its own schema and the size limit.
fn serialize_checked<P: Serialize + JsonSchema + 'static>(
    name: &str,
    payload: &P,
    limit: usize,
) -> Result<Vec<u8>, SendError> {
    let invalid = |errors| SendError::InvalidPayload {
        name: name.to_owned(),
        errors,
    };
    let failed = |err: serde_json::Error| {
        invalid(vec![ValidationError::new(
            "serialization",
            Vec::new(),
            err.to_string(),
            Value::Null,
        )])
    };
    let body = match type_validator::<P>() {
        // Constraints serde does not check: validate the value before it is written.
        Ok(tv) if !tv.serde_covers => {
            let mut value = serde_json::to_value(payload).map_err(failed)?;
            let mut errors = Vec::new();
            tv.validator.validate(&mut value, &[], &mut errors);
            if !errors.is_empty() {
                return Err(invalid(errors));
            }
            serde_json::to_vec(&value).map_err(failed)?
        }
        _ => serde_json::to_vec(payload).map_err(failed)?,
    };
    if body.len() > limit {
        return Err(SendError::TooLarge {
            name: name.to_owned(),
            size: body.len(),
            limit,
        });
    }
    Ok(body)
}

fn http_method(method: Method) -> http::Method {
    http::Method::from_bytes(method.as_upper().as_bytes()).unwrap_or(http::Method::POST)
}

/// Sends the app's declared webhooks to a given URL. Clone it freely; get it from
/// [`BuiltApp::publisher`](crate::BuiltApp::publisher) or as a handler argument.
#[derive(Clone)]
pub struct Publisher {
    pub(crate) delivery: PreparedDelivery,
    pub(crate) webhooks: Arc<Vec<WebhookSpec>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("webhooks", &self.webhooks.len())
            .finish()
    }
}

impl Publisher {
    /// Sends `webhook` with `payload` to `url`, signed by the app's secrets (or those the
    /// options name). The webhook must be declared on the app.
    pub async fn send_to<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        url: &str,
        payload: &P,
        options: SendOptions,
    ) -> Result<MessageId, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        let message = self.message_to(webhook, url, payload, options)?;
        store(
            &self.delivery,
            MessageKind::Webhook,
            webhook.event(),
            message,
        )
        .await
    }

    /// Builds and checks the message [`send_to`](Self::send_to) would store, without
    /// storing it: for an enqueue inside the application's own database transaction
    /// (`enqueue_in` on `SqliteOutbox` or `PgOutbox`), so that a business row and its
    /// webhook commit together or not at all.
    pub fn message_to<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        url: &str,
        payload: &P,
        options: SendOptions,
    ) -> Result<NewMessage, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        let event = webhook.event();
        let declared = self.declared::<P>(event)?;
        let parsed = url::Url::parse(url).map_err(|err| SendError::Refused {
            name: event.to_owned(),
            reason: format!("not a URL: {err}"),
        })?;
        prepare(
            &self.delivery,
            MessageKind::Webhook,
            event,
            parsed,
            declared.method,
            payload,
            options,
        )
    }
}

impl Publisher {
    /// Publishes `webhook` with `payload` to every enabled endpoint subscribed to it: one
    /// message per endpoint, each with the endpoint's URL and signed with its secrets, all
    /// stored in one outbox write (all or none). Answers the message ids, in the endpoints'
    /// order; none when nobody subscribed.
    ///
    /// The payload is checked against its schema and the size limit first, so a bug fails
    /// even when nobody listens. The app needs [`App::subscriptions`](crate::App::subscriptions).
    pub async fn publish<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        payload: &P,
    ) -> Result<Vec<MessageId>, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        self.publish_with(webhook, payload, SendOptions::new())
            .await
    }

    /// [`publish`](Self::publish) with an idempotency key: a second publish with the same
    /// key stores nothing new for the endpoints the first one reached. (A signing key is
    /// ignored: each endpoint's own secrets sign.)
    pub async fn publish_with<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        payload: &P,
        options: SendOptions,
    ) -> Result<Vec<MessageId>, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        let messages = self.messages(webhook, payload, options).await?;
        store_all(
            &self.delivery,
            MessageKind::Webhook,
            webhook.event(),
            messages,
        )
        .await
    }

    /// Builds and checks the messages [`publish_with`](Self::publish_with) would store, one
    /// per subscribed endpoint, without storing them: for an enqueue inside the
    /// application's own database transaction (`enqueue_in`), so that a business row and
    /// its fan-out commit together or not at all. Empty when nobody subscribed.
    pub async fn messages<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        payload: &P,
        options: SendOptions,
    ) -> Result<Vec<NewMessage>, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        let event = webhook.event();
        let declared = self.declared::<P>(event)?;
        let method = http_method(declared.method);
        let body = Bytes::from(serialize_checked(
            event,
            payload,
            self.delivery.max_payload_bytes(),
        )?);
        let subscriptions =
            self.delivery
                .subscriptions()
                .ok_or_else(|| SendError::NoSubscriptions {
                    name: event.to_owned(),
                })?;
        let endpoints =
            subscriptions
                .matching(event)
                .await
                .map_err(|err| SendError::Unavailable {
                    name: event.to_owned(),
                    reason: err.to_string(),
                })?;
        let mut messages = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            // Checked at registration; the policy may have changed since.
            if let Err(err) =
                roundtrip_delivery::ssrf::check_url(&endpoint.url, self.delivery.ssrf())
            {
                tracing::warn!(
                    endpoint_id = %endpoint.id,
                    url = %roundtrip_delivery::message::redact_url(&endpoint.url),
                    error = %err,
                    "not publishing `{event}` to a webhook endpoint the SSRF policy refuses"
                );
                continue;
            }
            let mut message = NewMessage::webhook(event, endpoint.url, body.clone())
                .method(method.clone())
                .endpoint_id(&endpoint.id);
            if let Some(key) = &options.idempotency_key {
                // One key per endpoint: the same key would otherwise deduplicate the whole
                // fan-out into its first message.
                message = message.idempotency_key(format!("{key}/{}", endpoint.id));
            }
            messages.push(message);
        }
        Ok(messages)
    }

    /// The declared webhook `event` with payload `P`.
    fn declared<P: 'static>(&self, event: &str) -> Result<&WebhookSpec, SendError> {
        self.webhooks
            .iter()
            .find(|w| w.event == event && w.payload_type == TypeId::of::<P>())
            .ok_or(SendError::NotAttached {
                payload: std::any::type_name::<P>(),
            })
    }
}

/// Commits messages to the outbox in one write and answers their ids once durable.
async fn store_all(
    delivery: &PreparedDelivery,
    kind: MessageKind,
    name: &str,
    messages: Vec<NewMessage>,
) -> Result<Vec<MessageId>, SendError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let unavailable = |reason: String| SendError::Unavailable {
        name: name.to_owned(),
        reason,
    };
    let outbox = delivery.outbox().await.map_err(unavailable)?;
    let count = messages.len();
    let stored = outbox
        .enqueue(messages)
        .await
        .map_err(|err| unavailable(err.to_string()))?;
    if stored.len() != count {
        return Err(unavailable(format!(
            "the outbox stored {} of {count} messages",
            stored.len()
        )));
    }
    if let Some(metrics) = delivery.metrics() {
        let new = stored.iter().filter(|e| !e.deduplicated).count();
        metrics.count_enqueued(kind, name, new as u64);
    }
    Ok(stored.into_iter().map(|enqueued| enqueued.id).collect())
}

impl<S: Send + Sync> FromRequestParts<S> for Publisher {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Publisher>().cloned().ok_or_else(|| {
            crate::error::operation_error_response(
                "Publisher used outside a roundtrip app (no publisher in the request)",
            )
        })
    }
}

impl OperationInput for Publisher {}
