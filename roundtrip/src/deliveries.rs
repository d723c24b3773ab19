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
mod error;
mod filters;
mod models;
mod ops;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::FromRequestParts;
use roundtrip_openapi::model::OpenApi;

pub use models::{
    AttemptView, DeliveryKind, DeliveryStatus, EndpointHealth, EndpointPath, EndpointQuery,
    EndpointView, EndpointViewList, EventCatalogue, EventInfo, FinishedStatus, MessageDetail,
    MessageList, MessagePath, MessageQuery, MessageSummary, ReplayRequest, ReplayResult,
    SecretRotationRequest, TestEventRequest, TestEventSent,
};

pub use error::DeliveryError;
pub(crate) use filters::host_problem;
pub(crate) use ops::Ops;

use crate::delivery::PreparedDelivery;
use crate::extract::{Json, Path, Query};
use crate::operation::OperationInput;
use crate::router::Router;
use crate::routing::{get, post};
use crate::subscriptions::{Subscriptions, WebhookSecretRotated};

/// The tag of the deliveries operations in the document.
pub const TAG: &str = "deliveries";

/// The most messages a health count looks at per endpoint.
const HEALTH_CAP: usize = 2_000;

/// The default health window: 24 hours.
pub const DEFAULT_HEALTH_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The deliveries API of an app: give a clone to [`App::deliveries`](crate::App::deliveries), and
/// mount [`router`](Self::router) where the app wants it. Cheap to clone; every clone is the same
/// API. Configure it ([`console`](Self::console), [`health_window`](Self::health_window)) before
/// cloning: a configured copy is an API of its own.
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
