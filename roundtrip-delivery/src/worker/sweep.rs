//! The sweeper: hands back the expired leases of dead workers and purges history past its
//! retention, on an interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::dispatcher::Shared;
use super::shutdown::stopped;

/// Reclaims expired leases of dead workers and purges old history.
pub(super) async fn sweep_loop(
    shared: Arc<Shared>,
    every: Duration,
    mut stop: watch::Receiver<Option<Instant>>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut stop) => return,
        }
        match shared.outbox.reclaim_expired().await {
            Ok(r) if r.requeued + r.failed > 0 => tracing::warn!(
                requeued = r.requeued,
                failed_at_crash_cap = r.failed,
                "reclaimed messages whose workers stopped without finishing them"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reclaiming expired leases failed"),
        }
        match shared.outbox.purge().await {
            Ok(p) if p.messages > 0 => {
                tracing::debug!(
                    messages = p.messages,
                    attempts = p.attempts,
                    "purged history"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging history failed"),
        }
        shared.destinations.trim();
    }
}
