//! The settings every outbox store has, whatever its database: limits and retentions, with
//! the builder methods both stores' options share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::outbox::CommitStats;

/// The counters behind [`CommitStats`], kept by a store's writer (SQLite) or group
/// committer (PostgreSQL).
#[derive(Debug, Default)]
pub(crate) struct CommitCounters {
    pub(crate) transactions: AtomicU64,
    pub(crate) jobs: AtomicU64,
    pub(crate) rollbacks: AtomicU64,
}

impl CommitCounters {
    /// What they hold now.
    pub(crate) fn snapshot(&self) -> CommitStats {
        CommitStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
            rollbacks: self.rollbacks.load(Ordering::Relaxed),
        }
    }
}

/// The store-wide settings the queries need.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_body_bytes: usize,
    pub(crate) crash_cap: u32,
    pub(crate) retention_succeeded: Duration,
    pub(crate) retention_failed: Duration,
    pub(crate) idempotency_retention: Duration,
    pub(crate) purge_batch: u32,
}

impl Default for Limits {
    /// A 1 MiB body, a crash cap of 5, 7 days of delivered history, 30 of the rest, 24 hours
    /// of idempotency keys, purged 10,000 rows at a time.
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            crash_cap: 5,
            retention_succeeded: Duration::from_secs(7 * 24 * 3600),
            retention_failed: Duration::from_secs(30 * 24 * 3600),
            idempotency_retention: Duration::from_secs(24 * 3600),
            purge_batch: 10_000,
        }
    }
}

/// The builder methods of the [`Limits`] in a store's options (a field named `limits`):
/// the same methods, with the same documentation, on [`SqliteOptions`] and [`PgOptions`].
///
/// [`SqliteOptions`]: crate::sqlite::SqliteOptions
/// [`PgOptions`]: crate::postgres::PgOptions
macro_rules! limit_setters {
    () => {
        /// The largest body accepted at enqueue (default 1 MiB). Bigger messages are refused
        /// with [`Error::is_invalid`](crate::outbox::Error::is_invalid), never accepted and
        /// then dropped.
        pub fn max_body_bytes(mut self, bytes: usize) -> Self {
            self.limits.max_body_bytes = bytes;
            self
        }

        /// How many times a message may be claimed by a worker that then vanishes (its lease
        /// expires with no outcome) before it is failed as a poison message (default 5).
        pub fn crash_cap(mut self, cap: u32) -> Self {
            self.limits.crash_cap = cap.max(1);
            self
        }

        /// How long delivered messages stay in history (default 7 days).
        pub fn retention_succeeded(mut self, retention: std::time::Duration) -> Self {
            self.limits.retention_succeeded = retention;
            self
        }

        /// How long failed and cancelled messages stay in history (default 30 days).
        pub fn retention_failed(mut self, retention: std::time::Duration) -> Self {
            self.limits.retention_failed = retention;
            self
        }

        /// How long an idempotency key outlives its message's delivery (default 24 h).
        pub fn idempotency_retention(mut self, retention: std::time::Duration) -> Self {
            self.limits.idempotency_retention = retention;
            self
        }
    };
}

pub(crate) use limit_setters;
