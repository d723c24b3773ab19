//! Recording attempts: completions go to the store in batches, one write for whatever
//! accumulated while the last one ran. That write also refills the slots the batch frees
//! from the backlog ([`Outbox::complete_and_refill`](crate::outbox::Outbox::complete_and_refill)):
//! a store with a fast path leases the next due messages to this dispatcher in the same
//! commit and hands them to the claim loop, so a backlog drains without claims.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::time::Instant;

use super::deliver::Done;
use super::dispatcher::Shared;
use crate::message::{Completion, Decision, LeaseCheck};

/// Records completions in batches: whatever accumulated while the last write ran.
pub(super) async fn complete_loop(
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
            // Unless stopping, the write that records the batch refills the slots it frees
            // from the backlog (a store with a fast path hands those messages straight to
            // the claim loop; the slots it does not use are freed below).
            let written = if stop.borrow().is_some() {
                shared.outbox.complete(batch.clone()).await
            } else {
                shared
                    .outbox
                    .complete_and_refill(batch.clone(), &mut slots)
                    .await
            };
            match written {
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
