//! The customer portal, driven over HTTP as two customers and their API drive it: the API
//! mints each customer a signed link behind its admin guard; each customer adds an
//! endpoint, chooses its events, reads its delivery log, rotates its secret, sends a test
//! event and replays a failure; events published to one customer reach only that
//! customer's endpoint; and one customer can neither see nor touch the other's endpoints
//! or messages. Expired, tampered and foreign tokens are refused.
//!
//! No test sleeps blindly: each polls with a deadline.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use roundtrip::deliveries::Deliveries;
use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::portal::{Portal, PortalError, TokenError};
use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
use roundtrip::subscriptions::Subscriptions;
use roundtrip::{App, DeliveryWorkers, Publisher, SendOptions, Webhook};
use roundtrip_test::{Behaviour, MockReceiver, TempDir, TestClient, TestResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const KEY: &[u8] = b"portal-key-for-tests-0123456789abcdef";

#[derive(Serialize, Deserialize, JsonSchema, Clone)]
struct InvoicePaid {
    invoice_id: String,
}

fn invoice_paid() -> Webhook<InvoicePaid> {
    Webhook::post("invoice.paid")
}

#[derive(Serialize, Deserialize, JsonSchema, Clone)]
struct Refunded {
    invoice_id: String,
}

fn refunded() -> Webhook<Refunded> {
    Webhook::post("invoice.refunded")
}

struct AdminKey;

impl ApiKeyConfig for AdminKey {
    const NAME: &'static str = "X-Admin-Key";
}

struct Setup {
    client: TestClient,
    portal: Portal,
    publisher: Publisher,
    workers: DeliveryWorkers,
    _dir: TempDir,
}

async fn setup() -> Setup {
    let dir = TempDir::new();
    let subscriptions = Subscriptions::new();
    let deliveries = Deliveries::new();
    let portal = Portal::new(KEY, &deliveries, &subscriptions).expect("a long key");
    let built = App::new()
        .webhook(invoice_paid())
        .webhook(refunded())
        .database_url(dir.sqlite_url("outbox.db"))
        .allow_loopback_deliveries()
        .configure_dispatcher(|config| {
            config.retry_schedule(
                RetrySchedule::from_delays([Duration::from_millis(20)]).with_jitter(0.0),
            )
        })
        .subscriptions(subscriptions)
        .deliveries(deliveries)
        .include(portal.router::<ApiKeyHeader<AdminKey>, ()>())
        .build()
        .expect("builds");
    let workers = built
        .start_delivery()
        .await
        .expect("workers start")
        .expect("workers");
    let publisher = built.publisher();
    Setup {
        client: TestClient::new(built),
        portal,
        publisher,
        workers,
        _dir: dir,
    }
}

/// A customer, as their browser calls the portal API with their link's token.
struct Customer<'a> {
    client: &'a TestClient,
    token: String,
}

impl Customer<'_> {
    async fn get(&self, path: &str) -> TestResponse {
        self.client
            .get(&format!("/portal/api{path}"))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send()
            .await
    }

    async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.client
            .post(&format!("/portal/api{path}"))
            .header("Authorization", &format!("Bearer {}", self.token))
            .json(&body)
            .send()
            .await
    }

    async fn patch(&self, path: &str, body: Value) -> TestResponse {
        self.client
            .patch(&format!("/portal/api{path}"))
            .header("Authorization", &format!("Bearer {}", self.token))
            .json(&body)
            .send()
            .await
    }
}

/// The link the API mints for `customer`, and the token in its fragment.
async fn link(client: &TestClient, customer: &str, ttl: u64) -> String {
    let response = client
        .post("/portal/links")
        .header("X-Admin-Key", "admin")
        .json(&json!({"customer_id": customer, "ttl_seconds": ttl}))
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    let body: Value = response.json();
    let url = body["url"].as_str().expect("url");
    let token = url
        .strip_prefix("/portal#token=")
        .unwrap_or_else(|| panic!("the link is the page with the token in its fragment: {url}"));
    assert_eq!(body["token"], token);
    token.to_owned()
}

async fn add_endpoint(customer: &Customer<'_>, receiver: &MockReceiver, body: Value) -> Value {
    let mut body = body;
    body["url"] = json!(receiver.url("/hooks").as_str());
    let created = customer.post("/endpoints", body).await;
    assert_eq!(created.status(), 201, "{}", created.text());
    let created: Value = created.json();
    receiver.set_secrets(vec![
        created["secret"]
            .as_str()
            .expect("the secret, once")
            .parse()
            .expect("whsec"),
    ]);
    created
}

/// Polls the customer's view of a message until it has `status`.
async fn wait_for_status(customer: &Customer<'_>, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let detail: Value = customer.get(&format!("/messages/{id}")).await.json();
        if detail["message"]["status"] == status {
            return detail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never became {status}: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_customer_manages_only_their_own_endpoints_and_messages() {
    let s = setup().await;
    let acme = Customer {
        client: &s.client,
        token: link(&s.client, "acme", 3600).await,
    };
    let globex = Customer {
        client: &s.client,
        token: link(&s.client, "globex", 3600).await,
    };

    // Each adds an endpoint. Acme's receiver is down; Globex's works. Acme tries to claim
    // its endpoint for Globex through metadata: the portal ignores it.
    let acme_receiver = MockReceiver::start().await;
    acme_receiver.set_behaviour(Behaviour::Status(500));
    let globex_receiver = MockReceiver::start().await;
    let acme_endpoint = add_endpoint(
        &acme,
        &acme_receiver,
        json!({"event_types": ["invoice.paid"], "metadata": {"customer_id": "globex"}}),
    )
    .await;
    assert_eq!(
        acme_endpoint["endpoint"]["metadata"],
        json!({"customer_id": "acme"})
    );
    let acme_id = acme_endpoint["endpoint"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let globex_endpoint = add_endpoint(
        &globex,
        &globex_receiver,
        json!({"event_types": ["invoice.paid"], "description": "prod"}),
    )
    .await;
    let globex_id = globex_endpoint["endpoint"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Each lists only their own, without secrets.
    for (customer, own) in [(&acme, &acme_id), (&globex, &globex_id)] {
        let listed: Value = customer.get("/endpoints").await.json();
        let ids: Vec<&str> = listed["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|v| v["endpoint"]["id"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(ids, [own.as_str()], "{listed}");
        assert!(!listed.to_string().contains("whsec_"), "{listed}");
    }

    // An event for Acme reaches Acme's endpoint only, and one for Globex Globex's only.
    let acme_messages = s
        .publisher
        .publish_to_customer(
            "acme",
            &invoice_paid(),
            &InvoicePaid {
                invoice_id: "acme-1".into(),
            },
            SendOptions::new(),
        )
        .await
        .expect("published");
    assert_eq!(acme_messages.len(), 1);
    let acme_message = acme_messages[0].to_string();
    let globex_messages = s
        .publisher
        .publish_to_customer(
            "globex",
            &invoice_paid(),
            &InvoicePaid {
                invoice_id: "globex-1".into(),
            },
            SendOptions::new(),
        )
        .await
        .expect("published");
    let globex_message = globex_messages[0].to_string();
    let got = globex_receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    assert!(got[0].verified, "{:?}", got[0].verify_error);
    assert_eq!(got[0].json().expect("json")["invoice_id"], "globex-1");

    // Acme's delivery log shows its failure; the attempt is there, with the payload.
    let failed = wait_for_status(&acme, &acme_message, "failed").await;
    assert_eq!(
        failed["attempts"].as_array().map(Vec::len),
        Some(2),
        "{failed}"
    );
    assert!(
        failed["payload"]
            .as_str()
            .unwrap_or_default()
            .contains("acme-1")
    );
    let log: Value = acme
        .get(&format!("/messages?endpoint_id={acme_id}&status=failed"))
        .await
        .json();
    assert_eq!(log["data"][0]["id"], acme_message.as_str(), "{log}");
    assert_eq!(log["data"].as_array().map(Vec::len), Some(1), "{log}");
    assert!(
        globex_receiver.deliveries().iter().all(|d| !d
            .json()
            .map(|v| v["invoice_id"] == "acme-1")
            .unwrap_or(false)),
        "Acme's event reached Globex"
    );

    // Globex can neither see nor touch anything of Acme's: each is a 404, as for nothing.
    let not_found = |r: TestResponse, what: &str| {
        assert_eq!(r.status(), 404, "{what}: {}", r.text());
        assert!(!r.text().contains("acme"), "{what}: {}", r.text());
    };
    not_found(globex.get(&format!("/endpoints/{acme_id}")).await, "read");
    not_found(
        globex
            .patch(&format!("/endpoints/{acme_id}"), json!({"event_types": []}))
            .await,
        "update",
    );
    not_found(
        globex
            .post(&format!("/endpoints/{acme_id}/rotate-secret"), json!({}))
            .await,
        "rotate",
    );
    not_found(
        globex
            .post(&format!("/endpoints/{acme_id}/test"), json!({}))
            .await,
        "test event",
    );
    not_found(
        globex
            .get(&format!("/messages?endpoint_id={acme_id}"))
            .await,
        "log",
    );
    not_found(
        globex.get(&format!("/messages/{acme_message}")).await,
        "message",
    );
    not_found(
        globex
            .post(&format!("/messages/{acme_message}/replay"), json!({}))
            .await,
        "replay",
    );
    // Nor can Acme reach Globex's.
    not_found(
        acme.get(&format!("/messages/{globex_message}")).await,
        "message",
    );
    // Nothing was changed by the refusals: Acme's endpoint is as it was.
    let still: Value = acme.get(&format!("/endpoints/{acme_id}")).await.json();
    assert_eq!(still["endpoint"]["event_types"], json!(["invoice.paid"]));

    // Acme manages its own: events, secret, a test event, and the replay of its failure
    // once its receiver is back.
    let events: Value = acme.get("/events").await.json();
    let names: Vec<&str> = events["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["invoice.paid", "invoice.refunded"]);
    let unknown = acme
        .patch(
            &format!("/endpoints/{acme_id}"),
            json!({"event_types": ["no.such.event"]}),
        )
        .await;
    assert_eq!(unknown.status(), 422, "{}", unknown.text());
    let updated = acme
        .patch(
            &format!("/endpoints/{acme_id}"),
            json!({"event_types": ["invoice.paid", "invoice.refunded"]}),
        )
        .await;
    assert_eq!(updated.status(), 200, "{}", updated.text());
    let updated: Value = updated.json();
    assert_eq!(updated["metadata"], json!({"customer_id": "acme"}));
    let rotated = acme
        .post(&format!("/endpoints/{acme_id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(rotated.status(), 200, "{}", rotated.text());
    let rotated: Value = rotated.json();
    let new_secret: roundtrip::delivery::signing::Secret = rotated["secret"]
        .as_str()
        .expect("the new secret, once")
        .parse()
        .expect("whsec");
    acme_receiver.set_secrets(vec![new_secret]);
    acme_receiver.set_behaviour(Behaviour::Succeed);
    let replayed = acme
        .post(&format!("/messages/{acme_message}/replay"), json!({}))
        .await;
    assert_eq!(replayed.status(), 200, "{}", replayed.text());
    let delivered = wait_for_status(&acme, &acme_message, "succeeded").await;
    assert_eq!(delivered["attempts"].as_array().map(Vec::len), Some(3));
    let test = acme
        .post(
            &format!("/endpoints/{acme_id}/test"),
            json!({"event_type": "invoice.refunded"}),
        )
        .await;
    assert_eq!(test.status(), 200, "{}", test.text());
    let test: Value = test.json();
    let test_id = test["message_id"].as_str().expect("id").to_owned();
    wait_for_status(&acme, &test_id, "succeeded").await;
    acme_receiver
        .wait_until(
            "the replay and the test event, verified",
            Duration::from_secs(10),
            |all| all.iter().filter(|d| d.verified).count() >= 2,
        )
        .await
        .expect("both arrive, signed with the new secret");

    s.workers.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn expired_tampered_and_missing_tokens_are_refused() {
    let s = setup().await;
    let refused = |r: TestResponse, what: &str| {
        assert_eq!(r.status(), 401, "{what}: {}", r.text());
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{what}");
    };
    let good = link(&s.client, "acme", 3600).await;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = good.split('.').collect();
    assert_eq!(parts.len(), 3, "{good}");
    let other_customer = format!("{}.{}.{}", engine.encode("globex"), parts[1], parts[2]);
    let later = format!(
        "{}.{}.{}",
        parts[0],
        parts[1].parse::<u64>().expect("n") + 3600,
        parts[2]
    );
    let mut flipped = parts[2].to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let bad_signature = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(flipped).expect("ascii")
    );
    let other_key = Portal::new(
        b"another-portal-key-0123456789abcdef",
        &Deliveries::new(),
        &Subscriptions::new(),
    )
    .expect("key")
    .token("acme", Duration::from_secs(3600))
    .expect("token")
    .0;
    for (token, what) in [
        (other_customer.as_str(), "another customer's id"),
        (later.as_str(), "a later expiry"),
        (bad_signature.as_str(), "a changed signature"),
        (other_key.as_str(), "another portal's key"),
        ("acme", "not a token"),
        ("", "empty"),
        ("a.b.c.d", "four parts"),
    ] {
        refused(
            s.client
                .get("/portal/api/endpoints")
                .header("Authorization", &format!("Bearer {token}"))
                .send()
                .await,
            what,
        );
    }
    refused(
        s.client.get("/portal/api/endpoints").send().await,
        "no token",
    );
    let ok = s
        .client
        .get("/portal/api/endpoints")
        .header("Authorization", &format!("Bearer {good}"))
        .send()
        .await;
    assert_eq!(ok.status(), 200, "{}", ok.text());

    // A link that expires: works, then is refused once its second has passed.
    let short = link(&s.client, "acme", 1).await;
    let first = s
        .client
        .get("/portal/api/endpoints")
        .header("Authorization", &format!("Bearer {short}"))
        .send()
        .await;
    assert_eq!(first.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = s
            .client
            .get("/portal/api/endpoints")
            .header("Authorization", &format!("Bearer {short}"))
            .send()
            .await;
        if r.status() == 401 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the link never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        s.portal.verify(&short, SystemTime::now()),
        Err(TokenError::Expired)
    );
    assert_eq!(
        s.portal
            .verify(&good, SystemTime::now() + Duration::from_secs(7200)),
        Err(TokenError::Expired)
    );
    assert_eq!(
        s.portal.verify(&good, SystemTime::now()).as_deref(),
        Ok("acme")
    );

    // Minting is the API's: behind its guard, with checked input.
    let anonymous = s
        .client
        .post("/portal/links")
        .json(&json!({"customer_id": "acme"}))
        .send()
        .await;
    assert_eq!(anonymous.status(), 401, "{}", anonymous.text());
    for body in [
        json!({"customer_id": ""}),
        json!({"customer_id": "a b"}),
        json!({"customer_id": "<script>"}),
        json!({"customer_id": "acme", "ttl_seconds": 0}),
        json!({"customer_id": "acme", "ttl_seconds": 2_592_001}),
    ] {
        let r = s
            .client
            .post("/portal/links")
            .header("X-Admin-Key", "admin")
            .json(&body)
            .send()
            .await;
        assert_eq!(r.status(), 422, "{body}: {}", r.text());
    }
    assert_eq!(
        s.portal.link("a/b", Duration::from_secs(60)).map(|l| l.url),
        Err(PortalError::CustomerId("a/b".into()))
    );
    assert!(matches!(
        Portal::new(b"short", &Deliveries::new(), &Subscriptions::new()),
        Err(PortalError::ShortKey(5))
    ));
    s.workers.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn the_page_is_one_self_contained_document_that_writes_data_as_text() {
    let s = setup().await;
    let page = s.client.get("/portal").send().await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let policy = page.header("content-security-policy").expect("a CSP");
    assert!(
        policy.starts_with("default-src 'none'; script-src 'sha256-"),
        "{policy}"
    );
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let html = page.text();
    assert!(!html.contains("innerHTML") && !html.contains("insertAdjacentHTML"));
    assert!(
        !html.contains("http://") && !html.contains("https://cdn"),
        "offline"
    );
    assert!(html.contains("textContent"));
    // The portal's customer operations stay out of the app's document; minting is in it.
    let doc: Value = s.client.get("/openapi.json").send().await.json();
    let paths: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    assert_eq!(paths, ["/portal/links"], "{doc}");
    assert_eq!(
        doc["paths"]["/portal/links"]["post"]["security"],
        json!([{"APIKeyHeader": []}])
    );
    s.workers.shutdown(Duration::from_secs(2)).await;
}
