//! Workers: claim messages, send them, record attempts.
//!
//! # Policy
//!
//! A [`Dispatcher`] runs the workers of one process against an [`Outbox`]:
//!
//! * **Claims with leases.** It claims due messages in batches, as many as it has free
//!   slots, under its owner name and a lease. It claims again as soon as the store signals
//!   new work ([`Outbox::subscribe`]), a scheduled retry falls due, or the poll interval
//!   (250 ms) runs out, which covers messages enqueued inside an application's transaction
//!   and by other processes.
//! * **Bounded.** At most `max_in_flight` requests run at once, and at most
//!   `per_destination` go to one `host:port`. A dispatcher holds at most twice
//!   `max_in_flight` messages (from claim until the attempt is recorded): the extra ones are
//!   claimed ahead, so a freed request slot starts the next message without waiting for a
//!   claim, and attempt records are written while the next requests run. A crash can
//!   therefore repeat at most `2 × max_in_flight` deliveries. Messages for a busy
//!   destination wait for it while holding their place.
//! * **Leases outlive requests.** The lease must be longer than the total request timeout
//!   (checked at start), and it is renewed every third of its length while the message is
//!   held, so a slow receiver never lets another worker take a message that is still being
//!   sent. At start, the dispatcher takes back what its owner name held in a previous run
//!   (it crashed), and a sweeper hands back every expired lease of dead workers and purges
//!   history past its retention.
//! * **The attempt.** Each attempt checks the URL against the SSRF policy, asks the
//!   [`SecretSource`] for the secrets, and POSTs the body with the Standard Webhooks headers
//!   (`webhook-id` is the message id on every attempt, `webhook-timestamp` is the attempt's
//!   time), `content-type: application/json` and a `user-agent` naming roundtrip. The
//!   connection goes only to addresses the SSRF guard checked; proxies are off and redirects
//!   are not followed (a 3xx is a failed attempt that is retried). Connect and total
//!   timeouts default to 5 s and 15 s. At most `response_body_cap` bytes (4 KiB) of the
//!   response are read and stored; the rest is never downloaded.
//! * **The verdict.** Only 2xx is success. The [`RetrySchedule`] decides the rest: when to
//!   try again (honouring `Retry-After` within bounds), and when to give up (retries
//!   exhausted, or 410 Gone at once). A [`ResponseCheck`] may flag a 2xx response that
//!   breaks the declared contract; that is recorded, never retried.
//! * **Completions are batched.** Attempt records go to the store through one task, which
//!   writes whatever has accumulated in one call.
//! * **Graceful shutdown.** [`Dispatcher::shutdown`] stops claiming, lets attempts in
//!   flight finish until the deadline, records them, then releases every lease still held
//!   so another run can send those messages at once. An attempt cut at the deadline may
//!   have reached its receiver: it is sent again, and the receiver deduplicates on
//!   `webhook-id`.
//! * **Observability.** Each attempt runs in a `delivery.attempt` tracing span with the
//!   message id, the attempt number, the status and the duration. URLs are logged without
//!   credentials, query or fragment; secrets and bodies are never logged.

mod attempt;
mod hooks;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument;

pub use hooks::{
    AttemptObserver, AttemptReport, ResponseCheck, SecretSource, SecretSourceError, StaticSecrets,
};

use crate::message::{Completion, Decision, LeaseCheck, Message, MessageId, redact_url};
use crate::outbox::Outbox;
use crate::retry::{self, AttemptOutcome, RetrySchedule, random_unit};
use crate::ssrf::{GuardedResolver, Resolve, SsrfPolicy, SystemResolver};
use attempt::{Transport, TransportConfig};

/// The `user-agent` of every attempt.
pub const USER_AGENT: &str = concat!(
    "roundtrip-webhooks/",
    env!("CARGO_PKG_VERSION"),
    " (Standard Webhooks)"
);

/// How a [`Dispatcher`] runs.
#[derive(Clone)]
pub struct DispatcherConfig {
    worker_id: String,
    max_in_flight: usize,
    per_destination: usize,
    claim_batch: usize,
    lease: Duration,
    poll_interval: Duration,
    sweep_interval: Duration,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetrySchedule,
    ssrf: SsrfPolicy,
    resolver: Arc<dyn Resolve>,
    secrets: Arc<dyn SecretSource>,
    response_body_cap: usize,
    response_check: Option<Arc<dyn ResponseCheck>>,
    observer: Option<Arc<dyn AttemptObserver>>,
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

    /// Checks 2xx responses against the declared contract.
    pub fn response_check(mut self, check: impl ResponseCheck) -> Self {
        self.response_check = Some(Arc::new(check));
        self
    }

    fn validate(&self) -> Result<(), StartError> {
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

/// Why a [`Dispatcher`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error("invalid dispatcher configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client of the delivery workers")]
    Client(#[source] reqwest::Error),
    /// The outbox failed while the dispatcher took back stale leases.
    #[error("the outbox failed while the workers started")]
    Outbox(#[source] crate::outbox::Error),
}

/// Counters of a running [`Dispatcher`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatcherStats {
    /// Claim calls made to the outbox.
    pub claims: u64,
    /// Messages claimed.
    pub claimed: u64,
    /// Writes of attempt records to the outbox (each holds a batch of attempts).
    pub completion_writes: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Messages delivered.
    pub succeeded: u64,
    /// Attempts that will be retried.
    pub retried: u64,
    /// Messages failed for good.
    pub failed: u64,
    /// Completions recorded after the lease was lost.
    pub lease_lost: u64,
}

#[derive(Default)]
struct Counters {
    claims: AtomicU64,
    claimed: AtomicU64,
    completion_writes: AtomicU64,
    attempts: AtomicU64,
    succeeded: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    lease_lost: AtomicU64,
}

/// What [`Dispatcher::shutdown`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Attempts cut at the deadline.
    pub abandoned: u64,
    /// Leases handed back to the queue.
    pub released: u64,
    /// Whether every attempt record reached the store.
    pub completions_recorded: bool,
}

struct Shared {
    outbox: Arc<dyn Outbox>,
    owner: String,
    transport: Transport,
    retry: RetrySchedule,
    lease: Duration,
    poll_interval: Duration,
    claim_batch: usize,
    /// Messages held, from claim until their attempt is recorded (2 × max_in_flight).
    held_slots: Arc<Semaphore>,
    /// Requests running (max_in_flight).
    requests: Arc<Semaphore>,
    destinations: Destinations,
    held: Mutex<HashSet<MessageId>>,
    next_due: Mutex<Option<Instant>>,
    due_changed: Notify,
    counters: Counters,
    observer: Option<Arc<dyn AttemptObserver>>,
}

impl Shared {
    fn hold(&self, id: &MessageId) {
        if let Ok(mut held) = self.held.lock() {
            held.insert(id.clone());
        }
    }
    fn drop_held(&self, ids: impl Iterator<Item = MessageId>) {
        if let Ok(mut held) = self.held.lock() {
            for id in ids {
                held.remove(&id);
            }
        }
    }
    fn held_ids(&self) -> Vec<MessageId> {
        self.held
            .lock()
            .map(|held| held.iter().cloned().collect())
            .unwrap_or_default()
    }
    fn schedule_wake(&self, at: Instant) {
        if let Ok(mut due) = self.next_due.lock()
            && due.is_none_or(|d| at < d)
        {
            *due = Some(at);
        }
        self.due_changed.notify_one();
    }
}

/// Per-`host:port` concurrency limits.
struct Destinations {
    limit: usize,
    map: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Destinations {
    async fn acquire(&self, key: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut map = self.map.lock().ok()?;
            map.entry(key.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.limit)))
                .clone()
        };
        semaphore.acquire_owned().await.ok()
    }

    /// Forgets idle destinations, so the map does not grow with every host ever seen.
    fn trim(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.limit);
        }
    }
}

/// The delivery workers of one process. Stop them with [`shutdown`](Self::shutdown);
/// dropping the handle stops claiming and lets attempts in flight finish in the background.
pub struct Dispatcher {
    shared: Arc<Shared>,
    stop: watch::Sender<Option<Instant>>,
    claimer: Option<JoinHandle<u64>>,
    completer: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("owner", &self.shared.owner)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Checks `config`, takes back the leases this owner held in a previous run and every
    /// expired lease, and starts the workers. Must be called inside a Tokio runtime.
    pub async fn start(
        outbox: Arc<dyn Outbox>,
        config: DispatcherConfig,
    ) -> Result<Self, StartError> {
        config.validate()?;
        // reqwest is built without a default TLS provider: install ring's, unless the
        // application installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let guard = GuardedResolver::new(config.resolver.clone(), config.ssrf.clone());
        let client = guard
            .configure_client(reqwest::Client::builder())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(config.per_destination)
            .tcp_nodelay(true)
            .build()
            .map_err(StartError::Client)?;
        let user_agent = HeaderValue::from_static(USER_AGENT);
        let transport = Transport::new(TransportConfig {
            client,
            policy: config.ssrf.clone(),
            secrets: config.secrets.clone(),
            check: config.response_check.clone(),
            body_cap: config.response_body_cap,
            user_agent,
        });

        let crashed = outbox
            .reclaim_owner(&config.worker_id)
            .await
            .map_err(StartError::Outbox)?;
        let expired = outbox.reclaim_expired().await.map_err(StartError::Outbox)?;
        if crashed.requeued + crashed.failed + expired.requeued + expired.failed > 0 {
            tracing::warn!(
                owner = %config.worker_id,
                own_requeued = crashed.requeued,
                expired_requeued = expired.requeued,
                failed_at_crash_cap = crashed.failed + expired.failed,
                "took back messages held by workers that stopped without finishing them"
            );
        }

        let shared = Arc::new(Shared {
            outbox,
            owner: config.worker_id.clone(),
            transport,
            retry: config.retry.clone(),
            lease: config.lease,
            poll_interval: config.poll_interval,
            claim_batch: config
                .claim_batch
                .min(config.max_in_flight.saturating_mul(2)),
            held_slots: Arc::new(Semaphore::new(config.max_in_flight.saturating_mul(2))),
            requests: Arc::new(Semaphore::new(config.max_in_flight)),
            destinations: Destinations {
                limit: config.per_destination,
                map: Mutex::new(HashMap::new()),
            },
            held: Mutex::new(HashSet::new()),
            next_due: Mutex::new(None),
            due_changed: Notify::new(),
            counters: Counters::default(),
            observer: config.observer.clone(),
        });
        let (stop, stop_rx) = watch::channel(None);
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let claimer = tokio::spawn(claim_loop(shared.clone(), stop_rx.clone(), done_tx));
        let completer = tokio::spawn(complete_loop(shared.clone(), done_rx, stop_rx.clone()));
        let renewer = tokio::spawn(renew_loop(shared.clone(), stop_rx.clone()));
        let sweeper = tokio::spawn(sweep_loop(shared.clone(), config.sweep_interval, stop_rx));
        Ok(Dispatcher {
            shared,
            stop,
            claimer: Some(claimer),
            completer: Some(completer),
            background: vec![renewer, sweeper],
        })
    }

    /// The owner name of this dispatcher's leases.
    pub fn worker_id(&self) -> &str {
        &self.shared.owner
    }

    /// The counters so far.
    pub fn stats(&self) -> DispatcherStats {
        let c = &self.shared.counters;
        DispatcherStats {
            claims: c.claims.load(Ordering::Relaxed),
            claimed: c.claimed.load(Ordering::Relaxed),
            completion_writes: c.completion_writes.load(Ordering::Relaxed),
            attempts: c.attempts.load(Ordering::Relaxed),
            succeeded: c.succeeded.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            lease_lost: c.lease_lost.load(Ordering::Relaxed),
        }
    }

    /// Stops claiming, lets attempts in flight finish for up to `deadline`, records them,
    /// and releases every lease still held.
    pub async fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        let until = Instant::now() + deadline;
        let _ = self.stop.send(Some(until));
        let mut report = ShutdownReport::default();
        if let Some(claimer) = self.claimer.take() {
            report.abandoned = claimer.await.unwrap_or(0);
        }
        if let Some(mut completer) = self.completer.take() {
            // Recording what finished gets a little time past the deadline.
            let grace = until.max(Instant::now()) + Duration::from_secs(2);
            match tokio::time::timeout_at(grace, &mut completer).await {
                Ok(_) => report.completions_recorded = true,
                Err(_) => completer.abort(),
            }
        }
        for task in self.background.drain(..) {
            task.abort();
        }
        match self.shared.outbox.release(&self.shared.owner).await {
            Ok(n) => report.released = n,
            Err(e) => tracing::warn!(
                owner = %self.shared.owner,
                error = %e,
                "could not release leases at shutdown; they will be reclaimed when they expire"
            ),
        }
        report
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if self.claimer.is_some() {
            // Stop claiming; attempts in flight finish and are recorded in the background.
            let _ = self
                .stop
                .send(Some(Instant::now() + Duration::from_secs(3600)));
            for task in self.background.drain(..) {
                task.abort();
            }
        }
    }
}

fn stopping(stop: &watch::Receiver<Option<Instant>>) -> bool {
    stop.borrow().is_some()
}

async fn stopped(stop: &mut watch::Receiver<Option<Instant>>) {
    loop {
        if stop.borrow_and_update().is_some() {
            return;
        }
        if stop.changed().await.is_err() {
            // The handle is gone without a shutdown: keep running until the process ends.
            std::future::pending::<()>().await;
        }
    }
}

/// Claims and starts attempts until stopped; then waits for the attempts in flight until
/// the deadline. Answers how many were cut.
async fn claim_loop(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<Option<Instant>>,
    done: mpsc::UnboundedSender<Done>,
) -> u64 {
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut wakeup = shared.outbox.subscribe();
    let mut failures: u32 = 0;
    loop {
        while tasks.try_join_next().is_some() {}
        if stopping(&stop) {
            break;
        }
        // Wait for a free slot, then take every free slot up to the batch size.
        let first = tokio::select! {
            permit = shared.held_slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut stop) => break,
        };
        let mut permits = vec![first];
        while permits.len() < shared.claim_batch {
            match shared.held_slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let wanted = permits.len();
        wakeup.mark_seen();
        shared.counters.claims.fetch_add(1, Ordering::Relaxed);
        let claimed = shared
            .outbox
            .claim(&shared.owner, wanted, shared.lease)
            .await;
        let got = match claimed {
            Ok(messages) => {
                failures = 0;
                let got = messages.len();
                shared
                    .counters
                    .claimed
                    .fetch_add(got as u64, Ordering::Relaxed);
                for message in messages {
                    let Some(permit) = permits.pop() else { break };
                    shared.hold(&message.meta.id);
                    tasks.spawn(deliver(shared.clone(), message, permit, done.clone()));
                }
                got
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(owner = %shared.owner, error = %e, failures, "claiming messages failed; retrying");
                }
                0
            }
        };
        drop(permits);
        if got == wanted && failures == 0 {
            continue;
        }
        // Idle: wait for a wake-up, a due retry, the poll timer, or the stop.
        let backoff = if failures > 0 {
            shared
                .poll_interval
                .saturating_mul(failures.min(20))
                .min(Duration::from_secs(5))
        } else {
            shared.poll_interval
        };
        let mut wake_at = Instant::now() + backoff;
        if failures == 0
            && let Ok(mut due) = shared.next_due.lock()
            && let Some(at) = *due
        {
            if at <= Instant::now() {
                *due = None;
                continue;
            }
            wake_at = wake_at.min(at);
        }
        tokio::select! {
            _ = wakeup.wait(), if failures == 0 => {}
            _ = shared.due_changed.notified() => {}
            _ = tokio::time::sleep_until(wake_at) => {}
            _ = stopped(&mut stop) => {}
        }
        if let Ok(mut due) = shared.next_due.lock()
            && due.is_some_and(|at| at <= Instant::now())
        {
            *due = None;
        }
    }
    // Stopping: let attempts in flight finish until the deadline.
    drop(done);
    let deadline = *stop.borrow();
    let mut abandoned = 0u64;
    let wait_all = async { while tasks.join_next().await.is_some() {} };
    match deadline {
        Some(until) => {
            if tokio::time::timeout_at(until, wait_all).await.is_err() {
                abandoned = tasks.len() as u64;
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            }
        }
        None => wait_all.await,
    }
    abandoned
}

/// Asks the schedule what to do after what an attempt observed, and places the decision
/// in time: the message's next state.
fn judge(schedule: &RetrySchedule, number: u32, observed: &AttemptOutcome) -> Decision {
    match schedule.decide(number, observed, random_unit) {
        retry::Decision::Succeeded => Decision::Succeeded,
        retry::Decision::RetryAfter(wait) => Decision::Retry {
            at: SystemTime::now() + wait,
        },
        retry::Decision::Failed(reason) => Decision::Failed {
            reason: format!("{reason} (last attempt: {observed})"),
        },
    }
}

/// A finished attempt on its way to the store, with the slot it holds until recorded.
type Done = (Completion, OwnedSemaphorePermit);

async fn deliver(
    shared: Arc<Shared>,
    message: Message,
    slot: OwnedSemaphorePermit,
    done: mpsc::UnboundedSender<Done>,
) {
    let meta = &message.meta;
    let number = meta.next_attempt_number();
    let span = tracing::info_span!(
        "delivery.attempt",
        message_id = %meta.id,
        attempt = number,
        name = %meta.name,
        url = %redact_url(&meta.url),
        status = tracing::field::Empty,
        error = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let destination = attempt::destination(&meta.url);
    async {
        let destination_slot = shared.destinations.acquire(&destination).await;
        let request_slot = shared.requests.clone().acquire_owned().await.ok();
        if let Some(observer) = &shared.observer {
            observer.started(meta);
        }
        let (record, observed) = shared.transport.attempt(&message, number).await;
        drop(request_slot);
        drop(destination_slot);
        let decision = judge(&shared.retry, number, &observed);
        let span = tracing::Span::current();
        span.record("duration_ms", record.duration.as_millis() as u64);
        if let Some(code) = record.response_status {
            span.record("status", code);
        }
        if let Some(error) = &record.error {
            span.record("error", error.kind.as_str());
        }
        span.record("outcome", decision.as_str());
        let c = &shared.counters;
        c.attempts.fetch_add(1, Ordering::Relaxed);
        match &decision {
            Decision::Succeeded => {
                c.succeeded.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("delivered");
            }
            Decision::Retry { at } => {
                c.retried.fetch_add(1, Ordering::Relaxed);
                let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
                tracing::info!(
                    retry_in_ms = wait.as_millis() as u64,
                    "attempt failed; will retry"
                );
            }
            Decision::Failed { reason } => {
                c.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%reason, "delivery failed for good");
            }
        }
        if let Some(violation) = &record.contract_violation {
            tracing::warn!(%violation, "the receiver's response breaks the declared contract");
        }
        if let Some(observer) = &shared.observer {
            observer.finished(&AttemptReport {
                message: meta,
                attempt: &record,
                decision: &decision,
            });
        }
        // The held slot stays taken until the attempt is recorded: a crash can then repeat
        // at most `2 × max_in_flight` deliveries.
        let completion = Completion {
            message_id: message.meta.id.clone(),
            owner: shared.owner.clone(),
            attempt: record,
            decision,
        };
        let _ = done.send((completion, slot));
    }
    .instrument(span)
    .await;
}

/// Records completions in batches: whatever accumulated while the last write ran.
async fn complete_loop(
    shared: Arc<Shared>,
    mut done: mpsc::UnboundedReceiver<Done>,
    stop: watch::Receiver<Option<Instant>>,
) {
    let mut batch: Vec<Completion> = Vec::new();
    let mut slots: Vec<OwnedSemaphorePermit> = Vec::new();
    while let Some((first, slot)) = done.recv().await {
        batch.push(first);
        slots.push(slot);
        while batch.len() < 512 {
            match done.try_recv() {
                Ok((c, slot)) => {
                    batch.push(c);
                    slots.push(slot);
                }
                Err(_) => break,
            }
        }
        let mut failures = 0u32;
        loop {
            shared
                .counters
                .completion_writes
                .fetch_add(1, Ordering::Relaxed);
            match shared.outbox.complete(batch.clone()).await {
                Ok(statuses) => {
                    for (c, status) in batch.iter().zip(statuses) {
                        if status == LeaseCheck::Lost {
                            shared.counters.lease_lost.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                message_id = %c.message_id,
                                "the lease was lost before the attempt was recorded; another worker may send this message again"
                            );
                        }
                    }
                    break;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(error = %e, pending = batch.len(), "recording attempts failed; retrying");
                    }
                    let deadline_passed = stop
                        .borrow()
                        .is_some_and(|until| Instant::now() > until + Duration::from_secs(1));
                    if deadline_passed {
                        return;
                    }
                    let wait = Duration::from_millis(50)
                        .saturating_mul(failures.min(100))
                        .min(Duration::from_secs(5));
                    tokio::time::sleep(wait).await;
                }
            }
        }
        let mut earliest: Option<SystemTime> = None;
        for c in &batch {
            if let Decision::Retry { at } = c.decision {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        shared.drop_held(batch.drain(..).map(|c| c.message_id));
        slots.clear();
        if let Some(at) = earliest {
            let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
            shared.schedule_wake(Instant::now() + wait);
        }
    }
}

/// Renews the leases of held messages every third of the lease.
async fn renew_loop(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Instant>>) {
    let every = shared.lease / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut stop) => {}
        }
        // Leases are renewed during a shutdown too, until the dispatcher releases them.
        let ids = shared.held_ids();
        if ids.is_empty() {
            if stopping(&stop) {
                tokio::time::sleep(every).await;
            }
            continue;
        }
        match shared.outbox.renew(&shared.owner, &ids, shared.lease).await {
            Ok(kept) if kept.len() < ids.len() => {
                tracing::warn!(
                    owner = %shared.owner,
                    lost = ids.len() - kept.len(),
                    "some leases were lost before renewal (expired and taken over, or cancelled)"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(owner = %shared.owner, error = %e, "renewing leases failed"),
        }
        if stopping(&stop) {
            tokio::time::sleep(every).await;
        }
    }
}

/// Reclaims expired leases of dead workers and purges old history.
async fn sweep_loop(
    shared: Arc<Shared>,
    every: Duration,
    mut stop: watch::Receiver<Option<Instant>>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut stop) => return,
        }
        match shared.outbox.reclaim_expired().await {
            Ok(r) if r.requeued + r.failed > 0 => tracing::warn!(
                requeued = r.requeued,
                failed_at_crash_cap = r.failed,
                "reclaimed messages whose workers stopped without finishing them"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reclaiming expired leases failed"),
        }
        match shared.outbox.purge().await {
            Ok(p) if p.messages > 0 => {
                tracing::debug!(
                    messages = p.messages,
                    attempts = p.attempts,
                    "purged history"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging history failed"),
        }
        shared.destinations.trim();
    }
}
