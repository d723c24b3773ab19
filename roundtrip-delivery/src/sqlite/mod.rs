//! The embedded SQLite outbox store: one file, WAL, one writer task.
//!
//! # Policy
//!
//! * **Where.** The database is one file, by default `roundtrip-outbox.db` in the working
//!   directory; [`SqliteOptions::from_env`] reads the path from `ROUNDTRIP_OUTBOX_DB`
//!   instead. The schema is embedded and brought up to date when the store opens (its
//!   migrations are recorded in `_roundtrip_migrations`, so an application can keep its own
//!   sqlx migrations in the same file).
//! * **Durability.** The file runs in WAL mode with `synchronous = FULL` by default: when
//!   [`enqueue`](crate::outbox::Outbox::enqueue) returns, the message is on disk and
//!   survives a power loss. Set [`SqliteOptions::synchronous`] to `Normal` to trade that
//!   for speed (a process crash still loses nothing).
//! * **One writer.** Every write of the store goes through one task and one connection,
//!   with `BEGIN IMMEDIATE`. Writes queued while a commit runs share the next commit (group
//!   commit), so a thousand concurrent sends cost a handful of fsyncs, and the store's own
//!   writes never meet `database is locked`. Reads (listings, `get`) use a small pool of
//!   read-only connections and never wait for the writer.
//! * **Transactional enqueue.** [`SqliteOutbox::enqueue_in`] writes messages inside the
//!   application's own transaction on the same file: the business row and its messages
//!   commit together or not at all. Begin that transaction with `BEGIN IMMEDIATE`
//!   (`conn.begin_with("BEGIN IMMEDIATE")`) so it waits for the writer instead of failing
//!   with `SQLITE_BUSY` when it upgrades. Workers see such messages at their next poll
//!   (250 ms by default), or at once after [`Outbox::notify`].
//! * **Bounded.** The queue table holds only live messages. Finished ones move to
//!   `message_history`; [`purge`](crate::outbox::Outbox::purge) deletes them after 7 days
//!   when delivered, 30 days when not (both configurable).
//! * **Clear errors.** A read-only or locked file, a full disk or a damaged file is an
//!   [`Error`] that says so and what to check.

mod admin;
mod complete;
pub(crate) mod connect;
mod enqueue;
mod lease;
mod options;
mod rows;
#[cfg(test)]
mod tests;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnection, SqlitePool};

pub use options::{DEFAULT_PATH, PATH_ENV, SqliteOptions, Synchronous};

use crate::outbox::{
    Attempt, AttemptFilter, AttemptPage, CommitStats, Completion, Enqueued, Error, ErrorKind,
    LeaseCheck, Message, MessageFilter, MessageId, MessageMeta, MessagePage, NewMessage, Outbox,
    Purged, Reclaimed, Wakeup, Wakeups,
};
use crate::store::error::{Repr, Subject, from_sqlite};
use crate::store::options::{CommitCounters, Limits};
use connect::cannot_open;
use lease::LeaseScope;

/// An outbox error from an error of this store's database.
pub(crate) fn from_sqlx(e: sqlx::Error) -> Error {
    from_sqlite(e, Subject::Outbox).into()
}

/// The embedded SQLite outbox. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct SqliteOutbox {
    shared: Arc<Shared>,
}

struct Shared {
    writer: Option<writer::Writer>,
    /// The dispatcher of this process the writer hands new messages to, if one is attached.
    local: Arc<crate::store::local::LocalSlot>,
    readers: SqlitePool,
    wakeups: Wakeups,
    counters: Arc<CommitCounters>,
    limits: Arc<Limits>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOutbox")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl SqliteOutbox {
    /// Opens (and creates if needed) the database at `path` with the default options.
    pub async fn open_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open(SqliteOptions::new(path)).await
    }

    /// Opens the store: creates the file if needed, switches it to WAL, brings the schema
    /// up to date, and starts the writer task. Must be called inside a Tokio runtime.
    pub async fn open(options: SqliteOptions) -> Result<Self, Error> {
        let path = options.path.clone();
        let opening = |e: Repr| Error::from(cannot_open(e, &path, Subject::Outbox));
        let limits = Arc::new(options.limits.clone());
        let counters = Arc::new(CommitCounters::default());
        let wakeups = Wakeups::new();
        let local = Arc::new(crate::store::local::LocalSlot::default());
        let writer = if options.read_only {
            None
        } else {
            let synchronous = options.synchronous.to_sqlx();
            let connect = connect::writer_options(&path, synchronous, options.busy_timeout)
                .pragma("temp_store", "memory")
                // The writer's statements vary with the number of rows they carry (up to 64
                // per statement): keep all of them prepared.
                .statement_cache_capacity(1024)
                // Rows a statement returns (ids of inserted messages) cross to this task
                // without making SQLite's thread wait for them.
                .row_buffer_size(1024);
            let mut conn: SqliteConnection = connect
                .clone()
                // The checkpointer connection does this work; this is the fallback mark
                // (about 40 MB of WAL) should it fall behind.
                .pragma("wal_autocheckpoint", "10000")
                .connect()
                .await
                .map_err(|e| opening(from_sqlite(e, Subject::Outbox)))?;
            connect::migrate(
                sqlx::migrate!("./migrations/sqlite"),
                "_roundtrip_migrations",
                &mut conn,
                Subject::Outbox,
            )
            .await
            .map_err(&opening)?;
            lease::prepare_writer(&mut conn)
                .await
                .map_err(|e| opening(e.into()))?;
            let checkpointer: SqliteConnection = connect
                .statement_cache_capacity(4)
                .connect()
                .await
                .map_err(|e| opening(from_sqlite(e, Subject::Outbox)))?;
            Some(writer::spawn(
                conn,
                checkpointer,
                writer::WriterConfig {
                    limits: limits.clone(),
                    synchronous,
                    max_batch: options.max_batch,
                    queue: 4096,
                },
                wakeups.clone(),
                counters.clone(),
                local.clone(),
            ))
        };
        let readers = connect::open_readers(
            &path,
            options.readers,
            options.busy_timeout,
            Subject::Outbox,
        )
        .await
        .map_err(&opening)?;
        Ok(SqliteOutbox {
            shared: Arc::new(Shared {
                writer,
                local,
                readers,
                wakeups,
                counters,
                limits,
                path,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The writer's counters.
    pub fn stats(&self) -> CommitStats {
        self.shared.counters.snapshot()
    }

    /// Enqueues `messages` inside the caller's transaction on the same database file.
    ///
    /// Nothing is committed here: the messages become visible when the caller commits, and
    /// vanish with a rollback. The connection is a sqlx one on purpose: the point is to
    /// write inside the application's own sqlx transaction, beside its business rows (open
    /// its pool with [`SqliteOptions::connect_options`]). Call [`Outbox::notify`] after the commit to wake the workers
    /// at once; otherwise they find the messages at their next poll.
    ///
    /// ```no_run
    /// # async fn demo(outbox: roundtrip_delivery::sqlite::SqliteOutbox, pool: sqlx::SqlitePool,
    /// #               msg: roundtrip_delivery::message::NewMessage) -> Result<(), Box<dyn std::error::Error>> {
    /// use roundtrip_delivery::outbox::Outbox;
    /// use sqlx::Connection;
    /// let mut conn = pool.acquire().await?;
    /// let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    /// sqlx::query("INSERT INTO invoices (id) VALUES ('42')").execute(&mut *tx).await?;
    /// outbox.enqueue_in(&mut tx, vec![msg]).await?;
    /// tx.commit().await?;
    /// outbox.notify();
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_in(
        &self,
        conn: &mut SqliteConnection,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Enqueued>, Error> {
        enqueue::insert_messages(conn, &messages, &self.shared.limits, SystemTime::now()).await
    }

    fn writer(&self) -> Result<&writer::Writer, Error> {
        self.shared.writer.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::ReadOnly,
                format!(
                    "the outbox `{}` was opened read-only; open it without `read_only` to write",
                    self.shared.path.display()
                ),
            )
        })
    }

    async fn write<T, F>(&self, durable: bool, run: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'a> FnMut(
                &'a mut SqliteConnection,
                &'a mut writer::Ctx,
            ) -> BoxFuture<'a, Result<T, Error>>
            + Send
            + 'static,
    {
        self.writer()?.run(durable, run).await
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, Error> {
        self.shared.readers.acquire().await.map_err(from_sqlx)
    }
}

impl Outbox for SqliteOutbox {
    fn enqueue(&self, messages: Vec<NewMessage>) -> BoxFuture<'_, Result<Vec<Enqueued>, Error>> {
        Box::pin(async move {
            if messages.is_empty() {
                return Ok(Vec::new());
            }
            for m in &messages {
                crate::outbox::validate(m, self.shared.limits.max_body_bytes)?;
            }
            // Written together with the other enqueues waiting for the writer.
            self.writer()?.enqueue(messages).await
        })
    }

    fn claim<'a>(
        &'a self,
        owner: &'a str,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<Message>, Error>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let owner = owner.to_owned();
            let writer = self.writer()?;
            let document = writer
                .run_whole(false, move |conn, ctx| {
                    let owner = owner.clone();
                    let whole = ctx.whole;
                    Box::pin(async move {
                        lease::claim(conn, &owner, limit, lease, SystemTime::now(), whole).await
                    })
                })
                .await?;
            // Read in the claimer's task, not the writer's.
            lease::read_claimed(&document)
        })
    }

    fn complete(
        &self,
        completions: Vec<Completion>,
    ) -> BoxFuture<'_, Result<Vec<LeaseCheck>, Error>> {
        Box::pin(async move {
            if completions.is_empty() {
                return Ok(Vec::new());
            }
            // The query is built here, in the caller's task, not by the writer: the writer
            // and SQLite's thread are the one serial path every write takes. Should the
            // writer run the job again (after a rollback), it is built again.
            let completions = Arc::new(completions);
            let mut prepared = Some(complete::Prepared::new(&completions, SystemTime::now())?);
            let writer = self.writer()?;
            let for_writer = completions.clone();
            let answered = writer
                .run_whole(false, move |conn, ctx| {
                    let prepared = prepared.take();
                    let completions = for_writer.clone();
                    let whole = ctx.whole;
                    Box::pin(async move {
                        let prepared = match prepared {
                            Some(prepared) => prepared,
                            None => complete::Prepared::new(&completions, SystemTime::now())?,
                        };
                        complete::run(conn, prepared, whole).await
                    })
                })
                .await?;
            Ok(complete::checks(&completions, &answered))
        })
    }

    fn complete_and_refill<'a>(
        &'a self,
        completions: Vec<Completion>,
        slots: &'a mut Vec<tokio::sync::OwnedSemaphorePermit>,
    ) -> BoxFuture<'a, Result<Vec<LeaseCheck>, Error>> {
        Box::pin(async move {
            let local = match self.shared.local.current() {
                Some(local) if !slots.is_empty() && !completions.is_empty() => local,
                _ => return self.complete(completions).await,
            };
            // One query records the batch and claims for the slots it frees; built here,
            // outside the writer's serial path (again, should the writer run it again).
            let limit = slots.len();
            let (owner, lease) = (Arc::<str>::from(local.owner()), local.lease());
            let build = move |completions: &[Completion]| {
                let now = SystemTime::now();
                let mut prepared = complete::Prepared::new(completions, now)?;
                prepared.then_claim(&owner, limit, lease, now)?;
                Ok::<_, Error>(prepared)
            };
            let completions = Arc::new(completions);
            let mut prepared = Some(build(&completions)?);
            let writer = self.writer()?;
            let for_writer = completions.clone();
            let answered = writer
                .run_whole(false, move |conn, ctx| {
                    let prepared = prepared.take().map_or_else(|| build(&for_writer), Ok);
                    let whole = ctx.whole;
                    Box::pin(async move { complete::run(conn, prepared?, whole).await })
                })
                .await?;
            // The completions are recorded whatever happens next: answer them in any case.
            if let Some(document) = complete::claimed(&answered) {
                match lease::read_claimed(document) {
                    Ok(messages) => local.hand_over(messages, slots),
                    Err(e) => {
                        tracing::warn!(error = %e, "messages claimed for the local dispatcher could not be read; their leases will expire")
                    }
                }
            }
            Ok(complete::checks(&completions, &answered))
        })
    }

    fn renew<'a>(
        &'a self,
        owner: &'a str,
        ids: &'a [MessageId],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<MessageId>, Error>> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let owner = owner.to_owned();
            let ids: Arc<[MessageId]> = ids.into();
            self.write(false, move |conn, _ctx| {
                let owner = owner.clone();
                let ids = ids.clone();
                Box::pin(
                    async move { lease::renew(conn, &owner, &ids, lease, SystemTime::now()).await },
                )
            })
            .await
        })
    }

    fn release(&self, owner: &str) -> BoxFuture<'_, Result<u64, Error>> {
        let owner = owner.to_owned();
        Box::pin(async move {
            self.write(false, move |conn, ctx| {
                let owner = owner.clone();
                Box::pin(async move {
                    let n = lease::release(conn, &owner).await?;
                    ctx.wake |= n > 0;
                    Ok(n)
                })
            })
            .await
        })
    }

    fn reclaim_expired(&self) -> BoxFuture<'_, Result<Reclaimed, Error>> {
        Box::pin(async move {
            self.write(false, move |conn, ctx| {
                Box::pin(async move {
                    let cap = ctx.limits.crash_cap;
                    let r =
                        lease::reclaim(conn, LeaseScope::Expired, cap, SystemTime::now()).await?;
                    ctx.wake |= r.requeued > 0;
                    Ok(r)
                })
            })
            .await
        })
    }

    fn reclaim_owner(&self, owner: &str) -> BoxFuture<'_, Result<Reclaimed, Error>> {
        let owner = owner.to_owned();
        Box::pin(async move {
            self.write(false, move |conn, ctx| {
                let owner = owner.clone();
                Box::pin(async move {
                    let cap = ctx.limits.crash_cap;
                    let r = lease::reclaim(conn, LeaseScope::Owner(&owner), cap, SystemTime::now())
                        .await?;
                    ctx.wake |= r.requeued > 0;
                    Ok(r)
                })
            })
            .await
        })
    }

    fn subscribe(&self) -> Wakeup {
        self.shared.wakeups.subscribe()
    }

    fn deliver_locally(&self, local: crate::outbox::LocalDelivery) -> bool {
        if self.shared.writer.is_none() {
            return false;
        }
        self.shared.local.attach(local);
        true
    }

    fn notify(&self) {
        self.shared.wakeups.notify();
    }

    fn get<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<Option<Message>, Error>> {
        Box::pin(async move { admin::get_message(&mut *self.reader().await?, id).await })
    }

    fn list<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<MessagePage, Error>> {
        Box::pin(async move { admin::list(&mut *self.reader().await?, filter).await })
    }

    fn attempts<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<Vec<Attempt>, Error>> {
        Box::pin(async move { admin::attempts(&mut *self.reader().await?, id).await })
    }

    fn attempt_log<'a>(
        &'a self,
        filter: &'a AttemptFilter,
    ) -> BoxFuture<'a, Result<AttemptPage, Error>> {
        Box::pin(async move { admin::attempt_log(&mut *self.reader().await?, filter).await })
    }

    fn retry<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<MessageMeta, Error>> {
        let id = id.clone();
        Box::pin(async move {
            self.write(true, move |conn, ctx| {
                let id = id.clone();
                Box::pin(async move {
                    let meta = admin::retry(conn, &id, SystemTime::now()).await?;
                    ctx.wake = true;
                    Ok(meta)
                })
            })
            .await
        })
    }

    fn replay<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<u64, Error>> {
        let filter = filter.clone();
        Box::pin(async move {
            self.write(true, move |conn, ctx| {
                let filter = filter.clone();
                Box::pin(async move {
                    let n = admin::replay(conn, &filter, SystemTime::now()).await?;
                    ctx.wake |= n > 0;
                    Ok(n)
                })
            })
            .await
        })
    }

    fn cancel<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<MessageMeta, Error>> {
        let id = id.clone();
        Box::pin(async move {
            self.write(true, move |conn, _ctx| {
                let id = id.clone();
                Box::pin(async move { admin::cancel(conn, &id, SystemTime::now()).await })
            })
            .await
        })
    }

    fn retarget<'a>(
        &'a self,
        endpoint: &'a str,
        url: &'a url::Url,
    ) -> BoxFuture<'a, Result<u64, Error>> {
        let endpoint = endpoint.to_owned();
        let url = url.as_str().to_owned();
        Box::pin(async move {
            self.write(true, move |conn, _ctx| {
                let (endpoint, url) = (endpoint.clone(), url.clone());
                Box::pin(async move { admin::retarget(conn, &endpoint, &url).await })
            })
            .await
        })
    }

    fn purge(&self) -> BoxFuture<'_, Result<Purged, Error>> {
        Box::pin(async move {
            self.write(false, move |conn, ctx| {
                let limits = ctx.limits.clone();
                Box::pin(async move { admin::purge(conn, &limits, SystemTime::now()).await })
            })
            .await
        })
    }
}
