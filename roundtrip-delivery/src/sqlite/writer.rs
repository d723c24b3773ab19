//! The one writer task of the SQLite store.
//!
//! Every write of the store goes through this task, on one connection. It takes the first
//! waiting job, then every job queued behind it (up to a limit), and runs them all in one
//! `BEGIN IMMEDIATE` transaction: many concurrent enqueues share one commit and one fsync
//! (group commit). A job's caller is answered only after the commit. If one job fails, the
//! transaction is rolled back and each job is run again in its own transaction, so one bad
//! job never takes the others down with it.
//!
//! Only batches holding a job that must be durable (an enqueue, a retry, a cancel) commit
//! with the configured `synchronous` level; claims, lease renewals and attempt records
//! commit with `synchronous = NORMAL` in WAL mode, which survives a process crash and, on
//! power loss, can only lose work that is then done again (at least once still holds).

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnection, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};

use super::errors::from_sqlx;
use super::queries::{self, Limits};
use crate::message::{Enqueued, NewMessage};
use crate::outbox::{Error, ErrorKind, Wakeups};

/// What a job can see and set while it runs.
pub(crate) struct Ctx {
    pub(crate) limits: Arc<Limits>,
    /// Set by a job that made messages due: the workers are woken after the commit.
    pub(crate) wake: bool,
}

/// One queued write, with its caller's reply.
pub(crate) trait Job: Send {
    fn durable(&self) -> bool;
    /// Runs the job inside the open transaction. May run again after a rollback.
    fn apply<'a>(
        &'a mut self,
        conn: &'a mut SqliteConnection,
        ctx: &'a mut Ctx,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Answers the caller: the job's own output (its result, or its own error after a
    /// rollback), or `failed`, the error of a BEGIN or COMMIT that took the job down.
    fn finish(self: Box<Self>, failed: Option<Error>);
    /// The messages of an enqueue, which the writer inserts together with the other
    /// enqueues of its batch (one statement instead of one per caller).
    fn enqueued_messages(&self) -> Option<&[NewMessage]> {
        None
    }
    /// Takes this job's share of a coalesced insert.
    fn set_enqueued(&mut self, out: Vec<Enqueued>) {
        let _ = out;
    }
}

/// An enqueue: inserted alone by `apply`, or with its batch's other enqueues.
struct EnqueueJob {
    messages: Vec<NewMessage>,
    output: Option<Result<Vec<Enqueued>, Error>>,
    reply: oneshot::Sender<Result<Vec<Enqueued>, Error>>,
}

impl Job for EnqueueJob {
    fn durable(&self) -> bool {
        true
    }

    fn apply<'a>(
        &'a mut self,
        conn: &'a mut SqliteConnection,
        ctx: &'a mut Ctx,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let refs: Vec<&NewMessage> = self.messages.iter().collect();
            let result =
                queries::insert_messages(conn, &refs, &ctx.limits, std::time::SystemTime::now())
                    .await;
            let status = match &result {
                Ok(out) => {
                    ctx.wake |= out.iter().any(|e| !e.deduplicated);
                    Ok(())
                }
                Err(e) => Err(e.duplicate()),
            };
            self.output = Some(result);
            status
        })
    }

    fn finish(self: Box<Self>, failed: Option<Error>) {
        let answer = match (failed, self.output) {
            (Some(e), _) => Err(e),
            (None, Some(out)) => out,
            (None, None) => Err(Error::new(
                ErrorKind::Closed,
                "the outbox writer stopped before running this write",
            )),
        };
        let _ = self.reply.send(answer);
    }

    fn enqueued_messages(&self) -> Option<&[NewMessage]> {
        Some(&self.messages)
    }

    fn set_enqueued(&mut self, out: Vec<Enqueued>) {
        self.output = Some(Ok(out));
    }
}

struct Queued<T, F> {
    run: F,
    durable: bool,
    output: Option<Result<T, Error>>,
    reply: oneshot::Sender<Result<T, Error>>,
    _t: PhantomData<fn() -> T>,
}

impl<T, F> Job for Queued<T, F>
where
    T: Send + 'static,
    F: for<'a> FnMut(&'a mut SqliteConnection, &'a mut Ctx) -> BoxFuture<'a, Result<T, Error>>
        + Send
        + 'static,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn apply<'a>(
        &'a mut self,
        conn: &'a mut SqliteConnection,
        ctx: &'a mut Ctx,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let result = (self.run)(conn, ctx).await;
            let status = match &result {
                Ok(_) => Ok(()),
                Err(e) => Err(e.duplicate()),
            };
            self.output = Some(result);
            status
        })
    }

    fn finish(self: Box<Self>, failed: Option<Error>) {
        let answer = match (failed, self.output) {
            (Some(e), _) => Err(e),
            (None, Some(out)) => out,
            (None, None) => Err(Error::new(
                ErrorKind::Closed,
                "the outbox writer stopped before running this write",
            )),
        };
        let _ = self.reply.send(answer);
    }
}

/// Counters of the writer, for tests and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) transactions: AtomicU64,
    pub(crate) jobs: AtomicU64,
    pub(crate) rollbacks: AtomicU64,
}

/// The handle the store uses to queue writes.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Queues a write and waits for its commit.
    pub(crate) async fn run<T, F>(&self, durable: bool, run: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'a> FnMut(&'a mut SqliteConnection, &'a mut Ctx) -> BoxFuture<'a, Result<T, Error>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Queued {
            run,
            durable,
            output: None,
            reply,
            _t: PhantomData,
        });
        self.tx.send(job).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

impl Writer {
    /// Queues an enqueue and waits for its commit.
    pub(crate) async fn enqueue(&self, messages: Vec<NewMessage>) -> Result<Vec<Enqueued>, Error> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(EnqueueJob {
            messages,
            output: None,
            reply,
        });
        self.tx.send(job).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

fn closed() -> Error {
    Error::new(
        ErrorKind::Closed,
        "the outbox writer has stopped (the store was dropped or its database failed)",
    )
}

pub(crate) struct WriterConfig {
    pub(crate) limits: Arc<Limits>,
    pub(crate) synchronous: SqliteSynchronous,
    pub(crate) max_batch: usize,
    pub(crate) queue: usize,
}

/// Starts the writer task on `conn`.
pub(crate) fn spawn(
    conn: SqliteConnection,
    config: WriterConfig,
    wakeups: Wakeups,
    counters: Arc<Counters>,
) -> Writer {
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    tokio::spawn(run(conn, rx, config, wakeups, counters));
    Writer { tx }
}

fn sync_name(s: SqliteSynchronous) -> &'static str {
    match s {
        SqliteSynchronous::Off => "OFF",
        SqliteSynchronous::Normal => "NORMAL",
        SqliteSynchronous::Full => "FULL",
        SqliteSynchronous::Extra => "EXTRA",
    }
}

fn weaker(s: SqliteSynchronous) -> SqliteSynchronous {
    match s {
        SqliteSynchronous::Off => SqliteSynchronous::Off,
        _ => SqliteSynchronous::Normal,
    }
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    config: WriterConfig,
    wakeups: Wakeups,
    counters: Arc<Counters>,
) {
    let mut current = config.synchronous;
    let mut ctx = Ctx {
        limits: config.limits.clone(),
        wake: false,
    };
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(config.max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < config.max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let wanted = if batch.iter().any(|j| j.durable()) {
            config.synchronous
        } else {
            weaker(config.synchronous)
        };
        if wanted != current {
            let sql = format!("PRAGMA synchronous = {}", sync_name(wanted));
            if sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .is_ok()
            {
                current = wanted;
            }
        }
        counters
            .jobs
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        ctx.wake = false;
        let together = run_batch(&mut conn, &mut batch, &mut ctx, &counters).await;
        match together {
            Ok(()) => {
                if ctx.wake {
                    wakeups.notify();
                }
                for job in batch.drain(..) {
                    job.finish(None);
                }
            }
            Err(BatchError::Job) if batch.len() > 1 => {
                // One job failed: run each alone, so the others still commit.
                counters.rollbacks.fetch_add(1, Ordering::Relaxed);
                let mut woke = false;
                for mut job in batch.drain(..) {
                    ctx.wake = false;
                    let one = std::slice::from_mut(&mut job);
                    let result = run_batch(&mut conn, one, &mut ctx, &counters).await;
                    woke |= result.is_ok() && ctx.wake;
                    job.finish(match result {
                        Ok(()) | Err(BatchError::Job) => None,
                        Err(BatchError::Transaction(e)) => Some(e),
                    });
                }
                if woke {
                    wakeups.notify();
                }
            }
            Err(BatchError::Job) => {
                for job in batch.drain(..) {
                    job.finish(None);
                }
            }
            Err(BatchError::Transaction(e)) => {
                for job in batch.drain(..) {
                    job.finish(Some(e.duplicate()));
                }
            }
        }
    }
    let _ = sqlx::Connection::close(conn).await;
}

/// Inserts the messages of every enqueue job of `batch` in as few statements as possible,
/// and hands each job its share of the answer.
async fn insert_together(
    conn: &mut SqliteConnection,
    batch: &mut [Box<dyn Job>],
    ctx: &mut Ctx,
) -> Result<(), Error> {
    let out = {
        let all: Vec<&NewMessage> = batch
            .iter()
            .filter_map(|j| j.enqueued_messages())
            .flatten()
            .collect();
        queries::insert_messages(conn, &all, &ctx.limits, std::time::SystemTime::now()).await?
    };
    ctx.wake |= out.iter().any(|e| !e.deduplicated);
    let mut out = out.into_iter();
    for job in batch.iter_mut() {
        if let Some(count) = job.enqueued_messages().map(<[NewMessage]>::len) {
            job.set_enqueued(out.by_ref().take(count).collect());
        }
    }
    Ok(())
}

enum BatchError {
    /// A job failed; its own output holds the error.
    Job,
    /// BEGIN or COMMIT failed.
    Transaction(Error),
}

async fn run_batch(
    conn: &mut SqliteConnection,
    batch: &mut [Box<dyn Job>],
    ctx: &mut Ctx,
    counters: &Counters,
) -> Result<(), BatchError> {
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(|e| BatchError::Transaction(from_sqlx(e)))?;
    let coalesced = batch
        .iter()
        .filter(|j| j.enqueued_messages().is_some())
        .count()
        > 1;
    if coalesced && insert_together(conn, batch, ctx).await.is_err() {
        // Each job then runs alone, and the one at fault answers its own error.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(BatchError::Job);
    }
    for job in batch.iter_mut() {
        if coalesced && job.enqueued_messages().is_some() {
            continue;
        }
        if job.apply(conn, ctx).await.is_err() {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(BatchError::Job);
        }
    }
    match sqlx::query("COMMIT").execute(&mut *conn).await {
        Ok(_) => {
            counters.transactions.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(BatchError::Transaction(from_sqlx(e)))
        }
    }
}
