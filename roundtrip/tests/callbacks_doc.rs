//! Callbacks and webhooks as the document shows them, and the expression errors that stop
//! an app from being built.

use roundtrip::openapi::model::Method;
use roundtrip::{App, Callback, Header, Json, Query, Router, Webhook, post, put};
use roundtrip_test::{TestClient, oas};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize, JsonSchema)]
struct Paid {
    id: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Refunded {
    id: String,
    amount: f64,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Ack {
    ok: bool,
}

#[derive(Deserialize, JsonSchema)]
struct Order {
    id: String,
}

/// Where the callbacks go: the inputs their expressions read, declared by the operations.
#[derive(Deserialize, JsonSchema)]
struct Hooks {
    #[allow(dead_code)]
    callback_url: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct HookHeader {
    #[allow(dead_code)]
    x_callback: Option<String>,
}

async fn create_order(
    Query(_): Query<Hooks>,
    Header(_): Header<HookHeader>,
    Json(order): Json<Order>,
) -> Json<Value> {
    Json(json!({"id": order.id}))
}

async fn replace_order(Query(_): Query<Hooks>, Json(order): Json<Order>) -> Json<Value> {
    Json(json!({"id": order.id}))
}

fn paid() -> Callback<Paid, Ack> {
    Callback::post(
        "order_paid",
        "{$request.query.callback_url}/paid/{$request.body#/id}",
    )
    .also(Method::Put)
    .description("Sent when the order is paid.")
}

fn refunded() -> Callback<Refunded> {
    Callback::post("order_refunded", "{$request.header.X-Callback}/refunds")
        .summary("Refund sent")
        .operation_id("refund_callback")
        .response::<Ack>(202, "Accepted for later")
}

async fn document(app: App) -> Value {
    let router = app.into_router().expect("the app builds");
    TestClient::new(router)
        .get("/openapi.json")
        .send()
        .await
        .json()
}

#[tokio::test]
async fn an_operation_can_have_several_callbacks_with_several_methods() {
    let app = App::new().route(
        "/orders/",
        post(create_order).callback(paid()).callback(refunded()),
    );
    let doc = document(app).await;
    oas::assert_valid_openapi_31(&doc);
    let callbacks = &doc["paths"]["/orders/"]["post"]["callbacks"];
    let paid = &callbacks["order_paid"]["{$request.query.callback_url}/paid/{$request.body#/id}"];
    assert_eq!(
        paid["post"]["operationId"],
        "order_paid__request_query_callback_url__paid___request_body__id__post"
    );
    assert_eq!(
        paid["put"]["operationId"],
        "order_paid__request_query_callback_url__paid___request_body__id__put"
    );
    assert_eq!(paid["post"]["description"], "Sent when the order is paid.");
    assert_eq!(paid["post"]["summary"], "Order Paid");
    let refund = &callbacks["order_refunded"]["{$request.header.X-Callback}/refunds"]["post"];
    assert_eq!(refund["operationId"], "refund_callback");
    assert_eq!(refund["summary"], "Refund sent");
    assert_eq!(
        refund["responses"]["202"]["description"],
        "Accepted for later"
    );
    assert_eq!(
        refund["responses"]["200"]["content"]["application/json"]["schema"],
        json!({})
    );
    assert!(doc["components"]["schemas"].get("Refunded").is_some());
}

#[tokio::test]
async fn a_router_callback_is_attached_to_every_operation() {
    let orders = Router::new()
        .prefix("/orders")
        .callback(paid())
        .route("/", post(create_order))
        .route("/{id}", put(replace_order));
    let doc = document(App::new().include(orders)).await;
    assert!(doc["paths"]["/orders/"]["post"]["callbacks"]["order_paid"].is_object());
    assert!(doc["paths"]["/orders/{id}"]["put"]["callbacks"]["order_paid"].is_object());
}

#[tokio::test]
async fn an_invalid_expression_fails_the_build_with_its_position() {
    let bad: Callback<Paid> = Callback::post("broken", "{$reqest.body#/id}/x");
    assert!(bad.template().is_err());
    let err = App::new()
        .route("/orders/", post(create_order).callback(bad))
        .into_router()
        .expect_err("the app is refused");
    let text = err.to_string();
    assert!(text.contains("POST /orders/"), "{text}");
    assert!(text.contains("callback `broken`"), "{text}");
    assert!(text.contains("position 2"), "{text}");
    assert!(text.contains("$request."), "{text}");
}

#[tokio::test]
async fn two_callbacks_with_one_name_fail_the_build() {
    let err = App::new()
        .route(
            "/orders/",
            post(create_order).callback(paid()).callback(paid()),
        )
        .into_router()
        .expect_err("the app is refused");
    assert!(
        err.to_string()
            .contains("two callbacks are named `order_paid`"),
        "{err}"
    );
}

#[tokio::test]
async fn webhooks_share_a_path_item_per_event() {
    let app = App::new()
        .webhook(Webhook::<Paid, Ack>::post("order.paid").name("order_paid"))
        .webhook(Webhook::<Paid>::on(Method::Put, "order.paid").name("order_paid"));
    let doc = document(app).await;
    oas::assert_valid_openapi_31(&doc);
    let item = &doc["webhooks"]["order.paid"];
    assert_eq!(item["post"]["operationId"], "order_paidorder_paid_post");
    assert_eq!(item["put"]["operationId"], "order_paidorder_paid_put");
    assert_eq!(
        item["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Ack"
    );
}

#[test]
fn fastapi_dialect_expressions_are_linted_with_the_spec_spelling() {
    let callback: Callback<Paid> = Callback::post(
        "invoice_notification",
        "{$callback_url}/invoices/{$request.body.id}",
    );
    let template = callback.template().expect("valid in FastAPI's dialect");
    let warnings = template.lint();
    let suggestions: Vec<String> = warnings.iter().map(|w| w.suggested().to_string()).collect();
    assert_eq!(
        suggestions,
        ["$request.query.callback_url", "$request.body#/id"]
    );
}
