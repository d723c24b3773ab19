//! Sending callbacks and webhooks: [`Notify<P>`], a callback sender bound to the current
//! request, and [`Publisher`], which sends declared webhooks to a given URL.
//!
//! `send` does, in order: resolve the callback's expression against the request (a value
//! the expression needs but the request lacks is a typed error, never a panic), check the
//! URL against the SSRF policy *after resolving its host* (through the app's resolver, see
//! [`App::resolver`](crate::App::resolver)), validate the payload against its declared
//! schema (a bug fails the sender's test, never a customer's receiver), refuse payloads over
//! the size limit, and commit the message to the outbox. It returns only once the message
//! is durable; the workers deliver it from there.
//!
//! A callback whose expression reads the response (`{$response.body#/id}`,
//! `$response.header.x`, `$statusCode`) cannot be resolved while the handler runs: `send`
//! checks the payload and keeps the message, and the message is resolved and committed
//! once the handler has answered, before the answer leaves the server. See
//! [`Notify::send`].

use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, RawPathParams};
use http::HeaderMap;
use http::request::Parts;
use roundtrip_delivery::message::{MessageKind, NewMessage};
use roundtrip_delivery::outbox::MessageId;
use roundtrip_delivery::ssrf::{SsrfError, resolve_checked};
use roundtrip_openapi::expr::{RequestSource, ResponseSource, RuntimeExpr, Template};
use roundtrip_openapi::model::Method;
use roundtrip_openapi::validate::ValidationError;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::deferred::{Draft, PendingSends};
use super::runtime::PreparedDelivery;
use super::send_error::SendError;
use crate::callback::CallbackSpec;
use crate::extract::validation::type_validator;
use crate::extract::{OperationRequest, RequestBodySlot};
use crate::operation::{OperationContext, OperationInput, Requirement};

/// How long `send` waits for a callback URL's host name to resolve.
pub(crate) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A callback bound to a built app: what a `Notify` needs at request time.
#[derive(Clone)]
pub(crate) struct BoundCallback {
    pub(crate) spec: std::sync::Arc<CallbackSpec>,
    /// The expression as checked against this operation (`$callback_url` bound to the
    /// input it names).
    pub(crate) template: std::sync::Arc<Template>,
    pub(crate) delivery: PreparedDelivery,
}

impl BoundCallback {
    pub(crate) fn new(
        spec: std::sync::Arc<CallbackSpec>,
        template: Template,
        delivery: PreparedDelivery,
    ) -> Self {
        BoundCallback {
            spec,
            template: std::sync::Arc::new(template),
            delivery,
        }
    }
}

impl std::fmt::Debug for BoundCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundCallback")
            .field("name", &self.spec.name)
            .finish()
    }
}

/// The callbacks bound to one operation, in the order `Notify` finds them by payload type;
/// shared by every request to it (one reference count per request).
#[derive(Debug, Default)]
pub(crate) struct OperationCallbacks(pub(crate) Vec<BoundCallback>);

/// What a send may add to the message.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    pub(super) idempotency_key: Option<String>,
    pub(super) signing_key: Option<String>,
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
///
/// Most requests never send, so extracting `Notify` only keeps cheap handles (the method,
/// the URI, the body's slot); the query is parsed and the body read when a send resolves
/// the expression.
pub(crate) struct Captured {
    method: http::Method,
    url: String,
    path: Vec<(String, String)>,
    /// The request's URI, kept when the expression reads the query.
    uri: Option<http::Uri>,
    headers: HeaderMap,
    body: RequestBodySlot,
}

/// The captured request, with its query and body parsed, as expressions read it.
pub(crate) struct View<'a> {
    captured: &'a Captured,
    query: Vec<(String, String)>,
    body: Option<Value>,
}

impl<'a> View<'a> {
    pub(crate) fn new(captured: &'a Captured) -> Self {
        let query = match captured.uri.as_ref().and_then(http::Uri::query) {
            Some(query) => url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            None => Vec::new(),
        };
        View {
            captured,
            query,
            body: captured.body.json(),
        }
    }
}

impl RequestSource for View<'_> {
    fn method(&self) -> &str {
        self.captured.method.as_str()
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
        let found = self.query.iter().rev().find(|(k, _)| k == name);
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
/// The route must carry a callback with payload `P` (`.callback(invoice_notification())`),
/// and the callback's expression must fit the operation; the app refuses to build
/// otherwise. `Notify` must come before the body extractor, as every non-body extractor
/// does. An operation with a `Notify` documents the 422 that a refused callback URL
/// answers.
pub struct Notify<P> {
    /// The operation's callbacks (one reference count per request, where a copy of the
    /// callback would take three), and which of them this is.
    callbacks: Arc<OperationCallbacks>,
    index: usize,
    captured: Arc<Captured>,
    pending: Option<PendingSends>,
    _payload: PhantomData<fn(P)>,
}

impl<P> Notify<P> {
    /// The callback this sender sends.
    fn callback(&self) -> &BoundCallback {
        &self.callbacks.0[self.index]
    }
}

impl<P> std::fmt::Debug for Notify<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notify")
            .field("callback", &self.callback().spec.name)
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
        let operation = parts
            .extensions
            .get::<OperationRequest>()
            .ok_or_else(not_attached)?;
        let callbacks = operation
            .senders::<OperationCallbacks>()
            .ok_or_else(not_attached)?;
        let index = callbacks
            .0
            .iter()
            .position(|c| c.spec.payload_type == TypeId::of::<P>())
            .ok_or_else(not_attached)?;
        let body = operation.body.clone().unwrap_or_default();
        let template = &*callbacks.0[index].template;
        let pending = if template.needs_response() {
            Some(
                parts
                    .extensions
                    .get::<PendingSends>()
                    .cloned()
                    .ok_or_else(not_attached)?,
            )
        } else {
            None
        };
        // Keep only what the expression reads: most requests never send, and those that
        // do need a query parameter and a body field, not the whole request.
        let needs_headers = template.request_headers().next().is_some() || uses_url(template);
        let path = if template.path_params().next().is_some() {
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
        let uri = template
            .query_params()
            .next()
            .is_some()
            .then(|| parts.uri.clone());
        let captured = Captured {
            method: parts.method.clone(),
            url: if uses_url(template) {
                request_url(parts)
            } else {
                String::new()
            },
            path,
            uri,
            headers: if needs_headers {
                parts.headers.clone()
            } else {
                HeaderMap::new()
            },
            body,
        };
        Ok(Notify {
            captured: Arc::new(captured),
            pending,
            callbacks,
            index,
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
        .any(|e| matches!(e, RuntimeExpr::Url))
}

/// A handler with a `Notify` can answer the 422 of a callback URL that is missing, not a
/// URL, or refused, so the operation documents it.
impl<P: 'static> OperationInput for Notify<P> {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.has_inputs = true;
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
    /// The URL this request's callback goes to, without sending anything. A callback that
    /// reads the response has no URL until the handler has answered: this is then an
    /// error.
    pub fn url(&self) -> Result<url::Url, SendError> {
        let view = View::new(&self.captured);
        resolve_url(self.callback(), &view, None)
    }

    /// Resolves the callback's URL against this request, checks it (its host is resolved
    /// and every address checked against the SSRF policy), validates `payload`, and commits
    /// the message to the outbox. Returns the message id (the `webhook-id` receivers see)
    /// once the message is durable.
    ///
    /// When the request lacks a value the expression reads (an optional `callback_url` the
    /// client left out, say), or gives one that is not a usable URL, or whose host the
    /// policy refuses, the error answers FastAPI's 422 located at that parameter or body
    /// field. See [`SendError`] for every answer.
    ///
    /// A callback whose expression reads the response is checked now (payload and size)
    /// and committed after the handler answers, before the answer leaves: the id returned
    /// is the one the message will have (unless an idempotency key finds an earlier live
    /// message, which the outbox keeps instead). If the commit fails, the client gets the error
    /// instead of the handler's answer; if the handler answers with an error (400 or
    /// above), the message is dropped, since nothing was announced.
    pub async fn send(&self, payload: P) -> Result<MessageId, SendError> {
        self.send_with(payload, SendOptions::default()).await
    }

    /// [`send`](Self::send) with an idempotency key or a signing key.
    pub async fn send_with(
        &self,
        payload: P,
        options: SendOptions,
    ) -> Result<MessageId, SendError> {
        // Boxed: the handler's future holds a pointer instead of the whole send (resolve,
        // check, commit), so a handler that sends only now and then stays small.
        Box::pin(self.send_now(payload, options)).await
    }

    async fn send_now(&self, payload: P, options: SendOptions) -> Result<MessageId, SendError> {
        if let Some(pending) = &self.pending {
            let spec = &self.callback().spec;
            let body = serialize_checked(
                &spec.name,
                &payload,
                self.callback().delivery.max_payload_bytes(),
            )?;
            let id = MessageId::generate();
            pending.push(Draft {
                callback: self.callback().clone(),
                captured: self.captured.clone(),
                id: id.clone(),
                body,
                options,
            });
            return Ok(id);
        }
        let message = self.message(payload, options).await?;
        store(
            &self.callback().delivery,
            MessageKind::Callback,
            &self.callback().spec.name,
            message,
        )
        .await
    }

    /// Builds, checks and returns the message [`send`](Self::send) would store, without
    /// storing it: for an enqueue inside the application's own database transaction, so
    /// that a business row and its callback commit together or not at all. (A callback
    /// that reads the response cannot be built before the answer: this is then an error.)
    ///
    /// ```ignore
    /// let message = notify.message(event, SendOptions::new()).await?;
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("INSERT INTO invoices (id) VALUES ($1)").bind(&id).execute(&mut *tx).await?;
    /// outbox.enqueue_in(&mut tx, vec![message]).await?;   // PgOutbox or SqliteOutbox
    /// tx.commit().await?;
    /// ```
    pub async fn message(&self, payload: P, options: SendOptions) -> Result<NewMessage, SendError> {
        let view = View::new(&self.captured);
        let url = resolve_url(self.callback(), &view, None)?;
        let spec = &self.callback().spec;
        let delivery = &self.callback().delivery;
        check_target(delivery, &url).await.map_err(|err| {
            SendError::refused(
                &spec.name,
                &err,
                Some((&self.callback().template, &view, None)),
            )
        })?;
        let body = serialize_checked(&spec.name, &payload, delivery.max_payload_bytes())?;
        Ok(build_message(
            MessageKind::Callback,
            &spec.name,
            url,
            callback_method(self.callback()),
            body,
            options,
        ))
    }
}

/// Resolves a bound callback's URL against a request and, once there is one, its response.
pub(crate) fn resolve_url(
    callback: &BoundCallback,
    request: &dyn RequestSource,
    response: Option<&dyn ResponseSource>,
) -> Result<url::Url, SendError> {
    let template = &*callback.template;
    template.resolve_url(request, response).map_err(|source| {
        SendError::resolve(&callback.spec.name, source, template, request, response)
    })
}

/// The method a callback is sent with: the first it declares.
pub(crate) fn callback_method(callback: &BoundCallback) -> Method {
    callback
        .spec
        .methods
        .first()
        .copied()
        .unwrap_or(Method::Post)
}

/// Checks a URL against the SSRF policy, resolving its host through the app's resolver:
/// a name that points inside the network is refused at send time, not only when a worker
/// tries to deliver.
pub(crate) async fn check_target(
    delivery: &PreparedDelivery,
    url: &url::Url,
) -> Result<(), SsrfError> {
    let checked = resolve_checked(url, delivery.resolver(), delivery.ssrf());
    match tokio::time::timeout(LOOKUP_TIMEOUT, checked).await {
        Ok(result) => result.map(drop),
        Err(_) => Err(SsrfError::Resolve {
            host: url.host_str().unwrap_or_default().to_owned(),
            source: Arc::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the lookup timed out",
            )),
        }),
    }
}

/// Builds a checked message: the part of sending that callbacks and webhooks share.
pub(crate) fn build_message(
    kind: MessageKind,
    name: &str,
    url: url::Url,
    method: Method,
    body: Vec<u8>,
    options: SendOptions,
) -> NewMessage {
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
    message
}

/// Commits a message to the outbox and answers its id once it is durable.
pub(super) async fn store(
    delivery: &PreparedDelivery,
    kind: MessageKind,
    name: &str,
    message: NewMessage,
) -> Result<MessageId, SendError> {
    let mut stored = store_all(delivery, kind, name, vec![message]).await?;
    stored.pop().ok_or_else(|| SendError::Unavailable {
        name: name.to_owned(),
        reason: "the outbox stored nothing".to_owned(),
    })
}

/// Serializes a payload after checking it against its own schema and the size limit.
pub(crate) fn serialize_checked<P: Serialize + JsonSchema + 'static>(
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

pub(super) fn http_method(method: Method) -> http::Method {
    http::Method::from_bytes(method.as_upper().as_bytes()).unwrap_or(http::Method::POST)
}

/// Commits messages to the outbox in one write and answers their ids once durable; `name`
/// names them in errors.
pub(crate) async fn store_all(
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
    let outbox = delivery
        .outbox()
        .await
        .map_err(|err| unavailable(err.to_string()))?;
    let names: Vec<String> = messages.iter().map(|m| m.name().to_owned()).collect();
    let stored = outbox
        .enqueue(messages)
        .await
        .map_err(|err| unavailable(err.to_string()))?;
    if stored.len() != names.len() {
        return Err(unavailable(format!(
            "the outbox stored {} of {} messages",
            stored.len(),
            names.len()
        )));
    }
    for counter in delivery.counters() {
        for (name, enqueued) in names.iter().zip(&stored) {
            if !enqueued.deduplicated {
                counter.count_enqueued(kind, name, 1);
            }
        }
    }
    Ok(stored.into_iter().map(|enqueued| enqueued.id).collect())
}
