//! Tracing of deliveries: every attempt runs in a `delivery.attempt` span with the message
//! id, attempt number, status, duration, outcome and error kind, and nothing a delivery
//! logs (at any level) holds the credentials of its URL, its query, or a signing secret.
//! Error messages, stored attempt records and the `Debug` of configurations keep them out
//! too.
//!
//! This file holds one test: it installs the process-wide subscriber.

use std::time::Duration;

use roundtrip::delivery::outbox::{MessageFilter, MessageStatus, Outbox};
use roundtrip::delivery::postgres::PgOptions;
use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::delivery::signing::Secret;
use roundtrip::delivery::ssrf::SsrfPolicy;
use roundtrip::delivery::worker::{DispatcherConfig, StaticSecrets};
use roundtrip::{App, Publisher, SendOptions, Webhook};
use roundtrip_test::{Behaviour, CapturedLogs, MockReceiver, TempDir};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing_subscriber::fmt::format::FmtSpan;

const USER: &str = "alice-user-x7";
const PASSWORD: &str = "hunter2-pw-q9";
const QUERY_TOKEN: &str = "query-token-k3";

/// Everything the subscriber writes, shared with the test.
#[derive(Serialize, Deserialize, JsonSchema, Clone)]
struct Ping {
    n: u32,
}

fn ping() -> Webhook<Ping> {
    Webhook::post("ping")
}

/// What a receiver of `pong` promises to answer.
#[derive(Serialize, Deserialize, JsonSchema)]
struct Ack {
    ok: bool,
}

fn pong() -> Webhook<Ping, Ack> {
    Webhook::post("pong")
}

/// `http://USER:PASSWORD@127.0.0.1:port/path?token=QUERY_TOKEN`.
fn with_credentials(port: u16, path: &str) -> String {
    format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}{path}?token={QUERY_TOKEN}")
}

async fn wait_until_finished(outbox: &dyn Outbox, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = outbox.list(&MessageFilter::new()).await.expect("list");
        let finished = page.messages.iter().filter(|m| !m.status.is_live()).count();
        if finished == count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not finished: {:?}",
            page.messages
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn attempts_are_traced_with_their_outcome_and_nothing_secret_is_written() {
    let captured = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let dir = TempDir::new();
    let secret = Secret::generate().expect("a secret");
    let secret_text = secret.to_string();
    let key_text = secret_text
        .strip_prefix("whsec_")
        .expect("whsec_ prefix")
        .to_owned();
    let ok = MockReceiver::start().await.with_secret(secret.clone());
    let broken = MockReceiver::start().await.with_secret(secret.clone());
    broken.set_behaviour(Behaviour::Status(500));
    let off_contract = MockReceiver::start().await.with_secret(secret.clone());
    off_contract.set_behaviour(Behaviour::json(serde_json::json!({"status": "fine"})));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");

    let built = App::new()
        .webhook(ping())
        .webhook(pong())
        .database_url(dir.sqlite_url("outbox.db"))
        .signing_secret(secret.clone())
        .ssrf_policy(
            SsrfPolicy::new()
                .allow_loopback(true)
                .allow_credentials_in_url(true),
        )
        .configure_dispatcher(|config| {
            config.retry_schedule(
                RetrySchedule::from_delays([Duration::from_millis(20)]).with_jitter(0.0),
            )
        })
        .build()
        .expect("the app builds");
    let outbox = built.outbox().await.expect("the outbox opens");
    let workers = built.start_delivery().await.expect("workers start");
    let publisher: Publisher = built.publisher();
    let targets = [
        with_credentials(ok.addr().port(), "/hook"),
        with_credentials(broken.addr().port(), "/hook"),
        with_credentials(closed, "/hook"),
    ];
    for (n, url) in targets.iter().enumerate() {
        publisher
            .send_to(&ping(), url, &Ping { n: n as u32 }, SendOptions::new())
            .await
            .expect("enqueued");
    }
    let off_contract_id = publisher
        .send_to(
            &pong(),
            &with_credentials(off_contract.addr().port(), "/hook"),
            &Ping { n: 7 },
            SendOptions::new(),
        )
        .await
        .expect("enqueued");
    wait_until_finished(&*outbox, targets.len() + 1).await;
    let delivered = ok.deliveries();
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].verified, "{:?}", delivered[0].verify_error);
    if let Some(workers) = &workers {
        // The Debug of the running workers names no secret either.
        let shown = format!("{workers:?}");
        assert!(!shown.contains(&key_text), "{shown}");
    }
    if let Some(workers) = workers {
        workers.shutdown(Duration::from_secs(2)).await;
    }

    // What the outbox keeps for the command line: errors and attempt records.
    let page = outbox.list(&MessageFilter::new()).await.expect("list");
    let mut stored = String::new();
    for meta in &page.messages {
        stored.push_str(&format!("{:?}\n", meta.last_error));
        for attempt in outbox.attempts(&meta.id).await.expect("attempts") {
            stored.push_str(&format!("{:?} {:?}\n", attempt.error, attempt.decision));
        }
    }
    let statuses: Vec<MessageStatus> = page.messages.iter().map(|m| m.status).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == MessageStatus::Failed)
            .count(),
        2,
        "{statuses:?}"
    );

    // A URL with credentials under the default policy: refused, without repeating them.
    let strict = App::new()
        .webhook(ping())
        .database_url(dir.sqlite_url("strict.db"))
        .allow_loopback_deliveries()
        .build()
        .expect("builds");
    let refused = strict
        .publisher()
        .send_to(
            &ping(),
            &with_credentials(ok.addr().port(), "/hook"),
            &Ping { n: 9 },
            SendOptions::new(),
        )
        .await
        .expect_err("credentials in a URL are refused by default");
    assert!(refused.is_refused(), "{refused}");
    let errors = format!("{refused}\n{refused:?}");

    // Configurations, shown with `{:?}`.
    let configs = format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        DispatcherConfig::new(StaticSecrets::new(secret.clone())),
        StaticSecrets::new(secret.clone()),
        secret,
        PgOptions::new(format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:1/db?password={QUERY_TOKEN}"
        )),
        built,
    );

    let logs = captured.text();
    for (what, text) in [
        ("the logs", &logs),
        ("the stored errors", &stored),
        ("the send error", &errors),
        ("the configurations", &configs),
    ] {
        for leak in [PASSWORD, USER, QUERY_TOKEN, &secret_text, &key_text] {
            assert!(!text.contains(leak), "{what} hold `{leak}`:\n{text}");
        }
    }

    // The spans are there, with every field, and the URL is shown redacted.
    let attempt_lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("delivery.attempt"))
        .collect();
    let closes: Vec<&&str> = attempt_lines
        .iter()
        .filter(|l| l.contains("close"))
        .collect();
    assert_eq!(closes.len(), 6, "1 + 2 + 2 + 1 attempts:\n{logs}");
    for field in [
        "message_id=msg_",
        "attempt=1",
        "attempt=2",
        "status=200",
        "status=500",
        // Recorded as strings, so shown quoted.
        "outcome=\"succeeded\"",
        "outcome=\"retry\"",
        "outcome=\"failed\"",
        "error=\"connect\"",
        "duration_ms=",
        "name=ping",
    ] {
        assert!(
            closes.iter().any(|l| l.contains(field)),
            "no attempt span carries `{field}`:\n{}",
            attempt_lines.join("\n")
        );
    }
    let redacted = format!("url=http://127.0.0.1:{}/hook?…", broken.addr().port());
    assert!(
        logs.contains(&redacted),
        "the URL is logged without credentials or query: {redacted}\n{logs}"
    );
    assert!(
        logs.contains("delivery failed for good"),
        "failures are logged: {logs}"
    );
    // A 2xx that breaks the declared response is delivered, and warned about in its span.
    let warning = logs
        .lines()
        .find(|l| l.contains("breaks the declared contract"))
        .unwrap_or_else(|| panic!("no contract warning:\n{logs}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains(off_contract_id.as_str()), "{warning}");
    assert!(warning.contains("name=pong"), "{warning}");
}
