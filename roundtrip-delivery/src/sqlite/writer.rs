//! The one writer task of the SQLite store.
//!
//! Every write of the store goes through this task, on one connection. It takes the first
//! waiting job, then every job queued behind it (up to a limit), and runs them all in one
//! `BEGIN IMMEDIATE` transaction: many concurrent enqueues share one commit and one fsync
//! (group commit). A job's caller is answered only after the commit. If one job fails, the
//! transaction is rolled back and each job is run again in its own transaction, so one bad
//! job never takes the others down with it.
//!
//! Every statement is a round trip to the connection's own thread (sqlx runs SQLite there),
//! and on a busy machine each round trip costs far more than the SQL it carries. So the
//! enqueues of a batch are written together, in multi-row statements
//! ([`enqueue::insert_many`]): a hundred concurrent one-message sends cost a `BEGIN`, one
//! or two `INSERT`s and a `COMMIT`, not a hundred `INSERT`s. Each enqueue still gets its
//! own answer; if the shared statement fails, the batch is rolled back and each enqueue
//! runs alone, as any other job does. A claim or a batch of completions that runs alone
//! carries its own `BEGIN` and `COMMIT` in its query ([`Ctx::whole`]): one round trip for
//! the whole transaction too. What a job can prepare beforehand (the completions' query,
//! reading the claimed messages) is done in its caller's task, not on this serial path.
//!
//! Only batches holding a job that must be durable (an enqueue, a retry, a cancel) commit
//! with the configured `synchronous` level; claims, lease renewals and attempt records
//! commit with `synchronous = NORMAL` in WAL mode, which survives a process crash and, on
//! power loss, can only lose work that is then done again (at least once still holds). The
//! switch travels with the batch's `BEGIN` (SQLite refuses it inside a transaction).
//!
//! Copying the WAL back into the database file (a checkpoint, with its fsyncs) would stall
//! the writer every thousand pages; a second connection does it instead, a moment after
//! commits, alongside the writer ([`checkpoint_loop`]). The writer's own automatic
//! checkpoint stays on, at a higher mark, in case that connection falls behind.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnection, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot, watch};

use super::enqueue;
use super::from_sqlx;
use crate::message::{Enqueued, NewMessage};
use crate::outbox::{Error, ErrorKind, Wakeups};
use crate::store::local::{Grant, LocalSlot};
use crate::store::options::{CommitCounters, Limits};
use crate::store::time::{from_ms, to_ms};
use enqueue::LeaseFirst;

/// What a job can see and set while it runs.
pub(crate) struct Ctx {
    pub(crate) limits: Arc<Limits>,
    /// Set by a job that made messages due: the workers are woken after the commit.
    pub(crate) wake: bool,
    /// The dispatcher's slots reserved for the first enqueued messages of the batch, which
    /// are written leased to it (the in-process fast path).
    grant: Option<Grant>,
    /// When the batch's enqueues are written.
    now: SystemTime,
    /// Set while a job that [writes its whole transaction](Job::whole) runs alone in its
    /// batch: the statement that opens the transaction. The job's query then begins with
    /// it and ends with `COMMIT`, so the transaction is one round trip to SQLite's thread.
    pub(crate) whole: Option<&'static str>,
}

/// One queued write, with its caller's reply.
pub(crate) trait Job: Send {
    fn durable(&self) -> bool;
    /// Whether the job, when it runs alone, opens and commits its transaction in its own
    /// query (it reads [`Ctx::whole`]).
    fn whole(&self) -> bool;
    /// Runs the job inside the open transaction. May run again after a rollback.
    fn apply<'a>(
        &'a mut self,
        conn: &'a mut SqliteConnection,
        ctx: &'a mut Ctx,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Answers the caller: the job's own output (its result, or its own error after a
    /// rollback), or `failed`, the error of a BEGIN or COMMIT that took the job down.
    fn finish(self: Box<Self>, failed: Option<Error>);
}

struct Queued<T, F> {
    run: F,
    durable: bool,
    whole: bool,
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

    fn whole(&self) -> bool {
        self.whole
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

/// One `enqueue` call: written together with the other enqueues of its batch.
pub(crate) struct EnqueueJob {
    messages: Vec<NewMessage>,
    output: Option<Result<Vec<Enqueued>, Error>>,
    reply: oneshot::Sender<Result<Vec<Enqueued>, Error>>,
}

impl EnqueueJob {
    fn finish(self, failed: Option<Error>) {
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

/// What the writer's queue carries.
pub(crate) enum Work {
    Enqueue(EnqueueJob),
    Job(Box<dyn Job>),
}

impl Work {
    fn durable(&self) -> bool {
        match self {
            Work::Enqueue(_) => true,
            Work::Job(job) => job.durable(),
        }
    }

    fn finish(self, failed: Option<Error>) {
        match self {
            Work::Enqueue(job) => job.finish(failed),
            Work::Job(job) => job.finish(failed),
        }
    }
}

/// The handle the store uses to queue writes.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Work>,
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
        self.queue(durable, false, run).await
    }

    /// Queues a write that, when it runs alone in its batch, opens and commits the
    /// transaction in its own query (see [`Ctx::whole`]), and waits for its commit.
    pub(crate) async fn run_whole<T, F>(&self, durable: bool, run: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'a> FnMut(&'a mut SqliteConnection, &'a mut Ctx) -> BoxFuture<'a, Result<T, Error>>
            + Send
            + 'static,
    {
        self.queue(durable, true, run).await
    }

    async fn queue<T, F>(&self, durable: bool, whole: bool, run: F) -> Result<T, Error>
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
            whole,
            output: None,
            reply,
            _t: PhantomData,
        });
        self.tx.send(Work::Job(job)).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Queues an enqueue (already validated) and waits for its commit.
    pub(crate) async fn enqueue(&self, messages: Vec<NewMessage>) -> Result<Vec<Enqueued>, Error> {
        let (reply, answer) = oneshot::channel();
        let job = EnqueueJob {
            messages,
            output: None,
            reply,
        };
        self.tx
            .send(Work::Enqueue(job))
            .await
            .map_err(|_| closed())?;
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

/// Starts the writer task on `conn`, and the checkpoints on `checkpointer`.
pub(crate) fn spawn(
    conn: SqliteConnection,
    checkpointer: SqliteConnection,
    config: WriterConfig,
    wakeups: Wakeups,
    counters: Arc<CommitCounters>,
    local: Arc<LocalSlot>,
) -> Writer {
    let (tx, rx) = mpsc::channel::<Work>(config.queue.max(1));
    let (commits, seen) = watch::channel(());
    tokio::spawn(checkpoint_loop(checkpointer, seen));
    tokio::spawn(run(conn, rx, config, wakeups, counters, commits, local));
    Writer { tx }
}

/// How long the checkpointer lets commits accumulate: a checkpoint copies each page once,
/// however often it was rewritten since the last one.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Checkpoints the WAL on its own connection, a moment after commits, until the writer
/// stops. `PASSIVE` never waits for the writer or readers, nor makes them wait: it copies
/// what it can, and the writer starts the WAL over once all of it was copied.
async fn checkpoint_loop(mut conn: SqliteConnection, mut commits: watch::Receiver<()>) {
    while commits.changed().await.is_ok() {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        commits.mark_unchanged();
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::debug!(error = %e, "checkpointing the outbox WAL failed; the writer will");
        }
    }
    let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(&mut conn)
        .await;
    let _ = sqlx::Connection::close(conn).await;
}

/// The statement that opens a batch: `BEGIN IMMEDIATE`, preceded by the switch of the
/// `synchronous` level when the batch needs another one than the last (one round trip).
fn begin_sql(wanted: SqliteSynchronous, current: Option<SqliteSynchronous>) -> &'static str {
    if current == Some(wanted) {
        return "BEGIN IMMEDIATE";
    }
    match wanted {
        SqliteSynchronous::Off => "PRAGMA synchronous = OFF; BEGIN IMMEDIATE",
        SqliteSynchronous::Normal => "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE",
        SqliteSynchronous::Full => "PRAGMA synchronous = FULL; BEGIN IMMEDIATE",
        SqliteSynchronous::Extra => "PRAGMA synchronous = EXTRA; BEGIN IMMEDIATE",
    }
}

fn weaker(s: SqliteSynchronous) -> SqliteSynchronous {
    match s {
        SqliteSynchronous::Off => SqliteSynchronous::Off,
        _ => SqliteSynchronous::Normal,
    }
}

/// The writer's connection and what it knows about its state.
struct Session {
    conn: SqliteConnection,
    /// The `synchronous` level in force, if known.
    current: Option<SqliteSynchronous>,
}

async fn run(
    conn: SqliteConnection,
    mut rx: mpsc::Receiver<Work>,
    config: WriterConfig,
    wakeups: Wakeups,
    counters: Arc<CommitCounters>,
    commits: watch::Sender<()>,
    local: Arc<LocalSlot>,
) {
    let mut session = Session {
        conn,
        current: None,
    };
    let mut ctx = Ctx {
        limits: config.limits.clone(),
        wake: false,
        grant: None,
        now: SystemTime::now(),
        whole: None,
    };
    let mut batch: Vec<Work> = Vec::with_capacity(config.max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < config.max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let wanted = if batch.iter().any(Work::durable) {
            config.synchronous
        } else {
            weaker(config.synchronous)
        };
        counters
            .jobs
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        ctx.wake = false;
        // Whole milliseconds: the handed-over messages say what the rows say.
        ctx.now = from_ms(to_ms(SystemTime::now()));
        let enqueued = batch
            .iter()
            .map(|w| match w {
                Work::Enqueue(job) => job.messages.len(),
                Work::Job(_) => 0,
            })
            .sum();
        ctx.grant = local.reserve(enqueued, ctx.now);
        let together = run_batch(&mut session, wanted, &mut batch, &mut ctx, &counters).await;
        commits.send_replace(());
        // Slots reserved for a batch that did not commit together are freed: its enqueues,
        // written again alone below, are stored pending.
        let grant = ctx.grant.take();
        match together {
            Ok(()) => {
                if let Some(grant) = grant {
                    hand_off(grant, &batch, ctx.now);
                }
                if ctx.wake {
                    wakeups.notify();
                }
                for job in batch.drain(..) {
                    job.finish(None);
                }
            }
            Err(BatchError::Job) if batch.len() > 1 => {
                drop(grant);
                // One job failed: run each alone, so the others still commit.
                counters.rollbacks.fetch_add(1, Ordering::Relaxed);
                let mut woke = false;
                for job in batch.drain(..) {
                    ctx.wake = false;
                    let wanted = if job.durable() {
                        config.synchronous
                    } else {
                        weaker(config.synchronous)
                    };
                    let mut one = [job];
                    let result =
                        run_batch(&mut session, wanted, &mut one, &mut ctx, &counters).await;
                    woke |= result.is_ok() && ctx.wake;
                    let [job] = one;
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
    let _ = sqlx::Connection::close(session.conn).await;
}

/// After a batch committed: hands the messages written leased (the batch's first
/// `grant.len()`) that were inserted, not deduplicated, to the dispatcher.
fn hand_off(grant: Grant, batch: &[Work], stored_at: SystemTime) {
    let leased = grant.len();
    let written = batch
        .iter()
        .filter_map(|w| match w {
            Work::Enqueue(job) => Some(job),
            Work::Job(_) => None,
        })
        .flat_map(|job| {
            let answers = match &job.output {
                Some(Ok(answers)) => answers.as_slice(),
                _ => &[],
            };
            job.messages.iter().enumerate().map(move |(i, m)| {
                let inserted = answers
                    .get(i)
                    .is_some_and(|e| !e.deduplicated && e.id == m.id);
                (m, inserted)
            })
        })
        .take(leased)
        .filter(|(_, inserted)| *inserted)
        .map(|(m, _)| (m, stored_at));
    grant.hand_off(written);
}

/// Whether a batch's enqueues left new messages pending (beyond the first `leased`, which
/// were written leased): only those wake the workers.
fn left_pending(answers: &[Vec<Enqueued>], leased: usize) -> bool {
    answers
        .iter()
        .flatten()
        .enumerate()
        .any(|(i, e)| i >= leased && !e.deduplicated)
}

enum BatchError {
    /// A job failed; its own output holds the error.
    Job,
    /// BEGIN or COMMIT failed.
    Transaction(Error),
}

async fn run_batch(
    session: &mut Session,
    wanted: SqliteSynchronous,
    batch: &mut [Work],
    ctx: &mut Ctx,
    counters: &CommitCounters,
) -> Result<(), BatchError> {
    let conn = &mut session.conn;
    let begin = begin_sql(wanted, session.current);
    let mut begin = begin;
    let lease = LeaseFirst::of(ctx.grant.as_ref());
    if let Some(jobs) = plain_enqueues(batch) {
        // The whole transaction in one round trip.
        let written = enqueue::enqueue_committed(conn, begin, &jobs, ctx.now, lease).await;
        drop(jobs);
        match written {
            Ok(answers) => {
                session.current = Some(wanted);
                counters.transactions.fetch_add(1, Ordering::Relaxed);
                ctx.wake |= left_pending(&answers, LeaseFirst::count(lease));
                for (w, answer) in batch.iter_mut().zip(answers) {
                    if let Work::Enqueue(job) = w {
                        job.output = Some(Ok(answer));
                    }
                }
                return Ok(());
            }
            Err(enqueue::Failed::Begin(e)) => {
                session.current = None;
                return Err(BatchError::Transaction(e));
            }
            Err(enqueue::Failed::Commit(e)) => {
                session.current = None;
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                return Err(BatchError::Transaction(e));
            }
            Err(enqueue::Failed::Insert(e)) => {
                // A message sent again, most likely: write the batch the general way,
                // which deduplicates (and isolates a job that really fails).
                tracing::debug!(error = %e, "writing the enqueues again, deduplicating");
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                session.current = Some(wanted);
                begin = "BEGIN IMMEDIATE";
            }
        }
    }
    if let [Work::Job(job)] = batch
        && job.whole()
    {
        // The job's own query opens and commits the transaction.
        ctx.whole = Some(begin);
        let applied = job.apply(conn, ctx).await;
        ctx.whole = None;
        return match applied {
            Ok(()) => {
                session.current = Some(wanted);
                counters.transactions.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(_) => {
                // Whichever statement failed, no transaction stays open.
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                session.current = None;
                Err(BatchError::Job)
            }
        };
    }
    match sqlx::query(begin).execute(&mut *conn).await {
        Ok(_) => session.current = Some(wanted),
        Err(e) => {
            session.current = None;
            return Err(BatchError::Transaction(from_sqlx(e)));
        }
    }
    if apply_all(conn, batch, ctx).await.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(BatchError::Job);
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

/// The messages of each job when the batch holds only enqueues that
/// [`enqueue::enqueue_committed`] can write in one round trip.
fn plain_enqueues(batch: &[Work]) -> Option<Vec<&[NewMessage]>> {
    let jobs = batch
        .iter()
        .map(|w| match w {
            Work::Enqueue(job) => Some(job.messages.as_slice()),
            Work::Job(_) => None,
        })
        .collect::<Option<Vec<_>>>()?;
    enqueue::fits_one_statement(&jobs).then_some(jobs)
}

/// Runs every job of the batch inside the open transaction: the enqueues first, all
/// together (so a claim in the same batch already sees them), then the other jobs in turn.
async fn apply_all(
    conn: &mut SqliteConnection,
    batch: &mut [Work],
    ctx: &mut Ctx,
) -> Result<(), ()> {
    let enqueues: Vec<&[NewMessage]> = batch
        .iter()
        .filter_map(|w| match w {
            Work::Enqueue(job) => Some(job.messages.as_slice()),
            Work::Job(_) => None,
        })
        .collect();
    if !enqueues.is_empty() {
        let lease = LeaseFirst::of(ctx.grant.as_ref());
        let written = enqueue::insert_many(conn, &enqueues, ctx.now, lease).await;
        drop(enqueues);
        let mut answers = match written {
            Ok(answers) => {
                ctx.wake |= left_pending(&answers, LeaseFirst::count(lease));
                answers.into_iter()
            }
            Err(e) => {
                for w in batch.iter_mut() {
                    if let Work::Enqueue(job) = w {
                        job.output = Some(Err(e.duplicate()));
                    }
                }
                return Err(());
            }
        };
        for w in batch.iter_mut() {
            if let Work::Enqueue(job) = w {
                let answer = answers.next().unwrap_or_default();
                job.output = Some(Ok(answer));
            }
        }
    }
    for w in batch.iter_mut() {
        if let Work::Job(job) = w
            && job.apply(conn, ctx).await.is_err()
        {
            return Err(());
        }
    }
    Ok(())
}
