//! The webhooks example documents itself as FastAPI documents the tutorial it ports.

use roundtrip_test::{TestClient, meaning, oas, snapshot};
use serde_json::Value;

fn reference(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/refs/fastapi/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn served_document() -> Value {
    let router = example_webhooks::app()
        .into_router()
        .expect("the app builds");
    TestClient::new(router)
        .get("/openapi.json")
        .send()
        .await
        .json()
}

#[tokio::test]
async fn document_means_what_fastapi_writes_for_the_tutorial() {
    meaning::assert_same_meaning(
        &served_document().await,
        &reference("webhooks-openapi.json"),
    );
}

#[tokio::test]
async fn document_is_valid_openapi_31() {
    oas::assert_valid_openapi_31(&served_document().await);
}

#[tokio::test]
async fn document_matches_the_committed_snapshot() {
    let path = format!("{}/openapi.json", env!("CARGO_MANIFEST_DIR"));
    snapshot::assert_json_snapshot(path, &served_document().await);
}

#[tokio::test]
async fn webhook_is_written_exactly_as_fastapi_writes_it() {
    let doc = served_document().await;
    let webhook = &doc["webhooks"]["new-subscription"]["post"];
    assert_eq!(
        webhook["operationId"],
        "new_subscriptionnew_subscription_post"
    );
    assert_eq!(webhook["summary"], "New Subscription");
    assert_eq!(
        webhook["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Subscription"
    );
    let start = &doc["components"]["schemas"]["Subscription"]["properties"]["start_date"];
    assert_eq!(start["format"], "date-time");
    assert_eq!(start["title"], "Start Date");
}

#[tokio::test]
async fn users_are_served() {
    let router = example_webhooks::app()
        .into_router()
        .expect("the app builds");
    let users: Value = TestClient::new(router).get("/users/").send().await.json();
    assert_eq!(users, serde_json::json!(["Rick", "Morty"]));
}
