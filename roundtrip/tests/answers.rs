//! What an operation answers and how the document says it: background tasks after the
//! response, response models that filter (and leave out unset fields), types published
//! as `-Input` and `-Output` when their two schemas differ, operation ids from an
//! app-wide function, `x-` extensions, server-sent events, cookies, and FastAPI 0.165's
//! strict Content-Type.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::Stream;
use roundtrip::response::sse::{Event, Sse};
use roundtrip::response::{SameSite, SetCookie};
use roundtrip::{App, BackgroundTasks, HttpError, Json, Path, Router, get, post};
use roundtrip_test::{TestClient, oas};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};
use tokio::sync::Notify;

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line);
        }
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

#[derive(Clone, Default)]
struct Tasks {
    log: Log,
    go: Arc<Notify>,
}

async fn signup(
    axum::extract::State(state): axum::extract::State<Tasks>,
    Path(email): Path<String>,
    tasks: BackgroundTasks,
) -> Json<Value> {
    let (log, go) = (state.log.clone(), state.go.clone());
    let first = email.clone();
    // The first task waits for the test, which has the response by then.
    tasks.add(async move {
        go.notified().await;
        log.push(format!("welcome mail to {first}"));
    });
    let log = state.log.clone();
    tasks.add(async move { log.push(format!("audit {email}")) });
    Json(json!({"message": "Signup accepted"}))
}

async fn refused_signup(
    axum::extract::State(state): axum::extract::State<Tasks>,
    tasks: BackgroundTasks,
) -> Result<Json<Value>, HttpError> {
    let log = state.log.clone();
    tasks.add(async move { log.push("never".to_owned()) });
    Err(HttpError::conflict("Taken"))
}

#[tokio::test]
async fn background_tasks_run_after_the_response_in_order_and_only_on_success() {
    let state = Tasks::default();
    let app = App::with_state(state.clone())
        .route("/signup/{email}", post(signup).status(202))
        .route("/refused", post(refused_signup));
    let client = TestClient::new(app.into_router().expect("the app builds"));
    let refused = client.post("/refused").send().await;
    assert_eq!(refused.status(), 409);
    // Answered while the first task still waits: the tasks run after the response.
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        client.post("/signup/ada@example.com").send(),
    )
    .await
    .expect("the answer does not wait for its tasks");
    assert_eq!(response.status(), 202);
    assert!(state.log.lines().is_empty());
    state.go.notify_one();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while state.log.lines().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            state.log.lines()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        state.log.lines(),
        ["welcome mail to ada@example.com", "audit ada@example.com"]
    );
}

#[derive(Deserialize, JsonSchema)]
struct UserIn {
    username: String,
    #[allow(dead_code)]
    password: String,
    email: String,
}

impl Serialize for UserIn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        json!({"username": self.username, "password": self.password, "email": self.email})
            .serialize(s)
    }
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct UserOut {
    username: String,
    email: String,
}

async fn create_user(Json(user): Json<UserIn>) -> Json<UserIn> {
    Json(user)
}

fn ten_and_a_half() -> f64 {
    10.5
}

/// An item whose answers carry a computed field.
#[derive(Deserialize, JsonSchema)]
struct Item {
    name: String,
    description: Option<String>,
    #[serde(default = "ten_and_a_half")]
    price: f64,
    #[serde(default)]
    tags: Vec<String>,
    /// Only in answers.
    #[serde(skip_deserializing)]
    #[allow(dead_code)]
    price_with_tax: f64,
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        json!({
            "name": self.name,
            "description": self.description,
            "price": self.price,
            "tags": self.tags,
            "price_with_tax": (self.price * 1.2 * 100.0).round() / 100.0,
        })
        .serialize(s)
    }
}

async fn read_item(Path(id): Path<String>) -> Result<Json<Value>, HttpError> {
    match id.as_str() {
        "foo" => Ok(Json(json!({"name": "Foo", "price": 50.2}))),
        "broken" => Ok(Json(json!({"price": "free"}))),
        _ => Err(HttpError::not_found("Item not found")),
    }
}

async fn replace_item(Path(_id): Path<String>, Json(item): Json<Item>) -> Json<Item> {
    Json(item)
}

async fn events() -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
    Sse::new(futures_util::stream::iter((0..3).map(|i| {
        Ok(Event::default()
            .event("tick")
            .json_data(format!("tick {i}"))?
            .id(i.to_string()))
    })))
}

async fn login() -> (SetCookie, Json<Value>) {
    (
        SetCookie::new("session", "abc123")
            .http_only()
            .same_site(SameSite::Lax),
        Json(json!({"message": "Logged in"})),
    )
}

async fn ping() -> Json<Value> {
    Json(json!({"pong": true}))
}

fn app() -> App {
    App::new()
        .operation_ids(|op| match op.tags.first() {
            Some(tag) => format!("{tag}-{}", op.name),
            None => op.name.to_owned(),
        })
        .route(
            "/users/",
            post(create_user).response_model::<UserOut>().tag("models"),
        )
        .route(
            "/items/{item_id}",
            get(read_item)
                .response_model::<Item>()
                .response_model_exclude_unset()
                .tag("models")
                .put(replace_item)
                .tag("models")
                .openapi_extra(json!({"x-aperture-labs-portal": "blue", "summary": "Replace it"})),
        )
        .route("/events", get(events).tag("stream"))
        .route("/login", post(login))
        .route("/ping", get(ping).operation_id("my_ping"))
        .include(Router::new().tag("misc").route("/misc", get(ping)))
}

fn client() -> TestClient {
    TestClient::new(app().into_router().expect("the app builds"))
}

#[tokio::test]
async fn a_response_model_filters_the_answer_and_can_leave_unset_fields_out() {
    let client = client();
    let user = client
        .post("/users/")
        .json(&json!({"username": "ada", "password": "hunter2", "email": "ada@example.com"}))
        .send()
        .await;
    assert_eq!(
        user.json::<Value>(),
        json!({"username": "ada", "email": "ada@example.com"})
    );
    let item = client.get("/items/foo").send().await;
    assert_eq!(
        item.json::<Value>(),
        json!({"name": "Foo", "price": 50.2, "price_with_tax": 60.24})
    );
    // Errors pass through; an answer that does not fit the model is the app's bug: 500.
    assert_eq!(client.get("/items/baz").send().await.status(), 404);
    let broken = client.get("/items/broken").send().await;
    assert_eq!(broken.status(), 500);
    assert_eq!(broken.text(), "Internal Server Error");
    let replaced = client
        .put("/items/x")
        .json(&json!({"name": "X"}))
        .send()
        .await;
    assert_eq!(
        replaced.json::<Value>(),
        json!({"name": "X", "description": null, "price": 10.5, "tags": [], "price_with_tax": 12.6})
    );
}

async fn document() -> Value {
    client().get("/openapi.json").send().await.json()
}

#[tokio::test]
async fn a_type_whose_answers_differ_is_published_as_input_and_output() {
    let doc = document().await;
    let schemas = &doc["components"]["schemas"];
    assert!(schemas.get("Item").is_none());
    let input = &schemas["Item-Input"];
    let output = &schemas["Item-Output"];
    assert_eq!(input["title"], "Item");
    assert_eq!(output["title"], "Item");
    assert!(input["properties"].get("price_with_tax").is_none());
    assert_eq!(input["required"], json!(["name"]));
    assert_eq!(output["properties"]["price_with_tax"]["readOnly"], true);
    assert_eq!(output["required"], json!(["name", "price_with_tax"]));
    let put = &doc["paths"]["/items/{item_id}"]["put"];
    assert_eq!(
        put["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Item-Input"
    );
    assert_eq!(
        put["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Item-Output"
    );
    let get = &doc["paths"]["/items/{item_id}"]["get"];
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Item-Output"
    );
    // Types whose answers are their input keep one name.
    assert!(schemas.get("UserIn").is_some() && schemas.get("UserOut").is_some());
    assert!(schemas.get("UserOut-Output").is_none());
    oas::assert_valid_openapi(&doc);
}

#[tokio::test]
async fn operation_ids_extensions_and_event_streams_are_documented() {
    let doc = document().await;
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .map(|paths| {
            paths
                .values()
                .flat_map(|item| item.as_object().into_iter().flat_map(|m| m.values()))
                .filter_map(|op| op["operationId"].as_str())
                .collect()
        })
        .unwrap_or_default();
    for id in [
        "models-create_user",
        "models-read_item",
        "models-replace_item",
        "stream-events",
        "login",
        "my_ping",
        "misc-ping",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let put = &doc["paths"]["/items/{item_id}"]["put"];
    assert_eq!(put["x-aperture-labs-portal"], "blue");
    assert_eq!(put["summary"], "Replace it");
    let sse = &doc["paths"]["/events"]["get"]["responses"]["200"]["content"];
    assert_eq!(
        sse["text/event-stream"]["itemSchema"]["properties"]["retry"],
        json!({"type": "integer", "minimum": 0})
    );
    assert!(sse.get("application/json").is_none());
    // itemSchema is OpenAPI 3.2's: the document says so, and validates as 3.2.
    assert_eq!(doc["openapi"], "3.2.0");
    oas::assert_valid_openapi(&doc);
    let plain: Value = TestClient::new(
        App::new()
            .route("/ping", get(ping))
            .into_router()
            .expect("the app builds"),
    )
    .get("/openapi.json")
    .send()
    .await
    .json();
    assert_eq!(plain["openapi"], "3.1.0");
}

#[tokio::test]
async fn events_are_framed_and_cookies_carry_their_attributes() {
    let client = client();
    let events = client.get("/events").send().await;
    assert_eq!(events.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        events.text(),
        "event: tick\ndata: \"tick 0\"\nid: 0\n\nevent: tick\ndata: \"tick 1\"\nid: 1\n\nevent: tick\ndata: \"tick 2\"\nid: 2\n\n"
    );
    let login = client.post("/login").send().await;
    assert_eq!(
        login.header("set-cookie"),
        Some("session=abc123; HttpOnly; Path=/; SameSite=lax")
    );
    assert_eq!(login.json::<Value>(), json!({"message": "Logged in"}));
}

#[tokio::test]
async fn a_json_body_without_content_type_is_not_read_as_json() {
    let response = client()
        .post("/users/")
        .body(r#"{"username": "ada", "password": "x", "email": "e"}"#)
        .send()
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.json::<Value>(),
        json!({"detail": [{
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": r#"{"username": "ada", "password": "x", "email": "e"}"#
        }]})
    );
    let empty = client().post("/users/").send().await;
    assert_eq!(empty.json::<Value>()["detail"][0]["type"], "missing");
}
