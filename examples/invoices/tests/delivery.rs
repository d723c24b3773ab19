//! The invoices callback really happens: enqueued durably by the handler, delivered
//! signed by the workers, retried, and refused when the URL is not allowed.

use std::time::Duration;

use roundtrip::delivery::outbox::{MessageFilter, MessageStatus, Outbox};
use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::delivery::ssrf::SsrfPolicy;
use roundtrip::{App, BuiltApp, DeliveryWorkers};
use roundtrip_test::{Behaviour, MockReceiver, TempDir, TestClient};
use serde_json::{Value, json};

struct Running {
    client: TestClient,
    receiver: MockReceiver,
    outbox: std::sync::Arc<dyn Outbox>,
    workers: Option<DeliveryWorkers>,
    _dir: TempDir,
}

impl Running {
    async fn stop(mut self) {
        if let Some(workers) = self.workers.take() {
            workers.shutdown(Duration::from_secs(2)).await;
        }
    }
}

fn configured(dir: &TempDir, receiver: &MockReceiver) -> App {
    example_invoices::app()
        .database_url(dir.sqlite_url("outbox.db"))
        .signing_secret(receiver.secret())
        .ssrf_policy(SsrfPolicy::new().allow_loopback(true))
        .configure_dispatcher(|config| {
            config.retry_schedule(
                RetrySchedule::from_delays([Duration::from_millis(20), Duration::from_millis(20)])
                    .with_jitter(0.0),
            )
        })
}

async fn start(behaviour: Behaviour) -> Running {
    let dir = TempDir::new();
    let receiver = MockReceiver::start().await;
    receiver.set_behaviour(behaviour);
    let built: BuiltApp = configured(&dir, &receiver).build().expect("the app builds");
    let outbox = built.outbox().await.expect("the outbox opens");
    let workers = built.start_delivery().await.expect("the workers start");
    assert!(workers.is_some(), "an app with a callback starts workers");
    Running {
        client: TestClient::new(built),
        receiver,
        outbox,
        workers,
        _dir: dir,
    }
}

fn invoice(id: &str) -> Value {
    json!({"id": id, "customer": "ACME", "total": 10.5})
}

#[tokio::test]
async fn the_callback_is_delivered_signed_to_the_resolved_url() {
    let app = start(Behaviour::json(json!({"ok": true}))).await;
    let callback_url = app.receiver.url("/events").to_string();
    let response = app
        .client
        .post("/invoices/")
        .query(&[("callback_url", &callback_url)])
        .json(&invoice("inv-7"))
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.json::<Value>(), json!({"msg": "Invoice received"}));

    let deliveries = app
        .receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("the callback arrives");
    let delivery = &deliveries[0];
    assert_eq!(delivery.path, "/events/invoices/inv-7");
    assert!(delivery.verified, "{:?}", delivery.verify_error);
    assert_eq!(
        delivery.json().expect("json body"),
        json!({"description": "Invoice inv-7 for ACME paid", "paid": true})
    );
    let id = delivery.webhook_id().expect("webhook-id").to_owned();
    let page = app.outbox.list(&MessageFilter::new()).await.expect("list");
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].id.to_string(), id);
    app.stop().await;
}

#[tokio::test]
async fn no_callback_url_sends_nothing() {
    let app = start(Behaviour::Succeed).await;
    let response = app
        .client
        .post("/invoices/")
        .json(&invoice("inv-8"))
        .send()
        .await;
    assert_eq!(response.status(), 200);
    let page = app.outbox.list(&MessageFilter::new()).await.expect("list");
    assert!(page.messages.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_repeated_request_notifies_once() {
    let app = start(Behaviour::Succeed).await;
    let callback_url = app.receiver.url("/events").to_string();
    for _ in 0..3 {
        let response = app
            .client
            .post("/invoices/")
            .query(&[("callback_url", &callback_url)])
            .json(&invoice("inv-9"))
            .send()
            .await;
        assert_eq!(response.status(), 200);
    }
    let page = app.outbox.list(&MessageFilter::new()).await.expect("list");
    assert_eq!(
        page.messages.len(),
        1,
        "the idempotency key kept one message"
    );
    app.stop().await;
}

#[tokio::test]
async fn failures_are_retried_with_the_same_webhook_id() {
    let app = start(Behaviour::fail_times(2, 503)).await;
    let callback_url = app.receiver.url("/events").to_string();
    app.client
        .post("/invoices/")
        .query(&[("callback_url", &callback_url)])
        .json(&invoice("inv-10"))
        .send()
        .await;
    let deliveries = app
        .receiver
        .wait_for(3, Duration::from_secs(10))
        .await
        .expect("three attempts arrive");
    let ids: std::collections::BTreeSet<_> =
        deliveries.iter().filter_map(|d| d.webhook_id()).collect();
    assert_eq!(ids.len(), 1, "one message, three attempts");
    assert!(deliveries.iter().all(|d| d.verified));
    let id = deliveries[0]
        .webhook_id()
        .expect("id")
        .parse()
        .expect("message id");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let meta = app.outbox.get(&id).await.expect("get").expect("stored");
        if meta.meta.status == MessageStatus::Succeeded {
            let attempts = app.outbox.attempts(&id).await.expect("attempts");
            let codes: Vec<Option<u16>> = attempts.iter().map(|a| a.response_status).collect();
            assert_eq!(codes, [Some(503), Some(503), Some(200)]);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not recorded: {:?}",
            meta.meta
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_response_that_breaks_the_contract_is_recorded() {
    let app = start(Behaviour::json(json!({"status": "fine"}))).await;
    let callback_url = app.receiver.url("/events").to_string();
    app.client
        .post("/invoices/")
        .query(&[("callback_url", &callback_url)])
        .json(&invoice("inv-11"))
        .send()
        .await;
    let deliveries = app
        .receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("arrives");
    let id = deliveries[0]
        .webhook_id()
        .expect("id")
        .parse()
        .expect("message id");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let attempts = app.outbox.attempts(&id).await.expect("attempts");
        if let Some(attempt) = attempts.first() {
            let violation = attempt.contract_violation.clone().expect("a violation");
            assert!(violation.contains("ok"), "{violation}");
            assert_eq!(attempt.decision, "succeeded", "a 2xx is still delivered");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn hostile_callback_urls_are_refused_before_anything_is_stored() {
    let dir = TempDir::new();
    // The default policy: loopback and every private range refused.
    let router = example_invoices::app()
        .database_url(dir.sqlite_url("outbox.db"))
        .into_router()
        .expect("builds");
    let client = TestClient::new(router);
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ] {
        let response = client
            .post("/invoices/")
            .query(&[("callback_url", url)])
            .json(&invoice("inv-12"))
            .send()
            .await;
        assert_eq!(response.status(), 422, "{url}: {}", response.text());
        let error = &response.json::<Value>()["detail"][0];
        assert_eq!(error["loc"], json!(["query", "callback_url"]), "{url}");
        assert_eq!(error["type"], "value_error", "{url}");
        let msg = error["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains("which this API does not send callbacks to") && !msg.contains("Ssrf"),
            "{url}: {msg}"
        );
    }
    let file = client
        .post("/invoices/")
        .query(&[("callback_url", "file:///etc/passwd")])
        .json(&invoice("inv-13"))
        .send()
        .await;
    assert_eq!(file.status(), 422, "HttpUrl refuses non-http schemes first");
}
