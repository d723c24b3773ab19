//! A loopback HTTP receiver that records deliveries and verifies their signatures.
//!
//! [`MockReceiver`] listens on `127.0.0.1` on a free port. It records every request it gets
//! (method, path, headers, body, time, and whether the Standard Webhooks signature verified
//! with its secrets) and answers as its [`Behaviour`] says: succeed, fail a number of times
//! per message, answer 410 or `Retry-After`, hang, reset the connection, redirect, stream a
//! huge body, or answer invalid JSON.
//!
//! Tests wait with [`MockReceiver::wait_for`], which returns as soon as enough deliveries
//! came and fails after a deadline: nothing sleeps blindly.
//!
//! ```no_run
//! # async fn demo() {
//! use roundtrip_test::{Behaviour, MockReceiver};
//! use std::time::Duration;
//!
//! let receiver = MockReceiver::start().await;
//! receiver.set_behaviour(Behaviour::fail_times(2, 503));
//! let url = receiver.url("/invoices/42");
//! // ... enqueue a message to `url`, signed with `receiver.secret()`, and run the workers ...
//! let deliveries = receiver.wait_for(3, Duration::from_secs(5)).await.expect("3 attempts");
//! assert!(deliveries.iter().all(|d| d.verified));
//! assert_eq!(receiver.unique_ids().len(), 1);
//! # }
//! ```

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream;
use http::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use roundtrip_delivery::signing::{Secret, Verifier};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

/// How a [`MockReceiver`] answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Behaviour {
    /// 200 with `{"ok":true}`.
    Succeed,
    /// Always this status, with `{"error":"..."}` (use 410 for Gone, 500 for a failure).
    Status(u16),
    /// `status` for the first `times` requests of each message (by `webhook-id`), then 200.
    FailTimes {
        /// How many requests per message fail.
        times: u32,
        /// The failing status.
        status: u16,
    },
    /// `status` with `Retry-After: <retry_after>` for the first `times` requests of each
    /// message, then 200.
    RetryAfter {
        /// The status, usually 429 or 503.
        status: u16,
        /// The header value, in seconds or as an HTTP date.
        retry_after: String,
        /// How many requests per message get it.
        times: u32,
    },
    /// 200 after waiting this long (a slow receiver).
    Delay(Duration),
    /// Never answers (the connection stays open until the client gives up).
    Hang,
    /// Reads the request, then resets the connection (TCP RST) without answering.
    Reset,
    /// Answers a redirect.
    Redirect {
        /// The 3xx status.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// 200 with a body of this many bytes, streamed as it is read (nothing is allocated
    /// up front, so 5 GB is fine).
    HugeBody {
        /// The body length.
        bytes: u64,
    },
    /// 200 with a body that is not JSON.
    InvalidJson,
    /// This status and JSON body.
    Json {
        /// The status.
        status: u16,
        /// The body.
        body: serde_json::Value,
    },
}

impl Behaviour {
    /// `status` for the first `times` requests of each message, then 200.
    pub fn fail_times(times: u32, status: u16) -> Self {
        Behaviour::FailTimes { times, status }
    }

    /// `status` with `Retry-After: <seconds>` once per message, then 200.
    pub fn retry_after(status: u16, seconds: u64) -> Self {
        Behaviour::RetryAfter {
            status,
            retry_after: seconds.to_string(),
            times: 1,
        }
    }

    /// A 302 to `location`.
    pub fn redirect(location: impl Into<String>) -> Self {
        Behaviour::Redirect {
            status: 302,
            location: location.into(),
        }
    }

    /// 200 with this JSON body.
    pub fn json(body: serde_json::Value) -> Self {
        Behaviour::Json { status: 200, body }
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Delivery {
    /// The HTTP method.
    pub method: Method,
    /// The path and query.
    pub path: String,
    /// All request headers.
    pub headers: HeaderMap,
    /// The body, as received.
    pub body: Bytes,
    /// When it arrived.
    pub received_at: SystemTime,
    /// Whether the Standard Webhooks signature verified with the receiver's secrets.
    pub verified: bool,
    /// Why it did not verify.
    pub verify_error: Option<String>,
    /// The status the receiver answered, if it answered.
    pub answered: Option<u16>,
}

impl Delivery {
    /// The `webhook-id` header.
    pub fn webhook_id(&self) -> Option<&str> {
        self.header("webhook-id")
    }

    /// The `webhook-timestamp` header, in Unix seconds.
    pub fn timestamp(&self) -> Option<i64> {
        self.header("webhook-timestamp")?.parse().ok()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// [`MockReceiver::wait_for`] ran out of time.
#[derive(Debug, Clone)]
pub struct WaitTimeout {
    wanted: String,
    within: Duration,
    got: Vec<Delivery>,
}

impl WaitTimeout {
    /// What had arrived when the time ran out.
    pub fn deliveries(&self) -> &[Delivery] {
        &self.got
    }
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the MockReceiver waited {:?} for {} but got {} deliveries",
            self.within,
            self.wanted,
            self.got.len()
        )?;
        for d in self.got.iter().take(10) {
            write!(
                f,
                "\n  {} {} webhook-id={} answered={:?} verified={}",
                d.method,
                d.path,
                d.webhook_id().unwrap_or("-"),
                d.answered,
                d.verified
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for WaitTimeout {}

struct Inner {
    behaviour: Behaviour,
    secrets: Vec<Secret>,
    verifier: Option<Verifier>,
    deliveries: Vec<Delivery>,
    seen_per_id: HashMap<String, u32>,
}

struct State {
    inner: Mutex<Inner>,
    count: watch::Sender<usize>,
    /// Requests being handled now, and the most ever handled at once.
    open: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

/// Counts a request as open while it lives.
struct OpenRequest<'a>(&'a State);

impl Drop for OpenRequest<'_> {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl State {
    fn open_request(&self) -> OpenRequest<'_> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.open.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        OpenRequest(self)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the data half-written in a way that
        // matters to a test tool: keep going with what is there.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A loopback HTTP server that records deliveries. Stops when dropped.
pub struct MockReceiver {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl fmt::Debug for MockReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockReceiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for MockReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn ok() -> Response<Body> {
    full(200, "application/json", r#"{"ok":true}"#)
}

impl MockReceiver {
    /// Starts a receiver on `127.0.0.1` with a fresh secret. Panics if no port can be
    /// bound (use [`try_start`](Self::try_start) to handle that).
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(receiver) => receiver,
            Err(e) => panic!("MockReceiver could not listen on 127.0.0.1: {e}"),
        }
    }

    /// Starts a receiver on `127.0.0.1` with a fresh secret.
    pub async fn try_start() -> std::io::Result<Self> {
        let secret = Secret::generate().map_err(std::io::Error::other)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (count, _) = watch::channel(0);
        let state = Arc::new(State {
            inner: Mutex::new(Inner {
                behaviour: Behaviour::Succeed,
                verifier: Some(Verifier::new(secret.clone())),
                secrets: vec![secret],
                deliveries: Vec::new(),
                seen_per_id: HashMap::new(),
            }),
            count,
            open: Default::default(),
            peak: Default::default(),
        });
        let server = tokio::spawn(serve(listener, state.clone()));
        Ok(MockReceiver {
            addr,
            state,
            server,
        })
    }

    /// Verifies signatures with `secret` instead of the generated one.
    pub fn with_secret(self, secret: Secret) -> Self {
        self.set_secrets(vec![secret]);
        self
    }

    /// Verifies signatures with any of `secrets` (as a receiver does during a rotation).
    pub fn set_secrets(&self, secrets: Vec<Secret>) {
        let mut inner = self.state.lock();
        inner.verifier = Verifier::from_secrets(secrets.clone()).ok();
        inner.secrets = secrets;
    }

    /// The secret signatures are verified with (the first, if there are several).
    pub fn secret(&self) -> Secret {
        let inner = self.state.lock();
        match inner.secrets.first() {
            Some(secret) => secret.clone(),
            None => panic!("the MockReceiver has no secret"),
        }
    }

    /// Changes how the receiver answers from the next request on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        let mut inner = self.state.lock();
        inner.behaviour = behaviour;
        inner.seen_per_id.clear();
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> Url {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        match Url::parse(&format!("http://{}{}", self.addr, path)) {
            Ok(url) => url,
            Err(e) => panic!("MockReceiver::url({path:?}) is not a valid URL path: {e}"),
        }
    }

    /// Every request so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().deliveries.clone()
    }

    /// The most requests this receiver was handling at the same time (a `Delay` makes
    /// them overlap): what a sender's concurrency limits are checked against.
    pub fn peak_concurrency(&self) -> usize {
        self.state.peak.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many requests came so far.
    pub fn count(&self) -> usize {
        self.state.lock().deliveries.len()
    }

    /// The distinct `webhook-id`s received so far.
    pub fn unique_ids(&self) -> BTreeSet<String> {
        self.state
            .lock()
            .deliveries
            .iter()
            .filter_map(|d| d.webhook_id().map(str::to_owned))
            .collect()
    }

    /// Forgets every delivery so far.
    pub fn clear(&self) {
        let mut inner = self.state.lock();
        inner.deliveries.clear();
        inner.seen_per_id.clear();
        self.state.count.send_replace(0);
    }

    /// Waits until at least `count` requests came, for at most `within`.
    pub async fn wait_for(
        &self,
        count: usize,
        within: Duration,
    ) -> Result<Vec<Delivery>, WaitTimeout> {
        self.wait_until(&format!("{count} deliveries"), within, |d| d.len() >= count)
            .await
    }

    /// Waits until requests with at least `count` distinct `webhook-id`s came.
    pub async fn wait_for_unique(
        &self,
        count: usize,
        within: Duration,
    ) -> Result<Vec<Delivery>, WaitTimeout> {
        self.wait_until(&format!("{count} distinct messages"), within, |d| {
            d.iter()
                .filter_map(Delivery::webhook_id)
                .collect::<BTreeSet<_>>()
                .len()
                >= count
        })
        .await
    }

    /// Waits until `done` holds for the deliveries so far, for at most `within`.
    pub async fn wait_until(
        &self,
        what: &str,
        within: Duration,
        mut done: impl FnMut(&[Delivery]) -> bool,
    ) -> Result<Vec<Delivery>, WaitTimeout> {
        let until = tokio::time::Instant::now() + within;
        let mut changes = self.state.count.subscribe();
        loop {
            changes.borrow_and_update();
            {
                let inner = self.state.lock();
                if done(&inner.deliveries) {
                    return Ok(inner.deliveries.clone());
                }
            }
            match tokio::time::timeout_at(until, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => {
                    return Err(WaitTimeout {
                        wanted: what.to_owned(),
                        within,
                        got: self.deliveries(),
                    });
                }
            }
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    // Dropping this set (when the server task is aborted) ends every connection.
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        // A zero linger makes closing the socket send a RST: that is how `Reset` resets.
        // A receiver otherwise closes only after its client, so nothing else changes.
        let _ = stream.set_zero_linger();
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        connections.spawn(async move {
            let reset = Arc::new(Notify::new());
            let service = {
                let reset = reset.clone();
                hyper::service::service_fn(move |request| {
                    handle(state.clone(), reset.clone(), request)
                })
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = reset.notified() => {}
            }
        });
    }
}

async fn handle(
    state: Arc<State>,
    reset: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let _open = state.open_request();
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, 64 * 1024 * 1024).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let (behaviour, verified, verify_error, seen) = {
        let mut inner = state.lock();
        let (verified, verify_error) = match &inner.verifier {
            Some(verifier) => match verifier.verify(&parts.headers, &body) {
                Ok(_) => (true, None),
                Err(e) => (false, Some(e.to_string())),
            },
            None => (false, Some("the receiver has no secret".to_owned())),
        };
        let id = parts
            .headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let seen = inner.seen_per_id.entry(id).or_insert(0);
        *seen += 1;
        let seen = *seen;
        (inner.behaviour.clone(), verified, verify_error, seen)
    };
    let response: Option<Response<Body>> = match &behaviour {
        Behaviour::Succeed | Behaviour::Delay(_) | Behaviour::Hang | Behaviour::Reset => None,
        Behaviour::Status(status) => Some(full(
            *status,
            "application/json",
            format!(r#"{{"error":"status {status} on request"}}"#),
        )),
        Behaviour::FailTimes { times, status } => Some(if seen <= *times {
            full(
                *status,
                "application/json",
                r#"{"error":"failing on request"}"#,
            )
        } else {
            ok()
        }),
        Behaviour::RetryAfter {
            status,
            retry_after,
            times,
        } => Some(if seen <= *times {
            let mut r = full(*status, "application/json", r#"{"error":"try later"}"#);
            if let Ok(value) = HeaderValue::from_str(retry_after) {
                r.headers_mut().insert(RETRY_AFTER, value);
            }
            r
        } else {
            ok()
        }),
        Behaviour::Redirect { status, location } => {
            let mut r = full(*status, "text/plain", "moved");
            if let Ok(value) = HeaderValue::from_str(location) {
                r.headers_mut().insert(LOCATION, value);
            }
            Some(r)
        }
        Behaviour::HugeBody { bytes } => Some(huge(*bytes)),
        Behaviour::InvalidJson => Some(full(200, "application/json", "{this is not json")),
        Behaviour::Json { status, body } => Some(full(
            *status,
            "application/json",
            serde_json::to_vec(body).unwrap_or_default(),
        )),
    };
    let answered = match (&behaviour, &response) {
        (_, Some(r)) => Some(r.status().as_u16()),
        (Behaviour::Succeed | Behaviour::Delay(_), None) => Some(200),
        _ => None,
    };
    {
        let mut inner = state.lock();
        inner.deliveries.push(Delivery {
            method: parts.method,
            path,
            headers: parts.headers,
            body,
            received_at: SystemTime::now(),
            verified,
            verify_error,
            answered,
        });
        let n = inner.deliveries.len();
        state.count.send_replace(n);
    }
    match behaviour {
        Behaviour::Delay(d) => {
            tokio::time::sleep(d).await;
            Ok(ok())
        }
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Reset => {
            reset.notify_one();
            std::future::pending().await
        }
        _ => Ok(response.unwrap_or_else(ok)),
    }
}

/// A 200 whose body is `bytes` long and produced as it is read.
fn huge(bytes: u64) -> Response<Body> {
    const CHUNK: usize = 64 * 1024;
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let body = StreamBody::new(stream::unfold(bytes, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
            Some((
                Ok::<_, Infallible>(Frame::data(chunk.slice(..n))),
                left - n as u64,
            ))
        }
    }));
    let mut response = Response::new(BodyExt::boxed(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use roundtrip_delivery::signing::Signer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Sends one raw HTTP/1.1 request and returns what came back (or the read error).
    async fn post(receiver: &MockReceiver, headers: &[(&str, String)]) -> std::io::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(receiver.addr()).await?;
        let mut request = String::from(
            "POST /hook?x=1 HTTP/1.1\r\nhost: test\r\ncontent-length: 2\r\nconnection: close\r\n",
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n{}");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    fn signed(receiver: &MockReceiver, id: &str) -> Vec<(&'static str, String)> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let signer = Signer::new(receiver.secret());
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", now.to_string()),
            ("webhook-signature", signer.sign(id, now, b"{}")),
        ]
    }

    #[tokio::test]
    async fn records_requests_and_verifies_signatures() {
        let receiver = MockReceiver::start().await;
        let answer = post(&receiver, &signed(&receiver, "msg_1"))
            .await
            .expect("post");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        post(&receiver, &[("webhook-id", "msg_2".into())])
            .await
            .expect("post");
        let got = receiver
            .wait_for(2, Duration::from_secs(5))
            .await
            .expect("two");
        assert!(got[0].verified);
        assert_eq!(got[0].path, "/hook?x=1");
        assert_eq!(&got[0].body[..], b"{}");
        assert!(!got[1].verified);
        assert!(got[1].verify_error.is_some());
        assert_eq!(receiver.unique_ids().len(), 2);
    }

    #[tokio::test]
    async fn fails_the_given_number_of_times_per_message() {
        let receiver = MockReceiver::start().await;
        receiver.set_behaviour(Behaviour::fail_times(1, 503));
        let a1 = post(&receiver, &signed(&receiver, "msg_a"))
            .await
            .expect("post");
        let b1 = post(&receiver, &signed(&receiver, "msg_b"))
            .await
            .expect("post");
        let a2 = post(&receiver, &signed(&receiver, "msg_a"))
            .await
            .expect("post");
        assert!(a1.starts_with("HTTP/1.1 503"), "{a1}");
        assert!(b1.starts_with("HTTP/1.1 503"), "{b1}");
        assert!(a2.starts_with("HTTP/1.1 200"), "{a2}");
    }

    #[tokio::test]
    async fn misbehaves_on_request() {
        let receiver = MockReceiver::start().await;
        receiver.set_behaviour(Behaviour::redirect("http://127.0.0.1:1/x"));
        let answer = post(&receiver, &[]).await.expect("post");
        assert!(answer.starts_with("HTTP/1.1 302"), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("location: http://127.0.0.1:1/x")
        );

        receiver.set_behaviour(Behaviour::retry_after(429, 7));
        let answer = post(&receiver, &[]).await.expect("post");
        assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("retry-after: 7"));

        receiver.set_behaviour(Behaviour::Reset);
        match post(&receiver, &[]).await {
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
            Ok(answer) => assert!(answer.is_empty(), "no answer expected, got {answer}"),
        }
        assert_eq!(receiver.count(), 3, "every request is recorded");
    }

    #[tokio::test]
    async fn waiting_past_the_deadline_says_what_came() {
        let receiver = MockReceiver::start().await;
        post(&receiver, &[]).await.expect("post");
        let err = receiver
            .wait_for(2, Duration::from_millis(50))
            .await
            .expect_err("only one came");
        assert_eq!(err.deliveries().len(), 1);
        assert!(
            err.to_string().contains("for 2 deliveries but got 1"),
            "{err}"
        );
    }
}
