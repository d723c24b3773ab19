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

mod admin;
mod committer;
mod complete;
pub(crate) mod connect;
mod enqueue;
mod lease;
mod listener;
pub(crate) mod options;
mod rows;
mod sql;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};

pub use options::{DEFAULT_SCHEMA, PgOptions};

use crate::outbox::{
    Attempt, AttemptFilter, AttemptPage, CommitStats, Completion, Enqueued, Error, LeaseCheck,
    Message, MessageFilter, MessageId, MessageMeta, MessagePage, NewMessage, Outbox, Purged,
    Reclaimed, Wakeup, Wakeups,
};
use crate::store::error::{Subject, from_postgres, is_retryable};
use crate::store::options::{CommitCounters, Limits};
use connect::{Migration, cannot_open, check_schema};
use sql::Statements;

/// An outbox error from an error of this store's database.
pub(crate) fn from_sqlx(e: sqlx::Error) -> Error {
    from_postgres(e, Subject::Outbox).into()
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
    counters: Arc<CommitCounters>,
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

impl PgOutbox {
    /// Connects to the database at `url` with the default options.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(PgOptions::new(url)).await
    }

    /// Connects: creates the schema and brings it up to date (safe when several processes
    /// start at once), opens the pool, and starts the LISTEN task. Must be called inside a
    /// Tokio runtime.
    pub async fn connect_with(options: PgOptions) -> Result<Self, Error> {
        check_schema(&options.schema, Subject::Outbox)?;
        let opening = |e| {
            Error::from(cannot_open(
                e,
                &options.url,
                &options.schema,
                Subject::Outbox,
            ))
        };
        let connect = options.connect_options(&options.url).map_err(opening)?;
        let migration = Migration::outbox();
        connect::migrate(
            &connect,
            &options.schema,
            options.acquire_timeout,
            options.must_exist,
            migration,
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
        let counters = Arc::new(CommitCounters::default());
        let writer = committer::Writer {
            pool: pool.clone(),
            sql: sql.clone(),
            channel: channel.clone(),
            wakeups: wakeups.clone(),
            counters: counters.clone(),
            local: Arc::new(crate::store::local::LocalSlot::default()),
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

    /// The group committer's counters.
    pub fn stats(&self) -> CommitStats {
        self.shared.counters.snapshot()
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
    /// The connection is a sqlx one on purpose: the point is to write inside the
    /// application's own sqlx transaction, on its own pool, beside its business rows. The
    /// statements name the outbox's schema, so the connection's `search_path` does not
    /// matter.
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
        let out = enqueue::insert_messages(
            &mut savepoint,
            &self.shared.sql,
            &messages,
            Some(&self.shared.channel),
            None,
        )
        .await?
        .0;
        savepoint.commit().await.map_err(from_sqlx)?;
        Ok(out)
    }

    fn check(&self, messages: &[NewMessage]) -> Result<(), Error> {
        for m in messages {
            crate::outbox::validate(m, self.shared.limits.max_body_bytes)?;
            enqueue::check_storable(m)?;
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
                Err(e) if tries < 3 && is_retryable(&e) => tries += 1,
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
            self.retrying(|pool, sql| lease::claim(pool, sql, owner, limit, lease))
                .await
        })
    }

    fn complete(
        &self,
        completions: Vec<Completion>,
    ) -> BoxFuture<'_, Result<Vec<LeaseCheck>, Error>> {
        Box::pin(async move {
            let completions = &completions;
            self.retrying(|pool, sql| complete::complete(pool, sql, completions))
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
            self.retrying(|pool, sql| lease::renew(pool, sql, owner, ids, lease))
                .await
        })
    }

    fn release(&self, owner: &str) -> BoxFuture<'_, Result<u64, Error>> {
        let owner = owner.to_owned();
        Box::pin(async move {
            let owner = &owner;
            let n = self
                .retrying(|pool, sql| lease::release(pool, sql, owner))
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
                .retrying(|pool, sql| lease::reclaim(pool, sql, None, cap))
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
                .retrying(|pool, sql| lease::reclaim(pool, sql, Some(owner), cap))
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

    fn deliver_locally(&self, local: crate::outbox::LocalDelivery) -> bool {
        self.shared.writer.local.attach(local);
        true
    }

    fn notify(&self) {
        self.shared.wakeups.notify();
    }

    fn get<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<Option<Message>, Error>> {
        Box::pin(
            async move { admin::get_message(&mut *self.conn().await?, &self.shared.sql, id).await },
        )
    }

    fn list<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<MessagePage, Error>> {
        Box::pin(
            async move { admin::list(&mut *self.conn().await?, &self.shared.sql, filter).await },
        )
    }

    fn attempts<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<Vec<Attempt>, Error>> {
        Box::pin(
            async move { admin::attempts(&mut *self.conn().await?, &self.shared.sql, id).await },
        )
    }

    fn attempt_log<'a>(
        &'a self,
        filter: &'a AttemptFilter,
    ) -> BoxFuture<'a, Result<AttemptPage, Error>> {
        Box::pin(async move {
            admin::attempt_log(&mut *self.conn().await?, &self.shared.sql, filter).await
        })
    }

    fn retry<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<MessageMeta, Error>> {
        Box::pin(async move {
            let meta = admin::retry(&mut *self.conn().await?, &self.shared.sql, id).await?;
            self.announce().await;
            Ok(meta)
        })
    }

    fn replay<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            let n = admin::replay(&mut *self.conn().await?, &self.shared.sql, filter).await?;
            if n > 0 {
                self.announce().await;
            }
            Ok(n)
        })
    }

    fn cancel<'a>(&'a self, id: &'a MessageId) -> BoxFuture<'a, Result<MessageMeta, Error>> {
        Box::pin(async move { admin::cancel(&mut *self.conn().await?, &self.shared.sql, id).await })
    }

    fn retarget<'a>(
        &'a self,
        endpoint: &'a str,
        url: &'a url::Url,
    ) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            admin::retarget(&mut *self.conn().await?, &self.shared.sql, endpoint, url).await
        })
    }

    fn purge(&self) -> BoxFuture<'_, Result<Purged, Error>> {
        Box::pin(async move {
            let mut conn = self.shared.work.acquire().await.map_err(from_sqlx)?;
            admin::purge(&mut conn, &self.shared.sql, &self.shared.limits).await
        })
    }
}
