//! Routers as FastAPI's `APIRouter`: nesting with composed prefixes, tags, shared
//! responses and callbacks; router layers and plain axum routers; and a user-defined
//! error type that documents the responses it answers.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use roundtrip::{
    App, Callback, Json, Notify, OperationContext, OperationOutput, Path, Query, Router, get,
};
use roundtrip_test::{TestClient, oas};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, JsonSchema)]
struct ItemOut {
    id: i64,
    name: String,
}

#[derive(Deserialize, JsonSchema)]
struct ItemId {
    item_id: i64,
}

#[derive(Serialize, JsonSchema)]
struct Gone {
    reason: String,
}

async fn read_item(Path(p): Path<ItemId>) -> Json<ItemOut> {
    Json(ItemOut {
        id: p.item_id,
        name: "Foo".into(),
    })
}

async fn document(client: &TestClient) -> Value {
    let response = client.get("/openapi.json").send().await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json();
    oas::assert_valid_openapi_31(&doc);
    doc
}

fn client(app: App) -> TestClient {
    TestClient::new(app.into_router().expect("the app builds"))
}

// 1. Nested routers.

fn nested_app() -> App {
    let items = Router::new()
        .prefix("/items")
        .tag("items")
        .response_status(404, "Item not found")
        .route("/{item_id}", get(read_item).tag("read"));
    let v1 = Router::new()
        .prefix("/v1")
        .tag("v1")
        .response::<Gone>(410, "Version retired")
        .include(items);
    App::new().include(v1)
}

#[tokio::test]
async fn nested_routers_compose_prefixes_tags_and_responses() {
    let client = client(nested_app());
    let doc = document(&client).await;

    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(paths, ["/v1/items/{item_id}"]);

    let op = &doc["paths"]["/v1/items/{item_id}"]["get"];
    // As FastAPI: the outer router's tags, then the inner router's, then the route's.
    assert_eq!(op["tags"], json!(["v1", "items", "read"]));
    assert_eq!(op["operationId"], "read_item_v1_items__item_id__get");

    let codes: Vec<&str> = op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(codes, ["200", "404", "410", "422"]);
    assert_eq!(op["responses"]["404"]["description"], "Item not found");
    assert!(op["responses"]["404"].get("content").is_none());
    assert_eq!(op["responses"]["410"]["description"], "Version retired");
    assert_eq!(
        op["responses"]["410"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Gone"
    );
    assert_eq!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ItemOut"
    );
    assert!(doc["components"]["schemas"]["Gone"].is_object());

    let ok = client.get("/v1/items/7").send().await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>(), json!({"id": 7, "name": "Foo"}));

    for path in ["/items/7", "/v1/7", "/v1/items/7/"] {
        let missing = client.get(path).send().await;
        assert_eq!(missing.status(), 404, "{path}");
    }
    let invalid = client.get("/v1/items/seven").send().await;
    assert_eq!(invalid.status(), 422);
}

#[tokio::test]
async fn an_inner_shared_response_overrides_the_outer_one_for_the_same_status() {
    let items = Router::new()
        .prefix("/items")
        .response_status(404, "Item not found")
        .route("/{item_id}", get(read_item));
    let v1 = Router::new()
        .prefix("/v1")
        .response_status(404, "Not found")
        .include(items);
    let doc = document(&client(App::new().include(v1))).await;
    assert_eq!(
        doc["paths"]["/v1/items/{item_id}"]["get"]["responses"]["404"]["description"],
        "Item not found"
    );
}

// 2. Callbacks on an outer router.

#[derive(Serialize, JsonSchema)]
struct Paid {
    id: String,
}

fn paid() -> Callback<Paid> {
    Callback::post("order_paid", "{$request.query.callback_url}/paid")
}

#[derive(Deserialize, JsonSchema)]
struct Hooks {
    #[allow(dead_code)]
    callback_url: Option<String>,
}

async fn pay_order(
    Path(id): Path<String>,
    Query(_): Query<Hooks>,
    notify: Notify<Paid>,
) -> Json<Value> {
    let url = notify.url().expect("the callback URL resolves");
    Json(json!({"id": id, "callback": url.as_str()}))
}

/// An operation that declares what the router's callback reads.
async fn read_hooked_item(Path(p): Path<ItemId>, Query(_): Query<Hooks>) -> Json<ItemOut> {
    read_item(Path(p)).await
}

#[tokio::test]
async fn a_router_callback_reaches_the_operations_of_nested_routers() {
    let orders = Router::new()
        .prefix("/orders")
        .route("/{id}/pay", roundtrip::post(pay_order))
        .route("/{item_id}", get(read_hooked_item));
    let api = Router::new()
        .prefix("/api")
        .callback(paid())
        .include(orders);
    let client = client(App::new().include(api));
    let doc = document(&client).await;

    for (path, method) in [
        ("/api/orders/{id}/pay", "post"),
        ("/api/orders/{item_id}", "get"),
    ] {
        let callback = &doc["paths"][path][method]["callbacks"]["order_paid"];
        assert!(
            callback["{$request.query.callback_url}/paid"]["post"].is_object(),
            "{method} {path}: {callback}"
        );
    }
    assert!(doc["components"]["schemas"]["Paid"].is_object());

    // The handler's `Notify<Paid>` is bound to the callback inherited from the outer router.
    let response = client
        .post("/api/orders/42/pay")
        .query(&[("callback_url", "https://example.com/hooks")])
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        response.json::<Value>(),
        json!({"id": "42", "callback": "https://example.com/hooks/paid"})
    );
}

// 3. Router layers and plain axum routers.

fn tag_response(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("x-layered", HeaderValue::from_static("yes"));
    response
}

async fn hello() -> &'static str {
    "hello"
}

async fn bye() -> &'static str {
    "bye"
}

#[tokio::test]
async fn a_router_layer_wraps_only_that_routers_routes() {
    let inner = Router::new().prefix("/deep").route("/", get(hello));
    let layered = Router::new()
        .prefix("/layered")
        .route("/hello", get(hello))
        .include(inner)
        .merge_axum(axum::Router::new().route("/raw", axum::routing::get(|| async { "raw" })))
        .layer(tower::util::MapResponseLayer::new(
            tag_response as fn(Response) -> Response,
        ));
    let plain = Router::new().prefix("/plain").route("/bye", get(bye));
    let app = App::new()
        .include(layered)
        .include(plain)
        .route("/top", get(hello))
        .merge_axum(
            axum::Router::new().route("/untracked", axum::routing::get(|| async { "untracked" })),
        );
    let client = client(app);

    for path in ["/layered/hello", "/layered/deep/", "/layered/raw"] {
        let response = client.get(path).send().await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.header("x-layered"), Some("yes"), "{path}");
    }
    for path in ["/plain/bye", "/top", "/untracked"] {
        let response = client.get(path).send().await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.header("x-layered"), None, "{path}");
    }
    let untracked = client.get("/untracked").send().await;
    assert_eq!(untracked.text(), "untracked");
    let raw = client.get("/layered/raw").send().await;
    assert_eq!(raw.text(), "raw");
    // The axum router merged into `/layered` is served under the prefix only.
    assert_eq!(client.get("/raw").send().await.status(), 404);

    let doc = document(&client).await;
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        ["/layered/deep/", "/layered/hello", "/plain/bye", "/top"]
    );
    let text = doc.to_string();
    assert!(!text.contains("untracked"), "{text}");
    assert!(!text.contains("/raw"), "{text}");
    // The document itself is not wrapped by a router's layer.
    let openapi = client.get("/openapi.json").send().await;
    assert_eq!(openapi.header("x-layered"), None);
}

// 4. A user-defined error type.

#[derive(Serialize, JsonSchema)]
struct NotFound {
    detail: String,
}

#[derive(Serialize, JsonSchema)]
struct Conflict {
    detail: String,
    existing_id: i64,
}

enum ItemError {
    Missing(i64),
    Taken(i64),
}

impl IntoResponse for ItemError {
    fn into_response(self) -> Response {
        match self {
            ItemError::Missing(id) => (
                StatusCode::NOT_FOUND,
                axum::Json(NotFound {
                    detail: format!("item {id} not found"),
                }),
            )
                .into_response(),
            ItemError::Taken(id) => (
                StatusCode::CONFLICT,
                axum::Json(Conflict {
                    detail: "item is locked".into(),
                    existing_id: id,
                }),
            )
                .into_response(),
        }
    }
}

impl OperationOutput for ItemError {
    fn describe(ctx: &mut OperationContext<'_>) {
        let not_found = ctx.schema_for::<NotFound>();
        ctx.response(404, "Item not found", Some(("application/json", not_found)));
        let conflict = ctx.schema_for::<Conflict>();
        ctx.response(409, "Item is locked", Some(("application/json", conflict)));
        // A `success` call in the error branch must not replace the operation's success.
        ctx.success(Some(418), None);
    }
}

async fn fetch_item(Path(p): Path<ItemId>) -> Result<Json<ItemOut>, ItemError> {
    match p.item_id {
        id if id > 1000 => Err(ItemError::Missing(id)),
        id if id % 2 == 1 => Err(ItemError::Taken(id)),
        id => Ok(Json(ItemOut {
            id,
            name: "Bar".into(),
        })),
    }
}

#[tokio::test]
async fn a_user_error_type_documents_and_answers_its_responses() {
    let items = Router::new()
        .prefix("/items")
        .route("/{item_id}", get(fetch_item));
    let client = client(App::new().include(items));
    let doc = document(&client).await;

    let op = &doc["paths"]["/items/{item_id}"]["get"];
    let codes: Vec<&str> = op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(codes, ["200", "404", "409", "422"]);
    let schema_ref = |code: &str| {
        op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(op["responses"]["200"]["description"], "Successful Response");
    assert_eq!(
        schema_ref("200").as_deref(),
        Some("#/components/schemas/ItemOut")
    );
    assert_eq!(op["responses"]["404"]["description"], "Item not found");
    assert_eq!(
        schema_ref("404").as_deref(),
        Some("#/components/schemas/NotFound")
    );
    assert_eq!(op["responses"]["409"]["description"], "Item is locked");
    assert_eq!(
        schema_ref("409").as_deref(),
        Some("#/components/schemas/Conflict")
    );
    assert_eq!(
        schema_ref("422").as_deref(),
        Some("#/components/schemas/HTTPValidationError")
    );

    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["NotFound"]["properties"]["detail"]["type"],
        "string"
    );
    assert_eq!(
        schemas["Conflict"]["properties"]["existing_id"]["type"],
        "integer"
    );
    let mut required: Vec<&str> = schemas["Conflict"]["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["detail", "existing_id"]);

    let ok = client.get("/items/2").send().await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>(), json!({"id": 2, "name": "Bar"}));

    let missing = client.get("/items/5000").send().await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>(),
        json!({"detail": "item 5000 not found"})
    );

    let taken = client.get("/items/3").send().await;
    assert_eq!(taken.status(), 409);
    assert_eq!(
        taken.json::<Value>(),
        json!({"detail": "item is locked", "existing_id": 3})
    );

    let invalid = client.get("/items/three").send().await;
    assert_eq!(invalid.status(), 422);
    assert_eq!(
        invalid.json::<Value>()["detail"][0]["loc"],
        json!(["path", "item_id"])
    );
}
