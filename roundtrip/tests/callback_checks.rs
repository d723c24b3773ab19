//! A callback that builds is a callback that can be sent: every expression is checked
//! against the operation it is attached to when the app is built, and each mistake is one
//! error that says what the operation declares instead.

// The input types exist for what they declare; the handlers never read their fields.
#![allow(dead_code)]

use roundtrip::{
    App, BuildError, Callback, Header, Json, Notify, Path, Query, Router, SendError, get, post,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A shipment as the client sends it: the server assigns the id.
#[derive(Deserialize, JsonSchema)]
struct NewShipment {
    weight_kg: f64,
    destination: String,
    callback_url: String,
}

#[derive(Serialize, JsonSchema)]
struct Shipment {
    id: u64,
    status: String,
    note: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Shipped {
    id: u64,
}

#[derive(Deserialize, JsonSchema)]
struct Priority {
    priority: Option<String>,
}

async fn create_shipment(
    Query(_): Query<Priority>,
    notify: Notify<Shipped>,
    Json(_): Json<NewShipment>,
) -> Result<Json<Shipment>, SendError> {
    notify.send(Shipped { id: 1 }).await?;
    Ok(Json(Shipment {
        id: 1,
        status: "created".into(),
        note: None,
    }))
}

fn shipments(expression: &str) -> App {
    App::new().route(
        "/shipments/",
        post(create_shipment)
            .status(201)
            .callback(Callback::<Shipped>::post("shipment_shipped", expression)),
    )
}

fn problems(app: App) -> Vec<String> {
    match app.build() {
        Ok(_) => Vec::new(),
        Err(err) => err.problems().to_vec(),
    }
}

#[test]
fn a_body_field_the_body_lacks_is_one_error_naming_the_fields_it_has() {
    // The server assigns the id, so the request body has none.
    let found = problems(shipments("{$callback_url}/shipments/{$request.body.id}"));
    assert_eq!(
        found,
        [
            "POST /shipments/: callback `shipment_shipped`: \"{$request.body.id}\" at position 28 \
             of \"{$callback_url}/shipments/{$request.body.id}\": the body of POST /shipments/ \
             has no field `id`; it has `weight_kg`, `destination`, `callback_url`"
        ],
        "one error, and no second one about the handler's Notify"
    );
}

#[test]
fn expressions_that_fit_the_operation_build() {
    for expression in [
        // `$callback_url` is the body field of that name here.
        "{$callback_url}/shipments/{$response.body#/id}",
        "{$request.body#/callback_url}/{$request.query.priority}/{$statusCode}",
        // An optional value is allowed; a request without it answers 422 at send time.
        "{$callback_url}/notes/{$response.body#/note}",
    ] {
        assert_eq!(
            problems(shipments(expression)),
            Vec::<String>::new(),
            "{expression}"
        );
    }
}

#[test]
fn undeclared_parameters_and_response_fields_are_named_with_what_is_declared() {
    let query = problems(shipments("{$request.query.callback_url}/shipments"));
    assert_eq!(query.len(), 1, "{query:?}");
    assert!(
        query[0].contains("at position 2")
            && query[0].contains(
                "POST /shipments/ has no query parameter `callback_url`; it declares `priority`"
            ),
        "{query:?}"
    );
    let header = problems(shipments("{$callback_url}/{$request.header.X-Trace}"));
    assert!(
        header[0].contains("has no header `X-Trace`; it declares none"),
        "{header:?}"
    );
    let response = problems(shipments("{$callback_url}/{$response.body#/tracking}"));
    assert!(
        response[0].contains(
            "the response of POST /shipments/ (201) has no field `tracking`; it has `id`, `status`, `note`"
        ),
        "{response:?}"
    );
    let object = problems(shipments("{$callback_url}/{$response.body}"));
    assert!(
        object[0].contains("is an object; only a string, number or boolean can be put into a URL"),
        "{object:?}"
    );
}

#[derive(Deserialize, JsonSchema)]
struct CallbackQuery {
    callback_url: Option<String>,
}

async fn create_with_both(
    Query(_): Query<CallbackQuery>,
    notify: Notify<Shipped>,
    Json(_): Json<NewShipment>,
) -> Result<Json<Value>, SendError> {
    notify.send(Shipped { id: 1 }).await?;
    Ok(Json(json!({})))
}

#[test]
fn callback_url_must_name_exactly_one_input() {
    let ambiguous = problems(App::new().route(
        "/shipments/",
        post(create_with_both).callback(Callback::<Shipped>::post(
            "shipment_shipped",
            "{$callback_url}/shipments",
        )),
    ));
    assert_eq!(ambiguous.len(), 1, "{ambiguous:?}");
    assert!(
        ambiguous[0].contains(
            "`$callback_url` is ambiguous: POST /shipments/ has a query parameter and a body field named `callback_url`; write `{$request.query.callback_url}` or `{$request.body#/callback_url}` instead"
        ),
        "{ambiguous:?}"
    );

    async fn ping(notify: Notify<Shipped>) -> Result<Json<Value>, SendError> {
        notify.send(Shipped { id: 1 }).await?;
        Ok(Json(json!({})))
    }
    let none = problems(App::new().route(
        "/ping",
        post(ping).callback(Callback::<Shipped>::post("pinged", "{$callback_url}/pong")),
    ));
    assert_eq!(none.len(), 1, "{none:?}");
    assert!(
        none[0].contains("POST /ping has no query, path or header parameter or body field of that name; it declares no inputs"),
        "{none:?}"
    );
}

#[derive(Deserialize, JsonSchema)]
struct ItemId {
    item_id: u64,
}

async fn read_item(Path(_): Path<ItemId>, Query(_): Query<CallbackQuery>) -> Json<Value> {
    Json(json!({}))
}

async fn list_items() -> Json<Value> {
    Json(json!([]))
}

#[test]
fn a_router_callback_is_checked_against_every_operation_of_the_router() {
    let items = Router::new()
        .prefix("/items")
        .callback(Callback::<Shipped>::post(
            "item_seen",
            "{$request.query.callback_url}/seen/{$request.path.item_id}",
        ))
        .route("/{item_id}", get(read_item))
        .route("/", get(list_items));
    let found = problems(App::new().include(items));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .all(|p| p.starts_with("GET /items/: callback `item_seen`")),
        "only the operation that lacks the inputs fails: {found:?}"
    );
    assert!(
        found[0].contains("no query parameter `callback_url`"),
        "{found:?}"
    );
    assert!(
        found[1].contains("no path parameter `item_id`"),
        "{found:?}"
    );
}

#[test]
fn an_invalid_expression_is_one_error_not_two() {
    let found = problems(shipments("{$reqest.body#/id}/x"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("callback `shipment_shipped` has an invalid expression")
            && found[0].contains("position 2"),
        "{found:?}"
    );
}

#[test]
fn axum_0_7_paths_are_a_build_error_that_says_what_to_write() {
    let err: BuildError = App::new()
        .route("/shipments/:id", get(list_items))
        .route("/files/*rest", get(list_items))
        .build()
        .expect_err("axum 0.8 would panic on these");
    assert_eq!(
        err.problems(),
        [
            "the path `/shipments/:id` has the segment `:id`, axum 0.7's spelling of a path parameter; write `{id}`",
            "the path `/files/*rest` has the segment `*rest`, axum 0.7's spelling of a catch-all; write `{*rest}`",
        ]
    );
}

#[derive(Deserialize, JsonSchema)]
struct TraceHeader {
    x_trace: Option<String>,
}

async fn create_with_axum_json(
    Header(_): Header<TraceHeader>,
    notify: Notify<Shipped>,
    axum::Json(_): axum::Json<Value>,
) -> Result<Json<Value>, SendError> {
    notify.send(Shipped { id: 1 }).await?;
    Ok(Json(json!({})))
}

#[test]
fn a_callback_that_reads_the_body_needs_the_extractor_that_shares_it() {
    let found = problems(App::new().route(
        "/shipments/",
        post(create_with_axum_json).callback(Callback::<Shipped>::post(
            "shipment_shipped",
            "{$request.header.X-Trace}/{$request.body#/id}",
        )),
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains(
            "reads the request body, which the handler does not read with `roundtrip::Json`"
        ),
        "{found:?}"
    );
}

#[test]
fn an_operation_with_a_notify_documents_the_422_of_refused_urls() {
    async fn by_url(notify: Notify<Shipped>) -> Result<Json<Value>, SendError> {
        notify.send(Shipped { id: 1 }).await?;
        Ok(Json(json!({})))
    }
    let doc = App::new()
        .route(
            "/by-url",
            post(by_url).callback(Callback::<Shipped>::post("echoed", "{$url}/echo")),
        )
        .openapi()
        .expect("builds");
    let by_url = doc.paths["/by-url"]
        .operation(roundtrip::Method::Post)
        .expect("documented");
    assert_eq!(
        by_url.responses["422"].description, "Validation Error",
        "a Notify is an input whose URL can be refused, even without parameters"
    );
}
