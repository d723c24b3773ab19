//! The claim loop: claims due messages as request slots free up, and starts their attempts,
//! and those of the messages this process committed that its store handed over leased
//! (the fast path: no claim for them).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::deliver::{Done, deliver};
use super::dispatcher::Shared;
use super::shutdown::{stopped, stopping};
use crate::outbox::LocalMessage;

/// Starts the attempt of a message the store handed over.
fn start_local(
    shared: &Arc<Shared>,
    tasks: &mut JoinSet<()>,
    done: &mpsc::UnboundedSender<Done>,
    local: LocalMessage,
) {
    shared.counters.handed_over.fetch_add(1, Ordering::Relaxed);
    shared.hold(&local.message.meta.id);
    tasks.spawn(deliver(
        shared.clone(),
        local.message,
        local.slot,
        done.clone(),
    ));
}

/// The next handed-over message; never, without a fast path.
async fn next_local(local: &mut Option<mpsc::UnboundedReceiver<LocalMessage>>) -> LocalMessage {
    match local {
        Some(rx) => match rx.recv().await {
            Some(m) => m,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Claims and starts attempts until stopped; then waits for the attempts in flight until
/// the deadline. Answers how many were cut.
pub(super) async fn claim_loop(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<Option<Instant>>,
    done: mpsc::UnboundedSender<Done>,
    mut local: Option<mpsc::UnboundedReceiver<LocalMessage>>,
) -> u64 {
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut wakeup = shared.outbox.subscribe();
    let mut failures: u32 = 0;
    loop {
        while tasks.try_join_next().is_some() {}
        if stopping(&stop) {
            break;
        }
        if let Some(rx) = local.as_mut() {
            while let Ok(m) = rx.try_recv() {
                start_local(&shared, &mut tasks, &done, m);
            }
        }
        // Wait for a free slot, then take every free slot up to the batch size.
        let first = tokio::select! {
            permit = shared.held_slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            m = next_local(&mut local) => {
                start_local(&shared, &mut tasks, &done, m);
                continue;
            }
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
        // Handed-over messages start while idle; they are no reason to claim.
        let sleep = tokio::time::sleep_until(wake_at);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = wakeup.wait(), if failures == 0 => {}
                _ = shared.due_changed.notified() => {}
                _ = &mut sleep => {}
                _ = stopped(&mut stop) => {}
                m = next_local(&mut local) => {
                    start_local(&shared, &mut tasks, &done, m);
                    while tasks.try_join_next().is_some() {}
                    continue;
                }
            }
            break;
        }
        if let Ok(mut due) = shared.next_due.lock()
            && due.is_some_and(|at| at <= Instant::now())
        {
            *due = None;
        }
    }
    // Stopping: let attempts in flight finish until the deadline. Messages handed over but
    // not started stay leased to this owner: the shutdown releases them.
    drop(local);
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
