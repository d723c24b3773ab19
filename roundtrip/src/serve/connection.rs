//! The accept loop: HTTP/1.1 over hyper, with a header timeout, an idle timeout and a
//! connection cap (`axum::serve` has none of the three), and a graceful shutdown.
//!
//! A permit of the connection semaphore is taken *before* accepting, so at the cap the
//! loop waits and new connections queue in the kernel's backlog; the permit lives inside
//! the connection's IO, so it is given back when the socket closes, also after a websocket
//! upgrade took the IO over. Accept errors (out of file descriptors, say) pause the loop
//! briefly instead of spinning, and it goes on accepting.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::Body as _;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use crate::server_limits::ServerLimits;

/// How long the loop pauses after an accept error that is not the client's.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Accept errors are logged at most this often.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets the
/// open connections finish their requests and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (signal_tx, signal_rx) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut shutdown = pin!(shutdown);
    let mut last_logged: Option<Instant> = None;
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    if !is_connection_error(&err) {
                        if last_logged.is_none_or(|at| at.elapsed() >= ACCEPT_LOG_EVERY) {
                            tracing::error!("accept error: {err} (pausing, then accepting again)");
                            last_logged = Some(Instant::now());
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            builder: builder.clone(),
            router: router.clone(),
            idle_timeout: limits.idle_timeout,
            signal: signal_rx.clone(),
            close: close_rx.clone(),
        };
        tokio::spawn(conn.run(stream, remote, permit));
    }
    drop(listener);
    drop(signal_rx);
    let _ = signal_tx.send(());
    drop(close_rx);
    close_tx.closed().await;
}

/// Errors of one connection that came and went, not of the listener.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

struct Connection {
    builder: hyper::server::conn::http1::Builder,
    router: axum::Router,
    idle_timeout: Duration,
    signal: watch::Receiver<()>,
    /// Held until the connection ends: the server waits for every holder to drop it.
    close: watch::Receiver<()>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, remote: SocketAddr, permit: OwnedSemaphorePermit) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: activity.clone(),
            _permit: permit,
        });
        let router = self.router.clone();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let router = router.clone();
            let guard = InFlight::start(requests.clone());
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(remote));
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // A body whose length is known (a JSON answer, say) is written at once:
                // the request ends here. Only a stream keeps it in progress while it is
                // sent, so that a pause between its chunks is not taken for idleness; an
                // answer unboxed and boxed again costs an allocation, which plain answers
                // skip.
                if response.body().size_hint().exact().is_some() {
                    drop(guard);
                    return Ok::<_, Infallible>(response);
                }
                Ok(response.map(|body| {
                    Body::new(Guarded {
                        inner: body,
                        _guard: guard,
                    })
                }))
            }
        });
        let mut conn = pin!(self.builder.serve_connection(io, service).with_upgrades());
        let mut closing = false;
        let idle = tokio::time::sleep(self.idle_timeout);
        let mut idle = pin!(idle);
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::trace!("connection from {remote} ended: {err}");
                    }
                    break;
                }
                changed = self.signal.changed(), if !closing => {
                    let _ = changed;
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = idle.as_mut(), if !closing => {
                    match activity.idle_until(self.idle_timeout) {
                        None => {
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                        Some(deadline) => idle.as_mut().reset(deadline.into()),
                    }
                }
            }
        }
        drop(self.close);
    }
}

/// What a connection did last: requests in progress and the time of its last traffic.
struct Activity {
    opened: Instant,
    /// Milliseconds since `opened`.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// `None` when the connection has been idle (no request in progress, no traffic) for
    /// `timeout`; otherwise when to look again.
    fn idle_until(&self, timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Some(Instant::now() + timeout);
        }
        let last = self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed));
        let deadline = last + timeout;
        (deadline > Instant::now()).then_some(deadline)
    }
}

/// A request in progress, from its head to the end (or drop) of its answer's body.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its request in progress while it is being sent.
struct Guarded {
    inner: Body,
    _guard: InFlight,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's socket, recording its traffic and holding its place under the cap.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
