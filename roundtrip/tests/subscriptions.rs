//! Webhook subscriptions, driven as a user drives them: the management router over HTTP
//! (behind an API-key guard), `Publisher::publish` fanning out to MockReceivers on loopback
//! that verify with each endpoint's own secret, rotation, auto-disable and re-enable, and
//! the bad inputs refused at registration. SQLite files in temporary directories, and the
//! local PostgreSQL for the tests in `mod postgres`.
//!
//! Host names go through an injected resolver: no test looks a name up for real, and every
//! delivery goes to 127.0.0.1. No test sleeps blindly: each polls with a deadline.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use http::request::Parts;
use roundtrip::delivery::endpoints::{EndpointStore, NewEndpoint, SqliteEndpointStore};
use roundtrip::delivery::outbox::{MessageFilter, Outbox};
use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::delivery::signing::{Secret, Verifier};
use roundtrip::delivery::sqlite::SqliteOutbox;
use roundtrip::delivery::ssrf::StaticResolver;
use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
use roundtrip::subscriptions::Subscriptions;
use roundtrip::{
    App, DeliveryWorkers, HttpError, OperationContext, OperationInput, Publisher, SendError,
    SendOptions, Webhook,
};
use roundtrip_test::{Behaviour, Delivery, MockReceiver, TempDir, TestClient, TestResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize, JsonSchema, Clone)]
struct Subscribed {
    username: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone)]
struct Cancelled {
    username: String,
    #[schemars(length(max = 20))]
    reason: String,
}

fn new_subscription() -> Webhook<Subscribed> {
    Webhook::post("new-subscription")
}

fn cancelled() -> Webhook<Cancelled> {
    Webhook::post("subscription-cancelled")
}

struct AdminKey;

impl ApiKeyConfig for AdminKey {
    const NAME: &'static str = "X-Admin-Key";
}

const KEY: &str = "admin-key-7f3a";

/// The guard of the management API: an API key in `X-Admin-Key` (401 when missing, as
/// FastAPI's `APIKeyHeader`), which must be the admin's (403 otherwise).
struct Admin;

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let key = ApiKeyHeader::<AdminKey>::from_request_parts(parts, state).await?;
        if key.key == KEY {
            Ok(Admin)
        } else {
            Err(HttpError::forbidden(
                "This key may not manage webhook endpoints",
            ))
        }
    }
}

impl OperationInput for Admin {
    fn describe(ctx: &mut OperationContext<'_>) {
        <ApiKeyHeader<AdminKey> as OperationInput>::describe(ctx);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

/// Names the tests register: one public, two that point inside the network.
fn resolver() -> StaticResolver {
    StaticResolver::new()
        .with_host("hooks.partner.example", [ip("93.184.216.34")])
        .with_host("intranet.partner.example", [ip("10.0.0.7")])
        .with_host(
            "sneaky.partner.example",
            [ip("93.184.216.34"), ip("169.254.169.254")],
        )
}

fn subscriptions() -> Subscriptions {
    Subscriptions::new().resolver(resolver())
}

/// The app: two declared webhooks, subscriptions, the management API under `/admin`, and
/// workers on a compressed schedule (`attempts` tries, 30 ms apart).
fn app(database_url: &str, subscriptions: &Subscriptions, attempts: usize) -> App {
    App::new()
        .title("Subscriptions API")
        .webhook(new_subscription())
        .webhook(cancelled())
        .database_url(database_url)
        .allow_loopback_deliveries()
        .subscriptions(subscriptions.clone())
        .include(subscriptions.router::<Admin, ()>().prefix("/admin"))
        .configure_dispatcher(move |config| {
            config
                .retry_schedule(
                    RetrySchedule::from_delays(std::iter::repeat_n(
                        ms(30),
                        attempts.saturating_sub(1),
                    ))
                    .with_jitter(0.0)
                    .with_throttle_floor(ms(20)),
                )
                .poll_interval(ms(50))
                .connect_timeout(ms(300))
                .request_timeout(ms(500))
        })
}

struct Rig {
    client: TestClient,
    publisher: Publisher,
    outbox: Arc<dyn Outbox>,
    subscriptions: Subscriptions,
    workers: Option<DeliveryWorkers>,
    _dir: Option<TempDir>,
}

impl Rig {
    /// An app on a fresh SQLite file, its workers running.
    async fn sqlite(subscriptions: Subscriptions, attempts: usize) -> Rig {
        let dir = TempDir::new();
        let mut rig = Rig::on(&dir.sqlite_url("app.db"), subscriptions, attempts).await;
        rig._dir = Some(dir);
        rig
    }

    async fn on(database_url: &str, subscriptions: Subscriptions, attempts: usize) -> Rig {
        let built = app(database_url, &subscriptions, attempts)
            .build()
            .expect("the app builds");
        let outbox = built.outbox().await.expect("the outbox opens");
        let workers = built.start_delivery().await.expect("the workers start");
        let publisher = built.publisher();
        Rig {
            client: TestClient::new(built).default_header("X-Admin-Key", KEY),
            publisher,
            outbox,
            subscriptions,
            workers,
            _dir: None,
        }
    }

    async fn stop(self) {
        if let Some(workers) = self.workers {
            workers.shutdown(Duration::from_secs(2)).await;
        }
    }

    /// Registers an endpoint over HTTP; answers the body (`endpoint` and `secret`).
    async fn register(&self, body: Value) -> Value {
        let response = self
            .client
            .post("/admin/endpoints")
            .json(&body)
            .send()
            .await;
        assert_eq!(response.status(), 201, "{}", response.text());
        response.json()
    }

    /// Registers `receiver` for `events`, and makes it verify with the endpoint's secret.
    async fn subscribe(&self, receiver: &MockReceiver, events: &[&str]) -> String {
        let created = self
            .register(json!({"url": receiver.url("/hooks").as_str(), "event_types": events}))
            .await;
        let secret = Secret::parse(created["secret"].as_str().expect("a secret")).expect("whsec");
        receiver.set_secrets(vec![secret]);
        id_of(&created["endpoint"])
    }

    async fn endpoint(&self, id: &str) -> Value {
        let response = self
            .client
            .get(&format!("/admin/endpoints/{id}"))
            .send()
            .await;
        assert_eq!(response.status(), 200, "{}", response.text());
        response.json()
    }

    /// Polls the endpoint until `done` holds, for at most 10 seconds.
    async fn wait_for_endpoint(
        &self,
        id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let endpoint = self.endpoint(id).await;
            if done(&endpoint) {
                return endpoint;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the endpoint never became {what}: {endpoint}"
            );
            tokio::time::sleep(ms(20)).await;
        }
    }
}

fn id_of(endpoint: &Value) -> String {
    endpoint["id"].as_str().expect("an id").to_owned()
}

fn rick() -> Subscribed {
    Subscribed {
        username: "rick".into(),
    }
}

fn signatures(delivery: &Delivery) -> usize {
    delivery
        .header("webhook-signature")
        .map(|s| s.split(' ').count())
        .unwrap_or(0)
}

fn detail(response: &TestResponse) -> Vec<Value> {
    response.json::<Value>()["detail"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn the_management_api_answers_only_the_guard() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let anonymous = TestClient::new(
        app(&TempDir::new().sqlite_url("x.db"), &subscriptions(), 3)
            .build()
            .expect("builds"),
    );
    let calls = [
        ("POST", "/admin/endpoints"),
        ("GET", "/admin/endpoints"),
        ("GET", "/admin/endpoints/ep_x"),
        ("PATCH", "/admin/endpoints/ep_x"),
        ("DELETE", "/admin/endpoints/ep_x"),
        ("POST", "/admin/endpoints/ep_x/rotate-secret"),
        ("POST", "/admin/endpoints/ep_x/enable"),
        ("POST", "/admin/endpoints/ep_x/disable"),
    ];
    for (method, path) in calls {
        let method: http::Method = method.parse().expect("method");
        let missing = anonymous
            .request(method.clone(), path)
            .json(&json!({}))
            .send()
            .await;
        assert_eq!(missing.status(), 401, "{method} {path}: {}", missing.text());
        assert_eq!(missing.header("www-authenticate"), Some("APIKey"));
        assert_eq!(
            missing.json::<Value>(),
            json!({"detail": "Not authenticated"})
        );
        let wrong = anonymous
            .request(method.clone(), path)
            .header("X-Admin-Key", "guess")
            .json(&json!({}))
            .send()
            .await;
        assert_eq!(wrong.status(), 403, "{method} {path}: {}", wrong.text());
    }
    // With the key, the same calls reach the handlers.
    let listed = rig.client.get("/admin/endpoints").send().await;
    assert_eq!(listed.status(), 200, "{}", listed.text());
    assert_eq!(listed.json::<Value>(), json!({"data": [], "next": null}));
    rig.stop().await;
}

#[tokio::test]
async fn endpoints_are_created_listed_read_updated_and_deleted() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let created = rig
        .register(json!({
            "url": "https://hooks.partner.example/roundtrip",
            "description": "billing",
            "event_types": ["new-subscription"],
            "metadata": {"team": "billing", "tier": 2},
        }))
        .await;
    let secret = created["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let endpoint = &created["endpoint"];
    let id = id_of(endpoint);
    assert!(id.starts_with("ep_"), "{id}");
    assert_eq!(endpoint["url"], "https://hooks.partner.example/roundtrip");
    assert_eq!(endpoint["enabled"], true);
    assert_eq!(endpoint["event_types"], json!(["new-subscription"]));
    assert_eq!(endpoint["metadata"], json!({"team": "billing", "tier": 2}));
    assert_eq!(endpoint["disabled_by"], Value::Null);

    let listed = rig.client.get("/admin/endpoints").send().await;
    assert_eq!(listed.status(), 200);
    assert!(
        !listed.text().contains(&secret),
        "listings never carry secrets"
    );
    assert!(!listed.text().contains("whsec_"));
    let page: Value = listed.json();
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    let read = rig.endpoint(&id).await;
    assert_eq!(&read, endpoint);
    assert!(read.get("secret").is_none());

    let filtered = rig
        .client
        .get("/admin/endpoints")
        .query(&[
            ("event_type", "subscription-cancelled"),
            ("enabled", "true"),
        ])
        .send()
        .await
        .json::<Value>();
    assert_eq!(filtered["data"], json!([]));

    let patched = rig
        .client
        .patch(&format!("/admin/endpoints/{id}"))
        .json(&json!({"description": "billing v2", "event_types": []}))
        .send()
        .await;
    assert_eq!(patched.status(), 200, "{}", patched.text());
    let patched: Value = patched.json();
    assert_eq!(patched["description"], "billing v2");
    assert_eq!(patched["event_types"], json!([]), "now every event");
    assert_eq!(patched["url"], endpoint["url"], "left out, left as it was");

    let deleted = rig
        .client
        .delete(&format!("/admin/endpoints/{id}"))
        .send()
        .await;
    assert_eq!(deleted.status(), 204, "{}", deleted.text());
    for (method, path) in [
        (http::Method::GET, format!("/admin/endpoints/{id}")),
        (http::Method::DELETE, format!("/admin/endpoints/{id}")),
        (http::Method::POST, format!("/admin/endpoints/{id}/enable")),
    ] {
        let gone = rig.client.request(method, &path).send().await;
        assert_eq!(gone.status(), 404, "{path}");
        let detail = gone.json::<Value>()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(detail.contains(&id), "{detail}");
    }
    rig.stop().await;
}

#[tokio::test]
async fn a_new_url_also_applies_to_the_messages_already_queued() {
    // Plenty of tries, 30 ms apart: the message keeps retrying at the old receiver until
    // the endpoint moves.
    let rig = Rig::sqlite(subscriptions(), 200).await;
    let old = MockReceiver::start().await;
    old.set_behaviour(Behaviour::Status(503));
    let created = rig
        .register(json!({"url": old.url("/hooks").as_str(), "event_types": ["new-subscription"]}))
        .await;
    let id = id_of(&created["endpoint"]);
    let secret = Secret::parse(created["secret"].as_str().expect("a secret")).expect("whsec");
    old.set_secrets(vec![secret.clone()]);
    let new = MockReceiver::start().await;
    new.set_secrets(vec![secret]);
    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    assert_eq!(ids.len(), 1);
    old.wait_for(2, Duration::from_secs(10))
        .await
        .expect("the old URL is tried and retried");

    let moved = rig
        .client
        .patch(&format!("/admin/endpoints/{id}"))
        .json(&json!({"url": new.url("/moved").as_str()}))
        .send()
        .await;
    assert_eq!(moved.status(), 200, "{}", moved.text());
    let delivered = new
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("the queued message reaches the new URL");
    assert!(delivered[0].verified, "signed with the endpoint's secret");
    assert_eq!(delivered[0].path, "/moved");
    assert_eq!(
        delivered[0].header("webhook-id"),
        Some(ids[0].as_str()),
        "the same message, not a new one"
    );
    let stored = rig.outbox.get(&ids[0]).await.expect("read").expect("kept");
    assert_eq!(
        stored.meta.url,
        new.url("/moved"),
        "its record says where it went"
    );
    rig.stop().await;
}

/// The business table beside the outbox, and a transaction that writes a row and the given
/// messages, then commits or rolls back.
async fn order_with_messages(
    db: &std::path::Path,
    order: &str,
    messages: Vec<roundtrip::delivery::message::NewMessage>,
    commit: bool,
) {
    use sqlx::Connection;
    let outbox = SqliteOutbox::open(roundtrip::delivery::sqlite::SqliteOptions::new(db))
        .await
        .expect("a second instance on the app's file");
    let mut conn = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .busy_timeout(Duration::from_secs(5)),
    )
    .await
    .expect("the app's own connection");
    sqlx::query("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")
        .execute(&mut conn)
        .await
        .expect("table");
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("INSERT INTO orders (id) VALUES (?)")
        .bind(order)
        .execute(&mut *tx)
        .await
        .expect("the business row");
    outbox
        .enqueue_in(&mut tx, messages)
        .await
        .expect("enqueued in the transaction");
    if commit {
        tx.commit().await.expect("commit");
    } else {
        tx.rollback().await.expect("rollback");
    }
}

#[tokio::test]
async fn webhooks_enqueue_inside_the_applications_own_transaction() {
    let dir = TempDir::new();
    let db = dir.path().join("app.db");
    let rig = Rig::on(&dir.sqlite_url("app.db"), subscriptions(), 3).await;
    let subscribed = MockReceiver::start().await;
    rig.subscribe(&subscribed, &["new-subscription"]).await;
    let direct = MockReceiver::start().await;

    // Rolled back: the fan-out and the message to a given URL vanish with the row.
    let fan_out = rig
        .publisher
        .messages(&new_subscription(), &rick(), SendOptions::new())
        .await
        .expect("built");
    assert_eq!(fan_out.len(), 1, "one per subscribed endpoint");
    let to_url = rig
        .publisher
        .message_to(
            &new_subscription(),
            direct.url("/direct").as_str(),
            &rick(),
            SendOptions::new(),
        )
        .await
        .expect("built");
    let mut dropped: Vec<String> = fan_out.iter().map(|m| m.id().to_string()).collect();
    dropped.push(to_url.id().to_string());
    let mut both = fan_out;
    both.push(to_url);
    order_with_messages(&db, "order-1", both, false).await;

    // Committed: both are delivered, signed.
    let mut fan_out = rig
        .publisher
        .messages(&new_subscription(), &rick(), SendOptions::new())
        .await
        .expect("built");
    let to_url = rig
        .publisher
        .message_to(
            &new_subscription(),
            direct.url("/direct").as_str(),
            &rick(),
            SendOptions::new(),
        )
        .await
        .expect("built");
    let kept = [fan_out[0].id().to_string(), to_url.id().to_string()];
    fan_out.push(to_url);
    order_with_messages(&db, "order-2", fan_out, true).await;

    let at_endpoint = subscribed
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("the committed fan-out is delivered");
    assert!(at_endpoint[0].verified);
    assert_eq!(at_endpoint[0].header("webhook-id"), Some(kept[0].as_str()));
    let at_url = direct
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("the committed message to a URL is delivered");
    assert_eq!(at_url[0].header("webhook-id"), Some(kept[1].as_str()));
    let stored: Vec<String> = rig
        .outbox
        .list(&MessageFilter::new())
        .await
        .expect("listed")
        .messages
        .iter()
        .map(|m| m.id.to_string())
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    for id in &dropped {
        assert!(!stored.contains(id), "rolled back, never stored: {id}");
    }
    assert_eq!(
        subscribed.count() + direct.count(),
        2,
        "nothing else was sent"
    );
    rig.stop().await;
}

#[tokio::test]
async fn bad_registrations_are_refused_with_fastapi_422s() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let refuse = |body: Value| {
        let client = rig.client.clone();
        async move {
            let response = client.post("/admin/endpoints").json(&body).send().await;
            assert_eq!(response.status(), 422, "{body}: {}", response.text());
            detail(&response)
        }
    };

    let malformed = refuse(json!({"url": "not a url"})).await;
    assert_eq!(malformed[0]["type"], "url_parsing");
    assert_eq!(malformed[0]["loc"], json!(["body", "url"]));

    let scheme = refuse(json!({"url": "ftp://hooks.partner.example/x"})).await;
    assert_eq!(scheme[0]["type"], "url_scheme");
    assert_eq!(scheme[0]["msg"], "URL scheme should be 'http' or 'https'");

    for blocked in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/admin",
        "https://intranet.partner.example/hooks",
        "https://sneaky.partner.example/hooks",
        "http://[::ffff:192.168.0.1]/",
    ] {
        let problems = refuse(json!({"url": blocked})).await;
        assert_eq!(problems.len(), 1, "{blocked}: {problems:?}");
        assert_eq!(problems[0]["type"], "value_error");
        assert_eq!(problems[0]["loc"], json!(["body", "url"]));
        assert_eq!(
            problems[0]["input"],
            blocked
                .parse::<url::Url>()
                .map(|u| u.to_string())
                .unwrap_or_default()
        );
        let msg = problems[0]["msg"].as_str().unwrap_or_default();
        assert!(msg.starts_with("Value error, the URL is refused"), "{msg}");
    }

    // Every problem of one request at once: a blocked host and two unknown events.
    let several = refuse(json!({
        "url": "https://intranet.partner.example/hooks",
        "event_types": ["new-subscription", "invoice.paid", "nope"],
    }))
    .await;
    let locs: Vec<&Value> = several.iter().map(|p| &p["loc"]).collect();
    assert_eq!(
        locs,
        [
            &json!(["body", "url"]),
            &json!(["body", "event_types", 1]),
            &json!(["body", "event_types", 2])
        ]
    );
    let msg = several[1]["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("`invoice.paid` is not an event this API sends")
            && msg.contains("new-subscription, subscription-cancelled"),
        "{msg}"
    );

    // The schema's own limits are enforced too.
    let empty_event =
        refuse(json!({"url": "https://hooks.partner.example/", "event_types": [""]})).await;
    assert_eq!(empty_event[0]["loc"], json!(["body", "event_types", 0]));

    // A bad secret is refused without being echoed: its documented pattern first, then
    // the key's length.
    let secret =
        refuse(json!({"url": "https://hooks.partner.example/", "secret": "whsec_c2hvcnQ="})).await;
    assert_eq!(secret[0]["loc"], json!(["body", "secret"]));
    assert_eq!(secret[0]["type"], "string_pattern_mismatch");
    assert_eq!(secret[0]["input"], "**********");
    let odd = format!("whsec_{}", "A".repeat(33));
    let secret = refuse(json!({"url": "https://hooks.partner.example/", "secret": odd})).await;
    assert_eq!(secret[0]["loc"], json!(["body", "secret"]));
    assert_eq!(secret[0]["input"], "**********");
    assert!(!format!("{secret:?}").contains(&odd), "{secret:?}");

    // A body refused as a whole (no `url`) echoes itself as FastAPI does, but never the
    // secret it holds.
    let given = Secret::generate().expect("secret").to_string();
    let whole = refuse(json!({"description": "no url", "secret": given})).await;
    assert_eq!(whole[0]["type"], "missing");
    assert_eq!(whole[0]["input"]["description"], "no url");
    assert_eq!(whole[0]["input"]["secret"], "**********");
    assert!(!format!("{whole:?}").contains(&given), "{whole:?}");
    let wrong_type = refuse(json!({"url": 7, "secret": given})).await;
    assert!(
        !format!("{wrong_type:?}").contains(&given),
        "{wrong_type:?}"
    );

    // Nothing was stored.
    let listed: Value = rig.client.get("/admin/endpoints").send().await.json();
    assert_eq!(listed["data"], json!([]));

    // The same checks guard updates, and the Rust API.
    let ok = rig
        .register(json!({"url": "https://hooks.partner.example/ok"}))
        .await;
    let id = id_of(&ok["endpoint"]);
    let moved = rig
        .client
        .patch(&format!("/admin/endpoints/{id}"))
        .json(&json!({"url": "http://10.1.2.3/"}))
        .send()
        .await;
    assert_eq!(moved.status(), 422, "{}", moved.text());
    let err = rig
        .subscriptions
        .create(
            NewEndpoint::new("https://hooks.partner.example/other".parse().expect("url"))
                .event_type("invoice.paid"),
        )
        .await
        .expect_err("unknown event");
    assert!(err.is_invalid(), "{err}");
    assert_eq!(err.errors()[0].loc.len(), 2, "event_types, index");
    rig.stop().await;
}

#[tokio::test]
async fn duplicate_endpoints_are_a_409() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let first = rig
        .register(json!({"url": "https://hooks.partner.example/a", "event_types": ["new-subscription", "subscription-cancelled"]}))
        .await;
    let again = rig
        .client
        .post("/admin/endpoints")
        .json(&json!({"url": "https://HOOKS.partner.example/a", "event_types": ["subscription-cancelled", "new-subscription"]}))
        .send()
        .await;
    assert_eq!(again.status(), 409, "{}", again.text());
    let detail = again.json::<Value>()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(detail.contains(&id_of(&first["endpoint"])), "{detail}");
    let other = rig
        .client
        .post("/admin/endpoints")
        .json(
            &json!({"url": "https://hooks.partner.example/a", "event_types": ["new-subscription"]}),
        )
        .send()
        .await;
    assert_eq!(
        other.status(),
        201,
        "other event types are another endpoint"
    );
    rig.stop().await;
}

#[tokio::test]
async fn publish_fans_out_to_every_subscribed_receiver_with_its_own_secret() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let everything = MockReceiver::start().await;
    let subscriber = MockReceiver::start().await;
    let canceller = MockReceiver::start().await;
    let all_id = rig.subscribe(&everything, &[]).await;
    let sub_id = rig.subscribe(&subscriber, &["new-subscription"]).await;
    let cancel_id = rig.subscribe(&canceller, &["subscription-cancelled"]).await;
    // A receiver that registers with a secret of its own keeps it.
    let own = MockReceiver::start().await;
    let created = rig
        .register(json!({
            "url": own.url("/own").as_str(),
            "event_types": ["new-subscription"],
            "secret": own.secret().to_string(),
        }))
        .await;
    assert_eq!(created["secret"], own.secret().to_string());
    let own_id = id_of(&created["endpoint"]);

    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    assert_eq!(ids.len(), 3, "one message per subscribed endpoint");
    for receiver in [&everything, &subscriber, &own] {
        let deliveries = receiver
            .wait_for(1, Duration::from_secs(10))
            .await
            .expect("delivered");
        assert!(deliveries[0].verified, "{:?}", deliveries[0].verify_error);
        assert_eq!(
            deliveries[0].json().expect("json"),
            json!({"username": "rick"})
        );
        assert_eq!(signatures(&deliveries[0]), 1);
    }
    let webhook_ids: std::collections::BTreeSet<String> = [&everything, &subscriber, &own]
        .iter()
        .flat_map(|r| r.unique_ids())
        .collect();
    assert_eq!(webhook_ids.len(), 3, "each endpoint gets its own message");
    assert_eq!(canceller.count(), 0, "not subscribed to new-subscription");

    // The outbox knows which endpoint each message was for.
    for (endpoint, expected) in [(&all_id, 1), (&sub_id, 1), (&own_id, 1), (&cancel_id, 0)] {
        let page = rig
            .outbox
            .list(&MessageFilter::new().endpoint_id(endpoint.as_str()))
            .await
            .expect("list");
        assert_eq!(page.messages.len(), expected, "{endpoint}");
    }

    let ids = rig
        .publisher
        .publish(
            &cancelled(),
            &Cancelled {
                username: "rick".into(),
                reason: "moved".into(),
            },
        )
        .await
        .expect("published");
    assert_eq!(ids.len(), 2);
    everything
        .wait_for(2, Duration::from_secs(10))
        .await
        .expect("every event");
    let got = canceller
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("its event");
    assert!(got[0].verified);
    assert_eq!(
        subscriber.count(),
        1,
        "not subscribed to subscription-cancelled"
    );
    rig.stop().await;
}

#[tokio::test]
async fn publishing_checks_the_payload_and_answers_no_ids_when_nobody_listens() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("nobody subscribed is fine");
    assert!(ids.is_empty());
    let bad = rig
        .publisher
        .publish(
            &cancelled(),
            &Cancelled {
                username: "rick".into(),
                reason: "x".repeat(21),
            },
        )
        .await
        .expect_err("breaks its schema");
    assert!(matches!(bad, SendError::InvalidPayload { .. }), "{bad}");
    let undeclared: Webhook<Subscribed> = Webhook::post("never-declared");
    let err = rig
        .publisher
        .publish(&undeclared, &rick())
        .await
        .expect_err("undeclared");
    assert!(matches!(err, SendError::NotAttached { .. }), "{err}");

    // An app without subscriptions says what is missing.
    let dir = TempDir::new();
    let plain = App::new()
        .webhook(new_subscription())
        .database_url(dir.sqlite_url("plain.db"))
        .build()
        .expect("builds");
    let err = plain
        .publisher()
        .publish(&new_subscription(), &rick())
        .await
        .expect_err("no subscriptions");
    assert!(err.to_string().contains("App::subscriptions"), "{err}");
    rig.stop().await;
}

#[tokio::test]
async fn a_fan_out_is_stored_in_one_outbox_write() {
    let dir = TempDir::new();
    let path = dir.path().join("given.db");
    let outbox = SqliteOutbox::open_path(&path).await.expect("outbox");
    let store = SqliteEndpointStore::open_path(&path)
        .await
        .expect("endpoint store");
    let subscriptions = subscriptions().store(store);
    let built = App::new()
        .webhook(new_subscription())
        .outbox(Arc::new(outbox.clone()))
        .allow_loopback_deliveries()
        .subscriptions(subscriptions.clone())
        .build()
        .expect("builds");
    let receivers = [
        MockReceiver::start().await,
        MockReceiver::start().await,
        MockReceiver::start().await,
    ];
    for (n, receiver) in receivers.iter().enumerate() {
        subscriptions
            .create(NewEndpoint::new(receiver.url(&format!("/r{n}"))))
            .await
            .expect("registered from Rust");
    }
    let before = outbox.stats();
    let ids = built
        .publisher()
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let after = outbox.stats();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        after.jobs - before.jobs,
        1,
        "one enqueue for the whole fan-out"
    );
    assert_eq!(after.transactions - before.transactions, 1);
    let page = outbox.list(&MessageFilter::new()).await.expect("list");
    assert_eq!(page.messages.len(), 3);
    assert!(page.messages.iter().all(|m| m.endpoint_id.is_some()));
}

#[tokio::test]
async fn during_a_rotation_both_signatures_are_sent() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let receiver = MockReceiver::start().await;
    let created = rig
        .register(json!({"url": receiver.url("/hooks").as_str()}))
        .await;
    let id = id_of(&created["endpoint"]);
    let old = Secret::parse(created["secret"].as_str().expect("secret")).expect("whsec");

    let rotated = rig
        .client
        .post(&format!("/admin/endpoints/{id}/rotate-secret"))
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(rotated.status(), 200, "{}", rotated.text());
    let rotated: Value = rotated.json();
    let new = Secret::parse(rotated["secret"].as_str().expect("new secret")).expect("whsec");
    assert_ne!(new.to_string(), old.to_string());
    assert!(rotated["previous_expires_at"].is_string());
    assert_eq!(
        rotated["endpoint"]["rotation_ends_at"],
        rotated["previous_expires_at"]
    );
    let read = rig.endpoint(&id).await;
    assert!(
        !read.to_string().contains("whsec_"),
        "reads never carry secrets"
    );

    // A receiver that still knows only the old secret accepts the message...
    receiver.set_secrets(vec![old.clone()]);
    rig.publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let delivery = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered")[0]
        .clone();
    assert_eq!(
        signatures(&delivery),
        2,
        "both secrets sign during the grace"
    );
    assert!(delivery.verified, "{:?}", delivery.verify_error);
    // ...and so does one that already knows only the new secret.
    for secret in [&old, &new] {
        Verifier::new(secret.clone())
            .verify(&delivery.headers, &delivery.body)
            .expect("each secret verifies the same delivery");
    }

    // Ending the grace at once leaves only the new secret.
    let now = rig
        .client
        .post(&format!("/admin/endpoints/{id}/rotate-secret"))
        .json(&json!({"grace_seconds": 0}))
        .send()
        .await;
    assert_eq!(now.status(), 200, "{}", now.text());
    let newest =
        Secret::parse(now.json::<Value>()["secret"].as_str().expect("secret")).expect("whsec");
    receiver.clear();
    receiver.set_secrets(vec![newest.clone()]);
    rig.publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let delivery = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered")[0]
        .clone();
    assert!(delivery.verified);
    assert_eq!(
        signatures(&delivery),
        2,
        "the first secret's 24-hour grace still runs beside the newest"
    );
    assert!(
        Verifier::new(new.clone())
            .verify(&delivery.headers, &delivery.body)
            .is_err(),
        "the second secret stopped at once"
    );

    // A secret given for the rotation is used, and a bad one refused without echo.
    let bad = rig
        .client
        .post(&format!("/admin/endpoints/{id}/rotate-secret"))
        .json(&json!({"secret": "not base64 !"}))
        .send()
        .await;
    assert_eq!(bad.status(), 422, "{}", bad.text());
    assert!(!bad.text().contains("not base64 !"));
    let mine = Secret::generate().expect("secret");
    let given = rig
        .client
        .post(&format!("/admin/endpoints/{id}/rotate-secret"))
        .json(&json!({"secret": mine.to_string()}))
        .send()
        .await;
    assert_eq!(given.json::<Value>()["secret"], mine.to_string());
    rig.stop().await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_until_one_call_enables_it() {
    let rig = Rig::sqlite(subscriptions(), 5).await;
    let receiver = MockReceiver::start().await;
    let id = rig.subscribe(&receiver, &["new-subscription"]).await;
    receiver.set_behaviour(Behaviour::Status(410));
    rig.publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let disabled = rig
        .wait_for_endpoint(&id, "disabled", |e| e["enabled"] == false)
        .await;
    assert_eq!(disabled["disabled_by"], "gone");
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("410")
    );
    assert!(disabled["disabled_at"].is_string());
    assert_eq!(receiver.count(), 1, "410 is not retried");
    let listed: Value = rig
        .client
        .get("/admin/endpoints")
        .query(&[("enabled", "false")])
        .send()
        .await
        .json();
    assert_eq!(listed["data"][0]["id"], id.as_str());

    // Disabled endpoints get nothing.
    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    assert!(ids.is_empty());

    receiver.set_behaviour(Behaviour::Succeed);
    let enabled = rig
        .client
        .post(&format!("/admin/endpoints/{id}/enable"))
        .send()
        .await;
    assert_eq!(enabled.status(), 200, "{}", enabled.text());
    let enabled: Value = enabled.json();
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled_by"], Value::Null);
    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    assert_eq!(ids.len(), 1);
    let deliveries = receiver
        .wait_for(2, Duration::from_secs(10))
        .await
        .expect("delivered again");
    assert!(deliveries[1].verified);
    rig.wait_for_endpoint(&id, "healthy", |e| e["last_success_at"].is_string())
        .await;

    // Disabling by hand works the same way.
    let off = rig
        .client
        .post(&format!("/admin/endpoints/{id}/disable"))
        .send()
        .await
        .json::<Value>();
    assert_eq!(off["disabled_by"], "manual");
    rig.stop().await;
}

#[tokio::test]
async fn an_endpoint_that_fails_for_the_whole_window_is_disabled() {
    let rig = Rig::sqlite(subscriptions().failure_window(ms(300)), 60).await;
    let receiver = MockReceiver::start().await;
    receiver.set_behaviour(Behaviour::Status(503));
    let id = rig.subscribe(&receiver, &[]).await;
    rig.publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let failing = rig
        .wait_for_endpoint(&id, "failing", |e| e["failing_since"].is_string())
        .await;
    assert_eq!(
        failing["enabled"], true,
        "failures within the window only count"
    );
    let disabled = rig
        .wait_for_endpoint(&id, "disabled", |e| e["enabled"] == false)
        .await;
    assert_eq!(disabled["disabled_by"], "failing");
    assert!(receiver.count() >= 2, "it was retried before");

    // One call from Rust enables it again; the queued message then arrives.
    receiver.set_behaviour(Behaviour::Succeed);
    let enabled = rig.subscriptions.enable(&id).await.expect("enabled");
    assert!(enabled.is_enabled() && enabled.failing_since.is_none());
    let healthy = rig
        .wait_for_endpoint(&id, "delivered to", |e| e["last_success_at"].is_string())
        .await;
    assert_eq!(healthy["failing_since"], Value::Null);
    let delivered = receiver
        .wait_until("a verified delivery", Duration::from_secs(10), |d| {
            d.iter().any(|d| d.verified && d.answered == Some(200))
        })
        .await
        .expect("delivered");
    assert_eq!(
        delivered
            .iter()
            .filter_map(Delivery::webhook_id)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1,
        "the same message, retried"
    );
    rig.stop().await;
}

#[tokio::test]
async fn the_management_api_is_documented_with_the_guard_as_its_security() {
    let dir = TempDir::new();
    let router = app(&dir.sqlite_url("doc.db"), &subscriptions(), 3)
        .into_router()
        .expect("builds");
    let doc: Value = TestClient::new(router)
        .get("/openapi.json")
        .send()
        .await
        .json();
    roundtrip_test::oas::assert_valid_openapi_31(&doc);
    let paths = &doc["paths"];
    let operations = [
        (
            "/admin/endpoints",
            "post",
            "create_endpoint_admin_endpoints_post",
        ),
        (
            "/admin/endpoints",
            "get",
            "list_endpoints_admin_endpoints_get",
        ),
        (
            "/admin/endpoints/{endpoint_id}",
            "get",
            "get_endpoint_admin_endpoints__endpoint_id__get",
        ),
        (
            "/admin/endpoints/{endpoint_id}",
            "patch",
            "update_endpoint_admin_endpoints__endpoint_id__patch",
        ),
        (
            "/admin/endpoints/{endpoint_id}",
            "delete",
            "delete_endpoint_admin_endpoints__endpoint_id__delete",
        ),
        (
            "/admin/endpoints/{endpoint_id}/rotate-secret",
            "post",
            "rotate_endpoint_secret_admin_endpoints__endpoint_id__rotate_secret_post",
        ),
        (
            "/admin/endpoints/{endpoint_id}/enable",
            "post",
            "enable_endpoint_admin_endpoints__endpoint_id__enable_post",
        ),
        (
            "/admin/endpoints/{endpoint_id}/disable",
            "post",
            "disable_endpoint_admin_endpoints__endpoint_id__disable_post",
        ),
    ];
    for (path, method, operation_id) in operations {
        let op = &paths[path][method];
        assert_eq!(op["operationId"], operation_id, "{method} {path}");
        assert_eq!(
            op["security"],
            json!([{"APIKeyHeader": []}]),
            "{method} {path}"
        );
        assert_eq!(op["tags"], json!(["webhook endpoints"]));
        assert!(op["responses"]["422"].is_object(), "{method} {path}");
    }
    let create = &paths["/admin/endpoints"]["post"];
    assert!(create["responses"]["201"].is_object());
    assert!(create["responses"]["409"].is_object());
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/WebhookEndpointIn"
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["WebhookEndpointIn"]["required"], json!(["url"]));
    assert_eq!(
        schemas["WebhookEndpointIn"]["properties"]["url"]["format"],
        "uri"
    );
    assert!(
        schemas["WebhookEndpoint"]["properties"]
            .get("secret")
            .is_none()
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["APIKeyHeader"],
        json!({"type": "apiKey", "in": "header", "name": "X-Admin-Key"})
    );
    // The declared webhooks are documented as before.
    assert!(doc["webhooks"]["new-subscription"]["post"].is_object());
}

mod postgres {
    //! The same facade on PostgreSQL: endpoints in the outbox's schema (`?schema=`).

    use super::*;
    use roundtrip_test::postgres::TestSchema;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publish_fans_out_and_rotation_signs_twice_on_postgres() {
        let schema = TestSchema::new().await;
        let rig = Rig::on(&schema.database_url(), subscriptions(), 3).await;
        let a = MockReceiver::start().await;
        let b = MockReceiver::start().await;
        let c = MockReceiver::start().await;
        rig.subscribe(&a, &["new-subscription"]).await;
        let b_id = rig.subscribe(&b, &[]).await;
        rig.subscribe(&c, &["subscription-cancelled"]).await;
        let duplicate = rig
            .client
            .post("/admin/endpoints")
            .json(&json!({"url": a.url("/hooks").as_str(), "event_types": ["new-subscription"]}))
            .send()
            .await;
        assert_eq!(duplicate.status(), 409, "{}", duplicate.text());

        let ids = rig
            .publisher
            .publish(&new_subscription(), &rick())
            .await
            .expect("published");
        assert_eq!(ids.len(), 2);
        for receiver in [&a, &b] {
            let got = receiver
                .wait_for(1, Duration::from_secs(10))
                .await
                .expect("delivered");
            assert!(got[0].verified, "{:?}", got[0].verify_error);
        }
        assert_eq!(c.count(), 0);

        let old = b.secret();
        let rotated: Value = rig
            .client
            .post(&format!("/admin/endpoints/{b_id}/rotate-secret"))
            .json(&json!({}))
            .send()
            .await
            .json();
        let new = Secret::parse(rotated["secret"].as_str().expect("secret")).expect("whsec");
        b.clear();
        b.set_secrets(vec![new.clone()]);
        rig.publisher
            .publish(&new_subscription(), &rick())
            .await
            .expect("published");
        let got = b
            .wait_for(1, Duration::from_secs(10))
            .await
            .expect("delivered");
        assert_eq!(signatures(&got[0]), 2);
        assert!(got[0].verified);
        Verifier::new(old)
            .verify(&got[0].headers, &got[0].body)
            .expect("the old secret still verifies");
        rig.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_410_disables_and_enable_restores_on_postgres() {
        let schema = TestSchema::new().await;
        let rig = Rig::on(&schema.database_url(), subscriptions(), 3).await;
        let receiver = MockReceiver::start().await;
        let id = rig.subscribe(&receiver, &[]).await;
        receiver.set_behaviour(Behaviour::Status(410));
        rig.publisher
            .publish(&new_subscription(), &rick())
            .await
            .expect("published");
        let disabled = rig
            .wait_for_endpoint(&id, "disabled", |e| e["enabled"] == false)
            .await;
        assert_eq!(disabled["disabled_by"], "gone");
        let store: Arc<dyn EndpointStore> = rig.subscriptions.endpoints().await.expect("store");
        assert!(
            store
                .matching("new-subscription")
                .await
                .expect("matching")
                .is_empty()
        );
        let enabled: Value = rig
            .client
            .post(&format!("/admin/endpoints/{id}/enable"))
            .send()
            .await
            .json();
        assert_eq!(enabled["enabled"], true);
        rig.stop().await;
    }
}
