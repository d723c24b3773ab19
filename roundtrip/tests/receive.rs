//! The receiving side: `Verified<T>` hands the handler a typed payload only when the
//! Standard Webhooks signature matches, the timestamp is inside the tolerance and the
//! body parses; anything else is refused with a status and a `detail` saying why, and the
//! handler never runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Extension;
use roundtrip::delivery::signing::{Secret, Signer, Verifier};
use roundtrip::receive::Verified;
use roundtrip::{App, Json, post};
use roundtrip_test::{TestClient, TestResponse};
use serde::Deserialize;
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_dGhlIG90aGVyIHNlY3JldCBvZiBhbm90aGVyIGFwcA==";

#[derive(Debug, Deserialize)]
struct InvoiceEvent {
    id: String,
    total: f64,
}

async fn on_invoice(
    Extension(calls): Extension<Arc<AtomicUsize>>,
    Verified {
        id: msg_id,
        timestamp,
        payload,
        ..
    }: Verified<InvoiceEvent>,
) -> Json<Value> {
    calls.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "webhook_id": msg_id,
        "timestamp": timestamp,
        "invoice": payload.id,
        "total": payload.total,
    }))
}

struct Receiver {
    client: TestClient,
    calls: Arc<AtomicUsize>,
}

impl Receiver {
    fn new() -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let router = App::new()
            .route("/events", post(on_invoice))
            .into_router()
            .expect("builds");
        let verifier = Arc::new(Verifier::new(secret(SECRET)));
        let client = TestClient::new(router)
            .extension(verifier)
            .extension(calls.clone());
        Receiver { client, calls }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Sends `body` with the given `webhook-*` headers (`None` leaves one out).
    async fn send(&self, body: &[u8], headers: [(&str, Option<String>); 3]) -> TestResponse {
        let mut request = self
            .client
            .post("/events")
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            if let Some(value) = value {
                request = request.header(name, &value);
            }
        }
        request.send().await
    }

    /// Sends `body` signed by `signer` as message `msg_id` at `timestamp`.
    async fn send_signed(
        &self,
        signer: &Signer,
        msg_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> TestResponse {
        let headers = signer.headers(msg_id, timestamp, body).expect("headers");
        let mut request = self
            .client
            .post("/events")
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.to_str().expect("ascii"));
        }
        request.send().await
    }
}

fn secret(text: &str) -> Secret {
    Secret::parse(text).expect("a valid secret")
}

fn now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit")
}

fn body() -> Vec<u8> {
    serde_json::to_vec(&json!({"id": "inv-0001", "total": 1234.5})).expect("json")
}

/// The response's `detail`, which every rejection carries.
fn detail(response: &TestResponse) -> String {
    let value: Value = response.json();
    value["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("a string detail: {value}"))
        .to_owned()
}

/// Asserts a 401 whose detail says the signature check failed and contains `says`.
fn assert_unauthorized(response: &TestResponse, says: &str) {
    assert_eq!(response.status(), 401, "{}", response.text());
    let detail = detail(response);
    assert!(
        detail.starts_with("invalid webhook signature: ") && detail.contains(says),
        "{detail}"
    );
}

#[tokio::test]
async fn a_correctly_signed_request_reaches_the_handler_typed() {
    let receiver = Receiver::new();
    let timestamp = now();
    let response = receiver
        .send_signed(
            &Signer::new(secret(SECRET)),
            "msg_2b4Q1",
            timestamp,
            &body(),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        response.json::<Value>(),
        json!({"webhook_id": "msg_2b4Q1", "timestamp": timestamp, "invoice": "inv-0001", "total": 1234.5})
    );
    assert_eq!(receiver.calls(), 1);
}

#[tokio::test]
async fn a_signature_made_during_a_rotation_is_accepted_by_either_secret() {
    let receiver = Receiver::new();
    let rotating = Signer::new(secret(OTHER_SECRET)).with_secret(secret(SECRET));
    let response = receiver
        .send_signed(&rotating, "msg_rot", now(), &body())
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(receiver.calls(), 1);
}

#[tokio::test]
async fn a_wrong_signature_is_refused() {
    let receiver = Receiver::new();
    let timestamp = now();
    let signer = Signer::new(secret(SECRET));
    // A real signature, but of another body: the body was tampered with.
    let tampered = signer.sign("msg_1", timestamp, b"{\"id\":\"inv-0001\",\"total\":1}");
    let response = receiver
        .send(
            &body(),
            [
                ("webhook-id", Some("msg_1".into())),
                ("webhook-timestamp", Some(timestamp.to_string())),
                ("webhook-signature", Some(tampered)),
            ],
        )
        .await;
    assert_unauthorized(&response, "");
    // Not base64, not v1, and a truncated tag: all refused, none a 500.
    for garbage in ["v1,not-base64!!", "v2,AAAA", "v1,AAAA", "", "   "] {
        let response = receiver
            .send(
                &body(),
                [
                    ("webhook-id", Some("msg_1".into())),
                    ("webhook-timestamp", Some(timestamp.to_string())),
                    ("webhook-signature", Some(garbage.into())),
                ],
            )
            .await;
        assert_eq!(response.status(), 401, "{garbage:?}: {}", response.text());
    }
    // The signature of another message id does not carry over.
    let response = receiver
        .send(
            &body(),
            [
                ("webhook-id", Some("msg_2".into())),
                ("webhook-timestamp", Some(timestamp.to_string())),
                (
                    "webhook-signature",
                    Some(signer.sign("msg_1", timestamp, &body())),
                ),
            ],
        )
        .await;
    assert_unauthorized(&response, "");
    assert_eq!(receiver.calls(), 0);
}

#[tokio::test]
async fn a_signature_made_with_another_secret_is_refused() {
    let receiver = Receiver::new();
    let response = receiver
        .send_signed(&Signer::new(secret(OTHER_SECRET)), "msg_1", now(), &body())
        .await;
    assert_unauthorized(&response, "");
    assert_eq!(receiver.calls(), 0);
}

#[tokio::test]
async fn a_stale_timestamp_is_refused_even_when_correctly_signed() {
    let receiver = Receiver::new();
    let signer = Signer::new(secret(SECRET));
    // Ten minutes old, twice the five-minute tolerance.
    let response = receiver
        .send_signed(&signer, "msg_1", now() - 600, &body())
        .await;
    assert_unauthorized(&response, "tolerance");
    assert!(detail(&response).contains("old"), "{}", response.text());
    assert_eq!(receiver.calls(), 0);
}

#[tokio::test]
async fn a_timestamp_too_far_in_the_future_is_refused() {
    let receiver = Receiver::new();
    let signer = Signer::new(secret(SECRET));
    let response = receiver
        .send_signed(&signer, "msg_1", now() + 600, &body())
        .await;
    assert_unauthorized(&response, "tolerance");
    assert_eq!(receiver.calls(), 0);
}

#[tokio::test]
async fn a_malformed_timestamp_is_refused() {
    let receiver = Receiver::new();
    let signer = Signer::new(secret(SECRET));
    let timestamp = now();
    for bad in ["soon", "-1", "1.5", "99999999999999999999999"] {
        let response = receiver
            .send(
                &body(),
                [
                    ("webhook-id", Some("msg_1".into())),
                    ("webhook-timestamp", Some(bad.into())),
                    (
                        "webhook-signature",
                        Some(signer.sign("msg_1", timestamp, &body())),
                    ),
                ],
            )
            .await;
        assert_unauthorized(&response, "webhook-timestamp");
    }
    assert_eq!(receiver.calls(), 0);
}

#[tokio::test]
async fn each_missing_header_is_refused_and_named() {
    let receiver = Receiver::new();
    let timestamp = now();
    let signature = Signer::new(secret(SECRET)).sign("msg_1", timestamp, &body());
    let all = [
        ("webhook-id", "msg_1".to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ];
    for missing in 0..all.len() {
        let headers = std::array::from_fn(|i| {
            let (name, value) = &all[i];
            (*name, (i != missing).then(|| value.clone()))
        });
        let response = receiver.send(&body(), headers).await;
        let name = all[missing].0;
        assert_unauthorized(&response, &format!("the `{name}` header is missing"));
    }
    // Present but empty counts as missing.
    let response = receiver
        .send(
            &body(),
            [
                ("webhook-id", Some(String::new())),
                ("webhook-timestamp", Some(all[1].1.clone())),
                ("webhook-signature", Some(all[2].1.clone())),
            ],
        )
        .await;
    assert_unauthorized(&response, "the `webhook-id` header is missing");
    assert_eq!(receiver.calls(), 0);
}

#[tokio::test]
async fn a_validly_signed_body_of_the_wrong_shape_is_a_bad_request() {
    let receiver = Receiver::new();
    let signer = Signer::new(secret(SECRET));
    for wrong in [
        &br#"{"id": "inv-0001", "total": "a lot"}"#[..],
        br#"{"id": "inv-0001"}"#,
        br#"[1, 2, 3]"#,
        b"not json at all",
        b"",
    ] {
        let response = receiver.send_signed(&signer, "msg_1", now(), wrong).await;
        assert_eq!(
            response.status(),
            400,
            "{}: {}",
            String::from_utf8_lossy(wrong),
            response.text()
        );
        assert!(
            detail(&response).starts_with("the payload is not the expected JSON: "),
            "{}",
            response.text()
        );
    }
    assert_eq!(receiver.calls(), 0);
}

#[tokio::test]
async fn without_a_verifier_the_route_fails_loudly_rather_than_accepting() {
    let calls = Arc::new(AtomicUsize::new(0));
    let router = App::new()
        .route("/events", post(on_invoice))
        .into_router()
        .expect("builds");
    let client = TestClient::new(router).extension(calls.clone());
    let timestamp = now();
    let mut request = client.post("/events").body(body());
    for (name, value) in &Signer::new(secret(SECRET))
        .headers("msg_1", timestamp, &body())
        .expect("headers")
    {
        request = request.header(name.as_str(), value.to_str().expect("ascii"));
    }
    let response = request.send().await;
    assert_eq!(response.status(), 500, "{}", response.text());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
