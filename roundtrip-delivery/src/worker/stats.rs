//! What a running dispatcher has done so far: counters its tasks bump and
//! [`Dispatcher::stats`](super::Dispatcher::stats) reads.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a running [`Dispatcher`](super::Dispatcher).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatcherStats {
    /// Claim calls made to the outbox.
    pub claims: u64,
    /// Messages claimed.
    pub claimed: u64,
    /// Messages this process enqueued that its store handed straight to this dispatcher,
    /// leased in the enqueue's transaction (no claim).
    pub handed_over: u64,
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
pub(super) struct Counters {
    pub(super) claims: AtomicU64,
    pub(super) claimed: AtomicU64,
    pub(super) handed_over: AtomicU64,
    pub(super) completion_writes: AtomicU64,
    pub(super) attempts: AtomicU64,
    pub(super) succeeded: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) lease_lost: AtomicU64,
}

impl Counters {
    /// What they hold now.
    pub(super) fn snapshot(&self) -> DispatcherStats {
        DispatcherStats {
            claims: self.claims.load(Ordering::Relaxed),
            claimed: self.claimed.load(Ordering::Relaxed),
            handed_over: self.handed_over.load(Ordering::Relaxed),
            completion_writes: self.completion_writes.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            lease_lost: self.lease_lost.load(Ordering::Relaxed),
        }
    }
}
