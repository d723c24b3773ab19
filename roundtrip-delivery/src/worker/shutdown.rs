//! Graceful shutdown: stop claiming, let attempts in flight finish until a deadline, record
//! them, and hand back every lease still held.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::dispatcher::Dispatcher;

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

impl Dispatcher {
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

pub(super) fn stopping(stop: &watch::Receiver<Option<Instant>>) -> bool {
    stop.borrow().is_some()
}

pub(super) async fn stopped(stop: &mut watch::Receiver<Option<Instant>>) {
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
