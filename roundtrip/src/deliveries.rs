//! Deliveries you can see: an HTTP API over the outbox (messages and their attempts, retry,
//! replay, cancel; webhook endpoints with their health, secret rotation, test events; the
//! event catalogue), documented in the app's own document and guarded by a guard of the
//! app's choosing, and, when asked for, a console page that uses it.
//!
//! ```no_run
//! use roundtrip::deliveries::Deliveries;
//! use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
//! use roundtrip::App;
//!
//! struct AdminKey;
//! impl ApiKeyConfig for AdminKey {
//!     const NAME: &'static str = "X-Admin-Key";
//! }
//!
//! let deliveries = Deliveries::new().console("/console");
//! let app = App::new()
//!     .database_url("sqlite://app.db")
//!     .deliveries(deliveries.clone())
//!     // GET /admin/deliveries/messages, ... and the console at /admin/console.
//!     .include(deliveries.router::<ApiKeyHeader<AdminKey>, ()>().prefix("/admin"));
//! ```
//!
//! # Policy
//!
//! * **Same operations everywhere.** The router's handlers, the methods of [`Deliveries`]
//!   and the `deliveries` command of the app's CLI run the same code against the same
//!   store.
//! * **Validated.** Every filter, id and body is checked, and refused with FastAPI's 422:
//!   ids by their pattern, statuses and kinds by name, times as RFC 3339, a host as a URL
//!   writes it, `since` before `until`.
//! * **Retry and replay.** *Retry* delivers a message now: a failed, cancelled or succeeded
//!   one goes back in the queue, and one waiting out its backoff is made due; only one
//!   whose attempt is running is refused (409). *Replay* sends a finished message again
//!   (409 for a live one), or every finished message (failed by default) created since a
//!   time.
//! * **Secrets** are shown once: in the answer of a rotation. Endpoints are listed without
//!   them.
//! * **Health** is counted over the messages created in a window (24 hours by default,
//!   [`Deliveries::health_window`]): succeeded, failed, pending, the success rate of the
//!   finished ones and the newest error, beside why and when the endpoint was disabled.
//! * **The console** is off by default. [`Deliveries::console`] serves one page (HTML, CSS
//!   and script embedded in the binary, nothing from a CDN) at a path of the router. The
//!   page answers only when the guard lets the request in; otherwise it answers the
//!   guard's status with a form that asks for the key the guard wants (the document's
//!   security scheme says which: a header, a query parameter, a cookie, a bearer token or
//!   HTTP Basic), kept in the browser tab's session storage and sent with every call. The
//!   page shows no data by itself: everything comes from the guarded API. Payloads and
//!   bodies are shown as text, never as markup.

mod catalogue;
mod console;
mod models;

use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use roundtrip_delivery::endpoints::{EndpointFilter, Rotation};
use roundtrip_delivery::message::{MessageId, MessageStatus, NewMessage};
use roundtrip_delivery::outbox::{MessageFilter, Outbox};
use roundtrip_openapi::model::OpenApi;
use roundtrip_openapi::validate::{LocItem, ValidationError};
use serde_json::Value;

pub use models::{
    AttemptView, DeliveryKind, DeliveryStatus, EndpointHealth, EndpointPath, EndpointQuery,
    EndpointView, EndpointViewList, EventCatalogue, EventInfo, FinishedStatus, MessageDetail,
    MessageList, MessagePath, MessageQuery, MessageSummary, ReplayRequest, ReplayResult,
    SecretRotationRequest, TestEventRequest, TestEventSent,
};

use crate::delivery::PreparedDelivery;
use crate::error::{HttpError, RequestValidationError, value_error};
use crate::extract::{Json, Path, Query};
use crate::operation::{OperationInput, OperationOutput};
use crate::router::Router;
use crate::routing::{get, post};
use crate::subscriptions::{Subscriptions, WebhookEndpoint, WebhookSecretRotated};

/// The tag of the deliveries operations in the document.
pub const TAG: &str = "deliveries";

/// The most messages a health count looks at per endpoint.
const HEALTH_CAP: usize = 2_000;

/// The default health window: 24 hours.
pub const DEFAULT_HEALTH_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The deliveries API of an app: give a clone to [`App::deliveries`], and mount
/// [`router`](Self::router) where the app wants it. Cheap to clone; every clone is the same
/// API. Configure it ([`console`](Self::console), [`health_window`](Self::health_window))
/// before cloning: a configured copy is an API of its own.
#[derive(Clone)]
pub struct Deliveries {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Config {
    console: Option<String>,
    health_window: Duration,
}

struct Inner {
    config: Config,
    binding: Mutex<Option<Binding>>,
}

/// What the app told the deliveries when it was built.
#[derive(Clone)]
struct Binding {
    delivery: PreparedDelivery,
    subscriptions: Option<Subscriptions>,
    catalogue: Arc<Vec<EventInfo>>,
    console_auth: console::Auth,
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries")
            .field("console", &self.inner.config.console)
            .field("health_window", &self.inner.config.health_window)
            .finish_non_exhaustive()
    }
}

impl Default for Deliveries {
    fn default() -> Self {
        Self::new()
    }
}

impl Deliveries {
    /// The deliveries API, without a console, with a 24-hour health window.
    pub fn new() -> Self {
        Deliveries {
            inner: Arc::new(Inner {
                config: Config {
                    console: None,
                    health_window: DEFAULT_HEALTH_WINDOW,
                },
                binding: Mutex::new(None),
            }),
        }
    }

    fn configure(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.inner.config.clone();
        change(&mut config);
        Deliveries {
            inner: Arc::new(Inner {
                config,
                binding: Mutex::new(self.binding()),
            }),
        }
    }

    /// Serves the console page at `path` of the router (for example `/console`), behind
    /// the router's guard. Off unless called.
    pub fn console(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.configure(|c| c.console = Some(path))
    }

    /// The window an endpoint's health is counted over (24 hours by default).
    pub fn health_window(self, window: Duration) -> Self {
        self.configure(|c| c.health_window = window)
    }

    fn binding_lock(&self) -> MutexGuard<'_, Option<Binding>> {
        // Replaced whole: a panic elsewhere cannot leave it half-written.
        self.inner
            .binding
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn binding(&self) -> Option<Binding> {
        self.binding_lock().clone()
    }

    /// Called when the app is built, once its document is whole.
    pub(crate) fn bind(
        &self,
        delivery: &PreparedDelivery,
        subscriptions: Option<&Subscriptions>,
        doc: &OpenApi,
    ) {
        let binding = Binding {
            delivery: delivery.clone(),
            subscriptions: subscriptions.cloned(),
            catalogue: Arc::new(catalogue::catalogue(doc)),
            console_auth: console::Auth::of(doc),
        };
        *self.binding_lock() = Some(binding);
    }

    async fn ops(&self) -> Result<Ops, DeliveryError> {
        let binding = self.binding().ok_or_else(|| {
            DeliveryError::Unavailable(
                "the deliveries belong to no built app: pass them to App::deliveries and build \
                 the app"
                    .to_owned(),
            )
        })?;
        let outbox = binding
            .delivery
            .outbox()
            .await
            .map_err(|err| DeliveryError::Unavailable(err.to_string()))?;
        Ok(Ops {
            outbox,
            subscriptions: binding.subscriptions.clone(),
            catalogue: binding.catalogue.clone(),
            health_window: self.inner.config.health_window,
        })
    }

    /// Lists messages, newest first.
    pub async fn list(&self, query: &MessageQuery) -> Result<MessageList, DeliveryError> {
        self.ops().await?.list(query).await
    }

    /// Reads a message with its payload and every attempt.
    pub async fn message(&self, id: &str) -> Result<MessageDetail, DeliveryError> {
        self.ops().await?.message(id).await
    }

    /// Delivers a message now: a finished one goes back in the queue, one waiting out its
    /// backoff is made due. One whose attempt is running is refused.
    pub async fn retry(&self, id: &str) -> Result<MessageSummary, DeliveryError> {
        self.ops().await?.retry(id).await
    }

    /// Sends a finished message again. A live one is refused.
    pub async fn replay(&self, id: &str) -> Result<MessageSummary, DeliveryError> {
        self.ops().await?.replay(id).await
    }

    /// Sends again every finished message the request matches (failed ones by default).
    pub async fn replay_since(
        &self,
        request: &ReplayRequest,
    ) -> Result<ReplayResult, DeliveryError> {
        self.ops().await?.replay_since(request).await
    }

    /// Cancels a message still owed a delivery.
    pub async fn cancel(&self, id: &str) -> Result<MessageSummary, DeliveryError> {
        self.ops().await?.cancel(id).await
    }

    /// Lists webhook endpoints with their health.
    pub async fn endpoints(
        &self,
        query: &EndpointQuery,
    ) -> Result<EndpointViewList, DeliveryError> {
        self.ops().await?.endpoints(query).await
    }

    /// Reads a webhook endpoint with its health.
    pub async fn endpoint(&self, id: &str) -> Result<EndpointView, DeliveryError> {
        self.ops().await?.endpoint(id).await
    }

    /// Rotates an endpoint's secret; the answer holds the new one (the only time it is
    /// shown).
    pub async fn rotate_secret(
        &self,
        id: &str,
        request: &SecretRotationRequest,
    ) -> Result<WebhookSecretRotated, DeliveryError> {
        self.ops().await?.rotate_secret(id, request).await
    }

    /// Queues a test event for an endpoint: a declared event it wants, with the event's
    /// example payload.
    pub async fn send_test(
        &self,
        id: &str,
        request: &TestEventRequest,
    ) -> Result<TestEventSent, DeliveryError> {
        self.ops().await?.send_test(id, request).await
    }

    /// The events the API sends: its webhooks and callbacks, with schemas and examples.
    pub fn events(&self) -> EventCatalogue {
        EventCatalogue {
            data: self
                .binding()
                .map(|b| b.catalogue.as_ref().clone())
                .unwrap_or_default(),
        }
    }

    /// The deliveries API, each operation behind the guard `G` (for example an
    /// [`ApiKeyHeader`](crate::security::ApiKeyHeader), whose scheme the document then
    /// requires on every operation), under `/deliveries`; and the console page, when
    /// [`console`](Self::console) asked for one. Give the router a prefix to put them
    /// elsewhere.
    pub fn router<G, S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        G: FromRequestParts<S> + OperationInput + Send + 'static,
    {
        let d = self.clone();
        let list = move |_: G, Query(query): Query<MessageQuery>| {
            let d = d.clone();
            async move { d.list(&query).await.map(Json) }
        };
        let d = self.clone();
        let read = move |_: G, Path(path): Path<MessagePath>| {
            let d = d.clone();
            async move { d.message(&path.message_id).await.map(Json) }
        };
        let d = self.clone();
        let retry = move |_: G, Path(path): Path<MessagePath>| {
            let d = d.clone();
            async move { d.retry(&path.message_id).await.map(Json) }
        };
        let d = self.clone();
        let replay = move |_: G, Path(path): Path<MessagePath>| {
            let d = d.clone();
            async move { d.replay(&path.message_id).await.map(Json) }
        };
        let d = self.clone();
        let cancel = move |_: G, Path(path): Path<MessagePath>| {
            let d = d.clone();
            async move { d.cancel(&path.message_id).await.map(Json) }
        };
        let d = self.clone();
        let replay_since = move |_: G, Json(body): Json<ReplayRequest>| {
            let d = d.clone();
            async move { d.replay_since(&body).await.map(Json) }
        };
        let d = self.clone();
        let endpoints = move |_: G, Query(query): Query<EndpointQuery>| {
            let d = d.clone();
            async move { d.endpoints(&query).await.map(Json) }
        };
        let d = self.clone();
        let endpoint = move |_: G, Path(path): Path<EndpointPath>| {
            let d = d.clone();
            async move { d.endpoint(&path.endpoint_id).await.map(Json) }
        };
        let d = self.clone();
        let rotate =
            move |_: G, Path(path): Path<EndpointPath>, Json(body): Json<SecretRotationRequest>| {
                let d = d.clone();
                async move { d.rotate_secret(&path.endpoint_id, &body).await.map(Json) }
            };
        let d = self.clone();
        let test =
            move |_: G, Path(path): Path<EndpointPath>, Json(body): Json<TestEventRequest>| {
                let d = d.clone();
                async move { d.send_test(&path.endpoint_id, &body).await.map(Json) }
            };
        let d = self.clone();
        let events = move |_: G| {
            let d = d.clone();
            async move { Json(d.events()) }
        };
        const NO_MESSAGE: &str = "No message has this id";
        const NO_ENDPOINT: &str = "No webhook endpoint has this id";
        let mut router = Router::new()
            .tag(TAG)
            .route(
                "/deliveries/messages",
                get(list).name("list_delivery_messages").description(
                    "Lists messages, newest first, with filters. Pass `next` as `before` for \
                     the next page.",
                ),
            )
            .route(
                "/deliveries/messages/{message_id}",
                get(read)
                    .name("get_delivery_message")
                    .description("Reads a message with its payload and every attempt.")
                    .response_status(404, NO_MESSAGE),
            )
            .route(
                "/deliveries/messages/{message_id}/retry",
                post(retry)
                    .name("retry_delivery_message")
                    .description(
                        "Delivers a message now: a failed, cancelled or succeeded message goes \
                         back in the queue, and one waiting out its backoff is made due. A \
                         message whose attempt is running is a 409.",
                    )
                    .response_status(404, NO_MESSAGE)
                    .response_status(409, "An attempt of the message is running"),
            )
            .route(
                "/deliveries/messages/{message_id}/replay",
                post(replay)
                    .name("replay_delivery_message")
                    .description(
                        "Sends a finished message (succeeded, failed or cancelled) again, due \
                         now, with the same id. A live message is a 409.",
                    )
                    .response_status(404, NO_MESSAGE)
                    .response_status(409, "The message has not finished"),
            )
            .route(
                "/deliveries/messages/{message_id}/cancel",
                post(cancel)
                    .name("cancel_delivery_message")
                    .description("Cancels a message still owed a delivery.")
                    .response_status(404, NO_MESSAGE)
                    .response_status(409, "The message has finished"),
            )
            .route(
                "/deliveries/replay",
                post(replay_since).name("replay_deliveries").description(
                    "Sends again every finished message created in a time range (failed ones \
                     unless `status` says otherwise), due now.",
                ),
            )
            .route(
                "/deliveries/endpoints",
                get(endpoints).name("list_delivery_endpoints").description(
                    "Lists webhook endpoints, oldest first, with their health over the window: \
                     success rate, last error, and why and when one was disabled.",
                ),
            )
            .route(
                "/deliveries/endpoints/{endpoint_id}",
                get(endpoint)
                    .name("get_delivery_endpoint")
                    .description("Reads a webhook endpoint with its health.")
                    .response_status(404, NO_ENDPOINT),
            )
            .route(
                "/deliveries/endpoints/{endpoint_id}/rotate-secret",
                post(rotate)
                    .name("rotate_delivery_endpoint_secret")
                    .description(
                        "Makes a new signing secret current and returns it, the only time it is \
                         shown. The previous one keeps signing until `previous_expires_at`.",
                    )
                    .response_status(404, NO_ENDPOINT),
            )
            .route(
                "/deliveries/endpoints/{endpoint_id}/test",
                post(test)
                    .name("send_delivery_test_event")
                    .description(
                        "Queues a test event for the endpoint: a declared event it wants (its \
                         first by default), with the event's example payload.",
                    )
                    .status(202)
                    .response_status(404, NO_ENDPOINT),
            )
            .route(
                "/deliveries/events",
                get(events).name("list_delivery_events").description(
                    "The event catalogue: the webhooks and callbacks the API sends, with their \
                     payload schemas and an example of each.",
                ),
            );
        if let Some(path) = &self.inner.config.console {
            router = router.merge_axum(console::router::<G, S>(self.clone(), path));
        }
        router
    }

    fn console_auth(&self) -> console::Auth {
        self.binding().map(|b| b.console_auth).unwrap_or_default()
    }
}

/// The operations, over an opened outbox.
pub(crate) struct Ops {
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) subscriptions: Option<Subscriptions>,
    pub(crate) catalogue: Arc<Vec<EventInfo>>,
    pub(crate) health_window: Duration,
}

/// A 422 entry, boxed while it travels in a `Result`.
type Problem = Box<ValidationError>;

/// The 422 entry of a value at `loc`.
fn problem(loc: &[&str], message: &str, input: Value) -> Problem {
    Box::new(invalid(loc, message, input))
}

/// The 422 entry of a value at `loc`.
fn invalid(loc: &[&str], message: &str, input: Value) -> ValidationError {
    value_error(
        loc.iter().map(|k| LocItem::key(*k)).collect(),
        message,
        input,
    )
}

fn parse_message_id(text: &str, loc: &[&str]) -> Result<MessageId, Problem> {
    MessageId::from_str(text).map_err(|err| {
        problem(
            loc,
            &format!("not a message id: {err}"),
            Value::String(text.to_owned()),
        )
    })
}

fn message_id(text: &str) -> Result<MessageId, DeliveryError> {
    parse_message_id(text, &["path", "message_id"]).map_err(|e| DeliveryError::Invalid(vec![*e]))
}

fn check_endpoint_id(text: &str, loc: &[&str]) -> Result<(), Problem> {
    let ok = text
        .strip_prefix("ep_")
        .is_some_and(|rest| rest.len() == 27 && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(problem(
            loc,
            "not a webhook endpoint id: `ep_` and 27 letters or digits",
            Value::String(text.to_owned()),
        ))
    }
}

/// Why `text` is not a host as a URL writes it, if it is not.
pub(crate) fn host_problem(text: &str) -> Option<&'static str> {
    check_host(text, &[]).err().map(|_| HOST_PROBLEM)
}

const HOST_PROBLEM: &str = "not a host: a name, an IPv4 address, or an IPv6 address in brackets";

fn check_host(text: &str, loc: &[&str]) -> Result<(), Problem> {
    let bracketed = text.starts_with('[')
        && text.ends_with(']')
        && text.len() > 2
        && text[1..text.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    let name = !text.is_empty()
        && text.len() <= 255
        && text.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if bracketed || name {
        Ok(())
    } else {
        Err(problem(loc, HOST_PROBLEM, Value::String(text.to_owned())))
    }
}

fn check_event(text: &str, loc: &[&str]) -> Result<(), Problem> {
    if text.is_empty() || text.len() > 255 {
        Err(problem(
            loc,
            "an event type or callback name has 1 to 255 characters",
            Value::String(text.to_owned()),
        ))
    } else {
        Ok(())
    }
}

fn check_range(
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    loc: &[&str],
    input: Value,
) -> Result<(), Problem> {
    match (since, until) {
        (Some(since), Some(until)) if since >= until => {
            Err(problem(loc, "`until` must be later than `since`", input))
        }
        _ => Ok(()),
    }
}

/// The store's filter of a query, or every problem with it (located under `query`).
pub(crate) fn message_filter(query: &MessageQuery) -> Result<MessageFilter, Vec<ValidationError>> {
    let mut problems = Vec::new();
    let mut filter = MessageFilter::new();
    for status in &query.status {
        filter = filter.status((*status).into());
    }
    if let Some(kind) = query.kind {
        filter = filter.kind(kind.into());
    }
    if let Some(event) = &query.event {
        match check_event(event, &["query", "event"]) {
            Ok(()) => filter = filter.name(event.clone()),
            Err(e) => problems.push(*e),
        }
    }
    if let Some(endpoint) = &query.endpoint_id {
        match check_endpoint_id(endpoint, &["query", "endpoint_id"]) {
            Ok(()) => filter = filter.endpoint_id(endpoint.clone()),
            Err(e) => problems.push(*e),
        }
    }
    if let Some(host) = &query.host {
        match check_host(host, &["query", "host"]) {
            Ok(()) => filter = filter.host(host.clone()),
            Err(e) => problems.push(*e),
        }
    }
    let since = query.since.map(SystemTime::from);
    let until = query.until.map(SystemTime::from);
    if let Err(e) = check_range(
        since,
        until,
        &["query", "until"],
        serde_json::to_value(query.until).unwrap_or(Value::Null),
    ) {
        problems.push(*e);
    }
    if let Some(since) = since {
        filter = filter.created_after(since);
    }
    if let Some(until) = until {
        filter = filter.created_before(until);
    }
    if query.id.len() > 100 {
        problems.push(invalid(
            &["query", "id"],
            "at most 100 ids at once",
            Value::from(query.id.len()),
        ));
    }
    for text in &query.id {
        match parse_message_id(text, &["query", "id"]) {
            Ok(id) => filter = filter.id(id),
            Err(e) => problems.push(*e),
        }
    }
    if let Some(before) = &query.before {
        match parse_message_id(before, &["query", "before"]) {
            Ok(id) => filter = filter.before(id),
            Err(e) => problems.push(*e),
        }
    }
    match query.limit {
        Some(limit) if !(1..=1000).contains(&limit) => problems.push(invalid(
            &["query", "limit"],
            "from 1 to 1000",
            Value::from(limit),
        )),
        Some(limit) => filter = filter.limit(limit as usize),
        None => {}
    }
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(problems)
    }
}

/// The store's filter of a replay request, or every problem with it (under `body`).
pub(crate) fn replay_filter(
    request: &ReplayRequest,
) -> Result<MessageFilter, Vec<ValidationError>> {
    let mut problems = Vec::new();
    let since = SystemTime::from(request.since);
    let until = request.until.map(SystemTime::from);
    if let Err(e) = check_range(
        Some(since),
        until,
        &["body", "until"],
        serde_json::to_value(request.until).unwrap_or(Value::Null),
    ) {
        problems.push(*e);
    }
    let mut filter = MessageFilter::new().created_after(since);
    if let Some(until) = until {
        filter = filter.created_before(until);
    }
    for status in &request.status {
        filter = filter.status((*status).into());
    }
    if let Some(kind) = request.kind {
        filter = filter.kind(kind.into());
    }
    if let Some(event) = &request.event {
        match check_event(event, &["body", "event"]) {
            Ok(()) => filter = filter.name(event.clone()),
            Err(e) => problems.push(*e),
        }
    }
    if let Some(endpoint) = &request.endpoint_id {
        match check_endpoint_id(endpoint, &["body", "endpoint_id"]) {
            Ok(()) => filter = filter.endpoint_id(endpoint.clone()),
            Err(e) => problems.push(*e),
        }
    }
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(problems)
    }
}

impl Ops {
    pub(crate) async fn list(&self, query: &MessageQuery) -> Result<MessageList, DeliveryError> {
        let filter = message_filter(query).map_err(DeliveryError::Invalid)?;
        let page = self
            .outbox
            .list(&filter)
            .await
            .map_err(DeliveryError::store)?;
        Ok(MessageList {
            data: page.messages.iter().map(Into::into).collect(),
            next: page.next.map(|id| id.to_string()),
        })
    }

    pub(crate) async fn message(&self, id: &str) -> Result<MessageDetail, DeliveryError> {
        let id = message_id(id)?;
        let message = self
            .outbox
            .get(&id)
            .await
            .map_err(DeliveryError::store)?
            .ok_or_else(|| DeliveryError::NotFound(format!("no message {id}")))?;
        let attempts = self
            .outbox
            .attempts(&id)
            .await
            .map_err(DeliveryError::store)?;
        let utf8 = std::str::from_utf8(&message.body).is_ok();
        Ok(MessageDetail {
            message: (&message.meta).into(),
            payload: String::from_utf8_lossy(&message.body).into_owned(),
            payload_utf8: utf8,
            attempts: attempts.iter().map(Into::into).collect(),
        })
    }

    pub(crate) async fn retry(&self, id: &str) -> Result<MessageSummary, DeliveryError> {
        let id = message_id(id)?;
        let meta = self.outbox.retry(&id).await.map_err(DeliveryError::store)?;
        Ok((&meta).into())
    }

    pub(crate) async fn replay(&self, id: &str) -> Result<MessageSummary, DeliveryError> {
        let id = message_id(id)?;
        let current = self
            .outbox
            .get(&id)
            .await
            .map_err(DeliveryError::store)?
            .ok_or_else(|| DeliveryError::NotFound(format!("no message {id}")))?;
        if current.meta.status.is_live() {
            return Err(DeliveryError::Conflict(format!(
                "message {id} is {} and has not finished: retry it to deliver it now",
                current.meta.status
            )));
        }
        let meta = self.outbox.retry(&id).await.map_err(DeliveryError::store)?;
        Ok((&meta).into())
    }

    pub(crate) async fn replay_since(
        &self,
        request: &ReplayRequest,
    ) -> Result<ReplayResult, DeliveryError> {
        let filter = replay_filter(request).map_err(DeliveryError::Invalid)?;
        let replayed = self
            .outbox
            .replay(&filter)
            .await
            .map_err(DeliveryError::store)?;
        Ok(ReplayResult { replayed })
    }

    pub(crate) async fn cancel(&self, id: &str) -> Result<MessageSummary, DeliveryError> {
        let id = message_id(id)?;
        let meta = self
            .outbox
            .cancel(&id)
            .await
            .map_err(DeliveryError::store)?;
        Ok((&meta).into())
    }

    async fn health(&self, endpoint: &str) -> Result<EndpointHealth, DeliveryError> {
        let since = SystemTime::now()
            .checked_sub(self.health_window)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut filter = MessageFilter::new()
            .endpoint_id(endpoint)
            .created_after(since)
            .limit(MessageFilter::MAX_LIMIT);
        let mut health = EndpointHealth {
            window_seconds: self.health_window.as_secs(),
            succeeded: 0,
            failed: 0,
            pending: 0,
            success_rate: None,
            capped: false,
            last_error: None,
            last_error_at: None,
        };
        let mut seen = 0usize;
        loop {
            let page = self
                .outbox
                .list(&filter)
                .await
                .map_err(DeliveryError::store)?;
            for m in &page.messages {
                match m.status {
                    MessageStatus::Succeeded => health.succeeded += 1,
                    MessageStatus::Failed | MessageStatus::Cancelled => health.failed += 1,
                    _ => health.pending += 1,
                }
                if health.last_error.is_none()
                    && m.status != MessageStatus::Succeeded
                    && let Some(error) = &m.last_error
                {
                    health.last_error = Some(error.clone());
                    health.last_error_at = Some(models::utc(m.created_at));
                }
            }
            seen += page.messages.len();
            match page.next {
                Some(next) if seen < HEALTH_CAP => filter = filter.before(next),
                Some(_) => {
                    health.capped = true;
                    break;
                }
                None => break,
            }
        }
        let finished = health.succeeded + health.failed;
        if finished > 0 {
            health.success_rate = Some(health.succeeded as f64 / finished as f64);
        }
        Ok(health)
    }

    fn subscriptions(&self) -> Result<&Subscriptions, DeliveryError> {
        self.subscriptions.as_ref().ok_or_else(|| {
            DeliveryError::NotFound(
                "no webhook endpoint has this id: this app has no webhook subscriptions".to_owned(),
            )
        })
    }

    pub(crate) async fn endpoints(
        &self,
        query: &EndpointQuery,
    ) -> Result<EndpointViewList, DeliveryError> {
        let mut problems = Vec::new();
        if let Some(after) = &query.after
            && let Err(e) = check_endpoint_id(after, &["query", "after"])
        {
            problems.push(*e);
        }
        if let Some(limit) = query.limit
            && !(1..=100).contains(&limit)
        {
            problems.push(invalid(
                &["query", "limit"],
                "from 1 to 100",
                Value::from(limit),
            ));
        }
        if !problems.is_empty() {
            return Err(DeliveryError::Invalid(problems));
        }
        let Some(subscriptions) = &self.subscriptions else {
            return Ok(EndpointViewList {
                data: Vec::new(),
                next: None,
            });
        };
        let mut filter = EndpointFilter::new();
        filter.after = query.after.clone();
        filter.limit = Some(query.limit.unwrap_or(20) as usize);
        let page = subscriptions
            .list(&filter)
            .await
            .map_err(DeliveryError::Subscriptions)?;
        let mut data = Vec::with_capacity(page.endpoints.len());
        for endpoint in &page.endpoints {
            data.push(EndpointView {
                endpoint: WebhookEndpoint::from(endpoint),
                health: self.health(&endpoint.id).await?,
            });
        }
        Ok(EndpointViewList {
            data,
            next: page.next,
        })
    }

    pub(crate) async fn endpoint(&self, id: &str) -> Result<EndpointView, DeliveryError> {
        check_endpoint_id(id, &["path", "endpoint_id"])
            .map_err(|e| DeliveryError::Invalid(vec![*e]))?;
        let endpoint = self
            .subscriptions()?
            .get(id)
            .await
            .map_err(DeliveryError::Subscriptions)?;
        Ok(EndpointView {
            endpoint: WebhookEndpoint::from(&endpoint),
            health: self.health(&endpoint.id).await?,
        })
    }

    pub(crate) async fn rotate_secret(
        &self,
        id: &str,
        request: &SecretRotationRequest,
    ) -> Result<WebhookSecretRotated, DeliveryError> {
        check_endpoint_id(id, &["path", "endpoint_id"])
            .map_err(|e| DeliveryError::Invalid(vec![*e]))?;
        let mut rotation = Rotation::new();
        if let Some(seconds) = request.grace_seconds {
            if seconds > 2_592_000 {
                return Err(DeliveryError::Invalid(vec![invalid(
                    &["body", "grace_seconds"],
                    "at most 30 days (2592000 seconds)",
                    Value::from(seconds),
                )]));
            }
            rotation = rotation.grace(Duration::from_secs(seconds));
        }
        let rotated = self
            .subscriptions()?
            .rotate_secret(id, rotation)
            .await
            .map_err(DeliveryError::Subscriptions)?;
        Ok(WebhookSecretRotated {
            endpoint: (&rotated.endpoint).into(),
            secret: rotated.secret.to_string(),
            previous_expires_at: rotated.previous_expires_at.into(),
        })
    }

    pub(crate) async fn send_test(
        &self,
        id: &str,
        request: &TestEventRequest,
    ) -> Result<TestEventSent, DeliveryError> {
        check_endpoint_id(id, &["path", "endpoint_id"])
            .map_err(|e| DeliveryError::Invalid(vec![*e]))?;
        let endpoint = self
            .subscriptions()?
            .get(id)
            .await
            .map_err(DeliveryError::Subscriptions)?;
        if !endpoint.is_enabled() {
            return Err(DeliveryError::Conflict(format!(
                "endpoint {id} is disabled: enable it before sending it a test event"
            )));
        }
        let webhooks: Vec<&EventInfo> = self
            .catalogue
            .iter()
            .filter(|e| e.kind == DeliveryKind::Webhook && endpoint.wants(&e.name))
            .collect();
        let event = match &request.event_type {
            Some(wanted) => webhooks
                .iter()
                .find(|e| &e.name == wanted)
                .copied()
                .ok_or_else(|| {
                    let names: Vec<&str> = webhooks.iter().map(|e| e.name.as_str()).collect();
                    DeliveryError::Invalid(vec![invalid(
                        &["body", "event_type"],
                        &format!(
                            "`{wanted}` is not an event this endpoint receives; it receives: {}",
                            if names.is_empty() {
                                "none".to_owned()
                            } else {
                                names.join(", ")
                            }
                        ),
                        Value::String(wanted.clone()),
                    )])
                })?,
            None => webhooks.first().copied().ok_or_else(|| {
                DeliveryError::Conflict(format!(
                    "endpoint {id} receives no event this API declares"
                ))
            })?,
        };
        let body = serde_json::to_vec(&event.example).unwrap_or_default();
        let method =
            http::Method::from_bytes(event.method.as_bytes()).unwrap_or(http::Method::POST);
        let message =
            NewMessage::webhook(event.name.clone(), endpoint.url.clone(), Bytes::from(body))
                .method(method)
                .endpoint_id(&endpoint.id)
                .metadata("test", Value::Bool(true));
        let message_id = message.id().to_string();
        self.outbox
            .enqueue(vec![message])
            .await
            .map_err(DeliveryError::store)?;
        Ok(TestEventSent {
            message_id,
            event_type: event.name.clone(),
            payload: event.example.clone(),
        })
    }
}

/// Why a deliveries operation failed. It answers as the API should: FastAPI's 422 for a
/// refused input, 404 for an unknown id, 409 for a state that forbids it, 503 when the
/// store cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The input was refused; every problem, in FastAPI's shape.
    Invalid(Vec<ValidationError>),
    /// Nothing has the id.
    NotFound(String),
    /// The message or endpoint is in a state that forbids the operation.
    Conflict(String),
    /// The store cannot be used right now.
    Unavailable(String),
    /// The webhook endpoint store refused or failed.
    Subscriptions(crate::subscriptions::SubscriptionError),
}

impl DeliveryError {
    fn store(err: roundtrip_delivery::outbox::Error) -> Self {
        if err.is_not_found() {
            DeliveryError::NotFound(err.to_string())
        } else if err.is_conflict() {
            DeliveryError::Conflict(err.to_string())
        } else {
            DeliveryError::Unavailable(err.to_string())
        }
    }

    /// The problems of a refused input.
    pub fn errors(&self) -> &[ValidationError] {
        match self {
            DeliveryError::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Invalid(errors) => {
                write!(f, "refused: {}", crate::error::summarize(errors))
            }
            DeliveryError::NotFound(m) | DeliveryError::Conflict(m) => f.write_str(m),
            DeliveryError::Unavailable(m) => write!(f, "the outbox is unavailable: {m}"),
            DeliveryError::Subscriptions(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for DeliveryError {}

impl IntoResponse for DeliveryError {
    fn into_response(self) -> Response {
        match self {
            DeliveryError::Invalid(errors) => RequestValidationError::new(errors).into_response(),
            DeliveryError::NotFound(m) => HttpError::not_found(m).into_response(),
            DeliveryError::Conflict(m) => HttpError::conflict(m).into_response(),
            DeliveryError::Subscriptions(err) => err.into_response(),
            DeliveryError::Unavailable(m) => {
                tracing::error!(error = %m, "the deliveries API cannot use the outbox");
                HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
                    .header(
                        http::header::RETRY_AFTER,
                        http::HeaderValue::from_static("5"),
                    )
                    .into_response()
            }
        }
    }
}

/// Not documented, as FastAPI documents no `HTTPException`: the router declares its 404 and
/// 409 on each operation, and the 422 comes with every operation that has input.
impl OperationOutput for DeliveryError {}
