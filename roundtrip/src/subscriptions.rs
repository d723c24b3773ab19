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
//! * **Fan-out.** [`Publisher::publish`](crate::Publisher::publish) checks the payload against its
//!   schema, finds the enabled endpoints that want the event, and stores one message per endpoint
//!   in one outbox write: all or none are stored.
//! * **Guarded.** The router's operations take a guard `G` of the app's choosing: any
//!   extractor that documents itself ([`OperationInput`]), such as an API key from
//!   [`security`](crate::security) or a [`Depends`](crate::Depends) that checks one. Its
//!   rejections (401, 403) are answered before anything else runs.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::FromRequestParts;
use futures_util::future::BoxFuture;
use roundtrip_delivery::endpoints::{
    CreatedEndpoint, Endpoint, EndpointFilter, EndpointHooks, EndpointPage, EndpointSettings,
    EndpointStore, EndpointUpdate, Error as EndpointError, NewEndpoint, RotatedSecret, Rotation,
};
use roundtrip_delivery::message::MessageMeta;
use roundtrip_delivery::signing::Secret;
use roundtrip_delivery::ssrf::{Resolve, SsrfPolicy, SystemResolver, resolve_checked};
use roundtrip_delivery::worker::{AttemptObserver, AttemptReport, SecretSource, SecretSourceError};
use roundtrip_openapi::validate::{LocItem, ValidationError};
use serde_json::Value;
use tokio::sync::OnceCell;
use url::Url;

use crate::delivery::{EndpointDirectory, OutboxHandle, PreparedDelivery, Resolved};
use crate::error::value_error;
use crate::operation::OperationInput;

mod error;
mod handlers;
mod models;

pub use error::SubscriptionError;
pub(crate) use models::document_events;
pub use models::{
    WebhookEndpoint, WebhookEndpointCreated, WebhookEndpointDisabledBy, WebhookEndpointIn,
    WebhookEndpointList, WebhookEndpointPatch, WebhookEndpointPath, WebhookEndpointQuery,
    WebhookSecretRotated, WebhookSecretRotation,
};

/// How pydantic shows a secret it refused.
const HIDDEN: &str = "**********";

/// An app's webhook subscriptions: give a clone to
/// [`App::subscriptions`](crate::App::subscriptions), mount [`router`](Self::router) where the app
/// wants its management API, and publish with [`Publisher::publish`](crate::Publisher::publish).
/// Cheap to clone; every clone is the same set.
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
    /// outbox was given as an object with [`App::outbox`](crate::App::outbox)).
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
