//! The LISTEN task: turns PostgreSQL notifications into in-process wake-ups.
//!
//! A notification is only a hint that work may be due; nothing is lost when one is missed,
//! because the workers also poll. So this task never fails the store: when its connection
//! drops it logs once, reconnects with a growing backoff (100 ms to 30 s), listens again,
//! and wakes the workers once it is back, since notifications sent in between are gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::oneshot;

use crate::outbox::Wakeups;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the listener is doing, for [`PgOutbox::listener_status`](super::PgOutbox::listener_status).
#[derive(Debug, Default)]
pub(crate) struct ListenState {
    pub(crate) listening: AtomicBool,
    pub(crate) connects: AtomicU64,
    pub(crate) notifications: AtomicU64,
    pub(crate) backend_pid: AtomicU64,
}

/// Stops the task when dropped.
#[derive(Debug)]
pub(crate) struct ListenerHandle {
    _stop: oneshot::Sender<()>,
}

/// Starts the task. The receiver answers once the first attempt to LISTEN has ended,
/// whether it worked or not.
pub(crate) fn spawn(
    connect: PgConnectOptions,
    channel: String,
    wakeups: Wakeups,
    state: Arc<ListenState>,
) -> (ListenerHandle, oneshot::Receiver<()>) {
    let (stop_tx, stop_rx) = oneshot::channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::spawn(run(connect, channel, wakeups, state, stop_rx, ready_tx));
    (ListenerHandle { _stop: stop_tx }, ready_rx)
}

async fn open(pool: &sqlx::PgPool, channel: &str) -> Result<(PgListener, u32), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut listener)
        .await?;
    Ok((listener, u32::try_from(pid).unwrap_or(0)))
}

async fn run(
    connect: PgConnectOptions,
    channel: String,
    wakeups: Wakeups,
    state: Arc<ListenState>,
    mut stop: oneshot::Receiver<()>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    // A pool of one connection, which PgListener uses to reconnect.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(connect);
    let mut listener: Option<PgListener> = None;
    let mut backoff = FIRST_BACKOFF;
    // Set after the first failure is logged, so an outage logs once, not once per retry.
    let mut degraded = false;
    loop {
        let Some(active) = listener.as_mut() else {
            let opened = tokio::select! {
                _ = &mut stop => break,
                opened = open(&pool, &channel) => opened,
            };
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
            match opened {
                Ok((l, pid)) => {
                    listener = Some(l);
                    backoff = FIRST_BACKOFF;
                    if degraded {
                        tracing::info!(channel = %channel, "outbox listener connected again; wake-ups resume");
                        degraded = false;
                    }
                    state.backend_pid.store(u64::from(pid), Ordering::Relaxed);
                    state.connects.fetch_add(1, Ordering::Relaxed);
                    state.listening.store(true, Ordering::Relaxed);
                    // Notifications sent while it was away are lost: look for work now.
                    wakeups.notify();
                }
                Err(e) => {
                    state.listening.store(false, Ordering::Relaxed);
                    if !degraded {
                        tracing::warn!(
                            channel = %channel,
                            error = %e,
                            "the outbox listener cannot connect; workers fall back to polling and it keeps retrying"
                        );
                        degraded = true;
                    } else {
                        tracing::debug!(error = %e, "outbox listener: still cannot connect");
                    }
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        let received = tokio::select! {
            _ = &mut stop => break,
            received = active.try_recv() => received,
        };
        match received {
            Ok(Some(_)) => {
                let mut n = 1;
                while active.next_buffered().is_some() {
                    n += 1;
                }
                state.notifications.fetch_add(n, Ordering::Relaxed);
                wakeups.notify();
            }
            Ok(None) | Err(_) => {
                // The connection is gone (PgListener may have reconnected on its own, but
                // open a fresh one so the state and backend pid stay exact).
                state.listening.store(false, Ordering::Relaxed);
                if !degraded {
                    let why = match &received {
                        Err(e) => e.to_string(),
                        _ => "connection closed".to_owned(),
                    };
                    tracing::warn!(
                        channel = %channel,
                        error = %why,
                        "the outbox listener lost its connection; workers poll until it reconnects"
                    );
                    degraded = true;
                }
                listener = None;
            }
        }
    }
    state.listening.store(false, Ordering::Relaxed);
    drop(listener);
    pool.close().await;
}
