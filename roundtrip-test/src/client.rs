//! An in-process test client: requests go straight into the app's router, with no
//! socket, so tests are fast and need no free port.
//!
//! [`TestClient::start`] also runs the app's lifespan, as FastAPI's `with TestClient(app)`
//! does: its state is built before the first request and torn down by
//! [`TestClient::shutdown`]. Requests carry `Host: testserver` unless they set one, as
//! Starlette's client sends them.
//!
//! ```
//! # async fn demo(router: axum::Router) {
//! use roundtrip_test::TestClient;
//! let client = TestClient::new(router);
//! let response = client
//!     .post("/invoices/")
//!     .query(&[("callback_url", "http://127.0.0.1:9000/events")])
//!     .json(&serde_json::json!({"id": "1", "customer": "ACME", "total": 10.5}))
//!     .send()
//!     .await;
//! assert_eq!(response.status(), 200);
//! # }
//! ```

use axum::body::Body;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

/// Sends requests to a router in the same process.
#[derive(Clone, Debug)]
pub struct TestClient {
    router: axum::Router,
    default_headers: HeaderMap,
    extensions: Extensions,
    lifespan: Option<std::sync::Arc<RunningLifespan>>,
}

/// A started lifespan, stopped by `shutdown` or, failing that, when the last client that
/// shares it is dropped.
#[derive(Debug)]
struct RunningLifespan(std::sync::Mutex<Option<roundtrip::Started>>);

impl RunningLifespan {
    fn take(&self) -> Option<roundtrip::Started> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl Drop for RunningLifespan {
    fn drop(&mut self) {
        if let Some(started) = self.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(started.shutdown());
        }
    }
}

/// What [`TestClient::start`] accepts: an app, or an app already built.
pub trait IntoBuiltApp {
    /// Builds the app.
    fn into_built_app(self) -> Result<roundtrip::BuiltApp, roundtrip::BuildError>;
}

impl IntoBuiltApp for roundtrip::BuiltApp {
    fn into_built_app(self) -> Result<roundtrip::BuiltApp, roundtrip::BuildError> {
        Ok(self)
    }
}

impl<S: Clone + Send + Sync + 'static> IntoBuiltApp for roundtrip::App<S> {
    fn into_built_app(self) -> Result<roundtrip::BuiltApp, roundtrip::BuildError> {
        self.build()
    }
}

/// Request extensions a client puts in every request it sends.
#[derive(Clone, Default)]
struct Extensions(Vec<InsertExtension>);

type InsertExtension = std::sync::Arc<dyn Fn(&mut http::Extensions) + Send + Sync>;

impl Extensions {
    fn push<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.0
            .push(std::sync::Arc::new(move |ext: &mut http::Extensions| {
                ext.insert(value.clone());
            }));
    }

    fn apply(&self, extensions: &mut http::Extensions) {
        for insert in &self.0 {
            insert(extensions);
        }
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} extension(s)", self.0.len())
    }
}

impl TestClient {
    /// A client for `router` (a built roundtrip app converts into one).
    pub fn new(router: impl Into<axum::Router>) -> Self {
        TestClient {
            router: router.into(),
            default_headers: HeaderMap::new(),
            extensions: Extensions::default(),
            lifespan: None,
        }
    }

    /// Builds `app` and runs its lifespan's startup, as FastAPI's `with TestClient(app)`;
    /// [`shutdown`](Self::shutdown) runs its teardown.
    ///
    /// # Panics
    ///
    /// If the app cannot be built or its lifespan fails to start, with the reason.
    pub async fn start(app: impl IntoBuiltApp) -> Self {
        let built = match app.into_built_app() {
            Ok(built) => built,
            Err(err) => panic!("TestClient: {err}"),
        };
        let started = match built.startup().await {
            Ok(started) => started,
            Err(err) => panic!("TestClient: {err}"),
        };
        let mut client = TestClient::new(built.router);
        client.lifespan = Some(std::sync::Arc::new(RunningLifespan(std::sync::Mutex::new(
            Some(started),
        ))));
        client
    }

    /// Runs the app's lifespan teardown now (for every clone of this client), and waits
    /// for it. Without it, the teardown is started when the last clone is dropped.
    pub async fn shutdown(self) {
        if let Some(started) = self.lifespan.as_ref().and_then(|l| l.take()) {
            started.shutdown().await;
        }
    }

    /// Opens a websocket at `path` (with this client's default headers), through the
    /// app's middleware, as a browser would.
    ///
    /// # Panics
    ///
    /// If the app refuses the handshake; [`try_websocket`](Self::try_websocket) returns
    /// the answer instead.
    pub async fn websocket(&self, path: &str) -> crate::TestWebSocket {
        match self.try_websocket(path).await {
            Ok(socket) => socket,
            Err(err) => panic!("TestClient: {err}"),
        }
    }

    /// Opens a websocket at `path`, or tells how the app refused it.
    pub async fn try_websocket(
        &self,
        path: &str,
    ) -> Result<crate::TestWebSocket, crate::websocket::WebSocketRefused> {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(())
            .map_err(|e| crate::websocket::WebSocketRefused::Connection(e.to_string()))?;
        *request.headers_mut() = self.default_headers.clone();
        if !request.headers().contains_key(HOST) {
            request
                .headers_mut()
                .insert(HOST, HeaderValue::from_static("testserver"));
        }
        let extensions = self.extensions.clone();
        let router = self.router.clone().layer(axum::middleware::map_request(
            move |mut request: axum::extract::Request| {
                let extensions = extensions.clone();
                async move {
                    extensions.apply(request.extensions_mut());
                    request
                }
            },
        ));
        crate::websocket::connect(router, request).await
    }

    /// A request extension inserted into every request of this client, as a layer of
    /// `axum::Extension(value)` would: how tests replace dependencies
    /// (`roundtrip::DependencyOverrides`, FastAPI's `app.dependency_overrides`).
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.push(value);
        self
    }

    /// A header sent with every request of this client.
    pub fn default_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.default_headers.insert(name, value);
        }
        self
    }

    /// A request with any method.
    pub fn request(&self, method: Method, path: &str) -> TestRequest {
        TestRequest {
            router: self.router.clone(),
            method,
            path: path.to_owned(),
            query: Vec::new(),
            headers: self.default_headers.clone(),
            cookies: Vec::new(),
            body: Bytes::new(),
            extensions: self.extensions.clone(),
            error: None,
        }
    }

    /// A `GET` request.
    pub fn get(&self, path: &str) -> TestRequest {
        self.request(Method::GET, path)
    }

    /// A `POST` request.
    pub fn post(&self, path: &str) -> TestRequest {
        self.request(Method::POST, path)
    }

    /// A `PUT` request.
    pub fn put(&self, path: &str) -> TestRequest {
        self.request(Method::PUT, path)
    }

    /// A `PATCH` request.
    pub fn patch(&self, path: &str) -> TestRequest {
        self.request(Method::PATCH, path)
    }

    /// A `DELETE` request.
    pub fn delete(&self, path: &str) -> TestRequest {
        self.request(Method::DELETE, path)
    }

    /// A `HEAD` request.
    pub fn head(&self, path: &str) -> TestRequest {
        self.request(Method::HEAD, path)
    }

    /// An `OPTIONS` request.
    pub fn options(&self, path: &str) -> TestRequest {
        self.request(Method::OPTIONS, path)
    }
}

/// A request being built; nothing is sent until [`send`](TestRequest::send).
#[must_use = "a request is sent only by `.send().await`"]
#[derive(Debug)]
pub struct TestRequest {
    router: axum::Router,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    cookies: Vec<(String, String)>,
    body: Bytes,
    extensions: Extensions,
    error: Option<String>,
}

impl TestRequest {
    /// Adds query parameters from anything `serde_urlencoded` serializes: a struct, a map,
    /// or a slice of pairs.
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        match serde_urlencoded::to_string(query) {
            Ok(encoded) => self.query.extend(
                url_pairs(&encoded)
                    .into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_owned())),
            ),
            Err(err) => self.error = Some(format!("query could not be encoded: {err}")),
        }
        self
    }

    /// Adds a header. A name or value that is not valid HTTP fails the request at `send`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            _ => self.error = Some(format!("invalid header {name}: {value}")),
        }
        self
    }

    /// A request extension for this request only (see [`TestClient::extension`]).
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.push(value);
        self
    }

    /// Adds a cookie.
    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        self.cookies.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body, with `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.body = bytes.into();
                self.headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Err(err) => self.error = Some(format!("body could not be serialized: {err}")),
        }
        self
    }

    /// A form body, with `Content-Type: application/x-www-form-urlencoded`.
    pub fn form<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_urlencoded::to_string(body) {
            Ok(encoded) => {
                self.body = encoded.into();
                self.headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
            }
            Err(err) => self.error = Some(format!("form could not be encoded: {err}")),
        }
        self
    }

    /// A raw body, sent as is; set its `Content-Type` with [`header`](Self::header) if it
    /// needs one.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request through the router and reads the whole response.
    ///
    /// # Panics
    ///
    /// If the request could not be built (an invalid header or path): a test that builds
    /// a request it cannot send has a bug, and says so at once.
    pub async fn send(self) -> TestResponse {
        if let Some(err) = self.error {
            panic!("TestClient: {err}");
        }
        let mut uri = self.path.clone();
        if !self.query.is_empty() {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.query)
                .finish();
            uri.push(if uri.contains('?') { '&' } else { '?' });
            uri.push_str(&encoded);
        }
        let mut request = match Request::builder()
            .method(self.method.clone())
            .uri(&uri)
            .body(Body::from(self.body))
        {
            Ok(request) => request,
            Err(err) => panic!("TestClient: invalid request {} {uri}: {err}", self.method),
        };
        *request.headers_mut() = self.headers;
        if !request.headers().contains_key(HOST) {
            request
                .headers_mut()
                .insert(HOST, HeaderValue::from_static("testserver"));
        }
        self.extensions.apply(request.extensions_mut());
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            match HeaderValue::from_str(&cookie) {
                Ok(value) => {
                    request.headers_mut().insert(COOKIE, value);
                }
                Err(err) => panic!("TestClient: invalid cookie {cookie}: {err}"),
            }
        }
        let response = match self.router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => panic!("TestClient: the response body failed: {err}"),
        };
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

fn url_pairs(encoded: &str) -> Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
    url::form_urlencoded::parse(encoded.as_bytes()).collect()
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// One header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON into `T`.
    ///
    /// # Panics
    ///
    /// If the body is not JSON of that shape; the message shows the status and the body.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        match self.try_json() {
            Ok(value) => value,
            Err(err) => panic!(
                "TestClient: the response ({}) is not the expected JSON: {err}\nbody: {}",
                self.status,
                self.text()
            ),
        }
    }

    /// The body parsed as JSON into `T`, or why it could not be.
    pub fn try_json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}
