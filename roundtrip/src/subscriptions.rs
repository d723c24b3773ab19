//! Webhook subscriptions: the endpoints an app's users register for its declared webhooks,
//! a management router to register them over HTTP, and the fan-out that sends each event
//! to every endpoint that wants it.
//!
//! ```no_run
//! use roundtrip::subscriptions::Subscriptions;
//! use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
//! use roundtrip::{App, Webhook};
//! # #[derive(serde::Serialize, schemars::JsonSchema)] struct Subscription { username: String }
//!
//! struct AdminKey;
//! impl ApiKeyConfig for AdminKey {
//!     const NAME: &'static str = "X-Admin-Key";
//! }
//!
//! fn new_subscription() -> Webhook<Subscription> {
//!     Webhook::post("new-subscription")
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let subscriptions = Subscriptions::new();
//! let app = App::new()
//!     .webhook(new_subscription())
//!     .database_url("sqlite://app.db")
//!     .subscriptions(subscriptions.clone())
//!     // POST /admin/endpoints, GET /admin/endpoints, ... behind the admin key.
//!     .include(subscriptions.router::<ApiKeyHeader<AdminKey>, ()>().prefix("/admin"));
//! let built = app.build()?;
//! // Later, in a handler or a job: one message per endpoint that wants the event.
//! let ids = built
//!     .publisher()
//!     .publish(&new_subscription(), &Subscription { username: "rick".into() })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Policy
//!
//! * **One database.** The endpoints live beside the outbox: in its SQLite file, or in its
//!   PostgreSQL schema (the `?schema=` of the database URL), in tables of their own (see
//!   [`roundtrip_delivery::endpoints`]). They are opened on first use, like the outbox.
//! * **Refused at registration, not at send time.** A URL that is malformed, not `http` or
//!   `https`, or whose host is (or resolves to) an address the app's SSRF policy refuses,
//!   and an event type that no declared webhook has, are answered with FastAPI's 422. Names
//!   are resolved through the resolver given to [`Subscriptions::resolver`] (the system's by
//!   default); the workers check every address again before each delivery. An endpoint with
//!   the same URL and event types as another is a 409.
//! * **Secrets.** Each endpoint signs with its own `whsec_...` secret (generated unless one is
//!   given), returned when the endpoint is created and when its secret is rotated, never in
//!   listings. After a rotation the previous secret keeps signing for the grace period (24
//!   hours by default), so receivers see both signatures.
//! * **Health.** An endpoint that answers 410 is disabled at once; one whose deliveries only
//!   fail for the failure window (5 days by default) is disabled too; both are logged as
//!   warnings. `POST .../enable` (or [`Subscriptions::enable`]) turns it back on.
//! * **Fan-out.** [`Publisher::publish`] checks the payload against its schema, finds the
//!   enabled endpoints that want the event, and stores one message per endpoint in one
//!   outbox write: all or none are stored.
//! * **Guarded.** The router's operations take a guard `G` of the app's choosing: any
//!   extractor that documents itself ([`OperationInput`]), such as an API key from
//!   [`security`](crate::security) or a [`Depends`](crate::Depends) that checks one. Its
//!   rejections (401, 403) are answered before anything else runs.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use http::StatusCode;
use roundtrip_delivery::endpoints::{
    CreatedEndpoint, DisableKind, Endpoint, EndpointFilter, EndpointHooks, EndpointPage,
    EndpointSettings, EndpointStore, EndpointUpdate, Error as EndpointError, NewEndpoint,
    RotatedSecret, Rotation,
};
use roundtrip_delivery::message::MessageMeta;
use roundtrip_delivery::signing::Secret;
use roundtrip_delivery::ssrf::{Resolve, SsrfPolicy, SystemResolver, resolve_checked};
use roundtrip_delivery::worker::{AttemptObserver, AttemptReport, SecretSource, SecretSourceError};
use roundtrip_openapi::HttpUrl;
use roundtrip_openapi::validate::{LocItem, ValidationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use url::Url;

use crate::delivery::{EndpointDirectory, OutboxHandle, PreparedDelivery, Resolved};
use crate::error::{HttpError, RequestValidationError, value_error};
use crate::extract::{Json, Path, Query};
use crate::operation::{OperationInput, OperationOutput};
use crate::response::NoContent;
use crate::router::Router;
use crate::routing::{get, post};
use crate::secret::SecretString;

/// How pydantic shows a secret it refused.
const HIDDEN: &str = "**********";

/// An app's webhook subscriptions: give a clone to [`App::subscriptions`], mount
/// [`router`](Self::router) where the app wants its management API, and publish with
/// [`Publisher::publish`]. Cheap to clone; every clone is the same set.
#[derive(Clone)]
pub struct Subscriptions {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Config {
    rotation_grace: Duration,
    failure_window: Duration,
    lookup_timeout: Duration,
    resolver: Arc<dyn Resolve>,
    given: Option<Arc<dyn EndpointStore>>,
}

struct Inner {
    config: Config,
    binding: Mutex<Option<Binding>>,
    opened: OnceCell<Opened>,
}

/// What the app told the subscriptions when it was built.
#[derive(Clone)]
struct Binding {
    database: Database,
    /// The app's outbox, where an endpoint's queued messages are pointed at its new URL.
    outbox: OutboxHandle,
    events: Vec<String>,
    ssrf: SsrfPolicy,
}

#[derive(Clone)]
enum Database {
    Stores(roundtrip_delivery::Database),
    Given,
    Unsupported(String),
}

struct Opened {
    store: Arc<dyn EndpointStore>,
    secrets: Arc<dyn SecretSource>,
    observer: Arc<dyn AttemptObserver>,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions")
            .field("rotation_grace", &self.inner.config.rotation_grace)
            .field("failure_window", &self.inner.config.failure_window)
            .field("opened", &self.inner.opened.initialized())
            .finish_non_exhaustive()
    }
}

impl Default for Subscriptions {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    fn new(config: Config) -> Self {
        Inner {
            config,
            binding: Mutex::new(None),
            opened: OnceCell::new(),
        }
    }
}

impl Subscriptions {
    /// Subscriptions stored beside the app's outbox, with the defaults: a 24-hour rotation
    /// grace, a 5-day failure window, and the system's resolver for registration checks.
    pub fn new() -> Self {
        Subscriptions {
            inner: Arc::new(Inner::new(Config {
                rotation_grace: roundtrip_delivery::endpoints::DEFAULT_ROTATION_GRACE,
                failure_window: roundtrip_delivery::endpoints::DEFAULT_FAILURE_WINDOW,
                lookup_timeout: Duration::from_secs(5),
                resolver: Arc::new(SystemResolver),
                given: None,
            })),
        }
    }

    /// Changes the configuration. Configure before cloning: a clone configured afterwards
    /// becomes a set of its own.
    fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => change(&mut inner.config),
            None => {
                let mut config = self.inner.config.clone();
                change(&mut config);
                self.inner = Arc::new(Inner::new(config));
            }
        }
        self
    }

    /// How long a rotated-out secret keeps signing, unless a rotation says otherwise
    /// (default 24 hours).
    pub fn rotation_grace(self, grace: Duration) -> Self {
        self.configure(|c| c.rotation_grace = grace)
    }

    /// How long an endpoint may fail without a success before it is disabled (default 5
    /// days).
    pub fn failure_window(self, window: Duration) -> Self {
        self.configure(|c| c.failure_window = window)
    }

    /// Resolves the host names of registered URLs through `resolver` (tests inject a
    /// [`StaticResolver`](roundtrip_delivery::ssrf::StaticResolver); the default asks the
    /// system).
    pub fn resolver(self, resolver: impl Resolve) -> Self {
        let resolver: Arc<dyn Resolve> = Arc::new(resolver);
        self.configure(|c| c.resolver = resolver)
    }

    /// How long a registration waits for its host name to resolve (default 5 s).
    pub fn lookup_timeout(self, timeout: Duration) -> Self {
        self.configure(|c| c.lookup_timeout = timeout)
    }

    /// Keeps the endpoints in `store` instead of beside the outbox (required when the
    /// outbox was given as an object with [`App::outbox`]).
    pub fn store(self, store: impl EndpointStore) -> Self {
        let store: Arc<dyn EndpointStore> = Arc::new(store);
        self.configure(|c| c.given = Some(store))
    }

    /// Called when the app is built: where the outbox lives, which events exist (the
    /// app's webhooks), which addresses may be reached.
    pub(crate) fn bind(&self, delivery: &PreparedDelivery, events: Vec<String>) {
        let database = match delivery.database() {
            Resolved::Database(database) => Database::Stores(database),
            Resolved::Unsupported(url) => Database::Unsupported(roundtrip_delivery::redact(&url)),
            Resolved::Given(_) => Database::Given,
        };
        let binding = Binding {
            database,
            outbox: delivery.outbox_handle(),
            events,
            ssrf: delivery.ssrf().clone(),
        };
        *self.binding_lock() = Some(binding);
    }

    fn binding_lock(&self) -> MutexGuard<'_, Option<Binding>> {
        // The binding is replaced whole; a panic elsewhere cannot leave it half-written.
        self.inner
            .binding
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn binding(&self) -> Option<Binding> {
        self.binding_lock().clone()
    }

    /// The webhook events endpoints may subscribe to: those the app declares (empty until
    /// the app is built).
    pub fn events(&self) -> Vec<String> {
        self.binding().map(|b| b.events).unwrap_or_default()
    }

    async fn opened(&self) -> Result<&Opened, SubscriptionError> {
        if let Some(opened) = self.inner.opened.get() {
            return Ok(opened);
        }
        // Boxed once here: the stores' opening futures are not `Send` for every lifetime a
        // handler's future would need.
        let open: BoxFuture<'static, Result<Opened, SubscriptionError>> =
            Box::pin(open_store(self.inner.config.clone(), self.binding()));
        self.inner.opened.get_or_try_init(|| open).await
    }

    /// The endpoint store, opened (and migrated) on first use.
    pub async fn endpoints(&self) -> Result<Arc<dyn EndpointStore>, SubscriptionError> {
        Ok(self.opened().await?.store.clone())
    }

    /// Registers an endpoint, refusing what the management API refuses: a URL the SSRF
    /// policy forbids, an event type no declared webhook has, a duplicate.
    pub async fn create(
        &self,
        endpoint: NewEndpoint,
    ) -> Result<CreatedEndpoint, SubscriptionError> {
        let problems = self
            .check_target(Some(&endpoint.url), Some(&endpoint.event_types), &[])
            .await;
        if !problems.is_empty() {
            return Err(SubscriptionError::Invalid(problems));
        }
        self.endpoints()
            .await?
            .create(endpoint)
            .await
            .map_err(SubscriptionError::Store)
    }

    /// Reads one endpoint.
    pub async fn get(&self, id: &str) -> Result<Endpoint, SubscriptionError> {
        self.endpoints()
            .await?
            .get(id)
            .await
            .map_err(SubscriptionError::Store)
    }

    /// Lists endpoints, oldest first.
    pub async fn list(&self, filter: &EndpointFilter) -> Result<EndpointPage, SubscriptionError> {
        self.endpoints()
            .await?
            .list(filter)
            .await
            .map_err(SubscriptionError::Store)
    }

    /// Changes an endpoint, with the checks of [`create`](Self::create) on a new URL or new
    /// event types. A new URL also applies to the messages already queued for the
    /// endpoint: their next attempts go there (an attempt in flight finishes at the old
    /// one).
    pub async fn update(
        &self,
        id: &str,
        update: EndpointUpdate,
    ) -> Result<Endpoint, SubscriptionError> {
        let problems = self
            .check_target(update.url.as_ref(), update.event_types.as_deref(), &[])
            .await;
        if !problems.is_empty() {
            return Err(SubscriptionError::Invalid(problems));
        }
        self.apply_update(id, update).await
    }

    /// Writes a checked update, and moves the queued messages when the URL is new.
    async fn apply_update(
        &self,
        id: &str,
        update: EndpointUpdate,
    ) -> Result<Endpoint, SubscriptionError> {
        let new_url = update.url.is_some();
        let endpoint = self
            .endpoints()
            .await?
            .update(id, update)
            .await
            .map_err(SubscriptionError::Store)?;
        if new_url {
            self.retarget(&endpoint).await?;
        }
        Ok(endpoint)
    }

    /// Points the endpoint's queued messages at its URL. The endpoint row and the outbox
    /// may be different stores, so this is a second write: when it fails, the error says
    /// so, and updating the endpoint again with the same URL finishes the move.
    async fn retarget(&self, endpoint: &Endpoint) -> Result<(), SubscriptionError> {
        let Some(binding) = self.binding() else {
            return Ok(());
        };
        let not_moved = |err: String| {
            SubscriptionError::Unavailable(format!(
                "endpoint {} now has its new URL, but its queued messages could not be moved \
                 there ({err}); update it again with the same URL to move them",
                endpoint.id
            ))
        };
        let outbox = binding
            .outbox
            .get()
            .await
            .map_err(|err| not_moved(err.to_string()))?;
        let moved = outbox
            .retarget(&endpoint.id, &endpoint.url)
            .await
            .map_err(|err| not_moved(err.to_string()))?;
        if moved > 0 {
            tracing::info!(
                endpoint = %endpoint.id,
                url = %roundtrip_delivery::message::redact_url(&endpoint.url),
                messages = moved,
                "queued messages now go to the endpoint's new URL"
            );
        }
        Ok(())
    }

    /// Deletes an endpoint.
    pub async fn delete(&self, id: &str) -> Result<(), SubscriptionError> {
        self.endpoints()
            .await?
            .delete(id)
            .await
            .map_err(SubscriptionError::Store)
    }

    /// Rotates an endpoint's secret: the new one signs at once, the previous one too until
    /// the grace period ends.
    pub async fn rotate_secret(
        &self,
        id: &str,
        rotation: Rotation,
    ) -> Result<RotatedSecret, SubscriptionError> {
        self.endpoints()
            .await?
            .rotate_secret(id, rotation)
            .await
            .map_err(SubscriptionError::Store)
    }

    /// Enables an endpoint again (after a 410, a failing window, or by hand): one call.
    pub async fn enable(&self, id: &str) -> Result<Endpoint, SubscriptionError> {
        self.endpoints()
            .await?
            .enable(id)
            .await
            .map_err(SubscriptionError::Store)
    }

    /// Disables an endpoint by hand; it gets no new messages until it is enabled again.
    pub async fn disable(&self, id: &str, reason: &str) -> Result<Endpoint, SubscriptionError> {
        self.endpoints()
            .await?
            .disable(id, reason)
            .await
            .map_err(SubscriptionError::Store)
    }

    /// The enabled endpoints that want `event`.
    pub async fn matching(&self, event: &str) -> Result<Vec<Endpoint>, SubscriptionError> {
        self.endpoints()
            .await?
            .matching(event)
            .await
            .map_err(SubscriptionError::Store)
    }

    /// What is wrong with a URL and event types about to be registered, located under
    /// `prefix` (`["body"]` for the management API).
    async fn check_target(
        &self,
        url: Option<&Url>,
        events: Option<&[String]>,
        prefix: &[&str],
    ) -> Vec<ValidationError> {
        let loc = |field: &str| -> Vec<LocItem> {
            prefix
                .iter()
                .chain(std::iter::once(&field))
                .map(|k| LocItem::key(*k))
                .collect()
        };
        let binding = self.binding();
        let mut problems = Vec::new();
        if let Some(url) = url {
            let policy = binding.as_ref().map(|b| b.ssrf.clone()).unwrap_or_default();
            let config = &self.inner.config;
            let checked = tokio::time::timeout(
                config.lookup_timeout,
                resolve_checked(url, config.resolver.as_ref(), &policy),
            )
            .await;
            let input = Value::String(url.to_string());
            match checked {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => problems.push(value_error(
                    loc("url"),
                    &format!("the URL is refused: {err}"),
                    input,
                )),
                Err(_) => problems.push(value_error(
                    loc("url"),
                    &format!(
                        "the host `{}` did not resolve within {} s; check the host name, or try \
                         again",
                        url.host_str().unwrap_or_default(),
                        config.lookup_timeout.as_secs_f64()
                    ),
                    input,
                )),
            }
        }
        if let Some(events) = events {
            let known = binding.map(|b| b.events).unwrap_or_default();
            for (index, event) in events.iter().enumerate() {
                if known.iter().any(|k| k == event) {
                    continue;
                }
                let sent = if known.is_empty() {
                    "this API declares no webhooks".to_owned()
                } else {
                    format!("the events it sends are: {}", known.join(", "))
                };
                let mut at = loc("event_types");
                at.push(LocItem::Index(index));
                problems.push(value_error(
                    at,
                    &format!("`{event}` is not an event this API sends; {sent}"),
                    Value::String(event.clone()),
                ));
            }
        }
        problems
    }

    /// The management router: create, list, read, update, delete, rotate the secret of,
    /// enable and disable endpoints, each operation behind the guard `G` (for example an
    /// [`ApiKeyHeader`](crate::security::ApiKeyHeader), whose scheme the document then
    /// requires on every operation). Its paths start with `/endpoints`; give the router a
    /// prefix to put them elsewhere.
    pub fn router<G, S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        G: FromRequestParts<S> + OperationInput + Send + 'static,
    {
        let s = self.clone();
        let create = move |_: G, Json(body): Json<WebhookEndpointIn>| {
            let s = s.clone();
            async move { s.api_create(body).await }
        };
        let s = self.clone();
        let list = move |_: G, Query(query): Query<WebhookEndpointQuery>| {
            let s = s.clone();
            async move { s.api_list(query).await }
        };
        let s = self.clone();
        let read = move |_: G, Path(path): Path<WebhookEndpointPath>| {
            let s = s.clone();
            async move { s.api_get(path.endpoint_id).await }
        };
        let s = self.clone();
        let update = move |_: G,
                           Path(path): Path<WebhookEndpointPath>,
                           Json(body): Json<WebhookEndpointPatch>| {
            let s = s.clone();
            async move { s.api_update(path.endpoint_id, body).await }
        };
        let s = self.clone();
        let delete = move |_: G, Path(path): Path<WebhookEndpointPath>| {
            let s = s.clone();
            async move { s.api_delete(path.endpoint_id).await }
        };
        let s = self.clone();
        let rotate = move |_: G,
                           Path(path): Path<WebhookEndpointPath>,
                           Json(body): Json<WebhookSecretRotation>| {
            let s = s.clone();
            async move { s.api_rotate(path.endpoint_id, body).await }
        };
        let s = self.clone();
        let enable = move |_: G, Path(path): Path<WebhookEndpointPath>| {
            let s = s.clone();
            async move { s.api_enable(path.endpoint_id).await }
        };
        let s = self.clone();
        let disable = move |_: G, Path(path): Path<WebhookEndpointPath>| {
            let s = s.clone();
            async move { s.api_disable(path.endpoint_id).await }
        };
        const NOT_FOUND: &str = "No webhook endpoint has this id";
        const DUPLICATE: &str = "Another endpoint has the same URL and event types";
        Router::new()
            .tag("webhook endpoints")
            .route(
                "/endpoints",
                post(create)
                    .name("create_endpoint")
                    .status(201)
                    .description(
                        "Registers a webhook endpoint: the URL receives the events it lists (every \
                         event when it lists none), signed with its own secret. The secret is \
                         generated unless one is given, and is returned here only.",
                    )
                    .response_status(409, DUPLICATE)
                    .get(list)
                    .name("list_endpoints")
                    .description(
                        "Lists webhook endpoints, oldest first, without their secrets. Pass \
                         `next` as `after` for the next page.",
                    ),
            )
            .route(
                "/endpoints/{endpoint_id}",
                get(read)
                    .name("get_endpoint")
                    .description("Reads a webhook endpoint, without its secret.")
                    .response_status(404, NOT_FOUND)
                    .patch(update)
                    .name("update_endpoint")
                    .description(
                        "Changes a webhook endpoint's URL, description, event types or metadata; \
                         what the body leaves out stays as it is.",
                    )
                    .response_status(404, NOT_FOUND)
                    .response_status(409, DUPLICATE)
                    .delete(delete)
                    .name("delete_endpoint")
                    .description("Deletes a webhook endpoint and its secrets.")
                    .status(204)
                    .response_status(404, NOT_FOUND),
            )
            .route(
                "/endpoints/{endpoint_id}/rotate-secret",
                post(rotate)
                    .name("rotate_endpoint_secret")
                    .description(
                        "Makes a new signing secret current and returns it. The previous secret \
                         keeps signing until `previous_expires_at`, so receivers see both \
                         signatures meanwhile.",
                    )
                    .response_status(404, NOT_FOUND),
            )
            .route(
                "/endpoints/{endpoint_id}/enable",
                post(enable)
                    .name("enable_endpoint")
                    .description(
                        "Enables a webhook endpoint again, after a 410, a failing window or a \
                         disable, with a fresh health record.",
                    )
                    .response_status(404, NOT_FOUND),
            )
            .route(
                "/endpoints/{endpoint_id}/disable",
                post(disable)
                    .name("disable_endpoint")
                    .description(
                        "Disables a webhook endpoint: it gets no new messages, and its queued ones \
                         wait until it is enabled again.",
                    )
                    .response_status(404, NOT_FOUND),
            )
    }

    pub(crate) async fn api_create(
        &self,
        body: WebhookEndpointIn,
    ) -> Result<Json<WebhookEndpointCreated>, SubscriptionError> {
        let url = body.url.into_url();
        let mut problems = self
            .check_target(Some(&url), Some(&body.event_types), &["body"])
            .await;
        let secret = match body
            .secret
            .as_ref()
            .map(|s| given_secret(s.expose_secret()))
            .transpose()
        {
            Ok(secret) => secret,
            Err(why) => {
                problems.push(secret_error(&why));
                None
            }
        };
        if !problems.is_empty() {
            return Err(SubscriptionError::Invalid(problems));
        }
        let mut endpoint = NewEndpoint::new(url)
            .description(body.description)
            .event_types(body.event_types)
            .metadata(body.metadata);
        if let Some(secret) = secret {
            endpoint = endpoint.secret(secret);
        }
        let created = self
            .endpoints()
            .await?
            .create(endpoint)
            .await
            .map_err(SubscriptionError::Store)?;
        Ok(Json(WebhookEndpointCreated {
            endpoint: (&created.endpoint).into(),
            secret: created.secret.to_string(),
        }))
    }

    async fn api_list(
        &self,
        query: WebhookEndpointQuery,
    ) -> Result<Json<WebhookEndpointList>, SubscriptionError> {
        let mut filter = EndpointFilter::new();
        filter.enabled = query.enabled;
        filter.event_type = query.event_type;
        filter.after = query.after;
        filter.limit = query.limit.map(|l| l as usize);
        let page = self.list(&filter).await?;
        Ok(Json(WebhookEndpointList {
            data: page.endpoints.iter().map(Into::into).collect(),
            next: page.next,
        }))
    }

    async fn api_get(&self, id: String) -> Result<Json<WebhookEndpoint>, SubscriptionError> {
        Ok(Json((&self.get(&id).await?).into()))
    }

    pub(crate) async fn api_update(
        &self,
        id: String,
        body: WebhookEndpointPatch,
    ) -> Result<Json<WebhookEndpoint>, SubscriptionError> {
        let url = body.url.map(HttpUrl::into_url);
        let problems = self
            .check_target(url.as_ref(), body.event_types.as_deref(), &["body"])
            .await;
        if !problems.is_empty() {
            return Err(SubscriptionError::Invalid(problems));
        }
        let mut update = EndpointUpdate::new();
        update.url = url;
        update.description = body.description;
        update.event_types = body.event_types;
        update.metadata = body.metadata;
        let endpoint = self.apply_update(&id, update).await?;
        Ok(Json((&endpoint).into()))
    }

    async fn api_delete(&self, id: String) -> Result<NoContent, SubscriptionError> {
        self.delete(&id).await?;
        Ok(NoContent)
    }

    async fn api_rotate(
        &self,
        id: String,
        body: WebhookSecretRotation,
    ) -> Result<Json<WebhookSecretRotated>, SubscriptionError> {
        let mut rotation = Rotation::new();
        if let Some(text) = body.secret.as_ref().map(SecretString::expose_secret) {
            match given_secret(text) {
                Ok(secret) => rotation = rotation.secret(secret),
                Err(why) => return Err(SubscriptionError::Invalid(vec![secret_error(&why)])),
            }
        }
        if let Some(seconds) = body.grace_seconds {
            rotation = rotation.grace(Duration::from_secs(seconds));
        }
        let rotated = self.rotate_secret(&id, rotation).await?;
        Ok(Json(WebhookSecretRotated {
            endpoint: (&rotated.endpoint).into(),
            secret: rotated.secret.to_string(),
            previous_expires_at: rotated.previous_expires_at.into(),
        }))
    }

    async fn api_enable(&self, id: String) -> Result<Json<WebhookEndpoint>, SubscriptionError> {
        Ok(Json((&self.enable(&id).await?).into()))
    }

    async fn api_disable(&self, id: String) -> Result<Json<WebhookEndpoint>, SubscriptionError> {
        let endpoint = self
            .disable(&id, "disabled through the management API")
            .await?;
        Ok(Json((&endpoint).into()))
    }
}

async fn open_store(config: Config, binding: Option<Binding>) -> Result<Opened, SubscriptionError> {
    if let Some(store) = config.given {
        let hooks = EndpointHooks::new(store.clone());
        return Ok(Opened {
            store,
            secrets: Arc::new(hooks.clone()),
            observer: Arc::new(hooks),
        });
    }
    let Some(binding) = binding else {
        return Err(SubscriptionError::Unavailable(
            "the webhook subscriptions belong to no built app: pass them to App::subscriptions \
             and build the app, or give them a store with Subscriptions::store"
                .to_owned(),
        ));
    };
    let failed = |err: EndpointError| SubscriptionError::Unavailable(err.to_string());
    match binding.database {
        Database::Stores(database) => {
            let settings = EndpointSettings::new()
                .rotation_grace(config.rotation_grace)
                .failure_window(config.failure_window);
            let hooks = database.open_endpoints(&settings).await.map_err(failed)?;
            Ok(Opened {
                store: hooks.store().clone(),
                secrets: Arc::new(hooks.clone()),
                observer: Arc::new(hooks),
            })
        }
        Database::Given => Err(SubscriptionError::Unavailable(
            "the app's outbox was given as an object (App::outbox), so the webhook endpoints \
             cannot be stored beside it: give them a store with Subscriptions::store"
                .to_owned(),
        )),
        Database::Unsupported(url) => Err(SubscriptionError::Unavailable(format!(
            "webhook endpoints can be stored in SQLite or PostgreSQL, not at {url}"
        ))),
    }
}

/// Messages for an endpoint are signed with the endpoint's secrets.
impl SecretSource for Subscriptions {
    fn secrets<'a>(
        &'a self,
        message: &'a MessageMeta,
    ) -> BoxFuture<'a, Result<Vec<Secret>, SecretSourceError>> {
        Box::pin(async move {
            let opened = self
                .opened()
                .await
                .map_err(|err| -> SecretSourceError { Box::new(err) })?;
            opened.secrets.secrets(message).await
        })
    }
}

/// Endpoint health: 410 and long runs of failures disable; successes end the runs.
impl EndpointDirectory for Subscriptions {
    fn matching<'a>(
        &'a self,
        event: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<Vec<Endpoint>, String>> {
        Box::pin(async move {
            Subscriptions::matching(self, event)
                .await
                .map_err(|err| err.to_string())
        })
    }
}

impl AttemptObserver for Subscriptions {
    fn finished(&self, report: &AttemptReport<'_>) {
        // Every attempt for an endpoint was signed through `secrets`, which opened the store;
        // if it could not, the attempt failed on our side and says nothing of the endpoint.
        if let Some(opened) = self.inner.opened.get() {
            opened.observer.finished(report);
        }
    }
}

/// The guard of a management router that anyone who reaches it may call: for apps that
/// protect it some other way (a layer of their own, a private listener). It documents
/// nothing and refuses nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unguarded;

impl<S: Send + Sync> FromRequestParts<S> for Unguarded {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Unguarded)
    }
}

impl OperationInput for Unguarded {}

/// Why a subscription operation failed.
///
/// It answers the client as the management API should: 422 in FastAPI's shape for a refused
/// endpoint, 404 for an unknown id, 409 for a duplicate, 503 when the store cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// The endpoint was refused before anything was written; every problem, in FastAPI's
    /// shape.
    Invalid(Vec<ValidationError>),
    /// The endpoint store refused or failed.
    Store(EndpointError),
    /// The endpoint store cannot be opened.
    Unavailable(String),
}

impl SubscriptionError {
    /// The endpoint (URL, event types or secret) was refused.
    pub fn is_invalid(&self) -> bool {
        match self {
            SubscriptionError::Invalid(_) => true,
            SubscriptionError::Store(err) => err.is_invalid(),
            SubscriptionError::Unavailable(_) => false,
        }
    }

    /// No endpoint has the id.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SubscriptionError::Store(err) if err.is_not_found())
    }

    /// Another endpoint has the same URL and event types.
    pub fn is_conflict(&self) -> bool {
        matches!(self, SubscriptionError::Store(err) if err.is_conflict())
    }

    /// The store could not be opened or used right now.
    pub fn is_unavailable(&self) -> bool {
        match self {
            SubscriptionError::Unavailable(_) => true,
            SubscriptionError::Store(err) => err.is_unavailable(),
            SubscriptionError::Invalid(_) => false,
        }
    }

    /// The problems of a refused endpoint.
    pub fn errors(&self) -> &[ValidationError] {
        match self {
            SubscriptionError::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

impl std::fmt::Display for SubscriptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscriptionError::Invalid(errors) => write!(
                f,
                "the webhook endpoint is refused: {}",
                crate::error::summarize(errors)
            ),
            SubscriptionError::Store(err) => err.fmt(f),
            SubscriptionError::Unavailable(reason) => {
                write!(f, "the webhook endpoint store is unavailable: {reason}")
            }
        }
    }
}

impl std::error::Error for SubscriptionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SubscriptionError::Store(err) => Some(err),
            _ => None,
        }
    }
}

impl IntoResponse for SubscriptionError {
    fn into_response(self) -> Response {
        match self {
            SubscriptionError::Invalid(errors) => {
                RequestValidationError::new(errors).into_response()
            }
            SubscriptionError::Store(err) if err.is_not_found() => {
                HttpError::not_found(err.message().to_owned()).into_response()
            }
            SubscriptionError::Store(err) if err.is_conflict() || err.is_disabled() => {
                HttpError::conflict(err.message().to_owned()).into_response()
            }
            SubscriptionError::Store(err) if err.is_invalid() => {
                RequestValidationError::new(vec![value_error(
                    vec![LocItem::key("body")],
                    err.message(),
                    Value::Null,
                )])
                .into_response()
            }
            other => {
                tracing::error!(error = %other, "the webhook endpoint store failed");
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
impl OperationOutput for SubscriptionError {}

/// Pydantic's error for a value its validator refused.
/// What a signing secret looks like: `whsec_` and the padded base64 of 24 to 64 bytes (8 to
/// 21 groups of four characters, then at most one padded group), as
/// [`Secret::parse_strict`] reads it.
const SECRET_PATTERN: &str = "^whsec_(?:(?:[A-Za-z0-9+/]{4}){8,20}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?|(?:[A-Za-z0-9+/]{4}){21}(?:[A-Za-z0-9+/]{2}==)?)$";

/// A secret a user gave: `whsec_` and base64 of 24 to 64 bytes.
fn given_secret(text: &str) -> Result<Secret, String> {
    Secret::parse_strict(text).map_err(|err| err.to_string())
}

/// The 422 entry of a refused secret, which is never echoed back.
fn secret_error(why: &str) -> ValidationError {
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
