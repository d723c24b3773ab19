//! Websockets through [`TestClient`](crate::TestClient), with no socket: the app is
//! served over an in-process duplex stream by hyper, which hands the upgraded connection
//! to the app as a real server would.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tower::ServiceExt;

/// The client side of a websocket opened with
/// [`TestClient::websocket`](crate::TestClient::websocket).
pub struct TestWebSocket {
    stream: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    close_code: Option<u16>,
}

impl std::fmt::Debug for TestWebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestWebSocket")
            .field("close_code", &self.close_code)
            .finish_non_exhaustive()
    }
}

/// Why a websocket could not be opened: the app answered the handshake with another
/// status (its body is kept), or the connection failed.
#[derive(Debug)]
pub enum WebSocketRefused {
    /// The app answered the handshake with this status and body instead of 101.
    Status(StatusCode, String),
    /// The in-process connection failed.
    Connection(String),
}

impl std::fmt::Display for WebSocketRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebSocketRefused::Status(status, body) => {
                write!(f, "the websocket handshake was answered {status}: {body}")
            }
            WebSocketRefused::Connection(err) => {
                write!(f, "the websocket connection failed: {err}")
            }
        }
    }
}

impl std::error::Error for WebSocketRefused {}

pub(crate) async fn connect(
    router: axum::Router,
    request: Request<()>,
) -> Result<TestWebSocket, WebSocketRefused> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let router = router.clone();
        async move { router.oneshot(request.map(axum::body::Body::new)).await }
    });
    tokio::spawn(async move {
        let served = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server_io), service)
            .with_upgrades()
            .await;
        // The app closing the connection ends this task; there is no one to tell.
        drop(served);
    });
    let connection = |e: hyper::Error| WebSocketRefused::Connection(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client_io))
        .await
        .map_err(connection)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let (parts, ()) = request.into_parts();
    let mut request = Request::from_parts(parts, Empty::<Bytes>::new());
    let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
    let headers = request.headers_mut();
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("upgrade"),
    );
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        header::HeaderValue::from_static("13"),
    );
    if let Ok(key) = header::HeaderValue::from_str(&key) {
        headers.insert(header::SEC_WEBSOCKET_KEY, key);
    }
    let response = sender.send_request(request).await.map_err(connection)?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let body = match response.into_body().collect().await {
            Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
            Err(err) => format!("(unreadable: {err})"),
        };
        return Err(WebSocketRefused::Status(status, body));
    }
    let upgraded = hyper::upgrade::on(response).await.map_err(connection)?;
    let stream = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    Ok(TestWebSocket {
        stream,
        close_code: None,
    })
}

impl TestWebSocket {
    /// Sends a text message.
    ///
    /// # Panics
    ///
    /// If the connection is gone: the test sent to a socket the app had closed.
    pub async fn send_text(&mut self, text: &str) {
        if let Err(err) = self.stream.send(Message::text(text)).await {
            panic!("TestWebSocket: sending {text:?} failed: {err}");
        }
    }

    /// Sends a binary message.
    ///
    /// # Panics
    ///
    /// If the connection is gone.
    pub async fn send_bytes(&mut self, bytes: impl Into<Bytes>) {
        if let Err(err) = self.stream.send(Message::binary(bytes.into())).await {
            panic!("TestWebSocket: sending bytes failed: {err}");
        }
    }

    /// The next text message; `None` once the app closed the socket (see
    /// [`close_code`](Self::close_code)).
    ///
    /// # Panics
    ///
    /// If the app sends something else than text, or the connection fails.
    pub async fn receive_text(&mut self) -> Option<String> {
        loop {
            match self.stream.next().await {
                None => return None,
                Some(Ok(Message::Text(text))) => return Some(text.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    self.close_code = Some(frame.map_or(1005, |f| u16::from(f.code)));
                    return None;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => panic!("TestWebSocket: expected text, got {other:?}"),
                Some(Err(err)) => panic!("TestWebSocket: receiving failed: {err}"),
            }
        }
    }

    /// Waits for the app to close the socket and returns its close code (1005 when the
    /// close frame had none); messages still arriving before it are returned first in
    /// `Err`.
    pub async fn closed(&mut self) -> Result<u16, String> {
        if let Some(code) = self.close_code {
            return Ok(code);
        }
        match self.receive_text().await {
            None => Ok(self.close_code.unwrap_or(1006)),
            Some(text) => Err(text),
        }
    }

    /// The close code the app sent, once it closed the socket.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// Closes the socket from the client's side.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
