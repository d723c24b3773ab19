//! Delivery settings gathered while the app is declared, and the hooks through which the
//! parts built above delivery (webhook subscriptions, metrics) plug into it.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use roundtrip_delivery::endpoints::Endpoint;
use roundtrip_delivery::message::MessageKind;
use roundtrip_delivery::outbox::Outbox;
use roundtrip_delivery::sqlite::SqliteOptions;
use roundtrip_delivery::ssrf::{Resolve, SsrfPolicy, SystemResolver};
use roundtrip_delivery::worker::{AttemptObserver, DispatcherConfig, SecretSource};

/// Where the outbox lives.
#[derive(Clone)]
pub(crate) enum Store {
    /// An embedded SQLite file.
    Sqlite(SqliteOptions),
    /// A database URL (`sqlite://path`, `postgres://...`).
    Url(String),
    /// An outbox the user opened.
    Given(Arc<dyn Outbox>),
}

type ConfigureDispatcher = Arc<dyn Fn(DispatcherConfig) -> DispatcherConfig + Send + Sync>;

/// Delivery settings gathered while the app is declared.
#[derive(Clone)]
pub(crate) struct DeliverySetup {
    pub(crate) store: Option<Store>,
    pub(crate) secrets: Option<Arc<dyn SecretSource>>,
    pub(crate) ssrf: SsrfPolicy,
    pub(crate) configure: Vec<ConfigureDispatcher>,
    pub(crate) max_payload_bytes: usize,
    pub(crate) start_workers: bool,
    /// Observers of every attempt (metrics, webhook endpoint health), all called in turn.
    pub(crate) observers: Vec<Arc<dyn AttemptObserver>>,
    /// Where the secrets of messages bound for a webhook endpoint come from (the
    /// endpoint's own); other messages are signed by `secrets`.
    pub(crate) endpoint_secrets: Option<Arc<dyn SecretSource>>,
    /// Where `Publisher::publish` looks up the endpoints of an event: the app's webhook
    /// subscriptions, when it has them (they also sign through `endpoint_secrets`).
    pub(crate) endpoints: Option<Arc<dyn EndpointDirectory>>,
    /// What counts the messages enqueued (delivery metrics, OpenTelemetry), in turn.
    pub(crate) counters: Vec<Arc<dyn CountEnqueued>>,
    /// How host names of callback and webhook URLs are resolved, at send time and by the
    /// workers (the system's resolver unless the app gives one).
    pub(crate) resolver: Arc<dyn Resolve>,
}

/// The default largest payload `send` accepts: 256 KiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// The environment variable holding the app's signing secret (`whsec_...`).
pub const SIGNING_SECRET_ENV: &str = "ROUNDTRIP_SIGNING_SECRET";

/// The environment variable naming this process's delivery worker (its lease owner).
pub const WORKER_ID_ENV: &str = "ROUNDTRIP_WORKER_ID";

/// The environment variable holding the outbox database URL.
pub const DATABASE_URL_ENV: &str = "ROUNDTRIP_DATABASE_URL";

impl Default for DeliverySetup {
    fn default() -> Self {
        DeliverySetup {
            store: None,
            secrets: None,
            ssrf: SsrfPolicy::default(),
            configure: Vec::new(),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            start_workers: true,
            observers: Vec::new(),
            endpoint_secrets: None,
            endpoints: None,
            counters: Vec::new(),
            resolver: Arc::new(SystemResolver),
        }
    }
}

/// Where `Publisher::publish` finds the endpoints subscribed to an event.
pub(crate) trait EndpointDirectory: Send + Sync {
    /// The enabled endpoints that want `event`; the error says why they could not be read.
    fn matching<'a>(&'a self, event: &'a str) -> BoxFuture<'a, Result<Vec<Endpoint>, String>>;
}

/// Counts the messages committed to the outbox (deduplicated ones are not counted).
pub(crate) trait CountEnqueued: Send + Sync {
    /// `count` messages of `kind` named `name` were enqueued.
    fn count_enqueued(&self, kind: MessageKind, name: &str, count: u64);
}
