//! Webhook subscriptions, driven as a user drives them: the management router over HTTP
//! (behind an API-key guard), `Publisher::publish` fanning out to MockReceivers on loopback
//! that verify with each endpoint's own secret, rotation, auto-disable and re-enable, and
//! the bad inputs refused at registration. SQLite files in temporary directories, and the
//! local PostgreSQL for the tests in `mod postgres`.
//!
//! Host names go through an injected resolver: no test looks a name up for real, and every
//! delivery goes to 127.0.0.1. No test sleeps blindly: each polls with a deadline.

mod delivery;
mod management;
mod postgres;

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
