//! The webhook endpoint stores: the same behaviours, proved against SQLite (a temporary file
//! shared with an outbox) and PostgreSQL (a fresh schema shared with an outbox, on the server
//! named by `ROUNDTRIP_TEST_DATABASE_URL`, by default `postgres://postgres@127.0.0.1:5432/test`;
//! never skipped).
//!
//! The delivery cases run the real workers against a MockReceiver on loopback with a
//! compressed retry schedule and failure window, and poll with deadlines.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use roundtrip_delivery::endpoints::{
    DisableKind, EndpointFilter, EndpointStore, EndpointUpdate, HealthSignal, NewEndpoint,
    PgEndpointOptions, PgEndpointStore, Rotation, SqliteEndpointOptions, SqliteEndpointStore,
};
use roundtrip_delivery::message::{MessageStatus, NewMessage};
use roundtrip_delivery::outbox::{MessageFilter, Outbox};
use roundtrip_delivery::postgres::{PgOptions, PgOutbox};
use roundtrip_delivery::retry::RetrySchedule;
use roundtrip_delivery::signing::Secret;
use roundtrip_delivery::sqlite::SqliteOutbox;
use roundtrip_delivery::ssrf::SsrfPolicy;
use roundtrip_delivery::worker::{AttemptObserver, Dispatcher, DispatcherConfig, SecretSource};
use roundtrip_test::postgres::TestSchema;
use roundtrip_test::{Behaviour, MockReceiver, TempDir};
use url::Url;

/// A store under test, with the outbox of the same database and what keeps them alive.
struct Kit {
    store: Arc<dyn EndpointStore>,
    secrets: Arc<dyn Fn() -> Box<dyn SecretSource> + Send + Sync>,
    observer: Arc<dyn Fn() -> Box<dyn AttemptObserver> + Send + Sync>,
    outbox: Arc<dyn Outbox>,
    _dir: Option<TempDir>,
    _schema: Option<TestSchema>,
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn open(backend: Backend, window: Duration) -> Kit {
    match backend {
        Backend::Sqlite => {
            let dir = TempDir::new();
            let path = dir.path().join("app.db");
            let outbox = SqliteOutbox::open_path(&path).await.expect("outbox opens");
            let store =
                SqliteEndpointStore::open(SqliteEndpointOptions::new(&path).failure_window(window))
                    .await
                    .expect("endpoint store opens");
            let (s, o) = (store.clone(), store.clone());
            Kit {
                store: Arc::new(store),
                secrets: Arc::new(move || Box::new(s.clone())),
                observer: Arc::new(move || Box::new(o.clone())),
                outbox: Arc::new(outbox),
                _dir: Some(dir),
                _schema: None,
            }
        }
        Backend::Postgres => {
            let schema = TestSchema::new().await;
            let outbox = PgOutbox::connect_with(
                PgOptions::new(&schema.url)
                    .schema(&schema.name)
                    .application_name(&schema.name),
            )
            .await
            .expect("outbox connects");
            let store = PgEndpointStore::connect_with(
                PgEndpointOptions::new(&schema.url)
                    .schema(&schema.name)
                    .application_name(&schema.name)
                    .failure_window(window),
            )
            .await
            .expect("endpoint store connects");
            let (s, o) = (store.clone(), store.clone());
            Kit {
                store: Arc::new(store),
                secrets: Arc::new(move || Box::new(s.clone())),
                observer: Arc::new(move || Box::new(o.clone())),
                outbox: Arc::new(outbox),
                _dir: None,
                _schema: Some(schema),
            }
        }
    }
}

/// The secrets that sign for endpoint `id` now, as text.
async fn signing_secrets(kit: &Kit, id: &str) -> Vec<String> {
    kit.store
        .signing_secrets(id)
        .await
        .expect("secrets")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("test URL")
}

const DAY: Duration = Duration::from_secs(86_400);

macro_rules! both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await
                }
            )*
        }
    };
}

both_stores!(
    creation_generates_a_secret_and_reads_back,
    a_given_secret_is_kept,
    duplicate_endpoints_are_refused,
    bad_endpoints_are_refused_before_anything_is_written,
    listings_filter_and_page,
    updates_change_what_they_name,
    deleted_endpoints_are_gone_with_their_secrets,
    rotation_keeps_the_previous_secret_for_the_grace,
    disabled_endpoints_get_nothing_until_enabled,
    matching_follows_the_event_types,
    health_410_disables_at_once,
    health_a_failing_window_disables_and_a_success_ends_the_run,
    tables_live_beside_the_outbox_with_their_own_migrations,
    workers_sign_with_the_endpoint_secrets_and_disable_on_410,
    workers_disable_an_endpoint_that_fails_for_the_window,
);

async fn creation_generates_a_secret_and_reads_back(backend: Backend) {
    let kit = open(backend, DAY).await;
    let mut metadata = serde_json::Map::new();
    metadata.insert("team".into(), "billing".into());
    let created = kit
        .store
        .create(
            NewEndpoint::new(url("https://hooks.example.com/a"))
                .description("billing")
                .event_types(["b.event", "a.event", "b.event"])
                .metadata(metadata.clone()),
        )
        .await
        .expect("created");
    let endpoint = &created.endpoint;
    assert!(endpoint.id.starts_with("ep_"), "{}", endpoint.id);
    assert!(created.secret.to_string().starts_with("whsec_"));
    assert_eq!(format!("{:?}", created.secret), "Secret(REDACTED)");
    assert_eq!(endpoint.event_types, ["a.event", "b.event"]);
    assert_eq!(endpoint.description, "billing");
    assert_eq!(endpoint.metadata, metadata);
    assert!(endpoint.is_enabled());
    assert!(endpoint.failing_since.is_none() && endpoint.last_success_at.is_none());
    assert!(endpoint.rotation_ends_at.is_none());
    let read = kit.store.get(&endpoint.id).await.expect("read back");
    assert_eq!(&read, endpoint);
    let secrets = kit
        .store
        .signing_secrets(&endpoint.id)
        .await
        .expect("secrets");
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].to_string(), created.secret.to_string());
    let missing = kit
        .store
        .get("ep_nope")
        .await
        .expect_err("no such endpoint");
    assert!(missing.is_not_found(), "{missing}");
}

async fn a_given_secret_is_kept(backend: Backend) {
    let kit = open(backend, DAY).await;
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
    let created = kit
        .store
        .create(NewEndpoint::new(url("https://hooks.example.com/a")).secret(secret.clone()))
        .await
        .expect("created");
    assert_eq!(created.secret.to_string(), secret.to_string());
    let secrets = kit
        .store
        .signing_secrets(&created.endpoint.id)
        .await
        .expect("secrets");
    assert_eq!(secrets[0].to_string(), secret.to_string());
}

async fn duplicate_endpoints_are_refused(backend: Backend) {
    let kit = open(backend, DAY).await;
    let first = kit
        .store
        .create(NewEndpoint::new(url("https://hooks.example.com/a")).event_types(["x", "y"]))
        .await
        .expect("first");
    let again = kit
        .store
        .create(NewEndpoint::new(url("https://hooks.example.com/a")).event_types(["y", "x"]))
        .await
        .expect_err("same URL, same event types");
    assert!(again.is_conflict(), "{again}");
    assert!(again.to_string().contains(&first.endpoint.id), "{again}");
    // Another set of event types, or every event, is another endpoint.
    let other = kit
        .store
        .create(NewEndpoint::new(url("https://hooks.example.com/a")).event_type("x"))
        .await
        .expect("other event types");
    kit.store
        .create(NewEndpoint::new(url("https://hooks.example.com/a")))
        .await
        .expect("every event");
    // Updating into a duplicate is refused too, and changes nothing.
    let clash = kit
        .store
        .update(
            &other.endpoint.id,
            EndpointUpdate::new().event_types(["x", "y"]),
        )
        .await
        .expect_err("would duplicate the first");
    assert!(clash.is_conflict(), "{clash}");
    let unchanged = kit.store.get(&other.endpoint.id).await.expect("read");
    assert_eq!(unchanged.event_types, ["x"]);
}

async fn bad_endpoints_are_refused_before_anything_is_written(backend: Backend) {
    let kit = open(backend, DAY).await;
    for bad in [
        NewEndpoint::new(url("ftp://hooks.example.com/a")),
        NewEndpoint::new(url("https://hooks.example.com/a")).event_type(""),
        NewEndpoint::new(url("https://hooks.example.com/a")).event_type("*"),
        NewEndpoint::new(url("https://hooks.example.com/a")).event_type("x".repeat(300)),
    ] {
        let err = kit.store.create(bad).await.expect_err("refused");
        assert!(err.is_invalid(), "{err}");
    }
    let page = kit.store.list(&EndpointFilter::new()).await.expect("list");
    assert!(page.endpoints.is_empty());
}

async fn listings_filter_and_page(backend: Backend) {
    let kit = open(backend, DAY).await;
    let all = kit
        .store
        .create(NewEndpoint::new(url("https://a.example.com/")))
        .await
        .expect("all events");
    let paid = kit
        .store
        .create(NewEndpoint::new(url("https://b.example.com/")).event_type("invoice.paid"))
        .await
        .expect("paid");
    let voided = kit
        .store
        .create(NewEndpoint::new(url("https://c.example.com/")).event_type("invoice.voided"))
        .await
        .expect("voided");
    kit.store
        .disable(&voided.endpoint.id, "maintenance")
        .await
        .expect("disabled");
    let ids = |page: roundtrip_delivery::endpoints::EndpointPage| -> Vec<String> {
        page.endpoints.into_iter().map(|e| e.id).collect()
    };
    let everything = ids(kit.store.list(&EndpointFilter::new()).await.expect("list"));
    assert_eq!(
        everything,
        [
            all.endpoint.id.clone(),
            paid.endpoint.id.clone(),
            voided.endpoint.id.clone()
        ]
    );
    let enabled = ids(kit
        .store
        .list(&EndpointFilter::new().enabled(true))
        .await
        .expect("list"));
    assert_eq!(enabled, [all.endpoint.id.clone(), paid.endpoint.id.clone()]);
    let disabled = ids(kit
        .store
        .list(&EndpointFilter::new().enabled(false))
        .await
        .expect("list"));
    assert_eq!(disabled, [voided.endpoint.id.as_str()]);
    let for_paid = ids(kit
        .store
        .list(&EndpointFilter::new().event_type("invoice.paid"))
        .await
        .expect("list"));
    assert_eq!(
        for_paid,
        [all.endpoint.id.clone(), paid.endpoint.id.clone()]
    );
    let first_page = kit
        .store
        .list(&EndpointFilter::new().limit(2))
        .await
        .expect("page 1");
    assert_eq!(first_page.endpoints.len(), 2);
    let cursor = first_page.next.clone().expect("a next page");
    let second_page = kit
        .store
        .list(&EndpointFilter::new().limit(2).after(cursor))
        .await
        .expect("page 2");
    assert_eq!(ids(second_page.clone()), [voided.endpoint.id.as_str()]);
    assert!(second_page.next.is_none());
    let none = kit
        .store
        .list(
            &EndpointFilter::new()
                .event_type("nobody.wants.this")
                .enabled(false),
        )
        .await
        .expect("list");
    assert!(none.endpoints.is_empty());
}

async fn updates_change_what_they_name(backend: Backend) {
    let kit = open(backend, DAY).await;
    let created = kit
        .store
        .create(
            NewEndpoint::new(url("https://a.example.com/"))
                .description("old")
                .event_type("x"),
        )
        .await
        .expect("created");
    let id = created.endpoint.id.clone();
    let mut metadata = serde_json::Map::new();
    metadata.insert("tier".into(), 2.into());
    let updated = kit
        .store
        .update(
            &id,
            EndpointUpdate::new()
                .url(url("https://b.example.com/hook"))
                .event_types(["y"])
                .metadata(metadata.clone()),
        )
        .await
        .expect("updated");
    assert_eq!(updated.url.as_str(), "https://b.example.com/hook");
    assert_eq!(updated.description, "old", "what is not named stays");
    assert_eq!(updated.event_types, ["y"]);
    assert_eq!(updated.metadata, metadata);
    assert!(updated.updated_at >= created.endpoint.updated_at);
    let matching = kit.store.matching("y").await.expect("matching");
    assert_eq!(matching.len(), 1);
    assert!(kit.store.matching("x").await.expect("matching").is_empty());
    let bad = kit
        .store
        .update(&id, EndpointUpdate::new().url(url("file:///etc/passwd")))
        .await
        .expect_err("not http");
    assert!(bad.is_invalid(), "{bad}");
    let missing = kit
        .store
        .update("ep_missing", EndpointUpdate::new().description("x"))
        .await
        .expect_err("missing");
    assert!(missing.is_not_found(), "{missing}");
}

async fn deleted_endpoints_are_gone_with_their_secrets(backend: Backend) {
    let kit = open(backend, DAY).await;
    let created = kit
        .store
        .create(NewEndpoint::new(url("https://a.example.com/")))
        .await
        .expect("created");
    let id = created.endpoint.id;
    kit.store.delete(&id).await.expect("deleted");
    assert!(kit.store.get(&id).await.expect_err("gone").is_not_found());
    assert!(
        kit.store
            .signing_secrets(&id)
            .await
            .expect_err("no secrets")
            .is_not_found()
    );
    assert!(
        kit.store
            .matching("any")
            .await
            .expect("matching")
            .is_empty()
    );
    assert!(
        kit.store
            .delete(&id)
            .await
            .expect_err("twice")
            .is_not_found()
    );
    // The same URL can be registered again.
    kit.store
        .create(NewEndpoint::new(url("https://a.example.com/")))
        .await
        .expect("registered again");
}

async fn rotation_keeps_the_previous_secret_for_the_grace(backend: Backend) {
    let kit = open(backend, DAY).await;
    let created = kit
        .store
        .create(NewEndpoint::new(url("https://a.example.com/")))
        .await
        .expect("created");
    let id = created.endpoint.id.clone();
    let before = SystemTime::now();
    let rotated = kit
        .store
        .rotate_secret(&id, Rotation::new())
        .await
        .expect("rotated");
    assert_ne!(rotated.secret.to_string(), created.secret.to_string());
    let grace_end = rotated.previous_expires_at;
    assert!(grace_end >= before + Duration::from_secs(23 * 3600));
    assert!(rotated.endpoint.rotation_ends_at.is_some());
    let secrets = signing_secrets(&kit, &id).await;
    assert_eq!(
        secrets,
        [rotated.secret.to_string(), created.secret.to_string()],
        "the new secret first, the previous one while its grace lasts"
    );
    // A rotation with no grace retires every previous secret at once.
    let given = Secret::generate().expect("secret");
    let last = kit
        .store
        .rotate_secret(
            &id,
            Rotation::new().secret(given.clone()).grace(Duration::ZERO),
        )
        .await
        .expect("rotated again");
    assert_eq!(last.secret.to_string(), given.to_string());
    let secrets = signing_secrets(&kit, &id).await;
    assert_eq!(
        secrets,
        [given.to_string(), created.secret.to_string()],
        "the first secret's grace still runs; the second one's ended at once"
    );
    let missing = kit
        .store
        .rotate_secret("ep_missing", Rotation::new())
        .await
        .expect_err("missing");
    assert!(missing.is_not_found());
}

async fn disabled_endpoints_get_nothing_until_enabled(backend: Backend) {
    let kit = open(backend, DAY).await;
    let created = kit
        .store
        .create(NewEndpoint::new(url("https://a.example.com/")))
        .await
        .expect("created");
    let id = created.endpoint.id;
    let disabled = kit
        .store
        .disable(&id, "the receiver is being migrated")
        .await
        .expect("disabled");
    let state = disabled.disabled.clone().expect("disabled state");
    assert_eq!(state.kind, DisableKind::Manual);
    assert_eq!(state.reason, "the receiver is being migrated");
    assert!(
        kit.store
            .matching("any")
            .await
            .expect("matching")
            .is_empty()
    );
    let refused = kit
        .store
        .signing_secrets(&id)
        .await
        .expect_err("disabled endpoints do not sign");
    assert!(refused.is_disabled(), "{refused}");
    assert!(refused.to_string().contains("being migrated"), "{refused}");
    // Disabling again keeps the first reason.
    let again = kit.store.disable(&id, "other").await.expect("idempotent");
    assert_eq!(again.disabled, disabled.disabled);
    let enabled = kit.store.enable(&id).await.expect("enabled");
    assert!(enabled.is_enabled());
    assert_eq!(kit.store.matching("any").await.expect("matching").len(), 1);
    kit.store.signing_secrets(&id).await.expect("signs again");
    assert!(
        kit.store
            .enable("ep_missing")
            .await
            .expect_err("missing")
            .is_not_found()
    );
}

async fn matching_follows_the_event_types(backend: Backend) {
    let kit = open(backend, DAY).await;
    let all = kit
        .store
        .create(NewEndpoint::new(url("https://a.example.com/")))
        .await
        .expect("all");
    let one = kit
        .store
        .create(NewEndpoint::new(url("https://b.example.com/")).event_types(["x", "y"]))
        .await
        .expect("x and y");
    let ids = |found: Vec<roundtrip_delivery::endpoints::Endpoint>| -> Vec<String> {
        found.into_iter().map(|e| e.id).collect()
    };
    assert_eq!(
        ids(kit.store.matching("x").await.expect("x")),
        [all.endpoint.id.clone(), one.endpoint.id.clone()]
    );
    assert_eq!(
        ids(kit.store.matching("z").await.expect("z")),
        [all.endpoint.id.as_str()]
    );
    assert!(one.endpoint.wants("y") && !one.endpoint.wants("z") && all.endpoint.wants("z"));
}

async fn health_410_disables_at_once(backend: Backend) {
    let kit = open(backend, DAY).await;
    let created = kit
        .store
        .create(NewEndpoint::new(url("https://a.example.com/")))
        .await
        .expect("created");
    let id = created.endpoint.id;
    let update = kit
        .store
        .record_health(&id, HealthSignal::Gone, SystemTime::now())
        .await
        .expect("recorded");
    let disabled = update.disabled.expect("410 disables");
    let state = disabled.disabled.expect("disabled state");
    assert_eq!(state.kind, DisableKind::Gone);
    assert!(state.reason.contains("410"), "{}", state.reason);
    // A second 410 (another queued message) changes nothing.
    let again = kit
        .store
        .record_health(&id, HealthSignal::Gone, SystemTime::now())
        .await
        .expect("recorded");
    assert!(again.disabled.is_none());
    let enabled = kit.store.enable(&id).await.expect("one call re-enables");
    assert!(enabled.is_enabled() && enabled.failing_since.is_none());
}

async fn health_a_failing_window_disables_and_a_success_ends_the_run(backend: Backend) {
    let window = Duration::from_secs(3600);
    let kit = open(backend, window).await;
    let created = kit
        .store
        .create(NewEndpoint::new(url("https://a.example.com/")))
        .await
        .expect("created");
    let id = created.endpoint.id;
    let start = SystemTime::now();
    let first = kit
        .store
        .record_health(&id, HealthSignal::Failed, start)
        .await
        .expect("first failure");
    assert!(first.disabled.is_none());
    let since = first.failing_since.expect("a run of failures began");
    let within = kit
        .store
        .record_health(&id, HealthSignal::Failed, start + window / 2)
        .await
        .expect("within the window");
    assert!(within.disabled.is_none());
    assert_eq!(within.failing_since, Some(since), "the run keeps its start");
    // A success ends the run.
    let ok = kit
        .store
        .record_health(&id, HealthSignal::Delivered, start + window / 2)
        .await
        .expect("success");
    assert!(ok.failing_since.is_none());
    let read = kit.store.get(&id).await.expect("read");
    assert!(read.failing_since.is_none() && read.last_success_at.is_some());
    // A new run, longer than the window, disables.
    let later = start + window;
    kit.store
        .record_health(&id, HealthSignal::Failed, later)
        .await
        .expect("a new run");
    let past = kit
        .store
        .record_health(&id, HealthSignal::Failed, later + window)
        .await
        .expect("past the window");
    let disabled = past.disabled.expect("disabled");
    let state = disabled.disabled.expect("state");
    assert_eq!(state.kind, DisableKind::Failing);
    assert!(state.reason.contains("1 hour"), "{}", state.reason);
    let enabled = kit.store.enable(&id).await.expect("enabled");
    assert!(enabled.failing_since.is_none(), "enabling starts afresh");
}

async fn tables_live_beside_the_outbox_with_their_own_migrations(backend: Backend) {
    let kit = open(backend, DAY).await;
    let created = kit
        .store
        .create(NewEndpoint::new(url("https://a.example.com/")))
        .await
        .expect("created");
    // The outbox of the same database still works, and both sets of migrations are recorded
    // apart: opening the stores again (as a restart does) migrates nothing twice.
    kit.outbox
        .enqueue(vec![
            NewMessage::webhook("e", url("https://a.example.com/"), "{}")
                .endpoint_id(&created.endpoint.id),
        ])
        .await
        .expect("outbox enqueue");
    match backend {
        Backend::Sqlite => {
            let dir = kit._dir.as_ref().expect("dir");
            let path = dir.path().join("app.db");
            let again = SqliteEndpointStore::open_path(&path)
                .await
                .expect("reopens");
            assert_eq!(
                again.get(&created.endpoint.id).await.expect("kept").id,
                created.endpoint.id
            );
            SqliteOutbox::open_path(&path)
                .await
                .expect("outbox reopens");
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .read_only(true);
            conn = conn.disable_statement_logging();
            let mut conn = sqlx::ConnectOptions::connect(&conn).await.expect("connect");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '_roundtrip_%' ORDER BY name",
            )
            .fetch_all(&mut conn)
            .await
            .expect("tables");
            assert_eq!(
                tables,
                ["_roundtrip_endpoint_migrations", "_roundtrip_migrations"]
            );
        }
        Backend::Postgres => {
            let schema = kit._schema.as_ref().expect("schema");
            let again = PgEndpointStore::connect_with(
                PgEndpointOptions::new(&schema.url)
                    .schema(&schema.name)
                    .application_name(&schema.name),
            )
            .await
            .expect("reconnects");
            assert_eq!(
                again.get(&created.endpoint.id).await.expect("kept").id,
                created.endpoint.id
            );
            let mut conn = roundtrip_test::postgres::admin(None).await;
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 \
                 AND table_name LIKE '\\_roundtrip\\_%' ORDER BY table_name",
            )
            .bind(&schema.name)
            .fetch_all(&mut conn)
            .await
            .expect("tables");
            assert_eq!(
                tables,
                ["_roundtrip_endpoint_migrations", "_roundtrip_migrations"]
            );
        }
    }
}

use sqlx::ConnectOptions as _;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Workers that sign with the store's secrets and report to its observer, with a compressed
/// schedule (`attempts` tries, `delay` apart).
async fn workers(kit: &Kit, attempts: usize, delay: Duration) -> Dispatcher {
    struct Secrets(Box<dyn SecretSource>);
    impl SecretSource for Secrets {
        fn secrets<'a>(
            &'a self,
            message: &'a roundtrip_delivery::message::MessageMeta,
        ) -> futures_util::future::BoxFuture<
            'a,
            Result<Vec<Secret>, roundtrip_delivery::worker::SecretSourceError>,
        > {
            self.0.secrets(message)
        }
    }
    struct Observer(Box<dyn AttemptObserver>);
    impl AttemptObserver for Observer {
        fn finished(&self, report: &roundtrip_delivery::worker::AttemptReport<'_>) {
            self.0.finished(report)
        }
    }
    let config = DispatcherConfig::new(Secrets((kit.secrets)()))
        .observer(Observer((kit.observer)()))
        .ssrf_policy(SsrfPolicy::default().allow_loopback(true))
        .retry_schedule(
            RetrySchedule::from_delays(std::iter::repeat_n(delay, attempts.saturating_sub(1)))
                .with_jitter(0.0)
                .with_throttle_floor(ms(20)),
        )
        .poll_interval(ms(50))
        .connect_timeout(ms(300))
        .request_timeout(ms(500))
        .lease(Duration::from_secs(3));
    Dispatcher::start(kit.outbox.clone(), config)
        .await
        .expect("workers start")
}

/// Polls the endpoint until `done` holds, for at most 10 seconds.
async fn wait_for_endpoint(
    kit: &Kit,
    id: &str,
    what: &str,
    done: impl Fn(&roundtrip_delivery::endpoints::Endpoint) -> bool,
) -> roundtrip_delivery::endpoints::Endpoint {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let endpoint = kit.store.get(id).await.expect("read");
        if done(&endpoint) {
            return endpoint;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the endpoint never became {what}: {endpoint:?}"
        );
        tokio::time::sleep(ms(20)).await;
    }
}

async fn workers_sign_with_the_endpoint_secrets_and_disable_on_410(backend: Backend) {
    let kit = open(backend, DAY).await;
    let receiver = MockReceiver::start().await;
    let created = kit
        .store
        .create(NewEndpoint::new(receiver.url("/hook")).secret(receiver.secret()))
        .await
        .expect("created");
    let id = created.endpoint.id.clone();
    let dispatcher = workers(&kit, 3, ms(50)).await;
    kit.outbox
        .enqueue(vec![
            NewMessage::webhook("ping", receiver.url("/hook"), r#"{"n":1}"#).endpoint_id(&id),
        ])
        .await
        .expect("enqueued");
    let deliveries = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    assert!(deliveries[0].verified, "signed with the endpoint's secret");
    wait_for_endpoint(&kit, &id, "marked healthy", |e| e.last_success_at.is_some()).await;

    receiver.set_behaviour(Behaviour::Status(410));
    kit.outbox
        .enqueue(vec![
            NewMessage::webhook("ping", receiver.url("/hook"), r#"{"n":2}"#).endpoint_id(&id),
        ])
        .await
        .expect("enqueued");
    let endpoint = wait_for_endpoint(&kit, &id, "disabled", |e| !e.is_enabled()).await;
    assert_eq!(endpoint.disabled.map(|d| d.kind), Some(DisableKind::Gone));
    assert_eq!(receiver.count(), 2, "410 stops the retries at once");
    dispatcher.shutdown(Duration::from_secs(2)).await;
}

async fn workers_disable_an_endpoint_that_fails_for_the_window(backend: Backend) {
    let kit = open(backend, ms(300)).await;
    let receiver = MockReceiver::start().await;
    receiver.set_behaviour(Behaviour::Status(503));
    let created = kit
        .store
        .create(NewEndpoint::new(receiver.url("/hook")).secret(receiver.secret()))
        .await
        .expect("created");
    let id = created.endpoint.id.clone();
    let dispatcher = workers(&kit, 40, ms(40)).await;
    let stored = kit
        .outbox
        .enqueue(vec![
            NewMessage::webhook("ping", receiver.url("/hook"), "{}").endpoint_id(&id),
        ])
        .await
        .expect("enqueued");
    let endpoint = wait_for_endpoint(&kit, &id, "disabled", |e| !e.is_enabled()).await;
    let state = endpoint.disabled.expect("state");
    assert_eq!(state.kind, DisableKind::Failing);
    assert!(endpoint.failing_since.is_some());
    // The queued message is no longer signed: its attempts fail on our side, not the
    // receiver's, until the endpoint is enabled again and it arrives.
    let before = receiver.count();
    receiver.set_behaviour(Behaviour::Succeed);
    kit.store.enable(&id).await.expect("enabled");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let message = kit
            .outbox
            .get(&stored[0].id)
            .await
            .expect("read")
            .expect("message");
        if message.meta.status == MessageStatus::Succeeded {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message was never delivered after re-enabling: {:?}",
            message.meta
        );
        tokio::time::sleep(ms(20)).await;
    }
    assert!(receiver.count() > before);
    // Enabling clears the failing streak at once; the success is recorded by the
    // dispatcher's observer a moment after the message completes: wait for both.
    let healthy = wait_for_endpoint(&kit, &id, "healthy", |e| {
        e.failing_since.is_none() && e.last_success_at.is_some()
    })
    .await;
    assert!(healthy.is_enabled());
    let listed = kit
        .outbox
        .list(&MessageFilter::new().endpoint_id(&id))
        .await
        .expect("list");
    assert_eq!(listed.messages.len(), 1);
    dispatcher.shutdown(Duration::from_secs(2)).await;
}
