//! A small receiver of callbacks and webhooks: it verifies each request's Standard
//! Webhooks signature, records it, and answers `{"ok": true}`, as the invoices tutorial's
//! `InvoiceEventReceived`. The demo and the tests use it as the API user's server.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::{Extension, Json, Router};
use roundtrip::delivery::signing::Verifier;
use roundtrip::receive::Verified;
use serde_json::{Value, json};
use tokio::sync::watch;

/// One verified delivery.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path it was sent to.
    pub path: String,
    /// The `webhook-id`.
    pub id: String,
    /// The `webhook-timestamp`.
    pub timestamp: i64,
    /// The payload.
    pub payload: Value,
}

/// The deliveries received so far, shared with whoever waits for them.
#[derive(Clone)]
pub struct Inbox {
    received: Arc<Mutex<Vec<Received>>>,
    count: watch::Sender<usize>,
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox {
            received: Arc::default(),
            count: watch::channel(0).0,
        }
    }
}

impl Inbox {
    /// Everything received, in order.
    pub fn received(&self) -> Vec<Received> {
        match self.received.lock() {
            Ok(list) => list.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Waits until at least `n` deliveries arrived, or `deadline` passes.
    pub async fn wait_for(&self, n: usize, deadline: std::time::Duration) -> Vec<Received> {
        let mut rx = self.count.subscribe();
        let _ = tokio::time::timeout(deadline, rx.wait_for(|count| *count >= n)).await;
        self.received()
    }

    fn push(&self, received: Received) {
        let count = {
            let mut list = match self.received.lock() {
                Ok(list) => list,
                Err(poisoned) => poisoned.into_inner(),
            };
            list.push(received);
            list.len()
        };
        self.count.send_replace(count);
    }
}

async fn receive(
    Extension(inbox): Extension<Inbox>,
    uri: axum::http::Uri,
    verified: Verified<Value>,
) -> Json<Value> {
    println!(
        "receiver: POST {} verified (webhook-id {}): {}",
        uri.path(),
        verified.id,
        verified.payload
    );
    inbox.push(Received {
        path: uri.path().to_owned(),
        id: verified.id,
        timestamp: verified.timestamp,
        payload: verified.payload,
    });
    Json(json!({"ok": true}))
}

/// The receiver's routes: any `POST` path, verified with `verifier`, recorded in `inbox`.
pub fn router(verifier: Verifier, inbox: Inbox) -> Router {
    Router::new()
        .route("/{*path}", post(receive))
        .layer(Extension(Arc::new(verifier)))
        .layer(Extension(inbox))
}
