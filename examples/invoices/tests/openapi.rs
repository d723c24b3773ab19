//! The invoices example documents itself as FastAPI documents the tutorial it ports.

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
    let router = example_invoices::app()
        .into_router()
        .expect("the app builds");
    let response = TestClient::new(router).get("/openapi.json").send().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    response.json()
}

#[tokio::test]
async fn document_means_what_fastapi_writes_for_the_tutorial() {
    let ours = served_document().await;
    meaning::assert_same_meaning(&ours, &reference("callbacks-openapi.json"));
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
async fn callback_is_written_exactly_as_fastapi_writes_it() {
    let doc = served_document().await;
    let callback = &doc["paths"]["/invoices/"]["post"]["callbacks"]["invoice_notification"]["{$callback_url}/invoices/{$request.body.id}"]
        ["post"];
    assert_eq!(
        callback["operationId"],
        "invoice_notification__callback_url__invoices___request_body_id__post"
    );
    assert_eq!(
        callback["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/InvoiceEvent"
    );
    assert_eq!(
        callback["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/InvoiceEventReceived"
    );
    assert_eq!(
        callback["responses"]["422"]["description"],
        "Validation Error"
    );
}
