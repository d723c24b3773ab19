//! What only the PostgreSQL store does: several processes on one queue, wake-ups across
//! them, concurrent starts, and losing the database midway.
//!
//! Everything both stores do is proved once for both, in the conformance suite
//! (`tests/conformance`).
//!
//! Each test gets a fresh schema (or database) on the server named by
//! `ROUNDTRIP_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`). An
//! unreachable server fails the tests with directions; they are never skipped. Nothing
//! waits for a guessed time: every wait polls with a deadline.

#[path = "conformance/harness.rs"]
mod harness;
#[path = "conformance/pg.rs"]
mod pg;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use roundtrip_delivery::message::{MessageId, MessageStatus, NewMessage};
use roundtrip_delivery::outbox::{MessageFilter, Outbox};
use roundtrip_delivery::postgres::{PgOptions, PgOutbox};
use roundtrip_delivery::retry::RetrySchedule;
use roundtrip_delivery::ssrf::SsrfPolicy;
use roundtrip_delivery::worker::{Dispatcher, DispatcherConfig, StaticSecrets};
use roundtrip_test::MockReceiver;
use sqlx::{AssertSqlSafe, Connection};
use url::Url;

use pg::{TestDatabase, TestSchema, admin, terminate_sessions};

const DEADLINE: Duration = Duration::from_secs(15);

fn msg(name: &str) -> NewMessage {
    let url = Url::parse("http://127.0.0.1:9/hook").expect("url");
    NewMessage::callback(name, url, r#"{"paid":true}"#)
}

/// Options for a store in `schema`, its sessions named after the schema.
fn options(url: &str, schema: &str, app: &str) -> PgOptions {
    PgOptions::new(url)
        .schema(schema)
        .application_name(app)
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
}

async fn connect(options: PgOptions) -> PgOutbox {
    match PgOutbox::connect_with(options).await {
        Ok(outbox) => outbox,
        Err(e) => panic!(
            "could not open the PostgreSQL store: {e}\nIf the server is unreachable, start it on \
             127.0.0.1:5432 or set {}=postgres://user:password@host:port/database. These tests \
             are never skipped.",
            pg::URL_ENV
        ),
    }
}

/// Polls `probe` until it answers `Some`, failing after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    harness::eventually_within(DEADLINE, what, probe).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_enqueued_in_one_process_wakes_another_through_notify() {
    let schema = TestSchema::new().await;
    let a = connect(options(&schema.url, &schema.name, &schema.name)).await;
    let b = connect(options(&schema.url, &schema.name, &schema.name)).await;
    assert!(
        a.listener_status().listening,
        "connect returns once the listener is listening"
    );
    let mut wakeup = a.subscribe();
    wakeup.mark_seen();
    let before = a.listener_status().notifications;
    let started = Instant::now();
    let id = b.enqueue(vec![msg("cross")]).await.expect("enqueue in B")[0]
        .id
        .clone();
    tokio::time::timeout(Duration::from_secs(5), wakeup.wait())
        .await
        .expect("A is woken by B's NOTIFY, not by a poll");
    let woke_after = started.elapsed();
    assert!(a.listener_status().notifications > before);
    let claimed = a
        .claim("a", 10, Duration::from_secs(60))
        .await
        .expect("claim in A");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].meta.id, id);
    eprintln!("enqueue in B to wake-up in A: {woke_after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wakeup_of_a_transactional_enqueue_is_sent_on_commit_only() {
    let schema = TestSchema::new().await;
    let outbox = connect(options(&schema.url, &schema.name, &schema.name)).await;
    let start = outbox.listener_status().notifications;

    let mut app = admin(None).await;
    let mut tx = app.begin().await.expect("begin");
    outbox
        .enqueue_in(&mut tx, vec![msg("rolled-back")])
        .await
        .expect("enqueue_in");
    tx.rollback().await.expect("rollback");

    let mut tx = app.begin().await.expect("begin");
    let kept = outbox
        .enqueue_in(&mut tx, vec![msg("committed"), msg("committed")])
        .await
        .expect("enqueue_in");
    tx.commit().await.expect("commit");

    // Notifications arrive in commit order: once the commit's has come, a rolled-back one
    // would have come before it.
    eventually("the commit's notification", || {
        let n = outbox.listener_status().notifications;
        async move { (n > start).then_some(()) }
    })
    .await;
    assert_eq!(
        outbox.listener_status().notifications,
        start + 1,
        "one notification for the commit, none for the rollback"
    );
    let page = outbox.list(&MessageFilter::new()).await.expect("list");
    assert_eq!(page.messages.len(), 2);
    assert!(page.messages.iter().all(|m| m.name == "committed"));
    assert!(kept.iter().all(|e| !e.deduplicated));

    // Outside a transaction, enqueue_in commits on its own.
    let mut plain = admin(None).await;
    outbox
        .enqueue_in(&mut plain, vec![msg("alone")])
        .await
        .expect("enqueue_in without a transaction");
    let page = outbox
        .list(&MessageFilter::new().name("alone"))
        .await
        .expect("list");
    assert_eq!(page.messages.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_create_the_schema_and_migrate_once() {
    let schema = TestSchema::new().await;
    let mut starts = Vec::new();
    for _ in 0..6 {
        let options = options(&schema.url, &schema.name, &schema.name);
        starts.push(tokio::spawn(PgOutbox::connect_with(options)));
    }
    let mut stores = Vec::new();
    for s in starts {
        stores.push(
            s.await
                .expect("join")
                .expect("every concurrent start succeeds"),
        );
    }
    let mut conn = admin(None).await;
    let applied: Vec<(i64, bool)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT version, success FROM \"{}\"._roundtrip_migrations ORDER BY version",
        schema.name
    )))
    .fetch_all(&mut conn)
    .await
    .expect("the migrations table is in the store's schema");
    assert_eq!(
        applied,
        vec![(1, true), (2, true)],
        "each migration applied once"
    );
    // Every start works on the one schema.
    let id = stores[0].enqueue(vec![msg("a")]).await.expect("enqueue")[0]
        .id
        .clone();
    let seen = stores[5].get(&id).await.expect("get");
    assert!(seen.is_some());
    // A later start finds everything in place.
    drop(stores);
    let again = connect(options(&schema.url, &schema.name, &schema.name)).await;
    assert!(again.get(&id).await.expect("get").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_and_an_unreachable_server_are_clear_errors() {
    let err = PgOutbox::connect_with(PgOptions::new(pg::base_url()).schema("1bad-name"))
        .await
        .expect_err("bad schema");
    assert!(err.is_invalid(), "{err:?}");
    assert!(err.to_string().contains("schema name"), "{err}");

    let err = PgOutbox::connect("not a url").await.expect_err("bad url");
    assert!(err.is_invalid(), "{err:?}");

    // Port 1 on loopback: nothing listens there.
    let started = Instant::now();
    let err = PgOutbox::connect_with(
        PgOptions::new("postgres://postgres:secret@127.0.0.1:1/test")
            .acquire_timeout(Duration::from_millis(500)),
    )
    .await
    .expect_err("nothing listens on port 1");
    assert!(err.is_unavailable(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(
        !text.contains("secret"),
        "the password is not shown: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the acquire timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_are_refused_before_anything_is_stored() {
    let schema = TestSchema::new().await;
    let outbox = connect(options(&schema.url, &schema.name, &schema.name)).await;
    let bad_name = msg("a\0b");
    let err = outbox
        .enqueue(vec![msg("ok"), bad_name])
        .await
        .expect_err("NUL in a name");
    assert!(err.is_invalid(), "{err:?}");
    assert!(err.to_string().contains("NUL"), "{err}");
    let bad_meta = msg("ok").metadata("k", serde_json::json!(["x\u{0}y"]));
    assert!(
        outbox
            .enqueue(vec![bad_meta])
            .await
            .expect_err("NUL")
            .is_invalid()
    );
    let page = outbox.list(&MessageFilter::new()).await.expect("list");
    assert!(page.messages.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_losing_the_database_midway() {
    let db = TestDatabase::new().await;
    let app = db.name.clone();
    let outbox = connect(options(&db.url, "roundtrip", &app)).await;
    let other = connect(options(&db.url, "roundtrip", "rt-other-process")).await;
    outbox.enqueue(vec![msg("before")]).await.expect("enqueue");
    let first_pid = outbox.listener_status().backend_pid.expect("listening");

    // 1. Every backend of the store is terminated (pool and listener), the server stays up:
    //    the next calls reconnect and work.
    let mut admin_conn = admin(None).await;
    let killed = terminate_sessions(&mut admin_conn, &app).await;
    assert!(
        killed >= 2,
        "the pool's and the listener's backends: {killed}"
    );
    let r = outbox.enqueue(vec![msg("after-terminate")]).await;
    assert!(r.is_ok(), "the pool replaces dead connections: {r:?}");
    let claimed = outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("claim after the terminate");
    assert_eq!(claimed.len(), 2);
    let pid = eventually("the listener reconnects", || {
        let s = outbox.listener_status();
        async move {
            (s.listening && s.connects >= 2)
                .then_some(s.backend_pid)
                .flatten()
        }
    })
    .await;
    assert_ne!(pid, first_pid, "a new listening connection");

    // 2. An outage: the database refuses connections and the store's backends are killed.
    db.allow_connections(false).await;
    terminate_sessions(&mut admin_conn, &app).await;
    let err = outbox
        .enqueue(vec![msg("during-outage")])
        .await
        .expect_err("an enqueue during the outage must fail, not pretend");
    assert!(err.is_unavailable(), "{err:?}");
    let err = outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect_err("claim during the outage");
    assert!(err.is_unavailable(), "{err:?}");
    eventually("the listener notices", || {
        let s = outbox.listener_status();
        async move { (!s.listening).then_some(()) }
    })
    .await;

    // 3. The database comes back: enqueues work again, and so do wake-ups across processes.
    db.allow_connections(true).await;
    let back = eventually("enqueue works again", || {
        let outbox = &outbox;
        async move { outbox.enqueue(vec![msg("after-outage")]).await.ok() }
    })
    .await;
    assert!(!back[0].deduplicated);
    eventually("the listener reconnects after the outage", || {
        let s = outbox.listener_status();
        async move { (s.listening && s.connects >= 3).then_some(()) }
    })
    .await;
    let mut wakeup = outbox.subscribe();
    wakeup.mark_seen();
    other
        .enqueue(vec![msg("from-the-other-process")])
        .await
        .expect("the other process enqueues");
    tokio::time::timeout(Duration::from_secs(5), wakeup.wait())
        .await
        .expect("wake-ups resume after the outage");

    let names: BTreeSet<String> = outbox
        .list(&MessageFilter::new())
        .await
        .expect("list")
        .messages
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(
        !names.contains("during-outage"),
        "the failed enqueue stored nothing"
    );
    assert!(names.contains("after-outage") && names.contains("from-the-other-process"));
    drop(other);
    outbox.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_database_deliver_every_message_once() {
    const MESSAGES: usize = 300;
    let schema = TestSchema::new().await;
    let receiver = MockReceiver::start().await;
    let secret = receiver.secret();
    let stores: Vec<Arc<PgOutbox>> = vec![
        Arc::new(connect(options(&schema.url, &schema.name, &schema.name)).await),
        Arc::new(connect(options(&schema.url, &schema.name, &schema.name)).await),
    ];
    let mut dispatchers = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let config = DispatcherConfig::new(StaticSecrets::new(secret.clone()))
            .worker_id(format!("process-{i}"))
            .ssrf_policy(SsrfPolicy::default().allow_loopback(true))
            .retry_schedule(RetrySchedule::from_delays([Duration::from_millis(20); 3]))
            .max_in_flight(16)
            .per_destination(16)
            .poll_interval(Duration::from_millis(100))
            .connect_timeout(Duration::from_secs(1))
            .request_timeout(Duration::from_secs(2))
            .lease(Duration::from_secs(10));
        dispatchers.push(
            Dispatcher::start(store.clone(), config)
                .await
                .expect("start dispatcher"),
        );
    }
    let mut sent = BTreeSet::new();
    for chunk in 0..(MESSAGES / 50) {
        let batch: Vec<NewMessage> = (0..50)
            .map(|i| {
                NewMessage::callback(
                    "spread",
                    receiver.url("/hook"),
                    format!(r#"{{"n":{}}}"#, chunk * 50 + i),
                )
            })
            .collect();
        // Alternate the enqueuing process.
        let out = stores[chunk % 2].enqueue(batch).await.expect("enqueue");
        sent.extend(out.into_iter().map(|e| e.id.as_str().to_owned()));
    }
    let deliveries = receiver
        .wait_for_unique(MESSAGES, Duration::from_secs(30))
        .await
        .expect("every message is delivered");
    let ids: Vec<&str> = deliveries.iter().filter_map(|d| d.webhook_id()).collect();
    let unique: BTreeSet<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(unique, sent);
    assert_eq!(ids.len(), MESSAGES, "none delivered twice");
    assert!(deliveries.iter().all(|d| d.verified));

    // The receiver sees a request before its dispatcher has counted the answer: wait
    // (with a deadline) until every success is counted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dispatchers.iter().map(|d| d.stats().succeeded).sum::<u64>() < MESSAGES as u64
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut per_process = Vec::new();
    for d in dispatchers {
        per_process.push(d.stats().succeeded);
        d.shutdown(Duration::from_secs(2)).await;
    }
    assert_eq!(per_process.iter().sum::<u64>(), MESSAGES as u64);
    assert!(
        per_process.iter().all(|&n| n > 0),
        "work spread across the processes: {per_process:?}"
    );
    let done = stores[0]
        .list(
            &MessageFilter::new()
                .status(MessageStatus::Succeeded)
                .limit(1000),
        )
        .await
        .expect("list");
    assert_eq!(done.messages.len(), MESSAGES);
    let one: MessageId = done.messages[0].id.clone();
    assert_eq!(stores[1].attempts(&one).await.expect("attempts").len(), 1);
}
