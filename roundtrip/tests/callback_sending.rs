//! Callbacks as a client meets them: a `{$response.body#/id}` URL carries the id the handler
//! assigned, committed before the answer leaves; refused URLs answer the documented 422 at
//! the input they came from, with no connection made; and `SendError` composes with `?`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use roundtrip::delivery::outbox::{MessageFilter, Outbox};
use roundtrip::delivery::ssrf::StaticResolver;
use roundtrip::{
    App, BuiltApp, Callback, HttpError, Json, Notify, Query, SendError, State, StatusCode, post,
};
use roundtrip_test::{MockReceiver, TempDir, TestClient};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Deserialize, JsonSchema)]
struct NewShipment {
    weight_kg: f64,
    /// Read by the callback's `$callback_url`, not by the handler.
    #[allow(dead_code)]
    callback_url: String,
}

#[derive(Serialize, JsonSchema)]
struct Shipment {
    id: u64,
    status: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Shipped {
    id: u64,
    weight_kg: f64,
}

/// The server assigns the id; the callback URL carries it back.
fn shipment_created() -> Callback<Shipped> {
    Callback::post(
        "shipment_created",
        "{$callback_url}/shipments/{$response.body#/id}",
    )
}

async fn create_shipment(
    State(ids): State<Arc<AtomicU64>>,
    notify: Notify<Shipped>,
    Json(new): Json<NewShipment>,
) -> Result<Json<Shipment>, HttpError> {
    let id = 1000 + ids.fetch_add(1, Ordering::SeqCst);
    let sent = notify
        .send(Shipped {
            id,
            weight_kg: new.weight_kg,
        })
        .await?;
    assert!(sent.as_str().starts_with("msg_"));
    if new.weight_kg > 1000.0 {
        // Too heavy after all: the answer is an error, so nothing was announced.
        return Err(HttpError::bad_request("too heavy to ship"));
    }
    Ok(Json(Shipment {
        id,
        status: "created".into(),
    }))
}

fn shipments(dir: &TempDir) -> App<Arc<AtomicU64>> {
    App::with_state(Arc::new(AtomicU64::new(0)))
        .route(
            "/shipments/",
            post(create_shipment)
                .status(201)
                .callback(shipment_created()),
        )
        .database_url(dir.sqlite_url("outbox.db"))
}

async fn stored(built: &BuiltApp) -> Vec<String> {
    let outbox: Arc<dyn Outbox> = built.outbox().await.expect("opens");
    let page = outbox.list(&MessageFilter::new()).await.expect("lists");
    page.messages.iter().map(|m| m.url.to_string()).collect()
}

/// The shipments app, delivering to loopback signed with the receiver's secret.
fn delivering(dir: &TempDir, receiver: &MockReceiver) -> BuiltApp {
    shipments(dir)
        .allow_loopback_deliveries()
        .signing_secret(receiver.secret())
        .build()
        .expect("builds")
}

#[tokio::test]
async fn a_response_callback_carries_the_id_the_handler_assigned() {
    let dir = TempDir::new();
    let receiver = MockReceiver::start().await;
    let built = delivering(&dir, &receiver);
    let workers = built.start_delivery().await.expect("starts");
    let client = TestClient::new(built.router.clone());
    let response = client
        .post("/shipments/")
        .json(&json!({"weight_kg": 2.5, "callback_url": receiver.url("/hooks").as_str()}))
        .send()
        .await;
    assert_eq!(response.status(), 201, "{}", response.text());
    let id = response.json::<Value>()["id"].as_u64().expect("an id");
    // Committed before the answer left: it is in the outbox already.
    let urls = stored(&built).await;
    assert_eq!(
        urls,
        [receiver.url(&format!("/hooks/shipments/{id}")).to_string()]
    );
    let delivered = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    assert_eq!(delivered[0].path, format!("/hooks/shipments/{id}"));
    assert!(delivered[0].verified);
    assert_eq!(
        delivered[0].json().expect("json"),
        json!({"id": id, "weight_kg": 2.5})
    );
    if let Some(workers) = workers {
        workers.shutdown(Duration::from_secs(2)).await;
    }
}

/// One HTTP/1.1 exchange over a real socket: the status and the body.
async fn http_post(addr: SocketAddr, target: &str, body: &Value) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the app listens");
    let body = body.to_string();
    let request = format!(
        "POST {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_owned())
}

#[tokio::test]
async fn a_response_callback_is_delivered_through_a_real_socket() {
    let dir = TempDir::new();
    let receiver = MockReceiver::start().await;
    let built = delivering(&dir, &receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(built.serve_on(listener, async move {
        let _ = stopped.await;
    }));
    let mut ids = Vec::new();
    for weight in [1.0, 2.0] {
        let (status, body) = http_post(
            addr,
            "/shipments/",
            &json!({"weight_kg": weight, "callback_url": receiver.url("/hooks").as_str()}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("JSON");
        ids.push(answer["id"].as_u64().expect("an id"));
    }
    let delivered = receiver
        .wait_for(2, Duration::from_secs(10))
        .await
        .expect("both delivered by the serving app's workers");
    let mut paths: Vec<String> = delivered.iter().map(|d| d.path.clone()).collect();
    paths.sort();
    assert_eq!(
        paths,
        ids.iter()
            .map(|id| format!("/hooks/shipments/{id}"))
            .collect::<Vec<_>>()
    );
    let _ = stop.send(());
    server.await.expect("joined").expect("served");
}

#[tokio::test]
async fn an_error_answer_sends_nothing_and_a_failed_commit_replaces_the_success() {
    let dir = TempDir::new();
    let built = shipments(&dir)
        .allow_loopback_deliveries()
        .build()
        .expect("builds");
    let client = TestClient::new(built.router.clone());
    let heavy = client
        .post("/shipments/")
        .json(&json!({"weight_kg": 5000.0, "callback_url": "http://127.0.0.1:9/hooks"}))
        .send()
        .await;
    assert_eq!(heavy.status(), 400);
    assert!(
        stored(&built).await.is_empty(),
        "an error announced nothing"
    );

    // The outbox cannot be opened: the client hears that, not a 201 whose callback never
    // comes.
    let missing_dir = dir.path().join("no/such/dir/outbox.db");
    let broken = App::with_state(Arc::new(AtomicU64::new(0)))
        .route(
            "/shipments/",
            post(create_shipment)
                .status(201)
                .callback(shipment_created()),
        )
        .database_url(format!("sqlite://{}", missing_dir.display()))
        .allow_loopback_deliveries()
        .into_router()
        .expect("builds");
    let response = TestClient::new(broken)
        .post("/shipments/")
        .json(&json!({"weight_kg": 1.0, "callback_url": "http://127.0.0.1:9/hooks"}))
        .send()
        .await;
    assert_eq!(response.status(), 503, "{}", response.text());
    assert_eq!(
        response.json::<Value>(),
        json!({"detail": "Service Unavailable"})
    );
}

/// A listener that counts the connections made to it.
struct Counting {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

async fn counting(bind: &str) -> Option<Counting> {
    let listener = tokio::net::TcpListener::bind(bind).await.ok()?;
    let port = listener.local_addr().ok()?.port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    Some(Counting { port, accepted })
}

#[derive(Deserialize, JsonSchema)]
struct PingQuery {
    /// Read by the callback's expression, not by the handlers.
    #[allow(dead_code)]
    callback_url: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct Pong {
    ok: bool,
}

async fn ping(Query(_): Query<PingQuery>, notify: Notify<Pong>) -> Result<Json<Value>, SendError> {
    notify.send(Pong { ok: true }).await?;
    Ok(Json(json!({"sent": true})))
}

#[tokio::test]
async fn refused_callback_urls_answer_the_documented_422_and_connect_nowhere() {
    let dir = TempDir::new();
    let v4 = counting("127.0.0.1:0").await.expect("a loopback port");
    let v6 = counting("[::1]:0").await;
    let v6_port = v6.as_ref().map_or(9, |c| c.port);
    // Names come from an injected resolver: no real lookup is made.
    let resolver = StaticResolver::new()
        .with_host("localhost", ["127.0.0.1".parse().expect("an address")])
        .with_host(
            "billing.internal",
            ["10.20.30.40".parse().expect("an address")],
        );
    let built = shipments(&dir)
        .route(
            "/ping",
            post(ping).callback(Callback::<Pong>::post(
                "pong",
                "{$request.query.callback_url}/pong",
            )),
        )
        .resolver(resolver)
        .build()
        .expect("builds");
    let doc = serde_json::to_value(&*built.openapi).expect("JSON");
    for path in ["/shipments/", "/ping"] {
        assert_eq!(
            doc["paths"][path]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/HTTPValidationError",
            "{path} documents the 422"
        );
    }
    let workers = built.start_delivery().await.expect("starts");
    let client = TestClient::new(built.router.clone());
    let port = v4.port;
    let hostile = [
        (
            format!("http://localhost:{port}/hooks"),
            "the host `localhost` resolves to a loopback address",
        ),
        (
            format!("http://127.0.0.1:{port}/hooks"),
            "`127.0.0.1` is a loopback address",
        ),
        (
            format!("http://[::1]:{v6_port}/hooks"),
            "`::1` is a loopback address",
        ),
        (
            "http://billing.internal/hooks".to_owned(),
            "the host `billing.internal` resolves to a private-use address",
        ),
    ];
    for (url, reason) in &hostile {
        // A callback read from a query parameter, sent while the handler runs.
        let response = client
            .post("/ping")
            .query(&[("callback_url", url.as_str())])
            .send()
            .await;
        assert_eq!(response.status(), 422, "{url}: {}", response.text());
        assert_eq!(
            response.json::<Value>(),
            json!({"detail": [{
                "type": "value_error",
                "loc": ["query", "callback_url"],
                "msg": format!("Value error, {reason}, which this API does not send callbacks to"),
                "input": url,
                "ctx": {"error": {}},
            }]})
        );
        // A callback read from a body field and the response, committed after the handler.
        let response = client
            .post("/shipments/")
            .json(&json!({"weight_kg": 1.0, "callback_url": url}))
            .send()
            .await;
        assert_eq!(response.status(), 422, "{url}: {}", response.text());
        let error = &response.json::<Value>()["detail"][0];
        assert_eq!(error["loc"], json!(["body", "callback_url"]), "{url}");
        let msg = error["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains(reason) && !msg.contains("10.20.30.40"),
            "{msg}"
        );
        assert!(
            !msg.contains("Ssrf") && !msg.contains("allow_loopback"),
            "{msg}"
        );
    }
    assert!(stored(&built).await.is_empty(), "nothing was stored");
    assert_eq!(
        v4.accepted.load(Ordering::SeqCst),
        0,
        "no connection to 127.0.0.1"
    );
    if let Some(v6) = &v6 {
        assert_eq!(
            v6.accepted.load(Ordering::SeqCst),
            0,
            "no connection to ::1"
        );
    }
    if let Some(workers) = workers {
        workers.shutdown(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn json_and_notify_read_a_body_with_a_byte_order_mark_alike() {
    #[derive(Serialize, Deserialize, JsonSchema)]
    struct Order {
        id: String,
    }
    async fn order(
        Query(_): Query<PingQuery>,
        notify: Notify<Order>,
        Json(order): Json<Order>,
    ) -> Result<Json<Value>, SendError> {
        notify
            .send(Order {
                id: order.id.clone(),
            })
            .await?;
        Ok(Json(json!({"id": order.id})))
    }
    let dir = TempDir::new();
    let built = App::new()
        .route(
            "/orders/",
            post(order).callback(Callback::<Order>::post(
                "order_placed",
                "{$request.query.callback_url}/orders/{$request.body#/id}",
            )),
        )
        .database_url(dir.sqlite_url("outbox.db"))
        .allow_loopback_deliveries()
        .build()
        .expect("builds");
    let client = TestClient::new(built.router.clone());
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(br#"{"id": "o-7"}"#);
    let response = client
        .post("/orders/")
        .query(&[("callback_url", "http://127.0.0.1:9/hooks")])
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        stored(&built).await,
        ["http://127.0.0.1:9/hooks/orders/o-7"]
    );
}

/// An error type of the app's own, with the one-line `From` that lets `?` take a
/// `SendError`.
enum ApiError {
    Send(SendError),
}

impl From<SendError> for ApiError {
    fn from(err: SendError) -> Self {
        ApiError::Send(err)
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        match self {
            ApiError::Send(err) => err.into_response(),
        }
    }
}

impl roundtrip::OperationOutput for ApiError {}

#[tokio::test]
async fn question_mark_takes_a_send_error_into_http_error_or_the_apps_own_type() {
    async fn with_http_error(
        Query(_): Query<PingQuery>,
        notify: Notify<Pong>,
    ) -> Result<Json<Value>, HttpError> {
        notify.send(Pong { ok: true }).await?;
        Ok(Json(json!({})))
    }
    async fn with_own_error(
        Query(_): Query<PingQuery>,
        notify: Notify<Pong>,
    ) -> Result<Json<Value>, ApiError> {
        notify.send(Pong { ok: true }).await?;
        Ok(Json(json!({})))
    }
    let pong = || Callback::<Pong>::post("pong", "{$request.query.callback_url}/pong");
    let dir = TempDir::new();
    let client = TestClient::new(
        App::new()
            .route("/http", post(with_http_error).callback(pong()))
            .route("/own", post(with_own_error).callback(pong()))
            .database_url(dir.sqlite_url("outbox.db"))
            .into_router()
            .expect("builds"),
    );
    for path in ["/http", "/own"] {
        let response = client.post(path).send().await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}"
        );
        assert_eq!(
            response.json::<Value>()["detail"][0]["loc"],
            json!(["query", "callback_url"]),
            "{path}"
        );
    }
}
