//! Endpoint health as the workers see it: which attempts change it, without blocking the
//! worker's task and without a database write per attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;

use super::{EndpointStore, HealthSignal, HealthUpdate};
use crate::message::{AttemptErrorKind, Decision, MessageKind, MessageMeta};
use crate::signing::Secret;
use crate::worker::{AttemptReport, SecretSourceError};

/// How often a steady run of successes is written (as `last_success_at`). Another process
/// that saw failures meanwhile has its run ended within this time.
const SUCCESS_WRITE_INTERVAL: Duration = Duration::from_secs(60);

/// What this process last learned of an endpoint's health.
#[derive(Debug, Clone, Copy)]
enum Known {
    /// Healthy, with a success written at this time.
    Healthy { written: Instant },
    /// Failing since this time (as stored).
    Failing { since: SystemTime },
}

/// This process's view of each endpoint's health, to skip writes that change nothing.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    known: Mutex<HashMap<String, Known>>,
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Known>> {
        // A panic elsewhere cannot leave the map half-written: keep using it.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the attempt may change the stored health, and so must be written.
    fn must_write(
        &self,
        id: &str,
        result: HealthSignal,
        now: SystemTime,
        window: Duration,
    ) -> bool {
        let mut known = self.lock();
        match (result, known.get(id).copied()) {
            (HealthSignal::Gone, _) => true,
            (HealthSignal::Delivered, Some(Known::Healthy { written }))
                if written.elapsed() < SUCCESS_WRITE_INTERVAL =>
            {
                false
            }
            (HealthSignal::Delivered, _) => {
                known.insert(
                    id.to_owned(),
                    Known::Healthy {
                        written: Instant::now(),
                    },
                );
                true
            }
            (HealthSignal::Failed, Some(Known::Failing { since }))
                if now.duration_since(since).unwrap_or_default() < window =>
            {
                false
            }
            (HealthSignal::Failed, _) => {
                // Provisional: the write answers when the run really began.
                if !matches!(known.get(id), Some(Known::Failing { .. })) {
                    known.insert(id.to_owned(), Known::Failing { since: now });
                }
                true
            }
        }
    }

    /// Takes in what the store answered.
    fn learned(&self, id: &str, update: &HealthUpdate) {
        let mut known = self.lock();
        if update.disabled.is_some() {
            // A disabled endpoint is signed no more, so no attempt reports on it; once it
            // is enabled again its record starts afresh.
            known.remove(id);
            return;
        }
        let now = match update.failing_since {
            Some(since) => Known::Failing { since },
            None => Known::Healthy {
                written: Instant::now(),
            },
        };
        known.insert(id.to_owned(), now);
    }

    /// Forgets an endpoint whose state changed by hand (enabled, disabled, deleted).
    pub(crate) fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// What an attempt says about its endpoint, if anything: only webhook messages bound for an
/// endpoint count, and not attempts that failed on our side (no secret to sign with).
fn signal_of(report: &AttemptReport<'_>) -> Option<(String, HealthSignal)> {
    let meta = report.message;
    if meta.kind != MessageKind::Webhook {
        return None;
    }
    let id = meta.endpoint_id.as_deref()?;
    if report
        .attempt
        .error
        .as_ref()
        .is_some_and(|e| e.kind == AttemptErrorKind::Secret)
    {
        return None;
    }
    let result = if report.attempt.response_status == Some(410) {
        HealthSignal::Gone
    } else if matches!(report.decision, Decision::Succeeded) {
        HealthSignal::Delivered
    } else {
        HealthSignal::Failed
    };
    Some((id.to_owned(), result))
}

/// Records what an attempt showed, on a task of its own: the worker never waits for it.
pub(crate) fn observe(
    store: &Arc<dyn EndpointStore>,
    tracker: &Arc<Tracker>,
    report: &AttemptReport<'_>,
) {
    let Some((id, result)) = signal_of(report) else {
        return;
    };
    let now = SystemTime::now();
    if !tracker.must_write(&id, result, now, store.failure_window()) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracker.forget(&id);
        return;
    };
    let store = store.clone();
    let tracker = tracker.clone();
    runtime.spawn(async move {
        match store.record_health(&id, result, now).await {
            Ok(update) => tracker.learned(&id, &update),
            Err(err) if err.is_not_found() => tracker.forget(&id),
            Err(err) => {
                tracker.forget(&id);
                tracing::warn!(
                    endpoint_id = %id,
                    error = %err,
                    "the health of a webhook endpoint could not be recorded"
                );
            }
        }
    });
}

/// The secrets of a message's endpoint, as a [`SecretSource`](crate::worker::SecretSource)
/// answers.
pub(crate) fn secrets<'a>(
    store: &'a dyn EndpointStore,
    message: &'a MessageMeta,
) -> BoxFuture<'a, Result<Vec<Secret>, SecretSourceError>> {
    Box::pin(async move {
        let Some(id) = message.endpoint_id.as_deref() else {
            return Err(
                "the message names no webhook endpoint, so no endpoint secret can sign it".into(),
            );
        };
        store
            .signing_secrets(id)
            .await
            .map_err(|err| -> SecretSourceError { Box::new(err) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_successes_are_written_once_and_failures_once_per_window() {
        let tracker = Tracker::default();
        let window = Duration::from_secs(60);
        let now = SystemTime::now();
        assert!(tracker.must_write("ep_a", HealthSignal::Delivered, now, window));
        assert!(!tracker.must_write("ep_a", HealthSignal::Delivered, now, window));
        assert!(tracker.must_write("ep_a", HealthSignal::Failed, now, window));
        assert!(!tracker.must_write("ep_a", HealthSignal::Failed, now, window));
        let later = now + window;
        assert!(tracker.must_write("ep_a", HealthSignal::Failed, later, window));
        assert!(tracker.must_write("ep_a", HealthSignal::Gone, later, window));
        assert!(tracker.must_write("ep_a", HealthSignal::Delivered, later, window));
    }
}
