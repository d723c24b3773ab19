//! How a built app delivers its callbacks and webhooks: the outbox and the workers.

/// Delivery settings gathered while the app is declared.
#[derive(Default)]
pub(crate) struct DeliverySetup {}

impl DeliverySetup {
    pub(crate) fn prepare(self) -> PreparedDelivery {
        PreparedDelivery {}
    }
}

/// What request handlers need to enqueue messages.
#[derive(Clone, Default)]
pub(crate) struct PreparedDelivery {}
