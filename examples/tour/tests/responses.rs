//! Every case of FastAPI's recorded answers to the tour gets the same answer from the
//! roundtrip port: the status, each error entry (type, loc, msg, input, ctx), the body of
//! every other answer, and the `Location` and `WWW-Authenticate` headers.

use roundtrip_test::{TestClient, TestResponse, refs};
use serde_json::Value;

fn cases() -> Vec<Value> {
    refs::fastapi_cases("tour-responses.json")
}

async fn replay(client: &TestClient, case: &Value) -> TestResponse {
    let request = &case["request"];
    let method = request["method"].as_str().unwrap_or("GET");
    let url = request["url"].as_str().unwrap_or("/");
    let mut req = client.request(method.parse().expect("a method"), url);
    if let Some(headers) = request["headers"].as_object() {
        for (name, value) in headers {
            req = req.header(name, value.as_str().unwrap_or_default());
        }
    }
    if let Some(json) = request.get("json") {
        req = req.json(json);
    }
    if let Some(form) = request.get("data") {
        req = req.form(form);
    }
    req.send().await
}

/// The differences between our answer and FastAPI's, one sentence each.
fn differences(case: &Value, response: &TestResponse) -> Vec<String> {
    let name = case["name"].as_str().unwrap_or("?");
    let mut found = Vec::new();
    let status = response.status().as_u16();
    let body = response.try_json::<Value>().unwrap_or(Value::Null);
    let expected_status = case["status_code"].as_u64().unwrap_or(0);
    if u64::from(status) != expected_status {
        found.push(format!(
            "{name}: status {status} instead of {expected_status}; body {body}"
        ));
        return found;
    }
    for header in ["location", "www-authenticate"] {
        let theirs = case["headers"][header].as_str();
        let ours = response.header(header);
        if ours != theirs {
            found.push(format!("{name}: {header} {ours:?} instead of {theirs:?}"));
        }
    }
    if expected_status != 422 {
        if body != case["body"] {
            found.push(format!("{name}: body {body} instead of {}", case["body"]));
        }
        return found;
    }
    found.extend(refs::detail_differences(name, &body, &case["body"]));
    found
}

#[tokio::test]
async fn every_reference_case_gets_fastapis_answer() {
    let router = example_tour::app().into_router().expect("the app builds");
    let client = TestClient::new(router);
    let cases = cases();
    assert!(cases.len() >= 25, "the reference has its 25 cases");
    let mut failures = Vec::new();
    for case in &cases {
        let response = replay(&client, case).await;
        failures.extend(differences(case, &response));
    }
    assert!(
        failures.is_empty(),
        "mismatches:\n  - {}",
        failures.join("\n  - ")
    );
}

/// The comparison itself can fail: a wrong status, a wrong header and a wrong error
/// entry are each reported.
#[tokio::test]
async fn a_different_answer_is_reported() {
    let router = example_tour::app().into_router().expect("the app builds");
    let client = TestClient::new(router);
    let mut case = cases()
        .into_iter()
        .find(|c| c["name"] == "oauth_missing")
        .expect("the oauth_missing case");
    let response = replay(&client, &case).await;
    assert!(differences(&case, &response).is_empty());
    case["headers"]["www-authenticate"] = Value::from("Basic");
    assert_eq!(differences(&case, &response).len(), 1);
    case["status_code"] = Value::from(403);
    assert!(differences(&case, &response)[0].contains("status 401 instead of 403"));

    let mut case = cases()
        .into_iter()
        .find(|c| c["name"] == "path_ge")
        .expect("the path_ge case");
    let response = replay(&client, &case).await;
    assert!(differences(&case, &response).is_empty());
    case["body"]["detail"][0]["ctx"]["ge"] = Value::from(2);
    assert!(differences(&case, &response)[0].contains("ctx"));
}
