//! One message's delivery: its attempt under the destination and overall limits, the
//! decision taken after it, and the report to observers and to the store.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::Instrument;

use super::attempt;
use super::dispatcher::Shared;
use super::hooks::AttemptReport;
use crate::message::{Completion, Decision, Message, redact_url};
use crate::retry::{self, AttemptOutcome, RetrySchedule, random_unit};

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
pub(super) type Done = (Completion, OwnedSemaphorePermit);

pub(super) async fn deliver(
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
        #[cfg(feature = "opentelemetry")]
        let otel = crate::telemetry::attempt_context(meta, number);
        #[cfg(feature = "opentelemetry")]
        let (record, observed) = {
            use opentelemetry::context::FutureExt as _;
            shared
                .transport
                .attempt(&message, number)
                .with_context(otel.clone())
                .await
        };
        #[cfg(not(feature = "opentelemetry"))]
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
        #[cfg(feature = "opentelemetry")]
        crate::telemetry::finish_attempt(&otel, &record, &decision);
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
