//! The tour documents itself as FastAPI documents `tour.py`.

use roundtrip_test::{TestClient, meaning, oas, refs, snapshot};
use serde_json::Value;

fn reference(name: &str) -> Value {
    refs::fastapi(name)
}

async fn served_document() -> Value {
    let router = example_tour::app().into_router().expect("the app builds");
    let response = TestClient::new(router).get("/openapi.json").send().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    response.json()
}

/// What the tour documents beyond FastAPI: the 401 its security schemes answer.
const ADDITIONS: &[(&str, &str, &str)] = &[
    ("/secure/oauth", "get", "401"),
    ("/secure/basic", "get", "401"),
    ("/secure/key", "get", "401"),
];

#[tokio::test]
async fn document_means_what_fastapi_writes_for_the_tour() {
    let ours = meaning::without_added_responses(&served_document().await, ADDITIONS);
    meaning::assert_same_meaning(&ours, &reference("tour-openapi.json"));
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

/// What the meaning comparison leaves out but a FastAPI user reads in the document:
/// the metadata, the tags' descriptions, and every constraint's keyword and value.
#[tokio::test]
async fn metadata_and_constraints_are_published_as_fastapi_publishes_them() {
    let ours = served_document().await;
    let theirs = reference("tour-openapi.json");
    for key in ["info", "servers", "tags"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    let item_id = &ours["paths"]["/items/{item_id}"]["get"]["parameters"][0]["schema"];
    assert_eq!(item_id["minimum"], 1);
    assert_eq!(item_id["title"], "The ID of the item");
    let q = &ours["paths"]["/items/{item_id}"]["get"]["parameters"][1];
    assert_eq!(q["name"], "q");
    let q = q["schema"].to_string();
    for keyword in [
        r#""minLength":3"#,
        r#""maxLength":20"#,
        r#""pattern":"^[a-z]+$""#,
    ] {
        assert!(q.contains(keyword), "{keyword} in {q}");
    }
    let limit = ours["paths"]["/items/"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(limit["schema"]["maximum"], 100);
    assert_eq!(limit["schema"]["default"], 10);
    let item = &ours["components"]["schemas"]["Item"]["properties"];
    assert_eq!(item["name"]["minLength"], 1);
    assert_eq!(item["name"]["maxLength"], 50);
    assert_eq!(item["name"]["description"], "The item's name");
    assert_eq!(item["price"]["exclusiveMinimum"], 0.0);
    assert_eq!(item["tags"]["default"], serde_json::json!([]));
    assert_eq!(
        ours["components"]["schemas"]["Address"]["properties"]["zip"]["pattern"],
        r"^\d{5}$"
    );
}
