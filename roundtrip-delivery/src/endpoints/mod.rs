//! Webhook endpoints: the URLs that subscribed to an app's webhooks, with their event types,
//! signing secrets and health, stored next to the outbox.
//!
//! # Policy
//!
//! * **Where.** Endpoints live in the outbox's own database (the same SQLite file, or the same
//!   PostgreSQL schema), in tables of their own (`webhook_endpoints`,
//!   `webhook_endpoint_events`, `webhook_endpoint_secrets`) with their own migrations,
//!   recorded in `_roundtrip_endpoint_migrations`. The outbox never reads them: a message
//!   carries its endpoint's id, and the workers ask the endpoint store for its secrets.
//! * **What an endpoint is.** An id (`ep_...`), an `http` or `https` URL, a description, the
//!   event types it wants (none listed means every event), its signing secrets, whether it is
//!   enabled (and if not, since when and why), free-form JSON metadata, and its health: when
//!   the current run of failures began, and when it last succeeded. Two endpoints with the
//!   same URL and the same event types would receive every message twice, so the second one
//!   is refused ([`Error::is_conflict`]).
//! * **Secrets.** Each endpoint has its own `whsec_...` secret, generated when none is given.
//!   [`EndpointStore::rotate_secret`] makes a new one current at once, and keeps the previous
//!   one signing for a grace period (24 hours by default): during it every message carries
//!   both signatures, so a receiver that knows either secret accepts it. Secrets are returned
//!   on creation and rotation only; listings never carry them. They are stored as written,
//!   so protect the database as you protect the secrets.
//! * **Health.** The stores are also the workers' [`AttemptObserver`]: an endpoint that
//!   answers `410 Gone` is disabled at once; one whose deliveries all fail for longer than the
//!   failure window (5 days by default) is disabled too; a success ends the run of failures.
//!   Disabling is recorded on the endpoint ([`Endpoint::disabled`]) and logged as a warning
//!   with the endpoint id and its redacted URL. A disabled endpoint gets no new messages, and
//!   the messages already queued for it are not signed (their attempts fail with a `secret`
//!   error and wait on the retry schedule), so they are delivered if it is enabled again in
//!   time. [`EndpointStore::enable`] turns it back on and starts a fresh health record.
//! * **Cheap to observe.** The observer runs on the workers' task. It never blocks: it keeps
//!   what it knows of each endpoint in memory and spawns a store write only when the health
//!   changes (the first failure of a run, a success after failures, the end of the window, a
//!   410), and at most once a minute for a steady run of successes.
//!
//! The embedded [`SqliteEndpointStore`] and [`PgEndpointStore`] implement the object-safe
//! [`EndpointStore`] trait and pass the same tests.

mod error;
mod health;
mod postgres;
mod rows;
mod rules;
mod sqlite;
mod tables;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};
use url::Url;

use crate::message::MessageMeta;
use crate::signing::Secret;
use crate::store::listing::paging;
use crate::worker::{AttemptObserver, AttemptReport, SecretSource, SecretSourceError};

pub use error::Error;
pub use postgres::{PgEndpointOptions, PgEndpointStore};
pub use sqlite::{SqliteEndpointOptions, SqliteEndpointStore};

/// The prefix of every endpoint id.
pub const ENDPOINT_ID_PREFIX: &str = "ep_";
/// How long a rotated-out secret keeps signing, unless the rotation says otherwise.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);
/// How long an endpoint may fail without a single success before it is disabled.
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(5 * 24 * 3600);
/// The longest event type name accepted.
pub const MAX_EVENT_TYPE_LEN: usize = 255;
/// The most event types one endpoint may list.
pub const MAX_EVENT_TYPES: usize = 256;
/// The longest URL accepted, in bytes (pydantic's `HttpUrl` limit).
pub const MAX_URL_LEN: usize = 2083;
/// The event type the stores write for endpoints that want every event; refused as a name.
pub(crate) const ALL_EVENTS: &str = "*";

/// The builder methods of the health settings both endpoint stores' options (and
/// [`EndpointSettings`]) have: fields `rotation_grace` and `failure_window`.
macro_rules! endpoint_setters {
    () => {
        /// How long a rotated-out secret keeps signing, unless a rotation says otherwise
        /// (default 24 hours).
        pub fn rotation_grace(mut self, grace: Duration) -> Self {
            self.rotation_grace = grace;
            self
        }

        /// How long an endpoint may fail without a success before it is disabled (default 5
        /// days).
        pub fn failure_window(mut self, window: Duration) -> Self {
            self.failure_window = window;
            self
        }
    };
}

use endpoint_setters;

/// How an endpoint store treats its endpoints, whatever its database: how long a rotated-out
/// secret keeps signing, and how long an endpoint may fail before it is disabled. For
/// [`Database::open_endpoints`](crate::Database::open_endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointSettings {
    pub(crate) rotation_grace: Duration,
    pub(crate) failure_window: Duration,
}

impl Default for EndpointSettings {
    fn default() -> Self {
        EndpointSettings {
            rotation_grace: DEFAULT_ROTATION_GRACE,
            failure_window: DEFAULT_FAILURE_WINDOW,
        }
    }
}

impl EndpointSettings {
    /// The defaults: a 24-hour rotation grace and a 5-day failure window.
    pub fn new() -> Self {
        Self::default()
    }

    endpoint_setters!();
}

/// A webhook endpoint as stored. It never carries its secrets.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Endpoint {
    /// `ep_` followed by 27 base62 characters; sorts by creation time.
    pub id: String,
    /// Where messages go. Can hold credentials: use [`redact_url`](crate::message::redact_url)
    /// before logging it.
    pub url: Url,
    /// What the endpoint is for, as its owner described it.
    pub description: String,
    /// The event types it receives, sorted; empty means every event.
    pub event_types: Vec<String>,
    /// Free-form JSON metadata (PostgreSQL gives its keys back in its own order).
    pub metadata: Map<String, Value>,
    /// Since when and why it is disabled; `None` while it is enabled.
    pub disabled: Option<Disabled>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When its URL, description, event types, metadata, secret or state last changed.
    pub updated_at: SystemTime,
    /// When the current run of failed deliveries began; `None` while it is healthy.
    pub failing_since: Option<SystemTime>,
    /// When a delivery to it last succeeded.
    pub last_success_at: Option<SystemTime>,
    /// While a rotated-out secret still signs: when the last one stops.
    pub rotation_ends_at: Option<SystemTime>,
}

impl Endpoint {
    /// Whether it receives messages.
    pub fn is_enabled(&self) -> bool {
        self.disabled.is_none()
    }

    /// Whether it wants `event` (it lists it, or lists nothing and so wants every event).
    pub fn wants(&self, event: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|e| e == event)
    }
}

/// Why and since when an endpoint is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Disabled {
    /// When it was disabled.
    pub at: SystemTime,
    /// Who or what disabled it.
    pub kind: DisableKind,
    /// Why, in a sentence.
    pub reason: String,
}

/// Who or what disabled an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisableKind {
    /// A person or the application ([`EndpointStore::disable`]).
    Manual,
    /// The endpoint answered `410 Gone`.
    Gone,
    /// Every delivery failed for longer than the failure window.
    Failing,
}

impl DisableKind {
    /// The name used in storage and in the management API: `manual`, `gone` or `failing`.
    pub fn as_str(self) -> &'static str {
        match self {
            DisableKind::Manual => "manual",
            DisableKind::Gone => "gone",
            DisableKind::Failing => "failing",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "manual" => Some(DisableKind::Manual),
            "gone" => Some(DisableKind::Gone),
            "failing" => Some(DisableKind::Failing),
            _ => None,
        }
    }
}

impl std::fmt::Display for DisableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An endpoint to create.
///
/// ```
/// use roundtrip_delivery::endpoints::NewEndpoint;
/// let url = url::Url::parse("https://hooks.example.com/roundtrip").unwrap();
/// let endpoint = NewEndpoint::new(url)
///     .description("billing system")
///     .event_type("invoice.paid")
///     .event_type("invoice.voided");
/// assert_eq!(endpoint.event_types, ["invoice.paid", "invoice.voided"]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewEndpoint {
    /// Where messages go.
    pub url: Url,
    /// What it is for.
    pub description: String,
    /// The event types it receives; empty means every event.
    pub event_types: Vec<String>,
    /// Its signing secret; `None` to generate one.
    pub secret: Option<Secret>,
    /// Free-form JSON metadata.
    pub metadata: Map<String, Value>,
}

impl NewEndpoint {
    /// An endpoint at `url` that receives every event, with a generated secret.
    pub fn new(url: Url) -> Self {
        NewEndpoint {
            url,
            description: String::new(),
            event_types: Vec::new(),
            secret: None,
            metadata: Map::new(),
        }
    }

    /// Describes it.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Adds an event type it receives (with none, it receives every event).
    pub fn event_type(mut self, event: impl Into<String>) -> Self {
        self.event_types.push(event.into());
        self
    }

    /// Sets the event types it receives (empty: every event).
    pub fn event_types(mut self, events: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.event_types = events.into_iter().map(Into::into).collect();
        self
    }

    /// Signs its messages with `secret` instead of a generated one (to move an endpoint from
    /// another service without changing its secret).
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Sets its free-form metadata.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = metadata;
        self
    }
}

/// Changes to an endpoint; what is not set stays as it is.
///
/// ```
/// use roundtrip_delivery::endpoints::EndpointUpdate;
/// let update = EndpointUpdate::new().description("billing (new system)").event_types(["invoice.paid"]);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EndpointUpdate {
    /// A new URL.
    pub url: Option<Url>,
    /// A new description.
    pub description: Option<String>,
    /// New event types (empty: every event).
    pub event_types: Option<Vec<String>>,
    /// New metadata, replacing the old.
    pub metadata: Option<Map<String, Value>>,
}

impl EndpointUpdate {
    /// Changes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the endpoint to `url`. (The store holds endpoints only: `Subscriptions::update`
    /// also points the messages already queued for it at the new URL, with
    /// [`Outbox::retarget`](crate::outbox::Outbox::retarget).)
    pub fn url(mut self, url: Url) -> Self {
        self.url = Some(url);
        self
    }

    /// Replaces the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Replaces the event types (empty: every event).
    pub fn event_types(mut self, events: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.event_types = Some(events.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces the metadata.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Whether it changes anything.
    pub fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.description.is_none()
            && self.event_types.is_none()
            && self.metadata.is_none()
    }
}

/// Which endpoints [`EndpointStore::list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointFilter {
    /// Only enabled (`true`) or disabled (`false`) ones.
    pub enabled: Option<bool>,
    /// Only those that receive this event type (listing it, or listing nothing).
    pub event_type: Option<String>,
    /// Only those created after this one (the cursor of the previous page).
    pub after: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

impl EndpointFilter {
    paging!(100);

    /// Every endpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only enabled or only disabled endpoints.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Only endpoints that receive `event`.
    pub fn event_type(mut self, event: impl Into<String>) -> Self {
        self.event_type = Some(event.into());
        self
    }

    /// Continues after the endpoint `id` (a previous page's [`EndpointPage::next`]).
    pub fn after(mut self, id: impl Into<String>) -> Self {
        self.after = Some(id.into());
        self
    }
}

/// One page of [`EndpointStore::list`], oldest first.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EndpointPage {
    /// The endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Pass to [`EndpointFilter::after`] for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// A new endpoint and its secret: the only time the secret is handed out, with
/// [`RotatedSecret`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreatedEndpoint {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its signing secret (generated, or the one given). `Debug` does not print it.
    pub secret: Secret,
}

/// How to rotate an endpoint's secret.
#[derive(Debug, Clone, Default)]
pub struct Rotation {
    secret: Option<Secret>,
    grace: Option<Duration>,
}

impl Rotation {
    /// A generated secret, and the store's grace period (24 hours by default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `secret` as the new secret instead of a generated one.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// How long the current secret keeps signing after the rotation. Zero stops it at once.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }
}

/// The new secret of a rotation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RotatedSecret {
    /// The endpoint, with its `rotation_ends_at` set.
    pub endpoint: Endpoint,
    /// The new current secret. `Debug` does not print it.
    pub secret: Secret,
    /// When the previous secret stops signing.
    pub previous_expires_at: SystemTime,
}

/// What an endpoint's health learns from one delivery attempt, for
/// [`EndpointStore::record_health`]: the workers derive it from the attempt's outcome and
/// decision (`endpoints/health.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthSignal {
    /// The endpoint answered 2xx.
    Delivered,
    /// The attempt failed (no answer, or an answer other than 2xx and 410).
    Failed,
    /// The endpoint answered `410 Gone`.
    Gone,
}

/// What [`EndpointStore::record_health`] found and did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HealthUpdate {
    /// When the current run of failures began, after this attempt.
    pub failing_since: Option<SystemTime>,
    /// The endpoint, if this attempt disabled it.
    pub disabled: Option<Endpoint>,
}

impl HealthUpdate {
    /// The health of `endpoint` after an attempt, which disabled it if `disabled`.
    pub(crate) fn of(endpoint: Endpoint, disabled: bool) -> Self {
        HealthUpdate {
            failing_since: endpoint.failing_since,
            disabled: disabled.then_some(endpoint),
        }
    }
}

/// Storage of webhook endpoints, shared by the management API, the publisher and the
/// delivery workers.
///
/// Object safe (`Arc<dyn EndpointStore>`): its methods return boxed futures.
pub trait EndpointStore: Send + Sync + 'static {
    /// Creates an endpoint, with a generated secret unless one is given. A URL that is not
    /// `http` or `https`, or a bad event type, is [`Error::is_invalid`]; another endpoint
    /// with the same URL and event types is [`Error::is_conflict`].
    fn create(&self, endpoint: NewEndpoint) -> BoxFuture<'_, Result<CreatedEndpoint, Error>>;

    /// Reads one endpoint ([`Error::is_not_found`] if there is none).
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Endpoint, Error>>;

    /// Lists endpoints, oldest first.
    fn list<'a>(&'a self, filter: &'a EndpointFilter)
    -> BoxFuture<'a, Result<EndpointPage, Error>>;

    /// Changes an endpoint's URL, description, event types or metadata.
    fn update<'a>(
        &'a self,
        id: &'a str,
        update: EndpointUpdate,
    ) -> BoxFuture<'a, Result<Endpoint, Error>>;

    /// Deletes an endpoint and its secrets. Its queued messages can no longer be signed
    /// and fail.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Makes a new secret current; the previous one keeps signing for the grace period.
    fn rotate_secret<'a>(
        &'a self,
        id: &'a str,
        rotation: Rotation,
    ) -> BoxFuture<'a, Result<RotatedSecret, Error>>;

    /// Enables an endpoint, forgetting its run of failures. Enabling an enabled endpoint
    /// changes nothing.
    fn enable<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Endpoint, Error>>;

    /// Disables an endpoint by hand, with a reason. Disabling a disabled endpoint changes
    /// nothing.
    fn disable<'a>(
        &'a self,
        id: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Endpoint, Error>>;

    /// The enabled endpoints that receive `event`, oldest first: where a publish goes.
    fn matching<'a>(&'a self, event: &'a str) -> BoxFuture<'a, Result<Vec<Endpoint>, Error>>;

    /// The secrets that sign a message for the endpoint now: the current one first, then
    /// every rotated-out one still in its grace period. A disabled endpoint is
    /// [`Error::is_disabled`].
    fn signing_secrets<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<Secret>, Error>>;

    /// Records what an attempt at `at` showed of the endpoint's health: a success ends the run of failures; a failure
    /// starts one (or continues it, and disables the endpoint once it is longer than the
    /// failure window); `410 Gone` disables it at once.
    fn record_health<'a>(
        &'a self,
        id: &'a str,
        result: HealthSignal,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<HealthUpdate, Error>>;

    /// How long an endpoint may fail without a success before it is disabled.
    fn failure_window(&self) -> Duration;
}

/// Signs and observes for any [`EndpointStore`]: a [`SecretSource`] that gives the secrets of
/// a message's endpoint, and the [`AttemptObserver`] that disables failing endpoints.
///
/// The SQLite and PostgreSQL stores implement both traits themselves; wrap other stores in
/// this.
#[derive(Clone)]
pub struct EndpointHooks {
    store: Arc<dyn EndpointStore>,
    tracker: Arc<health::Tracker>,
}

impl std::fmt::Debug for EndpointHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointHooks").finish_non_exhaustive()
    }
}

impl EndpointHooks {
    /// Hooks over `store`.
    pub fn new(store: Arc<dyn EndpointStore>) -> Self {
        EndpointHooks {
            store,
            tracker: Arc::new(health::Tracker::default()),
        }
    }

    /// Hooks over `store` that share its health tracker.
    pub(crate) fn sharing(store: Arc<dyn EndpointStore>, tracker: Arc<health::Tracker>) -> Self {
        EndpointHooks { store, tracker }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn EndpointStore> {
        &self.store
    }
}

impl SecretSource for EndpointHooks {
    fn secrets<'a>(
        &'a self,
        message: &'a MessageMeta,
    ) -> BoxFuture<'a, Result<Vec<Secret>, SecretSourceError>> {
        health::secrets(self.store.as_ref(), message)
    }
}

impl AttemptObserver for EndpointHooks {
    fn finished(&self, report: &AttemptReport<'_>) {
        health::observe(&self.store, &self.tracker, report);
    }
}
