//! What an operation's extractors find in the request's extensions: the slot the body
//! is kept in for whatever reads it after the body extractor (the callbacks whose
//! expressions read `$request.body`), and the operation's callback senders.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::Value;

/// The raw request body, kept by the body extractor so that what runs after it (the
/// `$request.body` expressions of `Notify`) can read it once the body is consumed.
#[derive(Clone, Default)]
pub(crate) struct RequestBodySlot(Arc<OnceLock<Bytes>>);

impl RequestBodySlot {
    pub(crate) fn fill(&self, body: Bytes) {
        let _ = self.0.set(body);
    }

    /// The body parsed as JSON, read as the `Json` extractor reads it (a UTF-8 byte order
    /// mark is skipped).
    pub(crate) fn json(&self) -> Option<Value> {
        let bytes = self.0.get()?;
        serde_json::from_slice(super::strip_bom(bytes)).ok()
    }
}

/// What an operation's extractors find in the request's extensions (when one needs it):
/// its callback senders, and the slot its body extractor leaves the body in for the
/// callbacks that read it. One extension, so a request's extension map stays within its
/// first allocation.
#[derive(Clone)]
pub(crate) struct OperationRequest {
    /// The operation's callback senders, as the delivery module bound them when the app
    /// was built (`Notify` takes its own back with [`OperationRequest::senders`]). Kept
    /// as `Any` so that the request path names nothing of delivery.
    pub(crate) senders: Arc<dyn Any + Send + Sync>,
    pub(crate) body: Option<RequestBodySlot>,
}

impl OperationRequest {
    /// The operation's senders, if they are a `T`.
    pub(crate) fn senders<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.senders.clone().downcast::<T>().ok()
    }
}
