//! The outbox: durable storage of messages and their attempts, behind one trait.
//!
//! # Policy
//!
//! * **Durable before it returns.** [`Outbox::enqueue`] answers only once the messages are
//!   committed. A store may share one commit between concurrent callers (the SQLite store
//!   does: group commit), but never answers before that commit.
//! * **At least once.** A worker [claims](Outbox::claim) due messages under a *lease* (owner
//!   and expiry). It reports each attempt with [`Outbox::complete`]. A worker that dies
//!   leaves leases that run out; [`Outbox::reclaim_expired`] hands those messages back, so
//!   they are sent again. Receivers deduplicate on the message id (`webhook-id`).
//! * **A poison message cannot crash-loop the workers.** Each reclaimed lease counts as a
//!   *lost lease*; a message that reaches the store's crash cap is failed instead of handed
//!   back.
//! * **Bounded storage.** Only live messages (pending, leased) stay in the queue. Finished
//!   ones move to history, which [`Outbox::purge`] trims after the store's retention.
//! * **A user can always send again.** [`Outbox::retry`] and [`Outbox::replay`] put finished
//!   messages back with their attempt count kept; idempotency keys never swallow them.
//!
//! # The trait
//!
//! [`Outbox`] is object safe (`Arc<dyn Outbox>`): its methods return boxed futures. The
//! embedded [`SqliteOutbox`](crate::sqlite::SqliteOutbox) implements it; a PostgreSQL store
//! implements the same methods with `FOR UPDATE SKIP LOCKED` claims and LISTEN/NOTIFY
//! wake-ups. Workers learn about new work through [`Outbox::subscribe`], and poll as a
//! fallback.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, watch};

pub(crate) use crate::store::error::ErrorKind;
use crate::store::error::{Repr, predicates, repr_error};
use crate::store::listing::paging;

pub use crate::store::local::{LocalDelivery, LocalMessage};

pub use crate::message::{
    Attempt, Completion, Decision, Enqueued, LeaseCheck, Message, MessageId, MessageKind,
    MessageMeta, MessageStatus, NewAttempt, NewMessage,
};

/// Durable storage of messages and attempts, shared by the senders, the workers and the
/// command line.
pub trait Outbox: Send + Sync + 'static {
    /// Stores `messages` durably. Answers, in order, the stored id of each and whether it
    /// was deduplicated by its idempotency key. All or none are stored.
    fn enqueue(&self, messages: Vec<NewMessage>) -> BoxFuture<'_, Result<Vec<Enqueued>, Error>>;

    /// Claims up to `limit` due messages for `owner`, leasing them for `lease`. The oldest
    /// due come first. An empty answer means nothing is due.
    fn claim<'a>(
        &'a self,
        owner: &'a str,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<Message>, Error>>;

    /// Records attempts and what follows from them, in one write. Answers, in order, whether
    /// each still held its lease. Every completion's attempt is recorded; a message reported
    /// more than once in the same call is decided by its first report only (the later ones
    /// answer [`LeaseCheck::Lost`], as they would one call after the other).
    fn complete(
        &self,
        completions: Vec<Completion>,
    ) -> BoxFuture<'_, Result<Vec<LeaseCheck>, Error>>;

    /// Extends the leases `owner` holds on `ids` to now + `lease`. Answers the ids whose
    /// lease was extended; the others were lost.
    fn renew<'a>(
        &'a self,
        owner: &'a str,
        ids: &'a [MessageId],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<MessageId>, Error>>;

    /// Hands back every message `owner` holds, due now, as a graceful shutdown does. This
    /// does not count as a lost lease. Answers how many were released.
    fn release(&self, owner: &str) -> BoxFuture<'_, Result<u64, Error>>;

    /// Hands back every message whose lease has expired, counting a lost lease on each;
    /// messages that reach the crash cap are failed. Answers the number reclaimed and failed.
    fn reclaim_expired(&self) -> BoxFuture<'_, Result<Reclaimed, Error>>;

    /// Like [`reclaim_expired`](Outbox::reclaim_expired), for every lease held by `owner`
    /// whatever its expiry: a worker calls it at start under a stable owner name, to take
    /// back what its previous, crashed, run held.
    fn reclaim_owner(&self, owner: &str) -> BoxFuture<'_, Result<Reclaimed, Error>>;

    /// A handle that wakes when messages may have become due in this process.
    fn subscribe(&self) -> Wakeup;

    /// The in-process fast path: from now on, the messages this store instance commits
    /// through [`enqueue`](Outbox::enqueue) are leased to `local`'s owner *in the enqueue's
    /// own transaction*, one per free slot of `local`, and handed to it once committed, so
    /// the dispatcher of this process delivers them without a claim. Messages beyond its
    /// free slots, deduplicated ones (never handed over), and those of a transactional
    /// enqueue are stored pending as before. Attaching again replaces the earlier one.
    ///
    /// Leases taken this way are ordinary leases: they are renewed, released, reclaimed when
    /// they expire and taken back by [`reclaim_owner`](Outbox::reclaim_owner) exactly as a
    /// claim's, so a crash loses nothing. Only new messages that were left pending wake the
    /// workers. Answers `false` if the store has no fast path (the default): the dispatcher
    /// then claims everything.
    fn deliver_locally(&self, local: LocalDelivery) -> bool {
        let _ = local;
        false
    }

    /// Records `completions` exactly as [`complete`](Outbox::complete) does, and may refill
    /// the dispatcher slots they free from the backlog: with a fast path attached
    /// ([`deliver_locally`](Outbox::deliver_locally)), a store that refills leases, in the
    /// same transaction, up to `slots.len()` due messages to that dispatcher's owner, as a
    /// claim would (the oldest due first, for the dispatcher's lease), and once it has
    /// committed, hands each to the dispatcher with one of `slots`, taken from the end of
    /// the vector. The slots left in `slots` stay the caller's; if the call fails, nothing
    /// was leased and `slots` is untouched.
    ///
    /// So a worker draining a backlog takes no claim of its own: the write that records a
    /// batch of attempts takes the next messages in the same commit, and at no commit does
    /// this process hold more leases than it has slots. A message handed over this way holds
    /// an ordinary lease, as with [`deliver_locally`](Outbox::deliver_locally). The default
    /// (the PostgreSQL store's, today), and any store with no fast path attached, only
    /// records the completions and leaves `slots` untouched: the dispatcher's claims then
    /// drain the backlog.
    fn complete_and_refill<'a>(
        &'a self,
        completions: Vec<Completion>,
        slots: &'a mut Vec<OwnedSemaphorePermit>,
    ) -> BoxFuture<'a, Result<Vec<LeaseCheck>, Error>> {
        let _ = slots;
        self.complete(completions)
    }

    /// Wakes this process's workers, for example after a transactional enqueue committed.
    fn notify(&self);

    /// Reads one message with its headers and body, live or finished.
    fn get<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<Option<Message>, Error>>;

    /// Lists messages, newest first.
    fn list<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<MessagePage, Error>>;

    /// Lists the attempts of a message, oldest first.
    fn attempts<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<Vec<Attempt>, Error>>;

    /// Lists recorded attempts across messages, in the order they were recorded: what each
    /// worker did. A page holds at most the filter's limit; continue after its `next`.
    fn attempt_log<'a>(
        &'a self,
        filter: &'a AttemptFilter,
    ) -> BoxFuture<'a, Result<AttemptPage, Error>>;

    /// Puts a finished message (failed, cancelled or succeeded) back in the queue, due now,
    /// with its attempt count kept; a pending message (one waiting out its backoff) is made
    /// due now. A leased message, whose attempt is running, is an error
    /// ([`Error::is_conflict`]).
    fn retry<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<MessageMeta, Error>>;

    /// Retries every finished message that matches `filter` (failed ones only, unless the
    /// filter names statuses). Answers how many were put back. The filter's limit and cursor
    /// are ignored: all matches are replayed.
    fn replay<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<u64, Error>>;

    /// Cancels a live message. A finished message is an error ([`Error::is_conflict`]).
    fn cancel<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<MessageMeta, Error>>;

    /// Points every live message (pending or leased) bound for webhook endpoint `endpoint`
    /// at `url`, for an endpoint whose URL changed: their next attempts go there, and
    /// their records show it. An attempt already in flight finishes at the old URL.
    /// Finished messages keep the URL they were delivered to. Answers how many changed.
    fn retarget<'a>(
        &'a self,
        endpoint: &'a str,
        url: &'a url::Url,
    ) -> BoxFuture<'a, Result<u64, Error>>;

    /// Deletes finished messages, their attempts and idempotency keys past the store's
    /// retention.
    fn purge(&self) -> BoxFuture<'_, Result<Purged, Error>>;
}

/// What [`Outbox::reclaim_expired`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Messages handed back to the queue.
    pub requeued: u64,
    /// Messages failed because they reached the crash cap.
    pub failed: u64,
}

/// How a store's commits went, for tests and benchmarks: enqueue calls share transactions
/// (group commit), so fewer transactions than calls means the sharing works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Calls written (enqueues, and on SQLite every other write); many share a transaction.
    pub jobs: u64,
    /// Batches rolled back and written again call by call because one call in them failed.
    pub rollbacks: u64,
}

/// What [`Outbox::purge`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Finished messages deleted.
    pub messages: u64,
    /// Attempts deleted with them.
    pub attempts: u64,
    /// Idempotency keys deleted.
    pub idempotency_keys: u64,
}

/// Which messages [`Outbox::list`] and [`Outbox::replay`] look at.
///
/// ```
/// use roundtrip_delivery::outbox::{MessageFilter, MessageStatus};
/// let filter = MessageFilter::new().status(MessageStatus::Failed).name("invoice_notification").limit(20);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MessageFilter {
    /// Only these statuses (any, if empty).
    pub statuses: Vec<MessageStatus>,
    /// Only this kind.
    pub kind: Option<MessageKind>,
    /// Only this callback or webhook name.
    pub name: Option<String>,
    /// Only messages for this endpoint.
    pub endpoint_id: Option<String>,
    /// Only messages created at or after this time.
    pub created_after: Option<SystemTime>,
    /// Only messages created before this time.
    pub created_before: Option<SystemTime>,
    /// Only messages whose destination URL has this host (a lowercase name or address,
    /// any port), `http` or `https`.
    pub host: Option<String>,
    /// Only these messages (any, if empty).
    pub ids: Vec<MessageId>,
    /// Only messages older than this one (the cursor of the previous page).
    pub before: Option<MessageId>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<usize>,
}

impl MessageFilter {
    paging!(50);

    /// Matches every message.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a status to match.
    pub fn status(mut self, status: MessageStatus) -> Self {
        self.statuses.push(status);
        self
    }
    /// Matches only this kind.
    pub fn kind(mut self, kind: MessageKind) -> Self {
        self.kind = Some(kind);
        self
    }
    /// Matches only this name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Matches only this endpoint.
    pub fn endpoint_id(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint_id = Some(endpoint.into());
        self
    }
    /// Matches messages created at or after `time`.
    pub fn created_after(mut self, time: SystemTime) -> Self {
        self.created_after = Some(time);
        self
    }
    /// Matches messages created before `time`.
    pub fn created_before(mut self, time: SystemTime) -> Self {
        self.created_before = Some(time);
        self
    }
    /// Matches only messages sent to `host` (as the URL writes it: a lowercase name, an
    /// IPv4 address, or an IPv6 address in brackets), on any port.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into().to_ascii_lowercase());
        self
    }
    /// Adds a message id to match.
    pub fn id(mut self, id: MessageId) -> Self {
        self.ids.push(id);
        self
    }
    /// Continues after a previous page.
    pub fn before(mut self, cursor: MessageId) -> Self {
        self.before = Some(cursor);
        self
    }
}

/// One page of [`Outbox::list`].
#[derive(Debug, Clone)]
pub struct MessagePage {
    /// The messages, newest first.
    pub messages: Vec<MessageMeta>,
    /// Pass to [`MessageFilter::before`] for the next page; `None` on the last page.
    pub next: Option<MessageId>,
}

/// Which attempts [`Outbox::attempt_log`] lists.
///
/// ```
/// use roundtrip_delivery::outbox::AttemptFilter;
/// let filter = AttemptFilter::new().worker("replica-1").limit(500);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptFilter {
    /// Only the attempts of this message.
    pub message_id: Option<MessageId>,
    /// Only the attempts this worker made.
    pub worker: Option<String>,
    /// Only attempts recorded after this one (the cursor of the previous page).
    pub after: Option<AttemptCursor>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

impl AttemptFilter {
    paging!(100);

    /// Lists every attempt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lists only the attempts of `id`.
    pub fn message_id(mut self, id: MessageId) -> Self {
        self.message_id = Some(id);
        self
    }

    /// Lists only the attempts of `worker` (the owner name of its leases).
    pub fn worker(mut self, worker: impl Into<String>) -> Self {
        self.worker = Some(worker.into());
        self
    }

    /// Continues after a previous page.
    pub fn after(mut self, cursor: AttemptCursor) -> Self {
        self.after = Some(cursor);
        self
    }
}

/// Where a page of [`Outbox::attempt_log`] ended: pass it to [`AttemptFilter::after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptCursor(pub(crate) i64);

/// One page of [`Outbox::attempt_log`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AttemptPage {
    /// The attempts, in the order they were recorded.
    pub attempts: Vec<Attempt>,
    /// Pass to [`AttemptFilter::after`] for the next page; `None` on the last page.
    pub next: Option<AttemptCursor>,
}

/// Tells workers that messages may have become due.
///
/// A store keeps one and calls [`Wakeups::notify`] after a commit that makes work due; each
/// worker holds a [`Wakeup`] from [`Wakeups::subscribe`]. A notification sent while a worker
/// is busy is not lost: its next [`Wakeup::wait`] returns at once.
#[derive(Debug, Clone)]
pub struct Wakeups {
    tx: Arc<watch::Sender<u64>>,
}

impl Default for Wakeups {
    fn default() -> Self {
        Self::new()
    }
}

impl Wakeups {
    /// A new signal with no subscribers.
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(0);
        Wakeups { tx: Arc::new(tx) }
    }

    /// Wakes every subscriber.
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A new subscriber, which has seen every notification so far.
    pub fn subscribe(&self) -> Wakeup {
        Wakeup {
            rx: self.tx.subscribe(),
        }
    }
}

/// A worker's end of [`Wakeups`].
#[derive(Debug, Clone)]
pub struct Wakeup {
    rx: watch::Receiver<u64>,
}

impl Wakeup {
    /// Marks every notification so far as seen. Call it before looking for work, then
    /// [`wait`](Self::wait) if none was found: a notification in between is not missed.
    pub fn mark_seen(&mut self) {
        self.rx.borrow_and_update();
    }

    /// Waits for a notification not yet seen. If the store is gone, waits forever (the
    /// caller's poll timer still fires).
    pub async fn wait(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// An error from an outbox.
///
/// Ask it what went wrong with the `is_*` predicates; new kinds of errors may be added
/// without breaking callers. Messages never hold message bodies or secrets.
pub struct Error {
    repr: Repr,
}

impl Error {
    /// Stored data that cannot be read back.
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Repr::corrupt(message).into()
    }

    predicates! {
        /// The database could not be reached or used right now (I/O error, disk full, connection
        /// lost, or locked past the busy timeout). Trying again later may succeed.
        is_unavailable => Unavailable,
        /// Another connection or process held the database locked past the busy timeout.
        is_locked => Locked,
        /// The database cannot be written (file permissions, read-only mount, or opened
        /// read-only).
        is_read_only => ReadOnly,
        /// A message was refused before it was stored: nothing was enqueued.
        is_invalid => Invalid,
        /// No message has the given id.
        is_not_found => NotFound,
        /// The message's state does not allow the operation (retry of a live message, cancel of
        /// a finished one).
        is_conflict => Conflict,
        /// The store was shut down.
        is_closed => Closed,
        /// Stored data could not be read back or the schema could not be brought up to date.
        is_corrupt => Corrupt,
    }

    /// An error of the same kind and message, for callers that each need their own copy (a
    /// failed group commit answers every caller in it).
    pub(crate) fn duplicate(&self) -> Self {
        self.repr.duplicate().into()
    }
}

repr_error!(Error, "outbox::Error");

/// Checks a message before it is stored, the same way in every store.
pub(crate) fn validate(message: &NewMessage, max_body_bytes: usize) -> Result<(), Error> {
    let invalid = |why: String| Error::new(ErrorKind::Invalid, why);
    match message.url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(invalid(format!(
                "message {} to `{}`: the URL scheme `{other}` cannot be delivered; use http or https",
                message.id,
                crate::message::redact_url(&message.url)
            )));
        }
    }
    if message.url.host().is_none() {
        return Err(invalid(format!(
            "message {}: the URL `{}` has no host",
            message.id,
            crate::message::redact_url(&message.url)
        )));
    }
    if message.body.len() > max_body_bytes {
        return Err(invalid(format!(
            "message {} ({}): the body is {} bytes, over the limit of {} bytes; send less, or raise the store's max_body_bytes",
            message.id,
            message.name,
            message.body.len(),
            max_body_bytes
        )));
    }
    if message.name.is_empty() || message.name.len() > 200 {
        return Err(invalid(format!(
            "message {}: the name must be 1 to 200 characters",
            message.id
        )));
    }
    if let Some(key) = &message.idempotency_key
        && (key.is_empty() || key.len() > 500)
    {
        return Err(invalid(format!(
            "message {} ({}): the idempotency key must be 1 to 500 characters",
            message.id, message.name
        )));
    }
    for (name, value) in &message.headers {
        if value.to_str().is_err() {
            return Err(invalid(format!(
                "message {} ({}): the value of header `{name}` is not visible ASCII",
                message.id, message.name
            )));
        }
    }
    Ok(())
}
