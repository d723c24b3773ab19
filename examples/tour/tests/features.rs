//! What the reference cases do not exercise: the successful answers of each feature,
//! replacing the state and a dependency in tests, and the response classes.

use example_tour::{Catalog, Pagination};
use roundtrip::DependencyOverrides;
use roundtrip_test::TestClient;
use serde_json::{Value, json};

fn client() -> TestClient {
    TestClient::new(example_tour::app().into_router().expect("the app builds"))
}

#[tokio::test]
async fn tests_can_run_the_app_with_another_state() {
    let default = client();
    assert_eq!(default.get("/items/11").send().await.status(), 200);

    let small = TestClient::new(
        example_tour::app_with(Catalog { largest_id: 10 })
            .into_router()
            .expect("the app builds"),
    );
    assert_eq!(small.get("/items/10").send().await.status(), 200);
    let response = small.get("/items/11").send().await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>(),
        json!({"detail": "Item not found"})
    );
}

#[tokio::test]
async fn tests_can_replace_a_dependency() {
    let client =
        client().extension(DependencyOverrides::new().value(Pagination { skip: 5, limit: 1 }));
    // The replacement reads none of the dependency's parameters, so `limit=500` is not
    // refused, as with FastAPI's `dependency_overrides`.
    let response = client.get("/items/?limit=500&tag=x").send().await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        response.json::<Value>(),
        json!({"page": {"skip": 5, "limit": 1}, "tag": ["x"]})
    );
}

#[tokio::test]
async fn the_dependency_reads_its_parameters() {
    let response = client().get("/items/?skip=20&limit=100").send().await;
    assert_eq!(
        response.json::<Value>(),
        json!({"page": {"skip": 20, "limit": 100}, "tag": null})
    );
}

#[tokio::test]
async fn credentials_reach_the_handlers() {
    let client = client();
    let oauth = client
        .get("/secure/oauth")
        .header("authorization", "Bearer abc.def")
        .send()
        .await;
    assert_eq!(oauth.json::<Value>(), json!({"token": "abc.def"}));

    // "bob:secret" in base64.
    let basic = client
        .get("/secure/basic")
        .header("authorization", "Basic Ym9iOnNlY3JldA==")
        .send()
        .await;
    assert_eq!(basic.json::<Value>(), json!({"user": "bob"}));

    let key = client
        .get("/secure/key")
        .header("x-api-key", "k-123")
        .send()
        .await;
    assert_eq!(key.json::<Value>(), json!({"key": "k-123"}));

    let wrong_scheme = client
        .get("/secure/oauth")
        .header("authorization", "Basic Ym9iOnNlY3JldA==")
        .send()
        .await;
    assert_eq!(wrong_scheme.status(), 401);
    assert_eq!(wrong_scheme.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn headers_and_cookies_are_read_by_their_wire_names() {
    let response = client()
        .get("/users/me")
        .cookie("session_id", "s-1")
        .header("user-agent", "tour-test")
        .send()
        .await;
    assert_eq!(
        response.json::<Value>(),
        json!({"session_id": "s-1", "user_agent": "tour-test"})
    );
    let replaced = client()
        .put("/items/3")
        .header("x-request-id", "r-1")
        .json(&json!({"name": "Bar", "price": 3}))
        .send()
        .await;
    assert_eq!(
        replaced.json::<Value>(),
        json!({"id": 3, "name": "Bar", "price": 3.0})
    );
}

#[tokio::test]
async fn each_response_class_has_its_media_type() {
    let client = client();
    let html = client.get("/html").send().await;
    assert!(
        html.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    assert_eq!(html.text(), "<h1>Hello</h1>");

    let text = client.get("/text").send().await;
    assert!(
        text.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    assert_eq!(text.text(), "plain");

    let stream = client.get("/stream").send().await;
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.text(), "ab");

    let file = client.get("/file").send().await;
    assert_eq!(file.status(), 200);
    assert!(file.text().contains("A tour of roundtrip's foundation"));

    let patched = client.patch("/items/4").send().await;
    assert_eq!(patched.json::<Value>(), json!({"id": 4}));
}

#[tokio::test]
async fn a_hidden_operation_is_served_but_not_documented() {
    let client = client();
    assert_eq!(
        client.get("/hidden").send().await.json::<Value>(),
        json!({})
    );
    let doc: Value = client.get("/openapi.json").send().await.json();
    assert!(doc["paths"].get("/hidden").is_none());
    assert!(doc["paths"].get("/html").is_some());
}
