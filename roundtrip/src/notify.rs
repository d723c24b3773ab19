//! `Notify<P>`: a callback sender bound to the current request.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

/// The raw request body, shared with `Notify` so that `$request.body` expressions can be
/// resolved after the body extractor has consumed the body.
#[derive(Clone, Default)]
pub(crate) struct RequestBodySlot(Arc<OnceLock<Bytes>>);

impl RequestBodySlot {
    pub(crate) fn fill(&self, body: Bytes) {
        let _ = self.0.set(body);
    }

    #[allow(dead_code)]
    pub(crate) fn get(&self) -> Option<&Bytes> {
        self.0.get()
    }
}
