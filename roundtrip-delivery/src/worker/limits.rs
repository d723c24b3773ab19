//! Per-destination limits: at most so many requests to one `host:port` at once, whatever the
//! overall limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per-`host:port` concurrency limits.
pub(super) struct Destinations {
    pub(super) limit: usize,
    pub(super) map: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Destinations {
    pub(super) async fn acquire(&self, key: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut map = self.map.lock().ok()?;
            map.entry(key.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.limit)))
                .clone()
        };
        semaphore.acquire_owned().await.ok()
    }

    /// Forgets idle destinations, so the map does not grow with every host ever seen.
    pub(super) fn trim(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.limit);
        }
    }
}
