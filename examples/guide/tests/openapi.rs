//! The guide documents itself as FastAPI documents `guide.py`: the app's document and
//! the mounted sub-app's, in meaning, plus what the meaning comparison leaves out but a
//! client reads (the security scheme, the `x-` extension, the event stream).

use roundtrip_test::{TestClient, meaning, oas, refs, snapshot};
use serde_json::Value;

fn reference() -> Value {
    refs::fastapi("guide-openapi.json")
}

async fn served(path: &str) -> Value {
    let client = TestClient::start(example_guide::app()).await;
    let response = client.get(path).send().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let doc = response.json();
    client.shutdown().await;
    doc
}

/// What the guide documents beyond FastAPI: the 401 of the admin key's scheme, the 403 of
/// its check, and the errors its operations raise.
const ADDITIONS: &[(&str, &str, &str)] = &[
    ("/admin/stats", "get", "401"),
    ("/admin/stats", "get", "403"),
    ("/admin/quota", "post", "401"),
    ("/admin/quota", "post", "403"),
    ("/items/{item_id}", "get", "404"),
    ("/notes/{note_id}", "get", "404"),
    ("/notes/conflict", "post", "409"),
    ("/boom", "get", "500"),
];

#[tokio::test]
async fn document_means_what_fastapi_writes_for_the_guide() {
    let ours = meaning::without_added_responses(&served("/openapi.json").await, ADDITIONS);
    meaning::assert_same_meaning(&ours, &reference()["app"]);
}

#[tokio::test]
async fn the_mounted_apps_document_means_what_fastapi_writes_for_it() {
    let ours = served("/subapi/openapi.json").await;
    meaning::assert_same_meaning(&ours, &reference()["subapi"]);
    assert_eq!(ours["info"], reference()["subapi"]["info"]);
    assert_eq!(ours["servers"], serde_json::json!([{"url": "/subapi"}]));
}

#[tokio::test]
async fn document_is_valid_openapi() {
    let doc = served("/openapi.json").await;
    // The event stream's `itemSchema` is OpenAPI 3.2's (FastAPI writes it into a 3.1
    // document, which 3.1 validators refuse).
    assert_eq!(doc["openapi"], "3.2.0");
    oas::assert_valid_openapi(&doc);
    oas::assert_valid_openapi(&served("/subapi/openapi.json").await);
}

#[tokio::test]
async fn document_matches_the_committed_snapshot() {
    let path = format!("{}/openapi.json", env!("CARGO_MANIFEST_DIR"));
    snapshot::assert_json_snapshot(path, &served("/openapi.json").await);
}

/// The parts of the document that meaning does not compare, as FastAPI writes them.
#[tokio::test]
async fn schemes_extensions_and_the_event_stream_are_fastapis() {
    let ours = served("/openapi.json").await;
    let theirs = &reference()["app"];
    assert_eq!(ours["info"], theirs["info"]);
    assert_eq!(
        ours["components"]["securitySchemes"],
        theirs["components"]["securitySchemes"]
    );
    let put = "/paths/~1items~1{item_id}/put/x-aperture-labs-portal";
    assert_eq!(ours.pointer(put), theirs.pointer(put));
    assert_eq!(ours.pointer(put), Some(&Value::from("blue")));
    let stream = "/paths/~1events/get/responses/200/content";
    assert_eq!(ours.pointer(stream), theirs.pointer(stream));
    let tenant = "/paths/~1lifespan/get/parameters/0/schema";
    let pattern = ours
        .pointer(tenant)
        .map(Value::to_string)
        .unwrap_or_default();
    assert!(
        pattern.contains(r#""pattern":"^[a-z]{2,16}$""#),
        "{pattern}"
    );
    for name in ["Item-Input", "Item-Output"] {
        let path = format!("/components/schemas/{name}/title");
        assert_eq!(ours.pointer(&path), Some(&Value::from("Item")), "{name}");
    }
    assert_eq!(
        ours.pointer("/components/schemas/Item-Output/properties/price_with_tax/readOnly"),
        Some(&Value::Bool(true))
    );
}
