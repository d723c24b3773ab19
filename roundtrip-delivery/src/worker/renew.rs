//! Lease renewal: a held message's lease is extended every third of its length, so a slow
//! receiver never lets another worker take a message that is still being sent.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use super::dispatcher::Shared;
use super::shutdown::{stopped, stopping};

/// Renews the leases of held messages every third of the lease.
pub(super) async fn renew_loop(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Instant>>) {
    let every = shared.lease / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut stop) => {}
        }
        // Leases are renewed during a shutdown too, until the dispatcher releases them.
        let ids = shared.held_ids();
        if ids.is_empty() {
            if stopping(&stop) {
                tokio::time::sleep(every).await;
            }
            continue;
        }
        match shared.outbox.renew(&shared.owner, &ids, shared.lease).await {
            Ok(kept) if kept.len() < ids.len() => {
                tracing::warn!(
                    owner = %shared.owner,
                    lost = ids.len() - kept.len(),
                    "some leases were lost before renewal (expired and taken over, or cancelled)"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(owner = %shared.owner, error = %e, "renewing leases failed"),
        }
        if stopping(&stop) {
            tokio::time::sleep(every).await;
        }
    }
}
