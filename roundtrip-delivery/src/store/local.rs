//! The in-process fast path: messages this process commits go straight to its own
//! dispatcher, leased to it in the enqueue's own transaction, with no claim.
//!
//! The dispatcher attaches a [`LocalDelivery`] to its store
//! ([`Outbox::deliver_locally`](crate::outbox::Outbox::deliver_locally)). Before a batch of
//! enqueues is written, the store reserves as many of the dispatcher's free slots as the
//! batch has messages ([`LocalSlot::reserve`]); the first messages of the batch, one per
//! slot, are inserted already leased to the dispatcher's owner (the lease it would have
//! taken with a claim), the rest pending as before. Once the transaction has committed,
//! the leased messages that were inserted (not deduplicated) are handed over with their
//! slots ([`Grant::hand_off`]); if it rolls back, the slots are simply dropped.
//!
//! A backlog takes the same path: the write that records a batch of attempts may lease
//! the next due messages to the dispatcher, one per slot the batch frees, and hand them
//! over with those slots once committed
//! ([`Outbox::complete_and_refill`](crate::outbox::Outbox::complete_and_refill)).
//!
//! Crash safety is the claim's: a leased row whose worker died is taken back when its lease
//! expires, or at once by [`reclaim_owner`](crate::outbox::Outbox::reclaim_owner) when the
//! process restarts under the same owner name, and a graceful shutdown releases it. A
//! message handed over while the dispatcher was stopping stays leased until that release.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::message::{Lease, Message, MessageMeta, MessageStatus, NewMessage};

/// A message leased to this process's dispatcher in the transaction that stored it, with
/// the dispatcher's slot it occupies until its attempt is recorded.
#[derive(Debug)]
pub struct LocalMessage {
    /// The message, as a claim would have answered it.
    pub message: Message,
    /// The dispatcher's slot this message holds.
    pub slot: OwnedSemaphorePermit,
}

/// Where a store hands the messages it commits in this process: a dispatcher's owner name,
/// lease, free slots and inbox. See [`Outbox::deliver_locally`](crate::outbox::Outbox::deliver_locally).
#[derive(Debug, Clone)]
pub struct LocalDelivery {
    owner: Arc<str>,
    lease: Duration,
    slots: Arc<Semaphore>,
    inbox: mpsc::UnboundedSender<LocalMessage>,
}

impl LocalDelivery {
    /// Messages are leased to `owner` for `lease`, at most one per free permit of `slots`,
    /// and sent to `inbox` once committed.
    pub fn new(
        owner: impl Into<Arc<str>>,
        lease: Duration,
        slots: Arc<Semaphore>,
        inbox: mpsc::UnboundedSender<LocalMessage>,
    ) -> Self {
        LocalDelivery {
            owner: owner.into(),
            lease,
            slots,
            inbox,
        }
    }
}

impl LocalDelivery {
    /// The owner messages are leased to.
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    /// How long their lease lasts.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// After the commit that leased them to this dispatcher: hands over `messages`, each
    /// with a slot taken from the end of `slots`. Stops when the dispatcher has stopped
    /// (the messages left stay leased: its shutdown releases them, or their lease runs out).
    pub(crate) fn hand_over(&self, messages: Vec<Message>, slots: &mut Vec<OwnedSemaphorePermit>) {
        for message in messages {
            let Some(slot) = slots.pop() else { break };
            if let Err(returned) = self.inbox.send(LocalMessage { message, slot }) {
                slots.push(returned.0.slot);
                break;
            }
        }
    }
}

/// A store's attachment point for a [`LocalDelivery`].
#[derive(Debug, Default)]
pub(crate) struct LocalSlot(Mutex<Option<LocalDelivery>>);

impl LocalSlot {
    /// Attaches `local`, replacing any earlier one.
    pub(crate) fn attach(&self, local: LocalDelivery) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(local);
        }
    }

    /// The attached dispatcher's end, if one is attached and running.
    pub(crate) fn current(&self) -> Option<LocalDelivery> {
        let slot = self.0.lock().ok()?;
        slot.as_ref().filter(|l| !l.inbox.is_closed()).cloned()
    }

    /// Reserves a slot for each of up to `wanted` messages about to be written at `now`.
    /// `None` when no dispatcher is attached (or it stopped), or none of its slots is free.
    pub(crate) fn reserve(&self, wanted: usize, now: SystemTime) -> Option<Grant> {
        if wanted == 0 {
            return None;
        }
        let local = {
            let mut slot = self.0.lock().ok()?;
            if slot.as_ref().is_some_and(|l| l.inbox.is_closed()) {
                *slot = None;
            }
            slot.clone()?
        };
        let mut permits = Vec::new();
        while permits.len() < wanted {
            match local.slots.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        if permits.is_empty() {
            return None;
        }
        Some(Grant {
            expires_at: now + local.lease,
            local,
            permits,
        })
    }
}

/// Slots reserved for the first messages of a batch: those are written leased.
#[derive(Debug)]
pub(crate) struct Grant {
    local: LocalDelivery,
    expires_at: SystemTime,
    permits: Vec<OwnedSemaphorePermit>,
}

impl Grant {
    /// How many of the batch's first messages are written leased.
    pub(crate) fn len(&self) -> usize {
        self.permits.len()
    }

    /// The owner the leased messages are written with.
    pub(crate) fn owner(&self) -> &str {
        &self.local.owner
    }

    /// How long their lease lasts.
    pub(crate) fn lease(&self) -> Duration {
        self.local.lease
    }

    /// When their lease expires.
    pub(crate) fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// After the commit: hands over every message in `written` (the leased messages that
    /// were inserted, each with the time it was stored at). Unused slots are freed.
    pub(crate) fn hand_off<'a>(
        self,
        written: impl IntoIterator<Item = (&'a NewMessage, SystemTime)>,
    ) {
        let Grant {
            local,
            expires_at,
            mut permits,
        } = self;
        for (message, stored_at) in written {
            let Some(slot) = permits.pop() else { break };
            let message = leased_message(message, stored_at, &local.owner, expires_at);
            if local.inbox.send(LocalMessage { message, slot }).is_err() {
                // The dispatcher stopped: the lease runs out, or its shutdown releases it.
                break;
            }
        }
    }
}

/// The message as the store now holds it: leased, no attempt yet.
fn leased_message(
    m: &NewMessage,
    stored_at: SystemTime,
    owner: &str,
    expires_at: SystemTime,
) -> Message {
    Message {
        meta: MessageMeta {
            id: m.id.clone(),
            kind: m.kind,
            name: m.name.clone(),
            url: m.url.clone(),
            method: m.method.clone(),
            created_at: stored_at,
            status: MessageStatus::Leased,
            attempts: 0,
            next_attempt_at: Some(stored_at),
            lease: Some(Lease {
                owner: owner.to_owned(),
                expires_at,
            }),
            lost_leases: 0,
            finished_at: None,
            last_error: None,
            idempotency_key: m.idempotency_key.clone(),
            endpoint_id: m.endpoint_id.clone(),
            signing_key: m.signing_key.clone(),
            ordering_key: m.ordering_key.clone(),
            metadata: m.metadata.clone(),
        },
        headers: m.headers.clone(),
        body: m.body.clone(),
    }
}
