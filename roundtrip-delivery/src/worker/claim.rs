//! The claim loop: claims due messages as request slots free up, and starts their attempts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::deliver::{Done, deliver};
use super::dispatcher::Shared;
use super::shutdown::{stopped, stopping};

/// Claims and starts attempts until stopped; then waits for the attempts in flight until
/// the deadline. Answers how many were cut.
pub(super) async fn claim_loop(
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
