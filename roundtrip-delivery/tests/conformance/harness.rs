//! What the conformance suite needs from a store, and small helpers for its tests.
//!
//! A store joins the suite by implementing [`StoreFactory`]: it opens a store on a fresh,
//! empty database that nothing else uses, and gives the few store-specific hooks the
//! behaviours need (a second instance on the same database, the application's own
//! transaction, a look at the live table). Every case in `cases.rs` runs against each
//! factory unchanged.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use roundtrip_delivery::message::{
    Completion, Decision, Enqueued, MessageId, NewAttempt, NewMessage,
};
use roundtrip_delivery::outbox::{CommitStats, Error, Outbox};
use url::Url;

/// The store-wide limits a case may change.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    pub(crate) crash_cap: u32,
    pub(crate) max_body_bytes: usize,
    pub(crate) retention_succeeded: Duration,
    pub(crate) retention_failed: Duration,
    pub(crate) idempotency_retention: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            crash_cap: 5,
            max_body_bytes: 1024 * 1024,
            retention_succeeded: Duration::from_secs(7 * 24 * 3600),
            retention_failed: Duration::from_secs(30 * 24 * 3600),
            idempotency_retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// Opens stores of one kind, each on its own fresh database.
pub(crate) trait StoreFactory: Send + Sync {
    /// The store's name, for messages.
    fn name(&self) -> &'static str;
    /// A store on a fresh, empty database that no other test uses.
    fn fresh(&self, config: StoreConfig) -> BoxFuture<'_, Box<dyn TestDb>>;
    /// How many enqueue calls at least share a transaction, on average, when many run at
    /// once: what the store's group commit promises.
    fn commit_sharing(&self) -> u64;
}

/// One fresh database and the store opened on it. Dropping it deletes the database.
pub(crate) trait TestDb: Send + Sync {
    /// The store.
    fn outbox(&self) -> Arc<dyn Outbox>;
    /// Another, independent instance of the store on the same database, as a second
    /// process would open.
    fn reopen(&self) -> BoxFuture<'_, Arc<dyn Outbox>>;
    /// In one application transaction: inserts the business row `invoice` and enqueues
    /// `messages` with the store's transactional enqueue, then commits or rolls back.
    fn enqueue_with_invoice(
        &self,
        invoice: &str,
        messages: Vec<NewMessage>,
        commit: bool,
    ) -> BoxFuture<'_, Result<Vec<Enqueued>, Error>>;
    /// Whether the business row `invoice` exists.
    fn invoice_exists(&self, invoice: &str) -> BoxFuture<'_, bool>;
    /// How many rows the live queue table holds.
    fn live_rows(&self) -> BoxFuture<'_, i64>;
    /// The commit counters of the store [`outbox`](Self::outbox) answers.
    fn commit_stats(&self) -> CommitStats;
}

pub(crate) fn url(path: &str) -> Url {
    Url::parse(&format!("http://127.0.0.1:9{path}")).expect("url")
}

pub(crate) fn msg(name: &str) -> NewMessage {
    NewMessage::callback(name, url("/hook"), r#"{"paid":true}"#)
}

pub(crate) fn success(id: &MessageId, owner: &str, number: u32) -> Completion {
    Completion {
        message_id: id.clone(),
        owner: owner.into(),
        attempt: NewAttempt::new(number, SystemTime::now(), Duration::from_millis(3)).response(
            200,
            "ok".into(),
            false,
        ),
        decision: Decision::Succeeded,
    }
}

pub(crate) fn failure(id: &MessageId, owner: &str, number: u32, decision: Decision) -> Completion {
    Completion {
        message_id: id.clone(),
        owner: owner.into(),
        attempt: NewAttempt::new(number, SystemTime::now(), Duration::from_millis(3)).response(
            500,
            "boom".into(),
            false,
        ),
        decision,
    }
}

pub(crate) fn ids(enqueued: &[Enqueued]) -> Vec<MessageId> {
    enqueued.iter().map(|e| e.id.clone()).collect()
}

/// How long a case waits for something that should happen soon (a lease running out, a
/// retry falling due, a wake-up) before it fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// Runs `probe` until it answers `Some`, or fails the test after [`DEADLINE`]. Between
/// probes it waits a little: time has to pass for leases and retries, but no case sleeps
/// for a guessed length.
pub(crate) async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(DEADLINE, what, probe).await
}

/// [`eventually`] with another deadline.
pub(crate) async fn eventually_within<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A clock reading of the process, for lower bounds on store times. The stores may use the
/// database's clock; on one machine they agree, up to the millisecond the SQLite store keeps.
pub(crate) fn now() -> SystemTime {
    SystemTime::now()
}
