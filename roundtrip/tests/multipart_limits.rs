//! Multipart bodies within limits, as a client meets them: a huge boundary is refused
//! before the body is read (it once cost seconds of CPU), too many parts and parts too
//! large each get their own 413, and `Form` reads both form encodings, as FastAPI does.

use std::time::{Duration, Instant};

use roundtrip::{App, Form, Json, Multipart, MultipartLimits, UploadFile, post};
use roundtrip_test::{TempDir, TestClient};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, JsonSchema)]
struct Upload {
    file: UploadFile,
    token: String,
}

async fn upload(Multipart(u): Multipart<Upload>) -> Json<Value> {
    Json(json!({"size": u.file.len(), "token": u.token}))
}

#[derive(Deserialize, JsonSchema)]
struct Login {
    username: String,
    password: String,
}

async fn login(Form(l): Form<Login>) -> Json<Value> {
    Json(json!({"username": l.username, "password_len": l.password.len()}))
}

fn client(limits: MultipartLimits) -> TestClient {
    let router = App::new()
        .route("/upload", post(upload))
        .route("/login", post(login))
        .body_limit(4 * 1024 * 1024)
        .multipart_limits(limits)
        .into_router()
        .expect("the app builds");
    TestClient::new(router)
}

/// A multipart body of `parts` (name, file name, content) with `boundary`.
fn body(boundary: &str, parts: &[(&str, Option<&str>, &str)]) -> String {
    let mut body = String::new();
    for (name, filename, content) in parts {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""
        ));
        if let Some(filename) = filename {
            body.push_str(&format!(
                "; filename=\"{filename}\"\r\nContent-Type: text/plain"
            ));
        }
        body.push_str(&format!("\r\n\r\n{content}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

async fn send(
    client: &TestClient,
    path: &str,
    boundary: &str,
    body: String,
) -> roundtrip_test::TestResponse {
    client
        .post(path)
        .header(
            "content-type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
}

#[tokio::test]
async fn a_huge_boundary_is_refused_before_the_body_is_read() {
    let client = client(MultipartLimits::default());
    let boundary = "b".repeat(400 * 1024);
    let mut payload = format!("--{boundary}\r\n");
    payload.push_str(&"x".repeat(2 * 1024 * 1024 - payload.len()));
    let started = Instant::now();
    let response = send(&client, "/upload", &boundary, payload).await;
    let took = started.elapsed();
    assert_eq!(response.status(), 422, "{}", response.text());
    let detail: Value = response.json();
    assert!(
        detail["detail"]
            .as_str()
            .is_some_and(|d| d.contains("at most 70")),
        "{detail}"
    );
    // Not a timing assertion on speed: a bound far above the microseconds it takes, far
    // below the seconds the naive search took.
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // 70 characters are fine.
    let boundary = "b".repeat(70);
    let ok = send(
        &client,
        "/upload",
        &boundary,
        body(
            &boundary,
            &[("file", Some("a.txt"), "hello"), ("token", None, "t")],
        ),
    )
    .await;
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(ok.json::<Value>(), json!({"size": 5, "token": "t"}));
}

#[tokio::test]
async fn a_long_body_with_a_near_miss_boundary_is_parsed_in_linear_time() {
    // Every line nearly matches the delimiter: the naive search was quadratic here.
    let client = client(MultipartLimits::default());
    let boundary = "a".repeat(70);
    let near = format!("\r\n--{}", "a".repeat(69));
    let content = near.repeat(3 * 1024 * 1024 / near.len());
    let started = Instant::now();
    let response = send(
        &client,
        "/upload",
        &boundary,
        body(
            &boundary,
            &[("file", Some("a.txt"), &content), ("token", None, "t")],
        ),
    )
    .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.json::<Value>()["size"], content.len());
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn too_many_parts_and_parts_too_large_get_their_own_413() {
    let client = client(
        MultipartLimits::default()
            .max_parts(5)
            .max_field_size(10)
            .max_file_size(100),
    );
    let many: Vec<_> = (0..6).map(|_| ("token", None, "t")).collect();
    let response = send(&client, "/upload", "XyZ", body("XyZ", &many)).await;
    assert_eq!(response.status(), 413, "{}", response.text());
    assert!(
        response.text().contains("Too many parts"),
        "{}",
        response.text()
    );

    let response = send(
        &client,
        "/upload",
        "XyZ",
        body(
            "XyZ",
            &[("file", Some("a"), "x"), ("token", None, "eleven byte")],
        ),
    )
    .await;
    assert_eq!(response.status(), 413, "{}", response.text());
    assert!(
        response.text().contains("field `token`"),
        "{}",
        response.text()
    );

    let big = "x".repeat(101);
    let response = send(
        &client,
        "/upload",
        "XyZ",
        body("XyZ", &[("file", Some("a"), &big), ("token", None, "t")]),
    )
    .await;
    assert_eq!(response.status(), 413, "{}", response.text());
    assert!(
        response.text().contains("file `file`"),
        "{}",
        response.text()
    );

    // The total stays capped by the body limit.
    let huge = "x".repeat(5 * 1024 * 1024);
    let response = send(
        &client,
        "/upload",
        "XyZ",
        body("XyZ", &[("file", Some("a"), &huge)]),
    )
    .await;
    assert_eq!(response.status(), 413, "{}", response.text());
}

#[tokio::test]
async fn form_reads_both_encodings() {
    let client = client(MultipartLimits::default());
    let urlencoded = client
        .post("/login")
        .form(&[("username", "ada"), ("password", "pw")])
        .send()
        .await;
    assert_eq!(urlencoded.status(), 200, "{}", urlencoded.text());
    let multipart = send(
        &client,
        "/login",
        "XyZ",
        body(
            "XyZ",
            &[("username", None, "ada"), ("password", None, "pw")],
        ),
    )
    .await;
    assert_eq!(multipart.status(), 200, "{}", multipart.text());
    assert_eq!(multipart.json::<Value>(), urlencoded.json::<Value>());

    // A missing field is the same 422 either way.
    let missing = send(
        &client,
        "/login",
        "XyZ",
        body("XyZ", &[("username", None, "ada")]),
    )
    .await;
    assert_eq!(missing.status(), 422);
    assert_eq!(
        missing.json::<Value>()["detail"][0]["loc"],
        json!(["body", "password"])
    );
}

#[derive(Deserialize, JsonSchema)]
struct Spool {
    file: UploadFile,
    copy_to: String,
}

/// The byte at `i` of the uploaded file: a pattern a reordered or lost chunk breaks.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

async fn spool(Multipart(s): Multipart<Spool>) -> Json<Value> {
    use tokio::io::AsyncReadExt;
    let mut reader = s.file.reader().await.expect("the upload reads");
    let (mut at, mut matches, mut chunk) = (0, true, vec![0u8; 64 * 1024]);
    loop {
        let read = reader.read(&mut chunk).await.expect("the upload reads");
        if read == 0 {
            break;
        }
        matches &= chunk[..read]
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern(at + i));
        at += read;
    }
    let copied = s
        .file
        .save_to(&s.copy_to)
        .await
        .expect("the copy is written");
    Json(json!({
        "size": s.file.len(), "read": at, "matches": matches, "copied": copied,
        "spooled": s.file.is_spooled(),
        "path": s.file.path().map(|p| p.display().to_string()),
    }))
}

/// Sends a multipart body with one file of `size` bytes over a real socket, in chunks
/// of 64 KiB as a client streams it, and returns the status and the JSON answer.
async fn upload_over_a_socket(app: App, size: usize, copy_to: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let built = app.build().expect("the app builds");
    let server = tokio::spawn(built.serve_on(listener, async move {
        let _ = stopped.await;
    }));
    let head = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"copy_to\"\r\n\r\n{copy_to}\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = "\r\n--XyZ--\r\n";
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request = format!(
        "POST /spool HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n{head}",
        head.len() + size + tail.len()
    );
    stream.write_all(request.as_bytes()).await.expect("writes");
    let file: Vec<u8> = (0..size).map(pattern).collect();
    for chunk in file.chunks(64 * 1024) {
        stream.write_all(chunk).await.expect("writes");
    }
    stream.write_all(tail.as_bytes()).await.expect("writes");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("reads");
    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("the server stops");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // `Connection: close` answers are not chunked by hyper when the length is known.
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_large_upload_is_spooled_to_disk_as_it_arrives_and_deleted_after() {
    let dir = TempDir::new();
    let copy = dir.path().join("copy.bin");
    let size = 20 * 1024 * 1024 + 17;
    let app = App::new()
        .route("/spool", post(spool))
        .body_limit(32 * 1024 * 1024);
    let (status, answer) = upload_over_a_socket(app, size, &copy.display().to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["size"], size);
    assert_eq!(answer["read"], size);
    assert_eq!(answer["matches"], true);
    assert_eq!(answer["spooled"], true, "a 20 MiB file stayed in memory");
    let path = answer["path"].as_str().expect("a spooled file has a path");
    // The upload was dropped with the handler's arguments, before the answer left.
    assert!(
        !std::path::Path::new(path).exists(),
        "the temporary file {path} outlived its request"
    );
    let copied = std::fs::read(&copy).expect("the copy");
    assert_eq!(answer["copied"], size);
    assert!(copied.iter().enumerate().all(|(i, b)| *b == pattern(i)));
}

#[tokio::test]
async fn the_spool_threshold_is_a_setting_and_small_files_stay_in_memory() {
    let dir = TempDir::new();
    let copy = dir.path().join("copy.bin").display().to_string();
    let small = App::new().route("/spool", post(spool));
    let (status, answer) = upload_over_a_socket(small, 1000, &copy).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["spooled"], false);
    assert_eq!(answer["path"], Value::Null);
    assert_eq!(answer["matches"], true);

    let lowered = App::new()
        .route("/spool", post(spool))
        .multipart_limits(MultipartLimits::default().spool_threshold(100));
    let (status, answer) = upload_over_a_socket(lowered, 1000, &copy).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["spooled"], true);
    assert_eq!(answer["matches"], true);

    // The body limit still holds while the body streams, past the threshold too: a 413.
    let capped = App::new()
        .route("/spool", post(spool))
        .body_limit(64 * 1024)
        .multipart_limits(MultipartLimits::default().spool_threshold(100));
    let client = TestClient::new(capped.into_router().expect("the app builds"));
    let big = "x".repeat(1024 * 1024);
    let refused = send(
        &client,
        "/spool",
        "XyZ",
        body(
            "XyZ",
            &[("copy_to", None, &copy), ("file", Some("big"), &big)],
        ),
    )
    .await;
    assert_eq!(refused.status(), 413, "{}", refused.text());
}
