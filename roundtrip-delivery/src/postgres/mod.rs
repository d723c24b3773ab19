//! The PostgreSQL outbox store: one queue shared by many processes.
//!
//! # Policy
//!
//! * **Where.** The tables live in one schema of the database the URL names, `roundtrip`
//!   by default ([`PgOptions::schema`]), next to the application's own tables. The schema is
//!   embedded and brought up to date when the store connects; its migrations are recorded in
//!   `<schema>._roundtrip_migrations`. Several processes may start at once: sqlx's migrator
//!   holds a database-wide advisory lock (`pg_advisory_lock`) while it creates the schema and
//!   applies migrations, so exactly one of them does the work and the others wait and find
//!   it done.
//! * **Durability.** [`enqueue`](crate::outbox::Outbox::enqueue) answers after PostgreSQL
//!   has committed the messages (with the server's `synchronous_commit`); so do retries,
//!   replays and cancels. Concurrent enqueues share commits ([`PgOptions::group_commit`]):
//!   calls that arrive while a transaction is in flight are written together in the next.
//!   If the connection breaks, the call fails with [`Error::is_unavailable`]; it never
//!   answers success for a write it could not confirm. (A failure reported *after* the
//!   server committed is possible, as with any database; an idempotency key makes the
//!   caller's retry safe.)
//! * **The workers' writes are cheaper.** Claims, lease renewals and attempt records go
//!   through a second pool whose sessions use `synchronous_commit = off` (as the SQLite
//!   store commits them with `synchronous = NORMAL`): they do not wait for the WAL flush. A
//!   crash of the database server can lose the last fraction of a second of them, which
//!   only means those messages are sent again: at least once still holds
//!   ([`PgOptions::synchronous_work`] turns this off).
//! * **Claims.** One statement claims a batch: `WITH due AS MATERIALIZED (SELECT id ...
//!   WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT
//!   n FOR UPDATE SKIP LOCKED) UPDATE ... WHERE id IN (SELECT id FROM due) RETURNING ...`
//!   (the CTE runs the locking scan exactly once). Processes never wait for each other's
//!   rows and never take the same message. Each claim sets a lease (owner and expiry) from
//!   the database clock, so hosts with skewed clocks still agree on when a lease runs out.
//!   Leases, lost-lease counting, the crash cap, history, retention, idempotency keys,
//!   retry, replay and cancel behave as in the [SQLite store](crate::sqlite); both pass the
//!   same conformance suite.
//! * **Wake-ups.** A committed enqueue sends `NOTIFY` on the store's channel (delivered on
//!   commit, never after a rollback). A task in each process `LISTEN`s and wakes its workers,
//!   so a message enqueued in process A is picked up in process B at once. LISTEN/NOTIFY is
//!   only a wake-up: the workers poll as well, so nothing waits for long when the listening
//!   connection drops (it reconnects with backoff and logs once) or sits behind a
//!   transaction-pooling proxy, where LISTEN does not work ([`PgOptions::listen_url`] can
//!   point it past the proxy; [`PgOptions::listen`] turns it off). Behind such a proxy the
//!   store's prepared statements also need PgBouncer 1.21 or later with
//!   `max_prepared_statements` set.
//! * **Transactional enqueue.** [`PgOutbox::enqueue_in`] writes messages on the
//!   application's own connection, inside its transaction: the business row and its messages
//!   commit together or not at all, and a rollback sends nothing, not even the wake-up.
//! * **Bounded.** The queue table holds only live messages; finished ones move to
//!   `message_history`, which [`purge`](crate::outbox::Outbox::purge) trims after 7 days when
//!   delivered and 30 days when not (both configurable).

mod committer;
mod errors;
mod listener;
mod queries;
mod sql;

pub(crate) use queries::{from_us, to_us};
pub(crate) use sql::{quote_ident, valid_schema_name};

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::outbox::{
    Attempt, Completion, Enqueued, Error, ErrorKind, LeaseCheck, Message, MessageFilter, MessageId,
    MessageMeta, MessagePage, NewMessage, Outbox, Purged, Reclaimed, Wakeup, Wakeups,
};
use errors::from_sqlx;
use queries::Limits;
use sql::Statements;

/// The schema used when none is given.
pub const DEFAULT_SCHEMA: &str = "roundtrip";

/// How to connect a [`PgOutbox`].
///
/// ```
/// use roundtrip_delivery::postgres::PgOptions;
/// let options = PgOptions::new("postgres://app@127.0.0.1/app")
///     .schema("outbox")
///     .max_connections(16);
/// assert_eq!(options.get_schema(), "outbox");
/// ```
#[derive(Clone)]
pub struct PgOptions {
    url: String,
    connect: Option<PgConnectOptions>,
    schema: String,
    channel: Option<String>,
    listen: bool,
    listen_url: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
    application_name: String,
    group_commit: bool,
    synchronous_work: bool,
    commit_lanes: usize,
    max_batch: usize,
    must_exist: bool,
    limits: Limits,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact_pg_url(&self.url))
            .field("schema", &self.schema)
            .field("channel", &self.get_channel())
            .field("listen", &self.listen)
            .field("max_connections", &self.max_connections)
            .field("group_commit", &self.group_commit)
            .finish_non_exhaustive()
    }
}

/// The URL as it may be shown: scheme, host, port and database, never the password.
fn redact_pg_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => crate::message::redact_url(&parsed),
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

impl PgOptions {
    /// Options for the database at `url` (`postgres://user:password@host:port/database`),
    /// with the defaults: schema `roundtrip`, 10 connections, LISTEN on, group commit on.
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            connect: None,
            schema: DEFAULT_SCHEMA.to_owned(),
            channel: None,
            listen: true,
            listen_url: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            application_name: "roundtrip-outbox".to_owned(),
            group_commit: true,
            synchronous_work: false,
            commit_lanes: 2,
            max_batch: 1024,
            must_exist: false,
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

    /// Options from sqlx connect options built in code (TLS settings, sockets); the URL is
    /// then only used in messages.
    pub fn from_connect_options(connect: PgConnectOptions) -> Self {
        let shown = format!(
            "postgres://{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or("")
        );
        let mut options = Self::new(shown);
        options.connect = Some(connect);
        options
    }

    /// The schema that holds the outbox tables (default `roundtrip`): letters, digits and
    /// `_`, not starting with a digit, at most 63 bytes. Created if missing.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Connect only to an outbox that already exists (default: off, the schema and its
    /// tables are created). For tools that inspect a running application's outbox, such
    /// as the app CLI: a mistyped schema or database is then an error that says so, not a
    /// new, empty outbox that lists nothing. Migrations still run on an outbox that exists.
    pub fn must_exist(mut self, on: bool) -> Self {
        self.must_exist = on;
        self
    }

    /// The schema.
    pub fn get_schema(&self) -> &str {
        &self.schema
    }

    /// The LISTEN/NOTIFY channel (default `<schema>_outbox`). Every process sharing the
    /// outbox must use the same one.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// The channel.
    pub fn get_channel(&self) -> String {
        self.channel
            .clone()
            .unwrap_or_else(|| format!("{}_outbox", self.schema))
    }

    /// Whether to LISTEN for wake-ups (default true). Without it, workers find messages
    /// from other processes at their next poll.
    pub fn listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// A separate URL for the listening connection, for deployments where the main URL goes
    /// through a transaction-pooling proxy (PgBouncer in transaction mode), which cannot
    /// carry LISTEN: point this one at PostgreSQL itself.
    pub fn listen_url(mut self, url: impl Into<String>) -> Self {
        self.listen_url = Some(url.into());
        self
    }

    /// The most connections each of the store's two pools opens (default 10): one for
    /// enqueues and reads, one for the workers' claims and completions. The listener uses one
    /// more.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a call waits for a pooled connection before failing with
    /// [`Error::is_unavailable`] (default 5 s). This bounds how long `send()` can hang when
    /// the database is unreachable.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The `application_name` of the store's connections (default `roundtrip-outbox`), shown
    /// in `pg_stat_activity`.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Whether concurrent enqueues share transactions (default true). Without it, each
    /// call is its own transaction on the pool.
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// Whether claims, lease renewals and attempt records wait for the WAL flush like
    /// enqueues do (default false: they commit with `synchronous_commit = off`, which roughly
    /// doubles the claim-and-complete throughput; a database crash can then lose the last
    /// fraction of a second of them, and those messages are sent again).
    pub fn synchronous_work(mut self, on: bool) -> Self {
        self.synchronous_work = on;
        self
    }

    /// How many group-commit transactions may run at once (default 2). PostgreSQL
    /// serializes the commits of transactions that sent `NOTIFY`, so more lanes mostly make
    /// smaller batches: in `bench/outbox`, 64 concurrent callers got about 6,900 enqueues/s
    /// with 1 or 2 lanes, 4,800 with 4 and 2,200 with 8.
    pub fn commit_lanes(mut self, lanes: usize) -> Self {
        self.commit_lanes = lanes.max(1);
        self
    }

    /// How many messages at most share one group-commit transaction (default 1024).
    pub fn max_batch(mut self, messages: usize) -> Self {
        self.max_batch = messages.max(1);
        self
    }

    /// The largest body accepted at enqueue (default 1 MiB). Bigger messages are refused
    /// with [`Error::is_invalid`], never accepted and then dropped.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_body_bytes = bytes;
        self
    }

    /// How many times a message may be claimed by a worker that then vanishes before it is
    /// failed as a poison message (default 5).
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

    fn connect_options(&self, url: &str) -> Result<PgConnectOptions, Error> {
        let options = match (&self.connect, url == self.url) {
            (Some(connect), true) => connect.clone(),
            _ => url.parse::<PgConnectOptions>().map_err(|e| {
                Error::new(
                    ErrorKind::Invalid,
                    format!(
                        "the outbox database URL `{}` is invalid; expected postgres://user:password@host:port/database",
                        redact_pg_url(url)
                    ),
                )
                .with_source(e)
            })?,
        };
        Ok(options
            .application_name(&self.application_name)
            .disable_statement_logging())
    }

    fn check_schema(&self) -> Result<(), Error> {
        if sql::valid_schema_name(&self.schema) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "the outbox schema name `{}` is invalid: use letters, digits and `_`, not starting with a digit, at most 63 bytes",
                    self.schema.chars().take(80).collect::<String>()
                ),
            ))
        }
    }
}

/// Counters of the group committer, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitStats {
    /// Enqueue transactions committed.
    pub transactions: u64,
    /// Enqueue calls written; many share a transaction.
    pub jobs: u64,
    /// Batches written again call by call because one call in them failed.
    pub rollbacks: u64,
}

/// What the LISTEN task is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStatus {
    /// Whether it holds a listening connection now.
    pub listening: bool,
    /// How many times it has connected (1 after the start, more after reconnects).
    pub connects: u64,
    /// Notifications received.
    pub notifications: u64,
    /// The server process id of its connection, if it has connected.
    pub backend_pid: Option<u32>,
}

/// The PostgreSQL outbox. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct PgOutbox {
    shared: Arc<Shared>,
}

struct Shared {
    /// Enqueues, retries, replays, cancels and reads: commits wait for the WAL flush.
    pool: PgPool,
    /// Claims, completions, renewals, releases, reclaims and purges.
    work: PgPool,
    sql: Statements,
    schema: String,
    channel: String,
    wakeups: Wakeups,
    limits: Limits,
    writer: committer::Writer,
    committer: Option<committer::Committer>,
    counters: Arc<committer::Counters>,
    listen_state: Arc<listener::ListenState>,
    _listener: Option<listener::ListenerHandle>,
}

impl std::fmt::Debug for PgOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOutbox")
            .field("schema", &self.shared.schema)
            .field("channel", &self.shared.channel)
            .finish_non_exhaustive()
    }
}

fn migrate_error(e: sqlx::migrate::MigrateError) -> Error {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => from_sqlx(e),
        other => Error::new(
            ErrorKind::Corrupt,
            "the outbox schema could not be brought up to date (was it written by a newer roundtrip?)",
        )
        .with_source(other),
    }
}

impl PgOutbox {
    /// Connects to the database at `url` with the default options.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(PgOptions::new(url)).await
    }

    /// Connects: creates the schema and brings it up to date (safe when several processes
    /// start at once), opens the pool, and starts the LISTEN task. Must be called inside a
    /// Tokio runtime.
    pub async fn connect_with(options: PgOptions) -> Result<Self, Error> {
        options.check_schema()?;
        let shown = redact_pg_url(&options.url);
        let opening = |e: Error| {
            let kind = e.kind();
            Error::new(
                kind,
                format!(
                    "cannot open the outbox database `{shown}` (schema `{}`)",
                    options.schema
                ),
            )
            .with_source(e)
        };
        let connect = options.connect_options(&options.url).map_err(opening)?;
        migrate(
            &connect,
            &options.schema,
            options.acquire_timeout,
            options.must_exist,
        )
        .await
        .map_err(opening)?;

        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect.clone());
        let work = if options.synchronous_work {
            pool.clone()
        } else {
            PgPoolOptions::new()
                .max_connections(options.max_connections)
                .min_connections(0)
                .acquire_timeout(options.acquire_timeout)
                .connect_lazy_with(connect.clone().options([("synchronous_commit", "off")]))
        };
        let sql = Statements::new(&options.schema);
        let channel = options.get_channel();
        let wakeups = Wakeups::new();
        let counters = Arc::new(committer::Counters::default());
        let writer = committer::Writer {
            pool: pool.clone(),
            sql: sql.clone(),
            channel: channel.clone(),
            wakeups: wakeups.clone(),
            counters: counters.clone(),
        };
        let committer = options.group_commit.then(|| {
            committer::Committer::spawn(writer.clone(), options.commit_lanes, options.max_batch)
        });
        let listen_state = Arc::new(listener::ListenState::default());
        let listener = if options.listen {
            let listen_connect = match &options.listen_url {
                Some(url) => options.connect_options(url).map_err(opening)?,
                None => connect,
            };
            let (handle, ready) = listener::spawn(
                listen_connect,
                channel.clone(),
                wakeups.clone(),
                listen_state.clone(),
            );
            // Wait for the first LISTEN (or its failure, which the task logs and retries), so
            // that a message another process enqueues right after this returns wakes us.
            let _ = tokio::time::timeout(options.acquire_timeout, ready).await;
            Some(handle)
        } else {
            None
        };
        Ok(PgOutbox {
            shared: Arc::new(Shared {
                pool,
                work,
                sql,
                schema: options.schema.clone(),
                channel,
                wakeups,
                limits: options.limits.clone(),
                writer,
                committer,
                counters,
                listen_state,
                _listener: listener,
            }),
        })
    }

    /// The schema that holds the outbox tables.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// The LISTEN/NOTIFY channel.
    pub fn channel(&self) -> &str {
        &self.shared.channel
    }

    /// The store's connection pool (for example to begin a transaction for
    /// [`enqueue_in`](Self::enqueue_in) when the application has no pool of its own).
    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    /// The group committer's counters.
    pub fn stats(&self) -> CommitStats {
        let c = &self.shared.counters;
        CommitStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            jobs: c.jobs.load(Ordering::Relaxed),
            rollbacks: c.rollbacks.load(Ordering::Relaxed),
        }
    }

    /// What the LISTEN task is doing.
    pub fn listener_status(&self) -> ListenerStatus {
        let s = &self.shared.listen_state;
        let pid = s.backend_pid.load(Ordering::Relaxed);
        ListenerStatus {
            listening: s.listening.load(Ordering::Relaxed),
            connects: s.connects.load(Ordering::Relaxed),
            notifications: s.notifications.load(Ordering::Relaxed),
            backend_pid: u32::try_from(pid).ok().filter(|&p| p != 0),
        }
    }

    /// Closes the pools: waits for calls in progress, then closes every connection. Calls
    /// made afterwards fail with [`Error::is_closed`].
    pub async fn close(&self) {
        self.shared.pool.close().await;
        self.shared.work.close().await;
    }

    /// Enqueues `messages` inside the caller's transaction.
    ///
    /// The messages and their wake-up become visible when the caller commits, and vanish
    /// with a rollback. The writes run in a savepoint, so if this call fails the caller's
    /// transaction is still usable. On a connection outside a transaction, the messages are
    /// committed before this returns.
    ///
    /// ```no_run
    /// # async fn demo(outbox: roundtrip_delivery::postgres::PgOutbox, pool: sqlx::PgPool,
    /// #               msg: roundtrip_delivery::message::NewMessage) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("INSERT INTO invoices (id) VALUES ('42')").execute(&mut *tx).await?;
    /// outbox.enqueue_in(&mut tx, vec![msg]).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Enqueued>, Error> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        self.check(&messages)?;
        let mut savepoint = conn.begin().await.map_err(from_sqlx)?;
        let out = queries::insert_messages(
            &mut savepoint,
            &self.shared.sql,
            &messages,
            Some(&self.shared.channel),
        )
        .await?;
        savepoint.commit().await.map_err(from_sqlx)?;
        Ok(out)
    }

    fn check(&self, messages: &[NewMessage]) -> Result<(), Error> {
        for m in messages {
            crate::outbox::validate(m, self.shared.limits.max_body_bytes)?;
            queries::check_storable(m)?;
        }
        Ok(())
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, Error> {
        self.shared.pool.acquire().await.map_err(from_sqlx)
    }

    /// Runs a one-statement write of the workers on the work pool, again if the server picked it as a deadlock or
    /// serialization victim (then nothing of it was committed).
    async fn retrying<'a, T, F, Fut>(&'a self, mut op: F) -> Result<T, Error>
    where
        F: FnMut(&'a PgPool, &'a Statements) -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let mut tries = 0;
        loop {
            match op(&self.shared.work, &self.shared.sql).await {
                Ok(v) => return Ok(v),
                Err(e) if tries < 3 && errors::is_retryable(&e) => tries += 1,
                Err(e) => return Err(from_sqlx(e)),
            }
        }
    }

    /// Wakes the workers of every process: this one at once, the others through NOTIFY.
    async fn announce(&self) {
        self.shared.wakeups.notify();
        let sent = sqlx::query(sql::NOTIFY)
            .bind(&self.shared.channel)
            .execute(&self.shared.pool)
            .await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, "could not NOTIFY other processes; they will find the work when they poll");
        }
    }
}

/// Creates the schema and applies the migrations, on a pool of one connection (the
/// migrator's `run` takes a pool without tripping the compiler's proof that
/// [`PgOutbox::connect_with`] is `Send`).
async fn migrate(
    connect: &PgConnectOptions,
    schema: &str,
    acquire_timeout: Duration,
    must_exist: bool,
) -> Result<(), Error> {
    let quoted = sql::quote_ident(schema);
    // The migrations name their tables without a schema: they go in the first schema of the
    // search path, which is ours once the migrator has created it.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .connect_with(connect.clone().options([("search_path", quoted.as_str())]))
        .await
        .map_err(from_sqlx)?;
    let migrations_table = format!("{quoted}._roundtrip_migrations");
    if must_exist {
        let missing = match sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
            .bind(&migrations_table)
            .fetch_one(&pool)
            .await
        {
            Ok(true) => None,
            Ok(false) => Some(Error::new(
                ErrorKind::NotFound,
                format!(
                    "no roundtrip outbox in schema `{schema}` of this database (check the database URL and its `schema=` parameter)"
                ),
            )),
            Err(err) => Some(from_sqlx(err)),
        };
        if let Some(err) = missing {
            pool.close().await;
            return Err(err);
        }
    }
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    // Created under the migrator's advisory lock, so concurrent starts cannot race on it.
    migrator.create_schema(quoted.clone());
    migrator.dangerous_set_table_name(migrations_table);
    let result = migrator.run(&pool).await.map_err(migrate_error);
    // Closing ends the session, which also drops the advisory lock if a failure left it held.
    pool.close().await;
    result
}

impl Outbox for PgOutbox {
    fn enqueue(&self, messages: Vec<NewMessage>) -> BoxFuture<'_, Result<Vec<Enqueued>, Error>> {
        Box::pin(async move {
            if messages.is_empty() {
                return Ok(Vec::new());
            }
            self.check(&messages)?;
            match &self.shared.committer {
                Some(committer) => committer.enqueue(messages).await,
                None => {
                    self.shared.counters.jobs.fetch_add(1, Ordering::Relaxed);
                    self.shared.writer.write(&messages).await
                }
            }
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
            self.retrying(|pool, sql| queries::claim(pool, sql, owner, limit, lease))
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
            let completions = &completions;
            self.retrying(|pool, sql| queries::complete(pool, sql, completions))
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
            self.retrying(|pool, sql| queries::renew(pool, sql, owner, ids, lease))
                .await
        })
    }

    fn release(&self, owner: &str) -> BoxFuture<'_, Result<u64, Error>> {
        let owner = owner.to_owned();
        Box::pin(async move {
            let owner = &owner;
            let n = self
                .retrying(|pool, sql| queries::release(pool, sql, owner))
                .await?;
            if n > 0 {
                self.announce().await;
            }
            Ok(n)
        })
    }

    fn reclaim_expired(&self) -> BoxFuture<'_, Result<Reclaimed, Error>> {
        Box::pin(async move {
            let cap = self.shared.limits.crash_cap;
            let r = self
                .retrying(|pool, sql| queries::reclaim(pool, sql, None, cap))
                .await?;
            if r.requeued > 0 {
                self.announce().await;
            }
            Ok(r)
        })
    }

    fn reclaim_owner(&self, owner: &str) -> BoxFuture<'_, Result<Reclaimed, Error>> {
        let owner = owner.to_owned();
        Box::pin(async move {
            let cap = self.shared.limits.crash_cap;
            let owner = &owner;
            let r = self
                .retrying(|pool, sql| queries::reclaim(pool, sql, Some(owner), cap))
                .await?;
            if r.requeued > 0 {
                self.announce().await;
            }
            Ok(r)
        })
    }

    fn subscribe(&self) -> Wakeup {
        self.shared.wakeups.subscribe()
    }

    fn notify(&self) {
        self.shared.wakeups.notify();
    }

    fn get<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<Option<Message>, Error>> {
        Box::pin(async move {
            queries::get_message(&mut *self.conn().await?, &self.shared.sql, id).await
        })
    }

    fn list<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<MessagePage, Error>> {
        Box::pin(async move {
            let (messages, more) =
                queries::list(&mut *self.conn().await?, &self.shared.sql, filter).await?;
            let next = if more {
                messages.last().map(|m| m.id.clone())
            } else {
                None
            };
            Ok(MessagePage { messages, next })
        })
    }

    fn attempts<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<Vec<Attempt>, Error>> {
        Box::pin(
            async move { queries::attempts(&mut *self.conn().await?, &self.shared.sql, id).await },
        )
    }

    fn retry<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<MessageMeta, Error>> {
        Box::pin(async move {
            let meta = queries::retry(&mut *self.conn().await?, &self.shared.sql, id).await?;
            self.announce().await;
            Ok(meta)
        })
    }

    fn replay<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            let n = queries::replay(&mut *self.conn().await?, &self.shared.sql, filter).await?;
            if n > 0 {
                self.announce().await;
            }
            Ok(n)
        })
    }

    fn cancel<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<MessageMeta, Error>> {
        Box::pin(
            async move { queries::cancel(&mut *self.conn().await?, &self.shared.sql, id).await },
        )
    }

    fn retarget<'a>(
        &'a self,
        endpoint: &'a str,
        url: &'a url::Url,
    ) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            queries::retarget(&mut *self.conn().await?, &self.shared.sql, endpoint, url).await
        })
    }

    fn purge(&self) -> BoxFuture<'_, Result<Purged, Error>> {
        Box::pin(async move {
            let mut conn = self.shared.work.acquire().await.map_err(from_sqlx)?;
            queries::purge(&mut conn, &self.shared.sql, &self.shared.limits).await
        })
    }
}
