//! The webhooks example with subscriptions: the demo's round trip as a user runs it (a child
//! process), and the app's management API as its users call it.

use std::time::Duration;

use roundtrip::subscriptions::Subscriptions;
use roundtrip_test::{ChildGuard, MockReceiver, TempDir, TestClient};
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

#[tokio::test]
async fn serve_refuses_to_start_without_an_admin_key() {
    let dir = TempDir::new();
    for key in [None, Some(""), Some("short")] {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_example-webhooks"));
        command
            .args(["serve", "--port", "0"])
            .current_dir(dir.path())
            .env_remove("ROUNDTRIP_DATABASE_URL")
            .kill_on_drop(true);
        match key {
            Some(key) => command.env("WEBHOOKS_ADMIN_KEY", key),
            None => command.env_remove("WEBHOOKS_ADMIN_KEY"),
        };
        let output = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("exits at once")
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{key:?}: {stderr}");
        assert!(
            stderr.starts_with("error: WEBHOOKS_ADMIN_KEY is"),
            "{key:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_operates_subscriptions_and_metrics_over_http_behind_the_admin_key() {
    const KEY: &str = "admin-key-0123456789abcdef";
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_example-webhooks"))
        .args(["serve", "--port", &port.to_string(), "--allow-loopback"])
        .current_dir(dir.path())
        .env("WEBHOOKS_ADMIN_KEY", KEY)
        .env("ROUNDTRIP_DATABASE_URL", dir.sqlite_url("app.db"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the app starts");
    let _served = ChildGuard(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let receiver = MockReceiver::start().await;
    let endpoint =
        json!({"url": receiver.url("/hooks").as_str(), "event_types": ["new-subscription"]});

    // The management API answers once the app is up; without the key it refuses.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .post(format!("{base}/admin/endpoints"))
            .json(&endpoint)
            .send()
            .await
        {
            Ok(response) => {
                assert_eq!(response.status(), 401);
                break;
            }
            Err(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the app did not start"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let created = client
        .post(format!("{base}/admin/endpoints"))
        .header("X-Admin-Key", KEY)
        .json(&endpoint)
        .send()
        .await
        .expect("answers");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let secret = created["secret"]
        .as_str()
        .expect("secret")
        .parse()
        .expect("whsec");
    receiver.set_secrets(vec![secret]);

    // A user subscribes; the event reaches the endpoint, signed with its secret.
    let published = client
        .post(format!("{base}/subscriptions/"))
        .json(&json!({"username": "Summer", "monthly_fee": 3.5, "start_date": "2026-01-01T00:00:00Z"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(published.status(), 202);
    let published: Value = published.json().await.expect("json");
    assert_eq!(published["messages"].as_array().map(Vec::len), Some(1));
    let got = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    assert!(got[0].verified, "{:?}", got[0].verify_error);
    assert_eq!(got[0].json().expect("json")["username"], "Summer");

    // The metrics: behind the key too, and they counted the publish.
    let refused = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 401);
    let wrong = client
        .get(format!("{base}/metrics"))
        .header("X-Admin-Key", "not-the-key-0123456789")
        .send()
        .await
        .expect("answers");
    assert_eq!(wrong.status(), 403);
    let metrics = client
        .get(format!("{base}/metrics"))
        .header("X-Admin-Key", KEY)
        .send()
        .await
        .expect("answers");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains(
            r#"roundtrip_messages_enqueued_total{kind="webhook",name="new-subscription"} 1"#
        ),
        "{text}"
    );
    // /metrics stays out of the document; the operated routes are in it.
    let doc: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert!(doc["paths"].get("/metrics").is_none(), "{doc}");
    assert!(doc["paths"].get("/subscriptions/").is_some(), "{doc}");

    // The deliveries API and the console, behind the key.
    let listed = client
        .get(format!("{base}/admin/deliveries/messages"))
        .header("X-Admin-Key", KEY)
        .send()
        .await
        .expect("answers");
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.expect("json");
    assert_eq!(listed["data"][0]["event"], "new-subscription", "{listed}");
    let console = client
        .get(format!("{base}/admin/console"))
        .send()
        .await
        .expect("answers");
    assert_eq!(console.status(), 401);

    // A customer's portal link, minted behind the key, opens the customer's API.
    let refused = client
        .post(format!("{base}/portal/links"))
        .json(&json!({"customer_id": "acme"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 401);
    let minted: Value = client
        .post(format!("{base}/portal/links"))
        .header("X-Admin-Key", KEY)
        .json(&json!({"customer_id": "acme"}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let url = minted["url"].as_str().expect("url");
    assert!(url.starts_with("/portal#token="), "{minted}");
    let own: Value = client
        .get(format!("{base}/portal/api/endpoints"))
        .bearer_auth(minted["token"].as_str().expect("token"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    // The endpoint the admin added belongs to no customer: Acme sees none.
    assert_eq!(own, json!({"data": []}));
}
