//! The deliveries API, driven over HTTP as an operator drives it: behind an API-key guard,
//! against a real SQLite outbox with its workers running, delivering to MockReceivers on
//! loopback. Messages fail and are found with the filters, shown with their attempts,
//! retried while they back off, replayed by id and by time; endpoints show their health,
//! rotate their secret and get test events; the catalogue lists the document's events.
//! Every filter and id is checked with FastAPI's 422.
//!
//! No test sleeps blindly: each polls with a deadline.

use std::time::Duration;

use axum::extract::FromRequestParts;
use http::request::Parts;
use roundtrip::deliveries::Deliveries;
use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::delivery::signing::Secret;
use roundtrip::extract::{Json, Query};
use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
use roundtrip::subscriptions::Subscriptions;
use roundtrip::{
    App, Callback, DeliveryWorkers, HttpError, Notify, OperationContext, OperationInput, Publisher,
    SendError, Webhook, post,
};
use roundtrip_test::{Behaviour, MockReceiver, TempDir, TestClient, TestResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize, JsonSchema, Clone)]
struct InvoicePaid {
    /// The invoice.
    invoice_id: String,
    #[schemars(range(min = 1))]
    amount_cents: u64,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone)]
struct Refunded {
    invoice_id: String,
}

fn invoice_paid() -> Webhook<InvoicePaid> {
    Webhook::post("invoice.paid")
}

fn refunded() -> Webhook<Refunded> {
    Webhook::post("invoice.refunded")
}

#[derive(Serialize, Deserialize, JsonSchema, Clone)]
struct Receipt {
    receipt_id: String,
}

fn receipt_ready() -> Callback<Receipt> {
    Callback::post("receipt_ready", "{$request.query.callback_url}")
}

#[derive(Deserialize, JsonSchema)]
struct Target {
    /// Read by the callback's URL expression, not by the handler.
    #[allow(dead_code)]
    callback_url: String,
}

async fn receipt(
    Query(_t): Query<Target>,
    notify: Notify<Receipt>,
) -> Result<Json<Value>, SendError> {
    let id = notify
        .send(Receipt {
            receipt_id: "r1".into(),
        })
        .await?;
    Ok(Json(json!({"message": id.to_string()})))
}

struct AdminKey;

impl ApiKeyConfig for AdminKey {
    const NAME: &'static str = "X-Admin-Key";
}

const KEY: &str = "admin-key-5c1e";

/// The operators' guard: the admin key in `X-Admin-Key` (401 when missing, 403 when wrong).
struct Admin;

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let key = ApiKeyHeader::<AdminKey>::from_request_parts(parts, state).await?;
        if key.key == KEY {
            Ok(Admin)
        } else {
            Err(HttpError::forbidden("This key may not operate deliveries"))
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

/// The app: two webhooks, one callback, subscriptions and the deliveries API under
/// `/admin`, the console at `/admin/console`, workers retrying after `delays`.
fn app(database_url: &str, delays: Vec<Duration>) -> App {
    let subscriptions = Subscriptions::new();
    let deliveries = Deliveries::new().console("/console");
    App::new()
        .title("Billing")
        .webhook(invoice_paid())
        .webhook(refunded())
        .route("/receipts", post(receipt).callback(receipt_ready()))
        .database_url(database_url)
        .allow_loopback_deliveries()
        .subscriptions(subscriptions.clone())
        .include(subscriptions.router::<Admin, ()>().prefix("/admin"))
        .deliveries(deliveries.clone())
        .include(deliveries.router::<Admin, ()>().prefix("/admin"))
        .configure_dispatcher(move |config| {
            config
                .retry_schedule(
                    RetrySchedule::from_delays(delays.clone())
                        .with_jitter(0.0)
                        .with_throttle_floor(ms(20)),
                )
                .poll_interval(ms(50))
                .connect_timeout(ms(300))
                .request_timeout(ms(800))
        })
}

struct Rig {
    client: TestClient,
    anonymous: TestClient,
    publisher: Publisher,
    workers: Option<DeliveryWorkers>,
    _dir: TempDir,
}

impl Rig {
    async fn new(delays: Vec<Duration>) -> Rig {
        let dir = TempDir::new();
        let url = dir.sqlite_url("app.db");
        Rig::on(&url, delays, dir).await
    }

    async fn on(database_url: &str, delays: Vec<Duration>, dir: TempDir) -> Rig {
        let built = app(database_url, delays).build().expect("the app builds");
        built.outbox().await.expect("the outbox opens");
        let workers = built.start_delivery().await.expect("the workers start");
        let publisher = built.publisher();
        let router = built.router.clone();
        Rig {
            client: TestClient::new(built).default_header("X-Admin-Key", KEY),
            anonymous: TestClient::new(router),
            publisher,
            workers,
            _dir: dir,
        }
    }

    async fn stop(self) {
        if let Some(workers) = self.workers {
            workers.shutdown(Duration::from_secs(2)).await;
        }
    }

    async fn get(&self, path: &str) -> Value {
        let response = self.client.get(path).send().await;
        assert_eq!(response.status(), 200, "GET {path}: {}", response.text());
        response.json()
    }

    async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.client.post(path).json(&body).send().await
    }

    /// Registers `receiver` for `events`; answers the endpoint's id.
    async fn subscribe(&self, receiver: &MockReceiver, events: &[&str]) -> String {
        let created = self
            .post(
                "/admin/endpoints",
                json!({"url": receiver.url("/hooks").as_str(), "event_types": events}),
            )
            .await;
        assert_eq!(created.status(), 201, "{}", created.text());
        let created: Value = created.json();
        let secret = Secret::parse(created["secret"].as_str().expect("a secret")).expect("whsec");
        receiver.set_secrets(vec![secret]);
        created["endpoint"]["id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }

    async fn paid(&self, invoice: &str) -> String {
        let ids = self
            .publisher
            .publish(
                &invoice_paid(),
                &InvoicePaid {
                    invoice_id: invoice.into(),
                    amount_cents: 1200,
                },
            )
            .await
            .expect("published");
        assert_eq!(ids.len(), 1);
        ids[0].to_string()
    }

    /// Polls the message until `done` holds, for at most 10 seconds.
    async fn wait_for_message(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let message = self.get(&format!("/admin/deliveries/messages/{id}")).await;
            if done(&message) {
                return message;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the message never became {what}: {message}"
            );
            tokio::time::sleep(ms(20)).await;
        }
    }
}

fn status_of(message: &Value) -> &str {
    message["message"]["status"].as_str().unwrap_or_default()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

fn locs(response: &TestResponse) -> Vec<Value> {
    assert_eq!(response.status(), 422, "{}", response.text());
    response.json::<Value>()["detail"]
        .as_array()
        .expect("a list of errors")
        .iter()
        .map(|e| e["loc"].clone())
        .collect()
}

const MISSING: &str = "msg_2cU6vJ0Dx8wq3tAkB1c9Zz0Qp1R";
const NO_ENDPOINT: &str = "ep_2cU6vJ0Dx8wq3tAkB1c9Zz0Qp1R";

#[tokio::test]
async fn every_operation_answers_only_the_guard_and_is_documented() {
    let rig = Rig::new(vec![]).await;
    let calls = [
        ("GET", "/admin/deliveries/messages".to_owned()),
        ("GET", format!("/admin/deliveries/messages/{MISSING}")),
        (
            "POST",
            format!("/admin/deliveries/messages/{MISSING}/retry"),
        ),
        (
            "POST",
            format!("/admin/deliveries/messages/{MISSING}/replay"),
        ),
        (
            "POST",
            format!("/admin/deliveries/messages/{MISSING}/cancel"),
        ),
        ("POST", "/admin/deliveries/replay".to_owned()),
        ("GET", "/admin/deliveries/endpoints".to_owned()),
        ("GET", format!("/admin/deliveries/endpoints/{NO_ENDPOINT}")),
        (
            "POST",
            format!("/admin/deliveries/endpoints/{NO_ENDPOINT}/rotate-secret"),
        ),
        (
            "POST",
            format!("/admin/deliveries/endpoints/{NO_ENDPOINT}/test"),
        ),
        ("GET", "/admin/deliveries/events".to_owned()),
    ];
    for (method, path) in &calls {
        let method: http::Method = method.parse().expect("method");
        let missing = rig
            .anonymous
            .request(method.clone(), path)
            .json(&json!({"since": "2026-01-01T00:00:00Z"}))
            .send()
            .await;
        assert_eq!(missing.status(), 401, "{method} {path}: {}", missing.text());
        let wrong = rig
            .anonymous
            .request(method.clone(), path)
            .header("X-Admin-Key", "guess")
            .json(&json!({"since": "2026-01-01T00:00:00Z"}))
            .send()
            .await;
        assert_eq!(wrong.status(), 403, "{method} {path}: {}", wrong.text());
    }

    let doc = rig.get("/openapi.json").await;
    roundtrip_test::oas::assert_valid_openapi(&doc);
    let mut documented = 0;
    for (_, path) in &calls {
        let template = path
            .replace(MISSING, "{message_id}")
            .replace(NO_ENDPOINT, "{endpoint_id}");
        let item = &doc["paths"][&template];
        assert!(item.is_object(), "{template} is documented");
        for (_, op) in item.as_object().expect("operations") {
            assert_eq!(op["security"], json!([{"APIKeyHeader": []}]), "{template}");
            assert_eq!(op["tags"], json!(["deliveries"]), "{template}");
            documented += 1;
        }
    }
    assert_eq!(documented, calls.len());
    let params = &doc["paths"]["/admin/deliveries/messages"]["get"]["parameters"];
    let names: Vec<&str> = params
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in [
        "status",
        "kind",
        "event",
        "endpoint_id",
        "host",
        "since",
        "until",
        "id",
        "before",
        "limit",
    ] {
        assert!(
            names.contains(&name),
            "the `{name}` filter is documented: {names:?}"
        );
    }
    rig.stop().await;
}

#[tokio::test]
async fn every_filter_and_id_is_validated_with_a_422() {
    let rig = Rig::new(vec![]).await;
    let cases: [(&str, Value); 10] = [
        ("status=lost", json!(["query", "status", 0])),
        ("kind=email", json!(["query", "kind"])),
        ("host=evil.example/x", json!(["query", "host"])),
        ("host=%25", json!(["query", "host"])),
        ("since=yesterday", json!(["query", "since"])),
        ("endpoint_id=ep_1", json!(["query", "endpoint_id"])),
        ("id=msg_short", json!(["query", "id", 0])),
        ("before=1%20OR%201=1", json!(["query", "before"])),
        ("limit=0", json!(["query", "limit"])),
        (
            "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            json!(["query", "until"]),
        ),
    ];
    for (query, loc) in cases {
        let response = rig
            .client
            .get(&format!("/admin/deliveries/messages?{query}"))
            .send()
            .await;
        let found = locs(&response);
        assert!(found.contains(&loc), "{query}: {loc} in {found:?}");
    }
    // Several at once are all reported.
    let response = rig
        .client
        .get("/admin/deliveries/messages?limit=5000&status=nope&host=a..b")
        .send()
        .await;
    assert_eq!(locs(&response).len(), 3, "{}", response.text());

    for path in [
        "/admin/deliveries/messages/msg_x",
        "/admin/deliveries/messages/%3Cscript%3E",
        "/admin/deliveries/endpoints/ep_x",
    ] {
        let response = rig.client.get(path).send().await;
        let found = locs(&response);
        assert_eq!(found.len(), 1, "{path}: {found:?}");
        assert_eq!(found[0][0], "path", "{path}");
    }
    for (path, body, loc) in [
        (
            "/admin/deliveries/messages/msg_x/retry",
            json!({}),
            json!(["path", "message_id"]),
        ),
        (
            "/admin/deliveries/replay",
            json!({}),
            json!(["body", "since"]),
        ),
        (
            "/admin/deliveries/replay",
            json!({"since": "2026-01-01T00:00:00Z", "status": ["pending"]}),
            json!(["body", "status", 0]),
        ),
        (
            "/admin/deliveries/replay",
            json!({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}),
            json!(["body", "until"]),
        ),
        (
            &format!("/admin/deliveries/endpoints/{NO_ENDPOINT}/rotate-secret"),
            json!({"grace_seconds": 99_999_999}),
            json!(["body", "grace_seconds"]),
        ),
    ] {
        let response = rig.post(path, body.clone()).await;
        let found = locs(&response);
        assert!(found.contains(&loc), "{path} {body}: {loc} in {found:?}");
    }
    // Unknown but well-formed ids are 404s.
    let response = rig
        .client
        .get(&format!("/admin/deliveries/messages/{MISSING}"))
        .send()
        .await;
    assert_eq!(response.status(), 404, "{}", response.text());
    let response = rig
        .client
        .get(&format!("/admin/deliveries/endpoints/{NO_ENDPOINT}"))
        .send()
        .await;
    assert_eq!(response.status(), 404, "{}", response.text());
    rig.stop().await;
}

#[tokio::test]
async fn a_failed_message_is_found_shown_and_replayed_by_id() {
    // One attempt only: a 500 fails the message at once.
    found_shown_and_replayed(Rig::new(vec![]).await).await;
}

async fn found_shown_and_replayed(rig: Rig) {
    let receiver = MockReceiver::start().await;
    receiver.set_behaviour(Behaviour::Status(500));
    let endpoint = rig.subscribe(&receiver, &["invoice.paid"]).await;
    let id = rig.paid("inv_1").await;
    let failed = rig
        .wait_for_message(&id, "failed", |m| status_of(m) == "failed")
        .await;
    assert_eq!(failed["message"]["event"], "invoice.paid");
    assert_eq!(failed["message"]["kind"], "webhook");
    assert_eq!(failed["message"]["host"], "127.0.0.1");
    assert_eq!(failed["message"]["endpoint_id"], endpoint.as_str());
    assert_eq!(
        serde_json::from_str::<Value>(failed["payload"].as_str().expect("payload"))
            .expect("JSON payload"),
        json!({"invoice_id": "inv_1", "amount_cents": 1200})
    );
    let attempts = failed["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["response_status"], 500);
    assert_eq!(attempts[0]["outcome"], "failed");
    let headers = attempts[0]["response_headers"].as_array().expect("headers");
    assert!(
        headers
            .iter()
            .any(|h| h[0] == "content-type" && h[1].as_str().is_some_and(|v| v.contains("json"))),
        "the receiver's headers are kept: {headers:?}"
    );
    assert!(attempts[0]["duration_ms"].as_f64().expect("duration") >= 0.0);
    assert!(
        attempts[0]["response_body"]
            .as_str()
            .expect("body")
            .contains("error"),
        "{}",
        attempts[0]
    );

    // The filters find it, and only it.
    for query in [
        "status=failed".to_owned(),
        "status=failed&status=cancelled".to_owned(),
        "event=invoice.paid".to_owned(),
        "kind=webhook".to_owned(),
        format!("endpoint_id={endpoint}"),
        "host=127.0.0.1".to_owned(),
        format!("id={id}"),
        "since=2020-01-01T00:00:00Z&until=2100-01-01T00:00:00Z".to_owned(),
    ] {
        let list = rig
            .get(&format!("/admin/deliveries/messages?{query}"))
            .await;
        assert_eq!(ids(&list), vec![id.clone()], "{query}");
    }
    for query in [
        "status=succeeded",
        "event=invoice.refunded",
        "kind=callback",
        "host=localhost",
        "since=2100-01-01T00:00:00Z",
    ] {
        let list = rig
            .get(&format!("/admin/deliveries/messages?{query}"))
            .await;
        assert!(ids(&list).is_empty(), "{query}: {list}");
    }

    // Replay it by id once the receiver is fixed: the receiver gets it, with the same id.
    receiver.set_behaviour(Behaviour::Succeed);
    receiver.clear();
    let replayed = rig
        .post(
            &format!("/admin/deliveries/messages/{id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(replayed.status(), 200, "{}", replayed.text());
    let deliveries = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("the replay arrives");
    assert_eq!(deliveries[0].webhook_id(), Some(id.as_str()));
    assert!(deliveries[0].verified, "signed with the endpoint's secret");
    let done = rig
        .wait_for_message(&id, "succeeded", |m| status_of(m) == "succeeded")
        .await;
    assert_eq!(done["attempts"].as_array().expect("attempts").len(), 2);

    // A live message cannot be replayed; a finished one cannot be cancelled.
    let again = rig
        .post(
            &format!("/admin/deliveries/messages/{id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(again.status(), 409, "{}", again.text());
    rig.stop().await;
}

#[tokio::test]
async fn retry_now_delivers_a_message_that_is_backing_off() {
    // After a failure, the next attempt waits an hour.
    retried_now(Rig::new(vec![Duration::from_secs(3600)]).await).await;
}

async fn retried_now(rig: Rig) {
    let receiver = MockReceiver::start().await;
    receiver.set_behaviour(Behaviour::fail_times(1, 503));
    rig.subscribe(&receiver, &[]).await;
    let id = rig.paid("inv_2").await;
    let waiting = rig
        .wait_for_message(&id, "backing off", |m| {
            status_of(m) == "pending" && m["message"]["attempts"] == 1
        })
        .await;
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(waiting["message"]["next_attempt_at"].clone()).expect("a time");
    assert!(
        next > chrono::Utc::now() + chrono::Duration::minutes(30),
        "{next}"
    );

    let retried = rig
        .post(&format!("/admin/deliveries/messages/{id}/retry"), json!({}))
        .await;
    assert_eq!(retried.status(), 200, "{}", retried.text());
    let retried: Value = retried.json();
    assert_eq!(retried["status"], "pending");
    let done = rig
        .wait_for_message(&id, "succeeded", |m| status_of(m) == "succeeded")
        .await;
    assert_eq!(done["message"]["attempts"], 2);
    let attempts = done["attempts"].as_array().expect("attempts");
    assert_eq!(attempts[0]["response_status"], 503);
    assert_eq!(attempts[0]["outcome"], "retry");
    assert_eq!(attempts[1]["response_status"], 200);
    assert_eq!(receiver.count(), 2);
    rig.stop().await;
}

#[tokio::test]
async fn everything_failed_since_a_time_is_replayed() {
    let rig = Rig::new(vec![]).await;
    let receiver = MockReceiver::start().await;
    receiver.set_behaviour(Behaviour::Status(500));
    rig.subscribe(&receiver, &["invoice.paid"]).await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let first = rig.paid("inv_a").await;
    let second = rig.paid("inv_b").await;
    for id in [&first, &second] {
        rig.wait_for_message(id, "failed", |m| status_of(m) == "failed")
            .await;
    }
    receiver.set_behaviour(Behaviour::Succeed);
    receiver.clear();
    let later = rig
        .post(
            "/admin/deliveries/replay",
            json!({"since": chrono::Utc::now() + chrono::Duration::hours(1)}),
        )
        .await;
    assert_eq!(later.status(), 200, "{}", later.text());
    assert_eq!(later.json::<Value>(), json!({"replayed": 0}));
    let replay = rig
        .post("/admin/deliveries/replay", json!({"since": since}))
        .await;
    assert_eq!(replay.status(), 200, "{}", replay.text());
    assert_eq!(replay.json::<Value>(), json!({"replayed": 2}));
    let got = receiver
        .wait_for_unique(2, Duration::from_secs(10))
        .await
        .expect("both arrive");
    let mut arrived: Vec<&str> = got.iter().filter_map(|d| d.webhook_id()).collect();
    arrived.sort();
    let mut wanted = vec![first.as_str(), second.as_str()];
    wanted.sort();
    assert_eq!(arrived, wanted);
    rig.stop().await;
}

#[tokio::test]
async fn endpoints_show_their_health_rotate_and_get_test_events() {
    let rig = Rig::new(vec![]).await;
    let good = MockReceiver::start().await;
    let bad = MockReceiver::start().await;
    bad.set_behaviour(Behaviour::Status(500));
    let good_id = rig.subscribe(&good, &["invoice.paid"]).await;
    let bad_id = rig
        .subscribe(&bad, &["invoice.refunded", "invoice.paid"])
        .await;
    let ids = rig
        .publisher
        .publish(
            &invoice_paid(),
            &InvoicePaid {
                invoice_id: "inv_h".into(),
                amount_cents: 5,
            },
        )
        .await
        .expect("published");
    assert_eq!(ids.len(), 2);
    for id in &ids {
        rig.wait_for_message(id.as_ref(), "finished", |m| {
            matches!(status_of(m), "succeeded" | "failed")
        })
        .await;
    }
    let listed = rig.get("/admin/deliveries/endpoints").await;
    let views = listed["data"].as_array().expect("endpoints");
    assert_eq!(views.len(), 2);
    let view = |id: &str| {
        views
            .iter()
            .find(|v| v["endpoint"]["id"] == id)
            .cloned()
            .expect("listed")
    };
    let healthy = view(&good_id);
    assert_eq!(healthy["health"]["success_rate"], 1.0);
    assert_eq!(healthy["health"]["succeeded"], 1);
    assert_eq!(healthy["health"]["last_error"], Value::Null);
    let failing = view(&bad_id);
    assert_eq!(failing["health"]["success_rate"], 0.0);
    assert_eq!(failing["health"]["failed"], 1);
    assert!(
        failing["health"]["last_error"]
            .as_str()
            .expect("an error")
            .contains("500"),
        "{failing}"
    );
    assert_eq!(failing["endpoint"]["enabled"], true);
    assert!(
        !listed.to_string().contains("whsec_"),
        "no secrets in listings"
    );

    // Rotation shows the new secret once, and the receiver verifies with it.
    let rotated = rig
        .post(
            &format!("/admin/deliveries/endpoints/{good_id}/rotate-secret"),
            json!({"grace_seconds": 0}),
        )
        .await;
    assert_eq!(rotated.status(), 200, "{}", rotated.text());
    let rotated: Value = rotated.json();
    let secret = rotated["secret"]
        .as_str()
        .expect("the new secret")
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    let one = rig
        .get(&format!("/admin/deliveries/endpoints/{good_id}"))
        .await;
    assert!(!one.to_string().contains(&secret), "never shown again");
    good.set_secrets(vec![Secret::parse(&secret).expect("whsec")]);
    good.clear();

    // A test event: the endpoint's first event, with the catalogue's example payload.
    let sent = rig
        .post(
            &format!("/admin/deliveries/endpoints/{good_id}/test"),
            json!({}),
        )
        .await;
    assert_eq!(sent.status(), 202, "{}", sent.text());
    let sent: Value = sent.json();
    assert_eq!(sent["event_type"], "invoice.paid");
    let got = good
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("the test event arrives");
    assert!(got[0].verified, "signed with the rotated secret");
    assert_eq!(got[0].webhook_id(), sent["message_id"].as_str());
    assert_eq!(
        got[0].json().expect("JSON"),
        json!({"invoice_id": "string", "amount_cents": 1})
    );
    let refused = rig
        .post(
            &format!("/admin/deliveries/endpoints/{good_id}/test"),
            json!({"event_type": "invoice.refunded"}),
        )
        .await;
    assert_eq!(
        locs(&refused),
        vec![json!(["body", "event_type"])],
        "not an event it receives"
    );
    rig.stop().await;
}

#[tokio::test]
async fn the_catalogue_lists_webhooks_and_callbacks_with_examples() {
    let rig = Rig::new(vec![]).await;
    let catalogue = rig.get("/admin/deliveries/events").await;
    let events = catalogue["data"].as_array().expect("events");
    let names: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or(""),
                e["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("webhook", "invoice.paid"),
            ("webhook", "invoice.refunded"),
            ("callback", "receipt_ready"),
        ]
    );
    let paid = &events[0];
    assert_eq!(paid["method"], "POST");
    assert_eq!(paid["schema"]["properties"]["amount_cents"]["minimum"], 1);
    assert_eq!(
        paid["example"],
        json!({"invoice_id": "string", "amount_cents": 1})
    );
    let callback = &events[2];
    assert_eq!(callback["operation"], "POST /receipts");
    assert_eq!(callback["url_expression"], "{$request.query.callback_url}");
    assert_eq!(callback["example"], json!({"receipt_id": "string"}));
    rig.stop().await;
}

#[tokio::test]
async fn the_console_is_off_by_default_and_behind_the_guard() {
    let dir = TempDir::new();
    let deliveries = Deliveries::new();
    let plain = App::new()
        .database_url(dir.sqlite_url("plain.db"))
        .deliveries(deliveries.clone())
        .include(deliveries.router::<Admin, ()>().prefix("/admin"));
    let client = TestClient::new(plain.build().expect("builds")).default_header("X-Admin-Key", KEY);
    for path in ["/admin/console", "/admin/deliveries/console"] {
        let response = client.get(path).send().await;
        assert_eq!(response.status(), 404, "{path}");
    }

    let rig = Rig::new(vec![]).await;
    let page = rig.client.get("/admin/console").send().await;
    assert_eq!(page.status(), 200, "{}", page.text());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let policy = page.header("content-security-policy").expect("a CSP");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'sha256-"), "{policy}");
    let html = page.text();
    assert!(html.contains(r#""locked":false"#), "{html}");
    assert!(html.contains(r#""kind":"header","name":"X-Admin-Key""#));
    assert!(html.contains(r#""api":"./deliveries/""#));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );

    let locked = rig.anonymous.get("/admin/console").send().await;
    assert_eq!(locked.status(), 401);
    assert_eq!(
        locked.header("www-authenticate"),
        Some("APIKey"),
        "the guard's challenge"
    );
    assert!(locked.text().contains(r#""locked":true"#));
    let wrong = rig
        .anonymous
        .get("/admin/console")
        .header("X-Admin-Key", "guess")
        .send()
        .await;
    assert_eq!(wrong.status(), 403);
    // The console is not an operation of the document.
    let doc = rig.get("/openapi.json").await;
    assert!(doc["paths"].get("/admin/console").is_none());
    rig.stop().await;
}

/// The same operations on the local PostgreSQL, each test in a schema of its own.
mod postgres {
    use super::*;
    use roundtrip_test::postgres::TestSchema;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_message_is_found_shown_and_replayed_by_id() {
        let schema = TestSchema::new().await;
        let rig = Rig::on(&schema.database_url(), vec![], TempDir::new()).await;
        found_shown_and_replayed(rig).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retry_now_delivers_a_message_that_is_backing_off() {
        let schema = TestSchema::new().await;
        let rig = Rig::on(
            &schema.database_url(),
            vec![Duration::from_secs(3600)],
            TempDir::new(),
        )
        .await;
        retried_now(rig).await;
    }
}
