//! Disabling a webhook endpoint is logged: a warning with the endpoint's id, why, and its
//! URL without credentials or query, and never a secret of it, for a 410 and for a failing
//! window alike.
//!
//! This file holds one test: it installs the process-wide subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::delivery::signing::Secret;
use roundtrip::subscriptions::{Subscriptions, Unguarded};
use roundtrip::{App, Webhook};
use roundtrip_test::{Behaviour, MockReceiver, TempDir, TestClient};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Clone)]
struct Ping {
    n: u32,
}

fn ping() -> Webhook<Ping> {
    Webhook::post("ping")
}

const QUERY_TOKEN: &str = "query-token-z8";

/// The endpoint's (redacted) warning lines in the log.
fn warnings_for(log: &str, id: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("WARN") && l.contains(id) && l.contains("webhook endpoint disabled"))
        .map(str::to_owned)
        .collect()
}

async fn wait_for_warning(captured: &Captured, id: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = warnings_for(&captured.text(), id).pop() {
            return line;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no warning for {id} in:\n{}",
            captured.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn disabling_an_endpoint_is_a_warning_without_secrets_or_url_queries() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let dir = TempDir::new();
    let subscriptions = Subscriptions::new().failure_window(Duration::from_millis(200));
    let built = App::new()
        .webhook(ping())
        .database_url(dir.sqlite_url("app.db"))
        .allow_loopback_deliveries()
        .subscriptions(subscriptions.clone())
        .include(subscriptions.router::<Unguarded, ()>())
        .configure_dispatcher(|config| {
            config
                .retry_schedule(
                    RetrySchedule::from_delays(std::iter::repeat_n(Duration::from_millis(30), 60))
                        .with_jitter(0.0),
                )
                .poll_interval(Duration::from_millis(50))
        })
        .build()
        .expect("builds");
    let workers = built.start_delivery().await.expect("workers start");
    let publisher = built.publisher();
    let client = TestClient::new(built);

    let gone = MockReceiver::start().await;
    gone.set_behaviour(Behaviour::Status(410));
    let failing = MockReceiver::start().await;
    failing.set_behaviour(Behaviour::Status(500));
    let mut endpoints = Vec::new();
    for receiver in [&gone, &failing] {
        let secret = Secret::generate().expect("secret");
        let url = format!("{}?token={QUERY_TOKEN}", receiver.url("/hooks"));
        let created = client
            .post("/endpoints")
            .json(&json!({"url": url, "secret": secret.to_string()}))
            .send()
            .await;
        assert_eq!(created.status(), 201, "{}", created.text());
        let id = created.json::<Value>()["endpoint"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        endpoints.push((id, secret));
    }
    publisher
        .publish(&ping(), &Ping { n: 1 })
        .await
        .expect("published");

    let gone_line = wait_for_warning(&captured, &endpoints[0].0).await;
    assert!(gone_line.contains("410"), "{gone_line}");
    let failing_line = wait_for_warning(&captured, &endpoints[1].0).await;
    assert!(failing_line.contains("failing"), "{failing_line}");
    for line in [&gone_line, &failing_line] {
        assert!(line.contains("127.0.0.1"), "the URL is shown: {line}");
        assert!(line.contains("?…"), "its query is redacted: {line}");
    }

    if let Some(workers) = workers {
        workers.shutdown(Duration::from_secs(2)).await;
    }
    let log = captured.text();
    assert!(!log.contains(QUERY_TOKEN), "a URL query reached the log");
    for (_, secret) in &endpoints {
        let text = secret.to_string();
        let key = text.strip_prefix("whsec_").unwrap_or(&text);
        assert!(!log.contains(key), "a secret reached the log");
    }
}
