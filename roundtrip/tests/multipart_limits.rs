//! Multipart bodies within limits, as a client meets them: a huge boundary is refused
//! before the body is read (it once cost seconds of CPU), too many parts and parts too
//! large each get their own 413, and `Form` reads both form encodings, as FastAPI does.

use std::time::{Duration, Instant};

use roundtrip::{App, Form, Json, Multipart, MultipartLimits, UploadFile, post};
use roundtrip_test::TestClient;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, JsonSchema)]
struct Upload {
    file: UploadFile,
    token: String,
}

async fn upload(Multipart(u): Multipart<Upload>) -> Json<Value> {
    Json(json!({"size": u.file.bytes.len(), "token": u.token}))
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
