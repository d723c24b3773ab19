//! The life of an app and of each request around its handler: the lifespan's state is
//! built before the first request and torn down after the server drained; a
//! dependency's cleanup runs after the handler on every path and is told how it ended;
//! a dependency used twice in one request is resolved once, unless asked fresh; a panic
//! is a 500 and the server goes on.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::FromRequestParts;
use http::request::Parts;
use roundtrip::depends::{Cleanup, Dependency, Depends, Outcome};
use roundtrip::{App, Fresh, HttpError, Json, Lifespan, OperationInput, Path, get, post};
use roundtrip_test::{CapturedLogs, TestClient};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// What happened, in order, shared by the app and the test.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn push(&self, line: impl Into<String>) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line.into());
        }
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits (up to 5 s) until `line` is written; cleanups of abandoned requests and
    /// background work finish after the answer.
    async fn wait_for(&self, line: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.lines().iter().any(|l| l == line) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{line}` never came: {:?}",
                self.lines()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The app's "database", built by the lifespan.
struct Store {
    journal: Journal,
    label: String,
}

/// A session per request: committed when the request succeeded, rolled back otherwise.
#[derive(Clone)]
struct Session {
    journal: Journal,
    pending: Arc<Mutex<Vec<String>>>,
}

impl Session {
    fn write(&self, note: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.push(note.to_owned());
        }
    }
}

impl Dependency for Session {
    type Inputs = (Lifespan<Store>, Cleanup);
    type Rejection = Infallible;

    async fn resolve((Lifespan(store), cleanup): Self::Inputs) -> Result<Self, Infallible> {
        store.journal.push("open");
        let session = Session {
            journal: store.journal.clone(),
            pending: Arc::default(),
        };
        let closing = session.clone();
        cleanup.defer(move |outcome: Outcome| async move {
            let pending = closing
                .pending
                .lock()
                .map(|p| p.join(","))
                .unwrap_or_default();
            if outcome.succeeded() {
                closing.journal.push(format!("commit {pending}"));
            } else if outcome.is_panic() {
                closing.journal.push("rollback after panic");
            } else if outcome.is_client_gone() {
                closing.journal.push("rollback after client gone");
            } else {
                let status = outcome.status().map_or(0, |s| s.as_u16());
                closing.journal.push(format!("rollback after {status}"));
            }
            closing.journal.push("close");
        });
        Ok(session)
    }

    fn share(&self) -> Option<Self> {
        Some(self.clone())
    }
}

#[derive(Deserialize, JsonSchema)]
struct NoteIn {
    #[schemars(length(min = 1))]
    text: String,
}

async fn label(Lifespan(store): Lifespan<Store>) -> Json<Value> {
    Json(json!({"label": store.label}))
}

async fn create(Depends(session): Depends<Session>, Json(note): Json<NoteIn>) -> Json<Value> {
    session.write(&note.text);
    Json(json!({"saved": note.text}))
}

async fn conflict(Depends(session): Depends<Session>) -> Result<Json<Value>, HttpError> {
    session.write("lost");
    Err(HttpError::conflict("Conflicting note"))
}

async fn boom(Depends(session): Depends<Session>) -> Json<Value> {
    session.write("lost");
    panic!("the handler broke");
}

async fn slow(Depends(session): Depends<Session>, Path(ms): Path<u64>) -> Json<Value> {
    session.journal.push("handler start");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    session.journal.push("handler end");
    Json(json!({"slept": ms}))
}

fn app(journal: Journal) -> App {
    let at_start = journal.clone();
    App::new()
        .lifespan(
            move || {
                let journal = at_start.clone();
                async move {
                    journal.push("startup");
                    Ok::<_, Infallible>(Store {
                        journal,
                        label: "started".to_owned(),
                    })
                }
            },
            |store: Arc<Store>| async move { store.journal.push("teardown") },
        )
        .route("/label", get(label))
        .route("/notes", post(create))
        .route("/conflict", post(conflict))
        .route("/boom", get(boom))
        .route("/slow/{ms}", get(slow))
}

#[tokio::test]
async fn the_lifespan_state_is_there_from_the_first_request_until_shutdown() {
    let journal = Journal::default();
    let client = TestClient::start(app(journal.clone())).await;
    assert_eq!(journal.lines(), ["startup"]);
    let response = client.get("/label").send().await;
    assert_eq!(response.json::<Value>(), json!({"label": "started"}));
    client.shutdown().await;
    assert_eq!(journal.lines(), ["startup", "teardown"]);
}

#[tokio::test]
async fn without_its_lifespan_the_state_is_a_500_that_says_nothing_to_the_client() {
    let router = app(Journal::default())
        .into_router()
        .expect("the app builds");
    let response = TestClient::new(router).get("/label").send().await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.json::<Value>(),
        json!({"detail": "Internal Server Error"})
    );
}

#[tokio::test]
async fn a_lifespan_that_fails_to_start_stops_the_server_before_it_serves() {
    let app = App::new().lifespan(
        || async { Err::<(), _>("the database is unreachable") },
        |_| async {},
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let built = app.build().expect("the app builds");
    let err = built
        .serve_on(listener, std::future::pending())
        .await
        .expect_err("startup fails");
    assert!(
        err.to_string().contains("the database is unreachable"),
        "{err}"
    );
}

async fn raw_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the server accepts");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .expect("the answer is read");
    answer
}

#[tokio::test]
async fn a_served_app_tears_its_lifespan_down_only_after_the_last_request_finished() {
    let journal = Journal::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let built = app(journal.clone()).build().expect("the app builds");
    let server = tokio::spawn(built.serve_on(listener, async move {
        let _ = stopped.await;
    }));
    let slow = tokio::spawn(raw_get(port, "/slow/300"));
    journal.wait_for("handler start").await;
    let _ = stop.send(());
    let answer = slow.await.expect("the slow request finishes");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
    assert_eq!(
        journal.lines(),
        [
            "startup",
            "open",
            "handler start",
            "handler end",
            "commit ",
            "close",
            "teardown"
        ]
    );
}

#[tokio::test]
async fn the_cleanup_commits_on_success_and_rolls_back_on_an_error_answer() {
    let journal = Journal::default();
    let client = TestClient::start(app(journal.clone())).await;
    let created = client
        .post("/notes")
        .json(&json!({"text": "first"}))
        .send()
        .await;
    assert_eq!(created.status(), 200);
    let refused = client.post("/conflict").send().await;
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.json::<Value>(),
        json!({"detail": "Conflicting note"})
    );
    // The session is opened, then the body fails validation: rolled back too.
    let invalid = client
        .post("/notes")
        .json(&json!({"text": ""}))
        .send()
        .await;
    assert_eq!(invalid.status(), 422);
    assert_eq!(
        journal.lines()[1..],
        [
            "open",
            "commit first",
            "close",
            "open",
            "rollback after 409",
            "close",
            "open",
            "rollback after 422",
            "close"
        ]
    );
    client.shutdown().await;
}

#[tokio::test]
async fn a_panic_is_a_500_the_cleanup_rolls_back_and_the_server_goes_on() {
    let captured = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let journal = Journal::default();
    let client = TestClient::start(app(journal.clone())).await;
    let response = client.get("/boom?x=1").send().await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.text(), "Internal Server Error");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(journal.lines().contains(&"rollback after panic".to_owned()));
    let next = client.get("/label").send().await;
    assert_eq!(next.status(), 200);
    let log = captured.text();
    assert!(
        log.contains("GET /boom panicked: the handler broke"),
        "the log names the request: {log}"
    );
    client.shutdown().await;
}

#[tokio::test]
async fn a_client_that_goes_away_still_gets_its_session_rolled_back() {
    let journal = Journal::default();
    let client = TestClient::start(app(journal.clone())).await;
    let abandoned =
        tokio::time::timeout(Duration::from_millis(100), client.get("/slow/10000").send()).await;
    assert!(abandoned.is_err(), "the request was still running");
    journal.wait_for("rollback after client gone").await;
    journal.wait_for("close").await;
    client.shutdown().await;
}

/// Counts, per request, how often `Calls` was resolved: FastAPI's `request.state`.
struct RequestCounter(Arc<AtomicUsize>);

impl<S: Send + Sync> FromRequestParts<S> for RequestCounter {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        #[derive(Clone)]
        struct Count(Arc<AtomicUsize>);
        let count = parts
            .extensions
            .get_or_insert_with(|| Count(Arc::default()))
            .clone();
        Ok(RequestCounter(count.0))
    }
}

impl OperationInput for RequestCounter {}

#[derive(Clone)]
struct Calls(Arc<AtomicUsize>);

impl Dependency for Calls {
    type Inputs = RequestCounter;
    type Rejection = Infallible;

    async fn resolve(RequestCounter(count): RequestCounter) -> Result<Self, Infallible> {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(Calls(count))
    }

    fn share(&self) -> Option<Self> {
        Some(self.clone())
    }
}

/// The same, but its value cannot be shared: resolved for every use.
struct Unshared(Arc<AtomicUsize>);

impl Dependency for Unshared {
    type Inputs = RequestCounter;
    type Rejection = Infallible;

    async fn resolve(RequestCounter(count): RequestCounter) -> Result<Self, Infallible> {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(Unshared(count))
    }
}

struct First(Calls);

impl Dependency for First {
    type Inputs = Depends<Calls>;
    type Rejection = Infallible;

    async fn resolve(Depends(calls): Depends<Calls>) -> Result<Self, Infallible> {
        Ok(First(calls))
    }
}

struct Second(Calls);

impl Dependency for Second {
    type Inputs = Depends<Calls>;
    type Rejection = Infallible;

    async fn resolve(Depends(calls): Depends<Calls>) -> Result<Self, Infallible> {
        Ok(Second(calls))
    }
}

async fn cached(Depends(a): Depends<First>, Depends(b): Depends<Second>) -> Json<Value> {
    let shared = Arc::ptr_eq(&a.0.0, &b.0.0);
    Json(json!({"calls": a.0.0.load(Ordering::SeqCst), "shared": shared}))
}

async fn fresh(Depends(a): Depends<First>, Fresh(_c): Fresh<Calls>) -> Json<Value> {
    Json(json!({"calls": a.0.0.load(Ordering::SeqCst)}))
}

async fn unshared(Depends(a): Depends<Unshared>, Depends(_b): Depends<Unshared>) -> Json<Value> {
    Json(json!({"calls": a.0.load(Ordering::SeqCst)}))
}

#[tokio::test]
async fn a_dependency_used_twice_is_resolved_once_unless_asked_fresh() {
    let router = App::new()
        .route("/cached", get(cached))
        .route("/fresh", get(fresh))
        .route("/unshared", get(unshared))
        .into_router()
        .expect("the app builds");
    let client = TestClient::new(router);
    for _ in 0..2 {
        // Counted per request: the second request starts again at one.
        let body: Value = client.get("/cached").send().await.json();
        assert_eq!(body, json!({"calls": 1, "shared": true}));
    }
    let body: Value = client.get("/fresh").send().await.json();
    assert_eq!(body, json!({"calls": 2}));
    let body: Value = client.get("/unshared").send().await.json();
    assert_eq!(body, json!({"calls": 2}));
}
