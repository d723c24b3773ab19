//! How a built app delivers its callbacks and webhooks: where the outbox lives, which
//! secrets sign, which addresses may be reached, and the workers that send.
//!
//! The outbox is opened on first use (the first `send`, or when `serve` starts the
//! workers), so an app that never sends anything never touches a database.

use std::sync::{Arc, Mutex};

use roundtrip_delivery::Database;
use roundtrip_delivery::message::MessageMeta;
use roundtrip_delivery::outbox::Outbox;
use roundtrip_delivery::signing::Secret;
use roundtrip_delivery::sqlite::SqliteOptions;
use roundtrip_delivery::ssrf::{Resolve, SsrfPolicy};
use roundtrip_delivery::worker::{
    AttemptObserver, AttemptReport, Dispatcher, DispatcherConfig, ResponseCheck, SecretSource,
    StaticSecrets,
};
use tokio::sync::OnceCell;

use super::config::{
    CountEnqueued, DATABASE_URL_ENV, DeliverySetup, EndpointDirectory, SIGNING_SECRET_ENV, Store,
    WORKER_ID_ENV,
};
use super::contracts::Contracts;
use super::error::DeliverySetupError;
use super::secrets::{RoutedSecrets, env_secret};

impl DeliverySetup {
    /// The delivery runtime, built once the routes are walked and the response contracts
    /// of every callback and webhook are known.
    pub(crate) fn prepare(self, contracts: Contracts) -> PreparedDelivery {
        PreparedDelivery {
            inner: Arc::new(Inner {
                outbox: OutboxHandle::new(self.store.clone()),
                setup: self,
                contracts: Arc::new(contracts),
                fallback_secret: Mutex::new(None),
            }),
        }
    }
}

struct Inner {
    setup: DeliverySetup,
    outbox: OutboxHandle,
    contracts: Arc<Contracts>,
    fallback_secret: Mutex<Option<Secret>>,
}

/// The app's outbox, opened (and migrated) on first use: held by the delivery and by the
/// webhook subscriptions (which point an endpoint's queued messages at its new URL). It
/// holds nothing but where the outbox lives, so the subscriptions, which the delivery
/// holds, can hold it without a cycle.
#[derive(Clone)]
pub(crate) struct OutboxHandle(Arc<OutboxCell>);

struct OutboxCell {
    store: Option<Store>,
    outbox: OnceCell<Arc<dyn Outbox>>,
}

impl OutboxHandle {
    fn new(store: Option<Store>) -> Self {
        OutboxHandle(Arc::new(OutboxCell {
            store,
            outbox: OnceCell::new(),
        }))
    }

    /// The outbox, opened (and migrated) on first use.
    pub(crate) async fn get(&self) -> Result<Arc<dyn Outbox>, DeliverySetupError> {
        if let Some(outbox) = self.0.outbox.get() {
            return Ok(outbox.clone());
        }
        // Boxed: the store's opening future is not `Send` for every lifetime the handler's
        // future would need, so it is erased here once.
        let open: futures_util::future::BoxFuture<
            'static,
            Result<Arc<dyn Outbox>, DeliverySetupError>,
        > = Box::pin(open_store(self.0.store.clone(), false));
        self.0.outbox.get_or_try_init(|| open).await.cloned()
    }

    /// The outbox, only if it already exists (see [`PreparedDelivery::existing_outbox`]).
    async fn existing(&self) -> Result<Arc<dyn Outbox>, DeliverySetupError> {
        if let Some(outbox) = self.0.outbox.get() {
            return Ok(outbox.clone());
        }
        open_store(self.0.store.clone(), true).await
    }
}

/// What request handlers and the server need to enqueue and deliver messages.
#[derive(Clone)]
pub(crate) struct PreparedDelivery {
    inner: Arc<Inner>,
}

/// The running delivery workers of an app.
#[derive(Debug)]
pub struct DeliveryWorkers {
    dispatcher: Dispatcher,
}

impl DeliveryWorkers {
    /// Stops claiming, lets in-flight attempts finish until `grace` runs out, then hands
    /// back what is left so another worker (or the next start) sends it.
    pub async fn shutdown(self, grace: std::time::Duration) {
        let report = self.dispatcher.shutdown(grace).await;
        tracing::info!(?report, "delivery workers stopped");
    }

    /// The dispatcher, for its counters.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }
}

impl PreparedDelivery {
    pub(crate) fn ssrf(&self) -> &SsrfPolicy {
        &self.inner.setup.ssrf
    }

    /// The resolver host names are checked through.
    pub(crate) fn resolver(&self) -> &dyn Resolve {
        &*self.inner.setup.resolver
    }

    /// What counts this app's enqueues (metrics, OpenTelemetry), if anything does.
    pub(crate) fn counters(&self) -> &[Arc<dyn CountEnqueued>] {
        &self.inner.setup.counters
    }

    /// Where the endpoints subscribed to an event are found, if the app has subscriptions.
    pub(crate) fn endpoints(&self) -> Option<&dyn EndpointDirectory> {
        self.inner.setup.endpoints.as_deref()
    }

    /// Where the outbox lives, with the environment's defaults applied: the database the
    /// webhook endpoint store opens beside it.
    pub(crate) fn database(&self) -> Resolved {
        resolve_store(self.inner.setup.store.clone())
    }

    pub(crate) fn max_payload_bytes(&self) -> usize {
        self.inner.setup.max_payload_bytes
    }

    /// The owner name that lets a restarted process take back at once what its crashed
    /// run held: `ROUNDTRIP_WORKER_ID` when set, and for an embedded SQLite outbox (one
    /// process per file) a name derived from the host. A shared PostgreSQL outbox keeps
    /// the dispatcher's unique default, so its replicas never take each other's leases;
    /// give each replica a stable `ROUNDTRIP_WORKER_ID` to get the same at restart.
    fn stable_worker_id(&self) -> Option<String> {
        if let Ok(id) = std::env::var(WORKER_ID_ENV)
            && !id.is_empty()
        {
            return Some(id);
        }
        self.sqlite_path().map(|_| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
            format!("{host}-sqlite")
        })
    }

    /// The SQLite file the outbox lives in, when it is an embedded one.
    pub(crate) fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        match resolve_store(self.inner.setup.store.clone()) {
            Resolved::Database(database) => database.sqlite_path().map(|p| p.to_path_buf()),
            _ => None,
        }
    }

    /// The outbox's handle, for the webhook subscriptions.
    pub(crate) fn outbox_handle(&self) -> OutboxHandle {
        self.inner.outbox.clone()
    }

    /// The outbox, opened (and migrated) on first use.
    pub(crate) async fn outbox(&self) -> Result<Arc<dyn Outbox>, DeliverySetupError> {
        self.inner.outbox.get().await
    }

    /// The outbox, only if it already exists: for the CLI, which inspects an app's outbox
    /// and must not create an empty one where a mistyped URL points. (A SQLite file's
    /// existence is checked by the caller, which can name the path.)
    pub(crate) async fn existing_outbox(&self) -> Result<Arc<dyn Outbox>, DeliverySetupError> {
        self.inner.outbox.existing().await
    }

    /// Checks the configuration read from the environment (the signing secret), so that a
    /// mistake stops the start instead of being replaced by a default.
    pub(crate) fn check_configuration(&self) -> Result<(), DeliverySetupError> {
        if self.inner.setup.secrets.is_some() {
            return Ok(());
        }
        env_secret().map(|_| ())
    }

    fn secrets(&self) -> Result<Arc<dyn SecretSource>, DeliverySetupError> {
        if let Some(source) = &self.inner.setup.secrets {
            return Ok(source.clone());
        }
        if let Some(secret) = env_secret()? {
            return Ok(Arc::new(StaticSecrets::new(secret)));
        }
        let mut fallback = match self.inner.fallback_secret.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let secret = match fallback.as_ref() {
            Some(secret) => secret.clone(),
            None => match Secret::generate() {
                Ok(secret) => {
                    tracing::warn!(
                        "no signing secret is configured (App::signing_secret or {SIGNING_SECRET_ENV}): messages are signed with a random secret that receivers cannot know"
                    );
                    *fallback = Some(secret.clone());
                    secret
                }
                Err(err) => {
                    return Err(DeliverySetupError::start_workers(format!(
                        "cannot generate a signing secret: {err}"
                    ))
                    .caused_by(err));
                }
            },
        };
        Ok(Arc::new(StaticSecrets::new(secret)))
    }

    /// Starts the workers, unless the app sends nothing or they were turned off.
    pub(crate) async fn start_workers(
        &self,
        sends_anything: bool,
    ) -> Result<Option<DeliveryWorkers>, DeliverySetupError> {
        let setup = &self.inner.setup;
        if !setup.start_workers || (!sends_anything && setup.store.is_none()) {
            return Ok(None);
        }
        let outbox = self.outbox().await?;
        let secrets = RoutedSecrets {
            app: self.secrets()?,
            endpoints: setup.endpoint_secrets.clone(),
        };
        let mut config = DispatcherConfig::new(secrets)
            .ssrf_policy(setup.ssrf.clone())
            .resolver(SharedResolver(setup.resolver.clone()))
            .response_check(SharedContracts(self.inner.contracts.clone()));
        if !setup.observers.is_empty() {
            config = config.observer(Observers(setup.observers.clone()));
        }
        if let Some(id) = self.stable_worker_id() {
            config = config.worker_id(id);
        }
        for configure in &setup.configure {
            config = configure(config);
        }
        let dispatcher = Dispatcher::start(outbox, config)
            .await
            .map_err(|err| DeliverySetupError::start_workers(err.to_string()).caused_by(err))?;
        Ok(Some(DeliveryWorkers { dispatcher }))
    }
}

/// Several observers behind the dispatcher's one.
struct Observers(Vec<Arc<dyn AttemptObserver>>);

impl AttemptObserver for Observers {
    fn started(&self, message: &MessageMeta) {
        for observer in &self.0 {
            observer.started(message);
        }
    }

    fn finished(&self, report: &AttemptReport<'_>) {
        for observer in &self.0 {
            observer.finished(report);
        }
    }
}

/// The app's resolver, shared between `send` and the workers.
struct SharedResolver(Arc<dyn Resolve>);

impl Resolve for SharedResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> futures_util::future::BoxFuture<'a, std::io::Result<Vec<std::net::IpAddr>>> {
        self.0.resolve(host)
    }
}

/// The app's response contracts, shared by every start of its workers.
struct SharedContracts(Arc<Contracts>);

impl ResponseCheck for SharedContracts {
    fn check(&self, message: &MessageMeta, status: u16, body: &[u8]) -> Option<String> {
        self.0.check(message, status, body)
    }
}

/// Where the outbox lives, once the settings and the environment are read.
pub(crate) enum Resolved {
    /// A database, read from the settings or a URL.
    Database(Database),
    /// An outbox the user opened.
    Given(Arc<dyn Outbox>),
    /// A URL that names no database roundtrip stores in.
    Unsupported(String),
}

/// The store the settings name, with the environment's defaults applied; a URL is read by
/// the delivery crate, which chooses the backend from its scheme.
fn resolve_store(store: Option<Store>) -> Resolved {
    let store = match store {
        Some(store) => store,
        None => match std::env::var(DATABASE_URL_ENV) {
            Ok(url) if !url.is_empty() => Store::Url(url),
            _ => Store::Sqlite(SqliteOptions::from_env()),
        },
    };
    match store {
        Store::Sqlite(options) => Resolved::Database(Database::sqlite(options)),
        Store::Url(url) => match Database::from_url(&url) {
            Ok(database) => Resolved::Database(database),
            Err(_) => Resolved::Unsupported(url),
        },
        Store::Given(outbox) => Resolved::Given(outbox),
    }
}

async fn open_store(
    store: Option<Store>,
    must_exist: bool,
) -> Result<Arc<dyn Outbox>, DeliverySetupError> {
    match resolve_store(store) {
        Resolved::Given(outbox) => Ok(outbox),
        Resolved::Database(database) => {
            let kind = match database.sqlite_path() {
                Some(_) => "SQLite",
                None => "PostgreSQL",
            };
            database
                .clone()
                .must_exist(must_exist)
                .open_outbox()
                .await
                .map_err(|err| {
                    DeliverySetupError::open_store(format!(
                        "cannot open the {kind} outbox {database}: {err}"
                    ))
                    .caused_by(err)
                })
        }
        Resolved::Unsupported(url) => Err(DeliverySetupError::configuration(format!(
            "unsupported outbox database URL (expected sqlite:// or postgres://): {}",
            roundtrip_delivery::redact(&url)
        ))),
    }
}
