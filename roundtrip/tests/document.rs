//! What a handler's types and the route's settings put in the document.

use axum::extract::State;
use roundtrip::openapi::model::{Contact, ExternalDocs, License, Tag};
use roundtrip::{
    App, Header, HttpError, Json, NoContent, Path, Query, Redirect, Router, get, patch, post, put,
};
use roundtrip_test::{TestClient, oas};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize, JsonSchema)]
struct Item {
    name: String,
}

#[derive(Serialize, JsonSchema)]
struct ItemOut {
    id: i64,
    name: String,
}

#[derive(Serialize, JsonSchema)]
struct Message {
    message: String,
}

#[derive(Deserialize, JsonSchema)]
struct ItemId {
    item_id: i64,
}

#[derive(Deserialize, JsonSchema)]
struct Paging {
    #[serde(default)]
    skip: i64,
    limit: Option<i64>,
}

#[derive(Deserialize, JsonSchema)]
struct RequestId {
    x_request_id: String,
}

async fn create_item(Json(item): Json<Item>) -> Json<ItemOut> {
    Json(ItemOut {
        id: 1,
        name: item.name,
    })
}

async fn read_item(Path(p): Path<ItemId>) -> Result<Json<ItemOut>, HttpError> {
    if p.item_id > 1000 {
        return Err(HttpError::not_found("Item not found"));
    }
    Ok(Json(ItemOut {
        id: p.item_id,
        name: "Foo".into(),
    }))
}

async fn list_items(Query(p): Query<Paging>) -> Json<Value> {
    Json(json!({"skip": p.skip, "limit": p.limit}))
}

async fn replace_item(
    Path(p): Path<i64>,
    Header(h): Header<RequestId>,
    Json(item): Json<Item>,
) -> Json<Value> {
    Json(json!({"id": p, "name": item.name, "request": h.x_request_id}))
}

async fn delete_item(Path(_p): Path<i64>) -> NoContent {
    NoContent
}

async fn patch_item(Path(p): Path<i64>) -> Json<Value> {
    Json(json!({"id": p}))
}

async fn old() -> Redirect {
    Redirect::to("/items/")
}

async fn counter(State(count): State<u32>) -> String {
    format!("count {count}")
}

fn app() -> App<u32> {
    let items = Router::new()
        .prefix("/items")
        .tag("items")
        .response_status(404, "Not found")
        .route("/", get(list_items).post(create_item).status(201))
        .route(
            "/{item_id}",
            get(read_item)
                .put(replace_item)
                .delete(delete_item)
                .status(204)
                .patch(patch_item)
                .deprecated()
                .operation_id("patch_item_legacy"),
        );
    App::with_state(7u32)
        .title("Tour")
        .version("2.5.0")
        .summary("Every feature once.")
        .description("A **tour**.")
        .terms_of_service("https://example.com/terms/")
        .contact(Contact {
            name: Some("Team".into()),
            url: None,
            email: Some("team@example.com".into()),
        })
        .license(License {
            name: "Apache 2.0".into(),
            identifier: Some("Apache-2.0".into()),
            url: None,
        })
        .server("https://api.example.com", Some("Production"))
        .tag(Tag {
            name: "items".into(),
            description: Some("Operations with items.".into()),
            external_docs: Some(ExternalDocs {
                url: "https://example.com/items/".into(),
                description: None,
            }),
        })
        .include(items)
        .route(
            "/old",
            get(old)
                .summary("Go elsewhere")
                .response_description("Moved"),
        )
        .route("/count", get(counter).hidden())
        .route(
            "/message",
            post(create_item).response::<Message>(409, "Item already exists"),
        )
}

async fn document() -> Value {
    let router = app().into_router().expect("the app builds");
    TestClient::new(router)
        .get("/openapi.json")
        .send()
        .await
        .json()
}

#[tokio::test]
async fn app_metadata_is_published() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Tour");
    assert_eq!(doc["info"]["version"], "2.5.0");
    assert_eq!(doc["info"]["summary"], "Every feature once.");
    assert_eq!(doc["info"]["termsOfService"], "https://example.com/terms/");
    assert_eq!(doc["info"]["contact"]["email"], "team@example.com");
    assert_eq!(doc["info"]["license"]["identifier"], "Apache-2.0");
    assert_eq!(doc["servers"][0]["description"], "Production");
    assert_eq!(
        doc["tags"][0]["externalDocs"]["url"],
        "https://example.com/items/"
    );
    oas::assert_valid_openapi_31(&doc);
}

#[tokio::test]
async fn routers_prefix_tag_and_share_responses() {
    let doc = document().await;
    let list = &doc["paths"]["/items/"]["get"];
    assert_eq!(list["operationId"], "list_items_items__get");
    assert_eq!(list["summary"], "List Items");
    assert_eq!(list["tags"], json!(["items"]));
    assert_eq!(list["responses"]["404"]["description"], "Not found");
    let params: Vec<(&str, bool)> = list["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| (p["name"].as_str().unwrap_or(""), p["required"] == true))
        .collect();
    assert_eq!(params, [("skip", false), ("limit", false)]);
    assert_eq!(list["parameters"][0]["schema"]["default"], 0);
    assert_eq!(list["parameters"][0]["schema"]["title"], "Skip");
}

#[tokio::test]
async fn status_override_is_documented_and_applied() {
    let doc = document().await;
    let create = &doc["paths"]["/items/"]["post"]["responses"];
    assert!(create.get("201").is_some(), "{create}");
    assert!(create.get("200").is_none(), "{create}");
    assert!(doc["paths"]["/items/{item_id}"]["delete"]["responses"]["204"]["content"].is_null());

    let client = TestClient::new(app().into_router().expect("builds"));
    let created = client
        .post("/items/")
        .json(&json!({"name": "x"}))
        .send()
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>()["name"], "x");
    let deleted = client.delete("/items/3").send().await;
    assert_eq!(deleted.status(), 204);
    assert!(deleted.bytes().is_empty());
}

#[tokio::test]
async fn every_method_and_path_parameter_form_is_documented() {
    let doc = document().await;
    let item = &doc["paths"]["/items/{item_id}"];
    for method in ["get", "put", "delete", "patch"] {
        let op = &item[method];
        assert_eq!(op["parameters"][0]["name"], "item_id", "{method}");
        assert_eq!(op["parameters"][0]["in"], "path", "{method}");
        assert_eq!(op["parameters"][0]["required"], true, "{method}");
        assert_eq!(op["parameters"][0]["schema"]["type"], "integer", "{method}");
    }
    assert_eq!(item["put"]["parameters"][1]["name"], "x-request-id");
    assert_eq!(item["put"]["parameters"][1]["in"], "header");
    assert_eq!(
        item["put"]["parameters"][1]["schema"]["title"],
        "X-Request-Id"
    );
    assert_eq!(item["patch"]["deprecated"], true);
    assert_eq!(item["patch"]["operationId"], "patch_item_legacy");
    assert_eq!(item["get"]["operationId"], "read_item_items__item_id__get");
}

#[tokio::test]
async fn outputs_document_their_content() {
    let doc = document().await;
    let read = &doc["paths"]["/items/{item_id}"]["get"]["responses"]["200"];
    assert_eq!(
        read["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ItemOut"
    );
    let old = &doc["paths"]["/old"]["get"];
    assert_eq!(old["summary"], "Go elsewhere");
    assert_eq!(old["responses"]["307"]["description"], "Moved");
    assert!(old["responses"]["307"]["content"].is_null());
    assert!(old["responses"].get("422").is_none(), "no input, no 422");
    let message = &doc["paths"]["/message"]["post"]["responses"]["409"];
    assert_eq!(message["description"], "Item already exists");
    assert_eq!(
        message["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Message"
    );
    assert_eq!(doc["components"]["schemas"]["ItemOut"]["title"], "ItemOut");
    assert_eq!(
        doc["components"]["schemas"]["ItemOut"]["properties"]["id"]["title"],
        "Id"
    );
}

async fn events() -> roundtrip::response::Streaming {
    let chunks = ["data: one\n\n", "data: two\n\n"].map(Ok::<_, std::io::Error>);
    roundtrip::response::Streaming::new("text/event-stream", futures_util::stream::iter(chunks))
}

async fn report() -> roundtrip::response::FileResponse {
    roundtrip::response::FileResponse::new(env!("CARGO_MANIFEST_PATH")).media_type("text/plain")
}

async fn page() -> roundtrip::Html<&'static str> {
    roundtrip::Html("<h1>Hi</h1>")
}

async fn plain() -> String {
    "hi".to_owned()
}

#[tokio::test]
async fn every_kind_of_body_is_documented_with_the_type_it_is_served_with() {
    let client = TestClient::new(
        App::new()
            .route("/events", get(events).media_type("text/event-stream"))
            .route("/report", get(report).media_type("text/plain"))
            .route("/bytes", get(report))
            .route("/page", get(page))
            .route("/plain", get(plain))
            .into_router()
            .expect("the app builds"),
    );
    let doc: Value = client.get("/openapi.json").send().await.json();
    for (path, media) in [
        ("/events", "text/event-stream"),
        ("/report", "text/plain"),
        ("/bytes", "application/octet-stream"),
        ("/page", "text/html"),
        ("/plain", "text/plain"),
    ] {
        let content = &doc["paths"][path]["get"]["responses"]["200"]["content"];
        let documented: Vec<&String> = content.as_object().expect("content").keys().collect();
        assert_eq!(documented, vec![media], "{path}: {content}");
        let served = client.get(path).send().await;
        assert_eq!(served.status(), 200, "{path}");
        let header = served
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if path != "/bytes" {
            assert!(header.starts_with(media), "{path}: served as {header}");
        }
    }
    assert_eq!(
        client.get("/events").send().await.text(),
        "data: one\n\ndata: two\n\n"
    );
    oas::assert_valid_openapi_31(&doc);
}

#[tokio::test]
async fn hidden_operations_are_served_but_not_documented() {
    let doc = document().await;
    assert!(doc["paths"].get("/count").is_none());
    let client = TestClient::new(app().into_router().expect("builds"));
    let response = client.get("/count").send().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "count 7");
}

#[tokio::test]
async fn handler_errors_and_unknown_routes_answer_in_fastapis_shape() {
    let client = TestClient::new(app().into_router().expect("builds"));
    let missing = client.get("/items/5000").send().await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>(), json!({"detail": "Item not found"}));
    let nope = client.get("/nope").send().await;
    assert_eq!(nope.status(), 404);
    assert_eq!(nope.json::<Value>(), json!({"detail": "Not Found"}));
    let wrong_method = client.patch("/items/").send().await;
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(
        wrong_method.json::<Value>(),
        json!({"detail": "Method Not Allowed"})
    );
    let redirect = client.get("/old").send().await;
    assert_eq!(redirect.status(), 307);
    assert_eq!(redirect.header("location"), Some("/items/"));
}

#[tokio::test]
async fn docs_urls_can_be_moved_or_turned_off() {
    let client = TestClient::new(app().into_router().expect("builds"));
    for path in ["/docs", "/redoc"] {
        let page = client.get(path).send().await;
        assert_eq!(page.status(), 200, "{path}");
        assert!(page.text().contains("/openapi.json"), "{path}");
    }
    let moved = app()
        .openapi_url(Some("/api/schema.json"))
        .docs_url(Some("/api/docs"))
        .redoc_url(None)
        .into_router()
        .expect("builds");
    let client = TestClient::new(moved);
    assert_eq!(client.get("/openapi.json").send().await.status(), 404);
    assert_eq!(client.get("/redoc").send().await.status(), 404);
    assert_eq!(client.get("/api/schema.json").send().await.status(), 200);
    let docs = client.get("/api/docs").send().await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().contains("/api/schema.json"));

    let off = app().openapi_url(None).into_router().expect("builds");
    let client = TestClient::new(off);
    for path in ["/openapi.json", "/docs", "/redoc"] {
        assert_eq!(client.get(path).send().await.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn build_problems_are_reported_together() {
    async fn a() -> &'static str {
        "a"
    }
    let err = App::new()
        .route("/x", get(a))
        .route("/x", get(a))
        .route("no-slash", get(a))
        .include(Router::new().prefix("items/").route("/y", put(a)))
        .into_router()
        .expect_err("the app is refused");
    let text = err.to_string();
    assert!(text.contains("GET /x is declared twice"), "{text}");
    assert!(text.contains("`no-slash` must start with `/`"), "{text}");
    assert!(text.contains("prefix `items/`"), "{text}");
    assert_eq!(err.problems().len(), 3, "{text}");
}

#[tokio::test]
async fn plain_axum_routes_and_layers_still_work() {
    use axum::routing::get as axum_get;
    let extra: axum::Router<u32> =
        axum::Router::new().route("/plain", axum_get(|| async { "plain" }));
    let router = app()
        .merge_axum(extra)
        .layer(axum::middleware::map_response(
            |mut response: axum::response::Response| async move {
                response
                    .headers_mut()
                    .insert("x-layer", http::HeaderValue::from_static("yes"));
                response
            },
        ))
        .into_router()
        .expect("builds");
    let client = TestClient::new(router);
    let plain = client.get("/plain").send().await;
    assert_eq!(plain.text(), "plain");
    assert_eq!(plain.header("x-layer"), Some("yes"));
    let doc: Value = client.get("/openapi.json").send().await.json();
    assert!(doc["paths"].get("/plain").is_none());
    let documented = client.get("/items/").send().await;
    assert_eq!(documented.header("x-layer"), Some("yes"));
}

#[tokio::test]
async fn extractors_that_are_not_documented_do_not_appear() {
    async fn with_method(method: http::Method, Query(p): Query<Paging>) -> String {
        format!("{method} {}", p.skip)
    }
    let router = App::new()
        .route("/m", patch(with_method))
        .into_router()
        .expect("builds");
    let client = TestClient::new(router);
    assert_eq!(client.patch("/m?skip=3").send().await.text(), "PATCH 3");
    let doc: Value = client.get("/openapi.json").send().await.json();
    let params = doc["paths"]["/m"]["patch"]["parameters"]
        .as_array()
        .expect("params")
        .len();
    assert_eq!(params, 2);
}
