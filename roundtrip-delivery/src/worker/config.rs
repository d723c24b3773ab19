//! How a dispatcher runs: its limits, timeouts, lease, schedule, SSRF policy and hooks,
//! checked before it starts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::hooks::{AttemptObserver, ResponseCheck, SecretSource};
use crate::retry::RetrySchedule;
use crate::ssrf::{Resolve, SsrfPolicy, SystemResolver};

/// The `user-agent` of every attempt.
pub(crate) const USER_AGENT: &str = concat!(
    "roundtrip-webhooks/",
    env!("CARGO_PKG_VERSION"),
    " (Standard Webhooks)"
);

/// How a [`Dispatcher`](super::Dispatcher) runs.
#[derive(Clone)]
pub struct DispatcherConfig {
    pub(super) worker_id: String,
    pub(super) max_in_flight: usize,
    pub(super) per_destination: usize,
    pub(super) claim_batch: usize,
    pub(super) lease: Duration,
    pub(super) poll_interval: Duration,
    pub(super) sweep_interval: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) retry: RetrySchedule,
    pub(super) ssrf: SsrfPolicy,
    pub(super) resolver: Arc<dyn Resolve>,
    pub(super) secrets: Arc<dyn SecretSource>,
    pub(super) response_body_cap: usize,
    pub(super) response_check: Option<Arc<dyn ResponseCheck>>,
    pub(super) observer: Option<Arc<dyn AttemptObserver>>,
    pub(super) send_traceparent: bool,
}

impl fmt::Debug for DispatcherConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatcherConfig")
            .field("worker_id", &self.worker_id)
            .field("max_in_flight", &self.max_in_flight)
            .field("per_destination", &self.per_destination)
            .field("claim_batch", &self.claim_batch)
            .field("lease", &self.lease)
            .field("poll_interval", &self.poll_interval)
            .field("sweep_interval", &self.sweep_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("ssrf", &self.ssrf)
            .field("response_body_cap", &self.response_body_cap)
            .finish_non_exhaustive()
    }
}

fn default_worker_id() -> String {
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        u32::from_le_bytes(random)
    )
}

impl DispatcherConfig {
    /// The defaults, signing with `secrets`: 64 messages in flight, 8 per destination,
    /// a 60 s lease, 250 ms poll, 5 s connect and 15 s total timeouts, the default retry
    /// schedule and SSRF policy, the system resolver, and 4 KiB of each response stored.
    pub fn new(secrets: impl SecretSource) -> Self {
        DispatcherConfig {
            worker_id: default_worker_id(),
            max_in_flight: 64,
            per_destination: 8,
            claim_batch: 64,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
            sweep_interval: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            retry: RetrySchedule::default(),
            ssrf: SsrfPolicy::default(),
            resolver: Arc::new(SystemResolver),
            secrets: Arc::new(secrets),
            response_body_cap: 4096,
            response_check: None,
            observer: None,
            send_traceparent: false,
        }
    }

    /// The owner name of this dispatcher's leases (default: host, process id and a random
    /// part). Give each process a stable, unique name (for example its replica name) and a
    /// restart takes back at once what the crashed run held; with the default, those
    /// messages wait for their leases to expire.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = id.into();
        self
    }

    /// The most requests in flight at once (default 64). Twice as many messages may be held
    /// (claimed ahead, or waiting for their attempt to be recorded): that bounds the
    /// deliveries a crash can repeat.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// The most requests to one `host:port` at once (default 8).
    pub fn per_destination(mut self, n: usize) -> Self {
        self.per_destination = n;
        self
    }

    /// The most messages claimed in one call (default 64).
    pub fn claim_batch(mut self, n: usize) -> Self {
        self.claim_batch = n;
        self
    }

    /// How long a claim lasts before another worker may take the message (default 60 s).
    /// Must be longer than the request timeout.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often to look for work when no wake-up came (default 250 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How often to reclaim expired leases and purge old history (default 30 s).
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// The connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The total timeout of one attempt, from connecting to the end of the stored part of
    /// the response (default 15 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// When to retry and when to give up.
    pub fn retry_schedule(mut self, schedule: RetrySchedule) -> Self {
        self.retry = schedule;
        self
    }

    /// Which addresses may be connected to (default: public addresses only).
    pub fn ssrf_policy(mut self, policy: SsrfPolicy) -> Self {
        self.ssrf = policy;
        self
    }

    /// How host names are resolved (default: the operating system). Every address is
    /// checked against the SSRF policy.
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Where signing secrets come from.
    pub fn secrets(mut self, secrets: impl SecretSource) -> Self {
        self.secrets = Arc::new(secrets);
        self
    }

    /// How many bytes of each response are read and stored (default 4096).
    pub fn response_body_cap(mut self, bytes: usize) -> Self {
        self.response_body_cap = bytes;
        self
    }

    /// Observes every attempt (metrics, endpoint health).
    pub fn observer(mut self, observer: impl AttemptObserver) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Sends each attempt's W3C trace context (`traceparent`, `tracestate`) to the
    /// receiver, so that its spans join the attempt's trace (off by default: it tells the
    /// receiver your trace ids). Only with the `opentelemetry` feature, where each attempt
    /// has a span.
    #[cfg(feature = "opentelemetry")]
    pub fn send_traceparent(mut self, send: bool) -> Self {
        self.send_traceparent = send;
        self
    }

    /// Checks 2xx responses against the declared contract.
    pub fn response_check(mut self, check: impl ResponseCheck) -> Self {
        self.response_check = Some(Arc::new(check));
        self
    }

    pub(super) fn validate(&self) -> Result<(), StartError> {
        let invalid = |why: String| Err(StartError::Config(why));
        if self.worker_id.is_empty() {
            return invalid("the worker id is empty".into());
        }
        if self.max_in_flight == 0 || self.per_destination == 0 || self.claim_batch == 0 {
            return invalid(
                "max_in_flight, per_destination and claim_batch must be at least 1".into(),
            );
        }
        if self.lease <= self.request_timeout {
            return invalid(format!(
                "the lease ({:?}) must be longer than the request timeout ({:?}), or another \
                 worker could take a message that is still being sent; use at least twice the \
                 timeout",
                self.lease, self.request_timeout
            ));
        }
        if self.connect_timeout > self.request_timeout {
            return invalid(format!(
                "the connect timeout ({:?}) is longer than the request timeout ({:?})",
                self.connect_timeout, self.request_timeout
            ));
        }
        if self.poll_interval.is_zero() || self.sweep_interval.is_zero() {
            return invalid("the poll and sweep intervals must be above zero".into());
        }
        Ok(())
    }
}

/// Why a [`Dispatcher`](super::Dispatcher) could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error("invalid dispatcher configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built (its TLS roots, for example). The source is the
    /// HTTP client's own error, boxed so that this type does not name the client's crate.
    #[error("cannot build the HTTP client of the delivery workers")]
    Client(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The outbox failed while the dispatcher took back stale leases.
    #[error("the outbox failed while the workers started")]
    Outbox(#[source] crate::outbox::Error),
}
