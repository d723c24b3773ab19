//! Every case of FastAPI's recorded answers to `POST /invoices/` gets the same status and
//! the same error entries (type, loc, msg, input, ctx) from the roundtrip port.

use roundtrip::delivery::ssrf::SsrfPolicy;
use roundtrip_test::{TempDir, TestClient, refs};
use serde_json::Value;

/// The reference uses a public URL as `callback_url`; requests made here go to
/// loopback instead, so nothing this test does could reach another host.
const PUBLIC_CALLBACK: &str = "https://www.external.org/events";
const LOOPBACK_CALLBACK: &str = "http://127.0.0.1:9/events";

fn cases() -> Vec<Value> {
    refs::fastapi_cases("validation-errors.json")
}

async fn replay(client: &TestClient, case: &Value) -> (u16, Value) {
    let request = &case["request"];
    let url = request["url"]
        .as_str()
        .unwrap_or_default()
        .replace(PUBLIC_CALLBACK, LOOPBACK_CALLBACK);
    let method = request["method"].as_str().unwrap_or("GET");
    let mut req = client.request(method.parse().expect("method"), &url);
    if let Some(headers) = request["headers"].as_object() {
        for (name, value) in headers {
            req = req.header(name, value.as_str().unwrap_or_default());
        }
    }
    if let Some(json) = request.get("json") {
        req = req.json(json);
    }
    if let Some(content) = request["content"].as_str() {
        req = req.body(content.to_owned());
    }
    let response = req.send().await;
    let body = response.try_json().unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn every_reference_case_gets_fastapis_answer() {
    let dir = TempDir::new();
    let router = example_invoices::app()
        .database_url(dir.sqlite_url("outbox.db"))
        .ssrf_policy(SsrfPolicy::new().allow_loopback(true))
        .into_router()
        .expect("the app builds");
    let client = TestClient::new(router);
    let cases = cases();
    assert!(cases.len() >= 8, "the reference has its cases");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let (status, body) = replay(&client, case).await;
        let expected_status = case["status_code"].as_u64().unwrap_or(0) as u16;
        if status != expected_status {
            failures.push(format!(
                "{name}: status {status} instead of {expected_status}; body {body}"
            ));
            continue;
        }
        if expected_status != 422 {
            if body != case["body"] {
                failures.push(format!("{name}: body {body} instead of {}", case["body"]));
            }
            continue;
        }
        failures.extend(refs::detail_differences(name, &body, &case["body"]));
    }
    assert!(
        failures.is_empty(),
        "mismatches:\n  - {}",
        failures.join("\n  - ")
    );
}
