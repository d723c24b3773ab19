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
//!   (250 ms by default), or at once after [`Outbox::notify`](crate::outbox::Outbox::notify).
//! * **Bounded.** The queue table holds only live messages. Finished ones move to
//!   `message_history`; [`purge`](crate::outbox::Outbox::purge) deletes them after 7 days
//!   when delivered, 30 days when not (both configurable).
//! * **Clear errors.** A read-only or locked file, a full disk or a damaged file is an
//!   [`Error`] that says so and what to check.

mod errors;
mod queries;

pub(crate) use queries::{from_ms, to_ms};
#[cfg(test)]
mod tests;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use sqlx::ConnectOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};

pub use sqlx::sqlite::SqliteSynchronous;

use crate::outbox::{
    Attempt, Completion, Enqueued, Error, ErrorKind, LeaseCheck, Message, MessageFilter, MessageId,
    MessageMeta, MessagePage, NewMessage, Outbox, Purged, Reclaimed, Wakeup, Wakeups,
};
use queries::{LeaseScope, Limits};

/// The database file used when no path is given.
pub const DEFAULT_PATH: &str = "roundtrip-outbox.db";
/// The environment variable [`SqliteOptions::from_env`] reads the path from.
pub const PATH_ENV: &str = "ROUNDTRIP_OUTBOX_DB";

/// How to open a [`SqliteOutbox`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    path: PathBuf,
    synchronous: SqliteSynchronous,
    busy_timeout: Duration,
    read_only: bool,
    readers: u32,
    max_batch: usize,
    limits: Limits,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self::new(DEFAULT_PATH)
    }
}

impl SqliteOptions {
    /// Options for the database file at `path` (created if missing), with the defaults.
    pub fn new(path: impl AsRef<Path>) -> Self {
        SqliteOptions {
            path: path.as_ref().to_path_buf(),
            synchronous: SqliteSynchronous::Full,
            busy_timeout: Duration::from_secs(5),
            read_only: false,
            readers: 4,
            max_batch: 1024,
            limits: Limits {
                max_body_bytes: 1024 * 1024,
                crash_cap: 5,
                retention_succeeded: Duration::from_secs(7 * 24 * 3600),
                retention_failed: Duration::from_secs(30 * 24 * 3600),
                idempotency_retention: Duration::from_secs(24 * 3600),
                purge_batch: 10_000,
            },
        }
    }

    /// Options for the file named by `ROUNDTRIP_OUTBOX_DB`, or [`DEFAULT_PATH`] if unset.
    pub fn from_env() -> Self {
        match std::env::var_os(PATH_ENV) {
            Some(path) if !path.is_empty() => Self::new(PathBuf::from(path)),
            _ => Self::default(),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `synchronous` level of durable commits (default `Full`).
    pub fn synchronous(mut self, level: SqliteSynchronous) -> Self {
        self.synchronous = level;
        self
    }

    /// How long a write waits for a lock held by another connection or process before it
    /// fails with [`Error::is_locked`] (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Opens the file for reading only (to inspect the outbox of a running app): no
    /// migrations run, and every write fails with [`Error::is_read_only`].
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The largest body accepted at enqueue (default 1 MiB). Bigger messages are refused
    /// with [`Error::is_invalid`], never accepted and then dropped.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_body_bytes = bytes;
        self
    }

    /// How many times a message may be claimed by a worker that then vanishes (its lease
    /// expires with no outcome) before it is failed as a poison message (default 5).
    pub fn crash_cap(mut self, cap: u32) -> Self {
        self.limits.crash_cap = cap.max(1);
        self
    }

    /// How long delivered messages stay in history (default 7 days).
    pub fn retention_succeeded(mut self, retention: Duration) -> Self {
        self.limits.retention_succeeded = retention;
        self
    }

    /// How long failed and cancelled messages stay in history (default 30 days).
    pub fn retention_failed(mut self, retention: Duration) -> Self {
        self.limits.retention_failed = retention;
        self
    }

    /// How long an idempotency key outlives its message's delivery (default 24 h).
    pub fn idempotency_retention(mut self, retention: Duration) -> Self {
        self.limits.idempotency_retention = retention;
        self
    }

    /// How many writes at most share one transaction (default 1024).
    pub fn max_batch(mut self, jobs: usize) -> Self {
        self.max_batch = jobs.max(1);
        self
    }

    /// How many read-only connections serve listings and `get` (default 4).
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// Connect options for the same file, for an application pool that calls
    /// [`SqliteOutbox::enqueue_in`] (WAL, the busy timeout, foreign keys on).
    pub fn connect_options(&self) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(&self.path)
            .busy_timeout(self.busy_timeout)
            .disable_statement_logging()
    }
}

/// Counters of the store's writer, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Writes (enqueue calls, claims, completions, ...) run; many share a transaction.
    pub jobs: u64,
    /// Batches rolled back because one write in them failed.
    pub rollbacks: u64,
}

/// The embedded SQLite outbox. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct SqliteOutbox {
    shared: Arc<Shared>,
}

struct Shared {
    writer: Option<writer::Writer>,
    readers: SqlitePool,
    wakeups: Wakeups,
    counters: Arc<writer::Counters>,
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

fn open_error(path: &Path, e: Error) -> Error {
    let kind = e.kind();
    Error::new(
        kind,
        format!("cannot open the outbox database `{}`", path.display()),
    )
    .with_source(e)
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
        let limits = Arc::new(options.limits.clone());
        let counters = Arc::new(writer::Counters::default());
        let wakeups = Wakeups::new();
        let writer = if options.read_only {
            None
        } else {
            let connect = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(options.synchronous)
                .busy_timeout(options.busy_timeout)
                .foreign_keys(false)
                .pragma("temp_store", "memory")
                // The writer's statements vary with the number of rows they carry (up to 64
                // per statement): keep all of them prepared.
                .statement_cache_capacity(1024)
                // Rows a statement returns (ids of inserted messages) cross to this task
                // without making SQLite's thread wait for them.
                .row_buffer_size(1024)
                .disable_statement_logging();
            let mut conn: SqliteConnection = connect
                .clone()
                // The checkpointer connection does this work; this is the fallback mark
                // (about 40 MB of WAL) should it fall behind.
                .pragma("wal_autocheckpoint", "10000")
                .connect()
                .await
                .map_err(|e| open_error(&path, errors::from_sqlx(e)))?;
            let mut migrator = sqlx::migrate!("./migrations/sqlite");
            migrator.dangerous_set_table_name("_roundtrip_migrations");
            run_migrations(&migrator, &mut conn)
                .await
                .map_err(|e| open_error(&path, migrate_error(e)))?;
            queries::prepare_writer(&mut conn)
                .await
                .map_err(|e| open_error(&path, e))?;
            let checkpointer: SqliteConnection = connect
                .statement_cache_capacity(4)
                .connect()
                .await
                .map_err(|e| open_error(&path, errors::from_sqlx(e)))?;
            Some(writer::spawn(
                conn,
                checkpointer,
                writer::WriterConfig {
                    limits: limits.clone(),
                    synchronous: options.synchronous,
                    max_batch: options.max_batch,
                    queue: 4096,
                },
                wakeups.clone(),
                counters.clone(),
            ))
        };
        let readers = SqlitePoolOptions::new()
            .max_connections(options.readers)
            .min_connections(0)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(&path)
                    .read_only(true)
                    .busy_timeout(options.busy_timeout)
                    .disable_statement_logging(),
            )
            .await
            .map_err(|e| open_error(&path, errors::from_sqlx(e)))?;
        Ok(SqliteOutbox {
            shared: Arc::new(Shared {
                writer,
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
    pub fn stats(&self) -> WriterStats {
        let c = &self.shared.counters;
        WriterStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            jobs: c.jobs.load(Ordering::Relaxed),
            rollbacks: c.rollbacks.load(Ordering::Relaxed),
        }
    }

    /// Enqueues `messages` inside the caller's transaction on the same database file.
    ///
    /// Nothing is committed here: the messages become visible when the caller commits, and
    /// vanish with a rollback. Call [`Outbox::notify`] after the commit to wake the workers
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
        queries::insert_messages(conn, &messages, &self.shared.limits, SystemTime::now()).await
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
        self.shared
            .readers
            .acquire()
            .await
            .map_err(errors::from_sqlx)
    }
}

/// Runs the migrations on the connection directly. `Migrator::run` takes any `Acquire`,
/// and that higher-ranked bound makes `open` not `Send` for callers that await it inside
/// generic code (a request handler's future); `run_direct` has no such bound.
async fn run_migrations(
    migrator: &sqlx::migrate::Migrator,
    conn: &mut SqliteConnection,
) -> Result<(), sqlx::migrate::MigrateError> {
    migrator.run_direct(None, conn, false).await
}

fn migrate_error(e: sqlx::migrate::MigrateError) -> Error {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => errors::from_sqlx(e),
        other => Error::new(
            ErrorKind::Corrupt,
            "the outbox schema could not be brought up to date (was the file written by a newer roundtrip?)",
        )
        .with_source(other),
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
            self.write(false, move |conn, _ctx| {
                let owner = owner.clone();
                Box::pin(async move {
                    queries::claim(conn, &owner, limit, lease, SystemTime::now()).await
                })
            })
            .await
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
            let completions = Arc::new(completions);
            self.write(false, move |conn, _ctx| {
                let completions = completions.clone();
                Box::pin(
                    async move { queries::complete(conn, &completions, SystemTime::now()).await },
                )
            })
            .await
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
                Box::pin(async move {
                    queries::renew(conn, &owner, &ids, lease, SystemTime::now()).await
                })
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
                    let n = queries::release(conn, &owner).await?;
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
                        queries::reclaim(conn, LeaseScope::Expired, cap, SystemTime::now()).await?;
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
                    let r =
                        queries::reclaim(conn, LeaseScope::Owner(&owner), cap, SystemTime::now())
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

    fn notify(&self) {
        self.shared.wakeups.notify();
    }

    fn get<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<Option<Message>, Error>> {
        Box::pin(async move { queries::get_message(&mut *self.reader().await?, id).await })
    }

    fn list<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<MessagePage, Error>> {
        Box::pin(async move {
            let (messages, more) = queries::list(&mut *self.reader().await?, filter).await?;
            let next = if more {
                messages.last().map(|m| m.id.clone())
            } else {
                None
            };
            Ok(MessagePage { messages, next })
        })
    }

    fn attempts<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<Vec<Attempt>, Error>> {
        Box::pin(async move { queries::attempts(&mut *self.reader().await?, id).await })
    }

    fn retry<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<MessageMeta, Error>> {
        let id = id.clone();
        Box::pin(async move {
            self.write(true, move |conn, ctx| {
                let id = id.clone();
                Box::pin(async move {
                    let meta = queries::retry(conn, &id, SystemTime::now()).await?;
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
                    let n = queries::replay(conn, &filter, SystemTime::now()).await?;
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
                Box::pin(async move { queries::cancel(conn, &id, SystemTime::now()).await })
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
                Box::pin(async move { queries::retarget(conn, &endpoint, &url).await })
            })
            .await
        })
    }

    fn purge(&self) -> BoxFuture<'_, Result<Purged, Error>> {
        Box::pin(async move {
            self.write(false, move |conn, ctx| {
                let limits = ctx.limits.clone();
                Box::pin(async move { queries::purge(conn, &limits, SystemTime::now()).await })
            })
            .await
        })
    }
}
