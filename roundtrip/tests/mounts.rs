//! What an app serves beside its operations: mounted apps with their own document and
//! docs, static files with FastAPI's 404, websockets, templates; and the root path a
//! proxy strips, in the document's servers and the docs pages.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use roundtrip::middleware::from_fn;
use roundtrip::ws::{Message, WebSocket, WebSocketUpgrade};
use roundtrip::{App, Json, Lifespan, get};
use roundtrip_test::{TempDir, TestClient};
use serde_json::{Value, json};

async fn ping() -> Json<Value> {
    Json(json!({"pong": "sub"}))
}

async fn root() -> Json<Value> {
    Json(json!({"app": "main"}))
}

async fn sub_state(Lifespan(name): Lifespan<String>) -> Json<Value> {
    Json(json!({"state": *name}))
}

async fn stamp(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("x-stamped", http::HeaderValue::from_static("yes"));
    response
}

async fn echo(socket: WebSocketUpgrade) -> Response {
    socket.on_upgrade(|mut socket: WebSocket| async move {
        while let Some(Ok(Message::Text(text))) = socket.recv().await {
            if text.as_str() == "bye" {
                let _ = socket
                    .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                        code: 1000,
                        reason: "".into(),
                    })))
                    .await;
                return;
            }
            let answer = format!("Message text was: {}", text.as_str());
            if socket.send(Message::Text(answer.into())).await.is_err() {
                return;
            }
        }
    })
}

fn sub_app(stopped: Arc<AtomicBool>) -> App {
    App::new()
        .title("Sub API")
        .lifespan(
            || async { Ok::<_, Infallible>("sub started".to_owned()) },
            move |_| {
                let stopped = stopped.clone();
                async move { stopped.store(true, Ordering::SeqCst) }
            },
        )
        .route("/ping", get(ping))
        .route("/state", get(sub_state))
}

fn files() -> TempDir {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("hello.txt"), "static file served as is\n").expect("a file");
    std::fs::create_dir(dir.path().join("inner")).expect("a directory");
    dir
}

fn app(files: &TempDir, stopped: Arc<AtomicBool>) -> App {
    App::new()
        .title("Main")
        .route("/", get(root))
        .websocket("/ws", echo)
        .mount("/subapi", sub_app(stopped))
        .static_files("/static", files.path())
        .layer(from_fn(stamp))
}

#[tokio::test]
async fn a_mounted_app_serves_its_routes_document_and_docs_under_its_path() {
    let files = files();
    let stopped = Arc::new(AtomicBool::new(false));
    let client = TestClient::start(app(&files, stopped.clone())).await;
    let ping = client.get("/subapi/ping").send().await;
    assert_eq!(ping.json::<Value>(), json!({"pong": "sub"}));
    assert_eq!(
        ping.header("x-stamped"),
        Some("yes"),
        "the outer middleware covers it"
    );
    let state = client.get("/subapi/state").send().await;
    assert_eq!(state.json::<Value>(), json!({"state": "sub started"}));
    let doc: Value = client.get("/subapi/openapi.json").send().await.json();
    assert_eq!(doc["info"]["title"], "Sub API");
    assert_eq!(doc["servers"], json!([{"url": "/subapi"}]));
    assert!(doc["paths"].get("/ping").is_some());
    let docs = client.get("/subapi/docs").send().await;
    assert_eq!(docs.status(), 200);
    let page = docs.text();
    assert!(page.contains("/subapi/openapi.json"), "{page}");
    assert!(page.contains("/subapi/docs/swagger-ui-bundle.js"), "{page}");
    let missing = client.get("/subapi/nope").send().await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>(), json!({"detail": "Not Found"}));
    // The outer document knows nothing of the mounted app.
    let outer: Value = client.get("/openapi.json").send().await.json();
    assert!(outer["paths"].get("/subapi/ping").is_none());
    assert!(outer.get("servers").is_none());
    client.shutdown().await;
    assert!(
        stopped.load(Ordering::SeqCst),
        "the mounted app's lifespan stopped"
    );
}

#[tokio::test]
async fn static_files_are_served_with_fastapis_404_and_nothing_outside_the_directory() {
    let files = files();
    let client = TestClient::start(app(&files, Arc::default())).await;
    let file = client.get("/static/hello.txt").send().await;
    assert_eq!(file.status(), 200);
    assert_eq!(file.text(), "static file served as is\n");
    assert!(
        file.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    for path in [
        "/static/nope.txt",
        "/static/inner",
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
    ] {
        let response = client.get(path).send().await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.json::<Value>(),
            json!({"detail": "Not Found"}),
            "{path}"
        );
    }
    client.shutdown().await;
}

#[tokio::test]
async fn a_websocket_talks_through_the_test_client() {
    let files = files();
    let client = TestClient::start(app(&files, Arc::default())).await;
    let mut socket = client.websocket("/ws").await;
    socket.send_text("hello").await;
    assert_eq!(
        socket.receive_text().await.as_deref(),
        Some("Message text was: hello")
    );
    socket.send_text("bye").await;
    assert_eq!(socket.closed().await, Ok(1000));
    let refused = client.try_websocket("/nowhere").await;
    assert!(
        matches!(&refused, Err(roundtrip_test::websocket::WebSocketRefused::Status(s, _)) if s.as_u16() == 404),
        "{refused:?}"
    );
    client.shutdown().await;
}

#[tokio::test]
async fn behind_a_proxy_the_root_path_is_the_server_and_the_docs_load_under_it() {
    let files = files();
    let client = TestClient::start(app(&files, Arc::default()).root_path("/api/v1/")).await;
    let doc: Value = client.get("/openapi.json").send().await.json();
    assert_eq!(doc["servers"], json!([{"url": "/api/v1"}]));
    let docs = client.get("/docs").send().await.text();
    for url in [
        "/api/v1/openapi.json",
        "/api/v1/docs/swagger-ui-bundle.js",
        "/api/v1/docs/oauth2-redirect",
    ] {
        assert!(docs.contains(url), "{url} in {docs}");
    }
    let redoc = client.get("/redoc").send().await.text();
    assert!(redoc.contains("/api/v1/openapi.json"), "{redoc}");
    assert!(
        redoc.contains("/api/v1/redoc/redoc.standalone.js"),
        "{redoc}"
    );
    // A mounted app is below the root path.
    let sub: Value = client.get("/subapi/openapi.json").send().await.json();
    assert_eq!(sub["servers"], json!([{"url": "/api/v1/subapi"}]));
    client.shutdown().await;
}

#[tokio::test]
async fn a_forwarded_prefix_is_used_for_that_request_when_it_is_a_plain_path() {
    let files = files();
    let client = TestClient::start(app(&files, Arc::default())).await;
    let proxied = client
        .get("/openapi.json")
        .header("x-forwarded-prefix", "/gateway")
        .send()
        .await;
    assert_eq!(proxied.header("vary"), Some("X-Forwarded-Prefix"));
    assert_eq!(
        proxied.json::<Value>()["servers"],
        json!([{"url": "/gateway"}])
    );
    let docs = client
        .get("/docs")
        .header("x-forwarded-prefix", "/gateway")
        .send()
        .await
        .text();
    assert!(docs.contains("/gateway/openapi.json"), "{docs}");
    let hostile = client
        .get("/docs")
        .header(
            "x-forwarded-prefix",
            "/x'</script><script>alert(1)</script>",
        )
        .send()
        .await
        .text();
    assert!(!hostile.contains("alert(1)"), "{hostile}");
    let direct: Value = client.get("/openapi.json").send().await.json();
    assert!(direct.get("servers").is_none());
    client.shutdown().await;
}

#[test]
fn a_mount_path_must_be_a_plain_prefix() {
    let files = files();
    let err = App::new()
        .mount("/sub/", sub_app(Arc::default()))
        .static_files("files", files.path())
        .build()
        .expect_err("bad mount paths");
    assert_eq!(err.problems().len(), 2, "{err}");
    let broken_sub = App::new().route("items", get(ping));
    let err = App::new()
        .mount("/sub", broken_sub)
        .build()
        .expect_err("the mounted app is broken");
    assert!(
        err.to_string().contains("the app mounted at `/sub`"),
        "{err}"
    );
}

#[cfg(feature = "templates")]
#[tokio::test]
async fn templates_render_html_with_escaped_values() {
    use roundtrip::templates::{TemplateError, Templates};
    use roundtrip::{Html, Path};
    let dir = TempDir::new();
    std::fs::write(dir.path().join("hello.html"), "<h1>Hello, {{ name }}!</h1>")
        .expect("a template");
    let templates = Templates::new(dir.path());
    let app =
        App::with_state(templates).route(
            "/hello/{name}",
            get(
                |axum::extract::State(t): axum::extract::State<Templates>,
                 Path(name): Path<String>| async move {
                    t.render("hello.html", serde_json::json!({"name": name}))
                },
            ),
        );
    let client = TestClient::new(app.into_router().expect("the app builds"));
    let page = client.get("/hello/%3Cb%3EWorld").send().await;
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.text(), "<h1>Hello, &lt;b&gt;World!</h1>");
    let _: Option<Result<Html<String>, TemplateError>> = None;
}
