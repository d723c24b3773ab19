//! The webhooks example with subscriptions: the demo's round trip as a user runs it (a child
//! process), and the app's management API as its users call it.

use std::time::Duration;

use roundtrip::subscriptions::Subscriptions;
use roundtrip_test::{MockReceiver, TempDir, TestClient};
use serde_json::{Value, json};

#[tokio::test]
async fn the_demo_delivers_new_subscription_to_its_subscribed_receiver() {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_example-webhooks"))
        .args(["demo", "--exit", "--port", "0"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("the demo finishes within a minute")
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(db) = stdout.lines().find_map(|l| l.strip_prefix("outbox: ")) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{db}{suffix}"));
        }
    }
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("-> 201 Created endpoint ep_"), "{stdout}");
    assert!(stdout.contains("-> 1 message(s): msg_"), "{stdout}");
    assert!(
        stdout.contains("new-subscription delivered to 127.0.0.1:")
            && stdout.contains("with a valid signature"),
        "{stdout}"
    );
    assert!(stdout.contains(r#""username":"Rick""#), "{stdout}");
}

#[tokio::test]
async fn subscribers_register_behind_the_admin_key_and_receive_each_event() {
    let dir = TempDir::new();
    let subscriptions = Subscriptions::new();
    let built = example_webhooks::app_with_subscriptions(&subscriptions, "admin-1")
        .database_url(dir.sqlite_url("app.db"))
        .allow_loopback_deliveries()
        .build()
        .expect("builds");
    let workers = built.start_delivery().await.expect("workers start");
    let publisher = built.publisher();
    let client = TestClient::new(built);
    let receiver = MockReceiver::start().await;
    let body = json!({"url": receiver.url("/hooks").as_str(), "event_types": ["new-subscription"]});

    let missing = client.post("/admin/endpoints").json(&body).send().await;
    assert_eq!(missing.status(), 401, "{}", missing.text());
    let wrong = client
        .post("/admin/endpoints")
        .header("X-Admin-Key", "admin-2")
        .json(&body)
        .send()
        .await;
    assert_eq!(wrong.status(), 403, "{}", wrong.text());
    let unknown = client
        .post("/admin/endpoints")
        .header("X-Admin-Key", "admin-1")
        .json(&json!({"url": receiver.url("/hooks").as_str(), "event_types": ["new-user"]}))
        .send()
        .await;
    assert_eq!(unknown.status(), 422, "{}", unknown.text());

    let created = client
        .post("/admin/endpoints")
        .header("X-Admin-Key", "admin-1")
        .json(&body)
        .send()
        .await;
    assert_eq!(created.status(), 201, "{}", created.text());
    let created: Value = created.json();
    let secret = created["secret"]
        .as_str()
        .expect("secret")
        .parse()
        .expect("whsec");
    receiver.set_secrets(vec![secret]);

    let event = example_webhooks::Subscription {
        username: "Morty".into(),
        monthly_fee: 4.5,
        start_date: chrono::Utc::now(),
    };
    let ids = publisher
        .publish(&example_webhooks::new_subscription(), &event)
        .await
        .expect("published");
    assert_eq!(ids.len(), 1);
    let got = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    assert!(got[0].verified, "{:?}", got[0].verify_error);
    assert_eq!(got[0].json().expect("json")["username"], "Morty");
    if let Some(workers) = workers {
        workers.shutdown(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn the_tutorial_app_keeps_the_management_api_out_of_its_document() {
    let doc: Value = TestClient::new(example_webhooks::app().into_router().expect("builds"))
        .get("/openapi.json")
        .send()
        .await
        .json();
    assert!(doc["paths"].get("/admin/endpoints").is_none());
    let with: Value = TestClient::new(
        example_webhooks::app_with_subscriptions(&Subscriptions::new(), "k")
            .into_router()
            .expect("builds"),
    )
    .get("/openapi.json")
    .send()
    .await
    .json();
    assert_eq!(
        with["paths"]["/admin/endpoints"]["post"]["security"],
        json!([{"APIKeyHeader": []}])
    );
    roundtrip_test::oas::assert_valid_openapi_31(&with);
}
