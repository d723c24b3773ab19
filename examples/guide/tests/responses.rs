//! Every case of FastAPI's recorded answers to the guide, replayed in order against one
//! fresh app, gets the same answer from the roundtrip port: through `TestClient` (no
//! socket), and through a real socket to the example's binary, started from another
//! working directory.
//!
//! Compared for each case: the status; the headers the case names (exact, present or
//! absent); the media type when there is a body to compare; and the body as the case
//! says: JSON (a 422's `detail` entry by entry on type, loc, msg, input and ctx), raw
//! text, a document in meaning, or a page that contains a URL. A case marked
//! `eventually` is retried for up to 2 s. The websocket case replays its transcript.
//!
//! Lists of header names (`access-control-expose-headers`) are compared without case,
//! as header names are: tower-http writes them in lower case, Starlette as configured.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, StatusCode};
use roundtrip_test::{TempDir, TestClient, meaning, refs};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;

fn cases() -> Vec<Value> {
    refs::fastapi_cases("guide-responses.json")
}

/// An answer, from either client.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// The request a case describes: method, URL, headers, and a JSON or raw body.
struct Planned {
    method: http::Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

fn plan(case: &Value) -> Planned {
    let request = &case["request"];
    let mut headers: Vec<(String, String)> = request["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let body = if let Some(json) = request.get("json") {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
        Some(serde_json::to_vec(json).expect("a JSON body"))
    } else {
        request["content"].as_str().map(|c| c.as_bytes().to_vec())
    };
    Planned {
        method: request["method"]
            .as_str()
            .unwrap_or("GET")
            .parse()
            .expect("a method"),
        url: request["url"].as_str().unwrap_or("/").to_owned(),
        headers,
        body,
    }
}

/// Sends requests one way or another.
enum Client {
    InProcess(TestClient),
    Socket { http: reqwest::Client, port: u16 },
}

impl Client {
    async fn send(&self, case: &Value) -> Answer {
        let planned = plan(case);
        match self {
            Client::InProcess(client) => {
                let mut request = client.request(planned.method, &planned.url);
                for (name, value) in &planned.headers {
                    request = request.header(name, value);
                }
                if let Some(body) = planned.body {
                    request = request.body(body);
                }
                let response = request.send().await;
                Answer {
                    status: response.status(),
                    headers: response.headers().clone(),
                    body: response.bytes().clone(),
                }
            }
            Client::Socket { http, port } => {
                let url = format!("http://127.0.0.1:{port}{}", planned.url);
                let mut request = http.request(planned.method, url);
                for (name, value) in &planned.headers {
                    request = request.header(name, value);
                }
                if let Some(body) = planned.body {
                    request = request.body(body);
                }
                let response = request.send().await.expect("the server answers");
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await.expect("the body is read");
                Answer {
                    status,
                    headers,
                    body,
                }
            }
        }
    }

    async fn websocket(&self, case: &Value) -> (Vec<String>, Option<u16>) {
        let script = &case["websocket"];
        let path = script["url"].as_str().unwrap_or("/ws");
        let sends: Vec<&str> = script["send"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match self {
            Client::InProcess(client) => {
                let mut socket = client.websocket(path).await;
                for text in &sends {
                    socket.send_text(text).await;
                }
                let mut received = Vec::new();
                while let Some(text) = socket.receive_text().await {
                    received.push(text);
                }
                (received, socket.close_code())
            }
            Client::Socket { port, .. } => {
                let stream = tokio::net::TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .expect("the server accepts");
                let (mut socket, _) =
                    tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}{path}"), stream)
                        .await
                        .expect("the handshake succeeds");
                for text in &sends {
                    socket
                        .send(Message::text(*text))
                        .await
                        .expect("the message is sent");
                }
                let mut received = Vec::new();
                let mut close = None;
                while let Some(message) = socket.next().await {
                    match message {
                        Ok(Message::Text(text)) => received.push(text.to_string()),
                        Ok(Message::Close(frame)) => {
                            close = frame.map(|f| u16::from(f.code));
                            break;
                        }
                        Ok(_) => {}
                        Err(err) => panic!("the websocket failed: {err}"),
                    }
                }
                (received, close)
            }
        }
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every way `answer` differs from the case, one sentence each.
fn differences(case: &Value, answer: &Answer) -> Vec<String> {
    let name = case["name"].as_str().unwrap_or("?");
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    let mut found = Vec::new();
    let expected_status = case["status_code"].as_u64().unwrap_or(0);
    if u64::from(answer.status.as_u16()) != expected_status {
        found.push(format!(
            "{name}: status {} instead of {expected_status}; body {text}",
            answer.status.as_u16()
        ));
        return found;
    }
    if let Some(headers) = case["headers"].as_object() {
        for (header, theirs) in headers {
            let theirs = theirs.as_str().unwrap_or_default();
            let ours = header_text(&answer.headers, header);
            let same = if header.ends_with("-headers") {
                ours.is_some_and(|o| o.eq_ignore_ascii_case(theirs))
            } else {
                ours == Some(theirs)
            };
            if !same {
                found.push(format!("{name}: {header} {ours:?} instead of {theirs:?}"));
            }
        }
    }
    for header in case["headers_present"].as_array().into_iter().flatten() {
        let header = header.as_str().unwrap_or_default();
        if !answer.headers.contains_key(header) {
            found.push(format!("{name}: {header} is missing"));
        }
    }
    for header in case["headers_absent"].as_array().into_iter().flatten() {
        let header = header.as_str().unwrap_or_default();
        if answer.headers.contains_key(header) {
            found.push(format!("{name}: {header} should be absent"));
        }
    }
    let compare = case["compare"].as_str().unwrap_or("none");
    if compare != "none" {
        let theirs = case["content_type"].as_str().unwrap_or_default();
        let ours = header_text(&answer.headers, "content-type")
            .and_then(|t| t.split(';').next())
            .unwrap_or_default()
            .trim();
        if ours != theirs {
            found.push(format!(
                "{name}: content-type {ours:?} instead of {theirs:?}"
            ));
        }
    }
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    match compare {
        "json" if expected_status == 422 => {
            found.extend(refs::detail_differences(name, &body, &case["body"]));
        }
        "json" => {
            if body != case["body"] {
                found.push(format!("{name}: body {body} instead of {}", case["body"]));
            }
        }
        "raw" => {
            let theirs = case["raw_body"].as_str().unwrap_or_default();
            if text != theirs {
                found.push(format!("{name}: body {text:?} instead of {theirs:?}"));
            }
        }
        "doc" => {
            for diff in meaning::differences(&body, &case["body"]) {
                found.push(format!("{name}: {diff}"));
            }
            for key in ["info", "servers"] {
                if body[key] != case["body"][key] {
                    found.push(format!(
                        "{name}: {key} {} instead of {}",
                        body[key], case["body"][key]
                    ));
                }
            }
        }
        other => match other.strip_prefix("contains:") {
            Some(needle) if !text.contains(needle) => {
                found.push(format!("{name}: the body does not contain {needle:?}"));
            }
            Some(_) => {}
            None if other == "none" => {}
            None => found.push(format!("{name}: unknown comparison {other}")),
        },
    }
    found
}

/// Replays every case in order; the mismatches, one sentence each.
async fn replay_all(client: &Client) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases() {
        let name = case["name"].as_str().unwrap_or("?").to_owned();
        if case.get("websocket").is_some() {
            let (received, close) = client.websocket(&case).await;
            let expected: Vec<String> = case["websocket"]["receive"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if received != expected {
                failures.push(format!(
                    "{name}: received {received:?} instead of {expected:?}"
                ));
            }
            let code = case["websocket"]["close_code"].as_u64().map(|c| c as u16);
            if close != code {
                failures.push(format!("{name}: closed with {close:?} instead of {code:?}"));
            }
            continue;
        }
        let eventually = case["eventually"].as_bool().unwrap_or(false);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let answer = client.send(&case).await;
            let found = differences(&case, &answer);
            if found.is_empty() || !eventually || tokio::time::Instant::now() >= deadline {
                failures.extend(found);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    failures
}

#[tokio::test]
async fn every_reference_case_gets_fastapis_answer_in_process() {
    assert_eq!(cases().len(), 42, "the reference has its 42 cases");
    let client = TestClient::start(example_guide::app()).await;
    let client = Client::InProcess(client);
    let failures = replay_all(&client).await;
    assert!(
        failures.is_empty(),
        "mismatches:\n  - {}",
        failures.join("\n  - ")
    );
    if let Client::InProcess(client) = client {
        client.shutdown().await;
    }
}

/// The example's binary, serving on a free port, started away from its sources.
struct Served {
    child: tokio::process::Child,
    port: u16,
    _dir: TempDir,
}

async fn serve_binary() -> Served {
    let dir = TempDir::new();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_example-guide"))
        .args(["serve", "--port", "0"])
        .current_dir(dir.path())
        .env_remove("GUIDE_FILES")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the example starts");
    let stderr = child.stderr.take().expect("its log");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return digits.parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .expect("the server says where it listens within 30 s")
    .expect("the log names the port");
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Served {
        child,
        port,
        _dir: dir,
    }
}

#[tokio::test]
async fn every_reference_case_gets_fastapis_answer_over_a_socket() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut served = serve_binary().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let client = Client::Socket {
        http,
        port: served.port,
    };
    let failures = replay_all(&client).await;
    let _ = served.child.start_kill();
    assert!(
        failures.is_empty(),
        "mismatches:\n  - {}",
        failures.join("\n  - ")
    );
}

/// The comparison itself can fail: a wrong status, header, body, media type and
/// transcript are each reported.
#[tokio::test]
async fn a_different_answer_is_reported() {
    let client = Client::InProcess(TestClient::start(example_guide::app()).await);
    let find = |name: &str| {
        cases()
            .into_iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("the {name} case"))
    };
    let mut case = find("custom_exception");
    let answer = client.send(&case).await;
    assert!(differences(&case, &answer).is_empty());
    case["headers"]["retry-after"] = Value::from("31");
    case["body"]["retry_after"] = Value::from(31);
    assert_eq!(differences(&case, &answer).len(), 2);
    case["status_code"] = Value::from(200);
    assert!(differences(&case, &answer)[0].contains("status 429 instead of 200"));

    let mut case = find("template");
    let answer = client.send(&case).await;
    assert!(differences(&case, &answer).is_empty());
    case["content_type"] = Value::from("text/plain");
    case["raw_body"] = Value::from("<h1>Hello</h1>");
    assert_eq!(differences(&case, &answer).len(), 2);

    let mut case = find("tenant_invalid");
    let answer = client.send(&case).await;
    assert!(differences(&case, &answer).is_empty());
    case["body"]["detail"][0]["ctx"]["pattern"] = Value::from("^x$");
    assert!(differences(&case, &answer)[0].contains("ctx"));

    let mut case = find("cors_other_origin");
    case["request"]["headers"]["Origin"] = Value::from("https://app.example.com");
    let answer = client.send(&case).await;
    assert!(differences(&case, &answer)[0].contains("should be absent"));
}
