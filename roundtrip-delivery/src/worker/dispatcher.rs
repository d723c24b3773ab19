//! The dispatcher: the handle on one process's workers, and the state their tasks share.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::attempt::{Transport, TransportConfig};
use super::claim::claim_loop;
use super::complete::complete_loop;
use super::config::{DispatcherConfig, StartError, USER_AGENT};
use super::hooks::AttemptObserver;
use super::limits::Destinations;
use super::renew::renew_loop;
use super::stats::{Counters, DispatcherStats};
use super::sweep::sweep_loop;
use crate::message::MessageId;
use crate::outbox::{LocalDelivery, Outbox};
use crate::retry::RetrySchedule;
use crate::ssrf::GuardedResolver;

/// What the dispatcher's tasks share.
pub(super) struct Shared {
    pub(super) outbox: Arc<dyn Outbox>,
    pub(super) owner: String,
    pub(super) transport: Transport,
    pub(super) retry: RetrySchedule,
    pub(super) lease: Duration,
    pub(super) poll_interval: Duration,
    pub(super) claim_batch: usize,
    /// Messages held, from claim until their attempt is recorded (2 × max_in_flight).
    pub(super) held_slots: Arc<Semaphore>,
    /// Requests running (max_in_flight).
    pub(super) requests: Arc<Semaphore>,
    pub(super) destinations: Destinations,
    /// The messages held, each with how many times: a message can be handed over again
    /// (a retry due at once, refilled by the write recording its attempt) before that
    /// write's batch is dropped from here.
    pub(super) held: Mutex<HashMap<MessageId, u32>>,
    pub(super) next_due: Mutex<Option<Instant>>,
    pub(super) due_changed: Notify,
    pub(super) counters: Counters,
    pub(super) observer: Option<Arc<dyn AttemptObserver>>,
}

impl Shared {
    pub(super) fn hold(&self, id: &MessageId) {
        if let Ok(mut held) = self.held.lock() {
            *held.entry(id.clone()).or_insert(0) += 1;
        }
    }
    pub(super) fn drop_held(&self, ids: impl Iterator<Item = MessageId>) {
        if let Ok(mut held) = self.held.lock() {
            for id in ids {
                if let Some(n) = held.get_mut(&id) {
                    *n -= 1;
                    if *n == 0 {
                        held.remove(&id);
                    }
                }
            }
        }
    }
    pub(super) fn held_ids(&self) -> Vec<MessageId> {
        self.held
            .lock()
            .map(|held| held.keys().cloned().collect())
            .unwrap_or_default()
    }
    pub(super) fn schedule_wake(&self, at: Instant) {
        if let Ok(mut due) = self.next_due.lock()
            && due.is_none_or(|d| at < d)
        {
            *due = Some(at);
        }
        self.due_changed.notify_one();
    }
}

/// The delivery workers of one process. Stop them with [`shutdown`](Self::shutdown);
/// dropping the handle stops claiming and lets attempts in flight finish in the background.
pub struct Dispatcher {
    pub(super) shared: Arc<Shared>,
    pub(super) stop: watch::Sender<Option<Instant>>,
    pub(super) claimer: Option<JoinHandle<u64>>,
    pub(super) completer: Option<JoinHandle<()>>,
    pub(super) background: Vec<JoinHandle<()>>,
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
            .map_err(|e| StartError::Client(Box::new(e)))?;
        let user_agent = HeaderValue::from_static(USER_AGENT);
        let transport = Transport::new(TransportConfig {
            client,
            policy: config.ssrf.clone(),
            secrets: config.secrets.clone(),
            check: config.response_check.clone(),
            body_cap: config.response_body_cap,
            user_agent,
            send_traceparent: config.send_traceparent,
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

        let held_slots = Arc::new(Semaphore::new(config.max_in_flight.saturating_mul(2)));
        // The fast path: messages this process commits come leased to this dispatcher,
        // each with one of its slots, without a claim.
        let (local_tx, local_rx) = mpsc::unbounded_channel();
        let local = LocalDelivery::new(
            config.worker_id.as_str(),
            config.lease,
            held_slots.clone(),
            local_tx,
        );
        let local_rx = outbox.deliver_locally(local).then_some(local_rx);
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
            held_slots,
            requests: Arc::new(Semaphore::new(config.max_in_flight)),
            destinations: Destinations {
                limit: config.per_destination,
                map: Mutex::new(HashMap::new()),
            },
            held: Mutex::new(HashMap::new()),
            next_due: Mutex::new(None),
            due_changed: Notify::new(),
            counters: Counters::default(),
            observer: config.observer.clone(),
        });
        let (stop, stop_rx) = watch::channel(None);
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let claimer = tokio::spawn(claim_loop(
            shared.clone(),
            stop_rx.clone(),
            done_tx,
            local_rx,
        ));
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
        self.shared.counters.snapshot()
    }
}
