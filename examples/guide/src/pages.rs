//! Background tasks, a body size limit, server-sent events, a websocket, a template,
//! a cookie, the lifespan's state, and an error nobody handles.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use roundtrip::response::sse::{Event, Sse};
use roundtrip::response::{SameSite, SetCookie};
use roundtrip::templates::TemplateError;
use roundtrip::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use roundtrip::{BackgroundTasks, Html, Json, Lifespan, Path};

use crate::{Files, Guide};

fn one<V>(key: &str, value: V) -> Json<BTreeMap<String, V>> {
    Json(BTreeMap::from([(key.to_owned(), value)]))
}

/// Accepts a signup; the welcome mail is written after the answer is sent.
pub(crate) async fn signup(
    Path(email): Path<String>,
    Lifespan(guide): Lifespan<Guide>,
    background: BackgroundTasks,
) -> Json<BTreeMap<String, String>> {
    background.add(async move {
        if let Ok(mut log) = guide.store.log.lock() {
            log.push(format!("welcome mail to {email}"));
        }
    });
    one("message", "Signup accepted".to_owned())
}

/// What the background tasks did.
pub(crate) async fn signup_log(Lifespan(guide): Lifespan<Guide>) -> Json<Vec<String>> {
    Json(
        guide
            .store
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default(),
    )
}

/// The size of the body; the route accepts 64 bytes at most.
pub(crate) async fn upload(body: Bytes) -> Json<BTreeMap<String, usize>> {
    one("size", body.len())
}

/// Three events, each with its name, JSON data and id.
pub(crate) async fn events() -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
    Sse::new(futures_util::stream::iter((0..3).map(|i| {
        Ok(Event::default()
            .event("tick")
            .json_data(format!("tick {i}"))?
            .id(i.to_string()))
    })))
}

/// Echoes text until the client says `bye`.
pub(crate) async fn echo(socket: WebSocketUpgrade) -> Response {
    socket.on_upgrade(|mut socket: WebSocket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            let Message::Text(text) = message else {
                continue;
            };
            if text.as_str() == "bye" {
                let close = CloseFrame {
                    code: 1000,
                    reason: "".into(),
                };
                let _ = socket.send(Message::Close(Some(close))).await;
                return;
            }
            let answer = format!("Message text was: {}", text.as_str());
            if socket.send(Message::Text(answer.into())).await.is_err() {
                return;
            }
        }
    })
}

/// An HTML page from a template.
pub(crate) async fn hello(
    State(files): State<Files>,
    Path(name): Path<String>,
) -> Result<Html<String>, TemplateError> {
    files
        .templates
        .render("hello.html", serde_json::json!({"name": name}))
}

/// Sets the session cookie, with its attributes.
pub(crate) async fn login() -> (SetCookie, Json<BTreeMap<String, String>>) {
    let cookie = SetCookie::new("session", "abc123")
        .http_only()
        .same_site(SameSite::Lax);
    (cookie, one("message", "Logged in".to_owned()))
}

/// What the lifespan set up.
pub(crate) async fn lifespan_state(
    Lifespan(guide): Lifespan<Guide>,
) -> Json<BTreeMap<String, String>> {
    one("state", guide.started_at.clone())
}

/// FastAPI's `RuntimeError("unexpected")`.
#[derive(Debug, thiserror::Error)]
#[error("unexpected")]
pub(crate) struct Unexpected;

/// Fails with an error no exception handler answers: 500, and the server goes on.
pub(crate) async fn boom() -> Result<Json<serde_json::Value>, roundtrip::Error> {
    Err(Unexpected)?
}
