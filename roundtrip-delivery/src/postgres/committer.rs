//! Group commit for [`PgOutbox::enqueue`](super::PgOutbox): concurrent enqueues share a
//! transaction.
//!
//! Calls queue their messages here. A dispatcher task takes the first waiting call and every
//! call queued behind it (up to a message limit) and writes them in one transaction, on one
//! of a few *lanes* (pooled connections used at once). While every lane is busy, new calls
//! wait in the queue and join the next batch, so the number of commits (and of `NOTIFY`s,
//! which PostgreSQL serializes at commit: a transaction that notified holds a global lock
//! from its pre-commit until its commit is flushed) grows with the number of lanes, not of
//! callers. Without this, 64 concurrent callers each committing their own `NOTIFY` got
//! about 350 enqueues/s in `bench/outbox`, fewer than one caller alone.
//! An idle store pays one channel hop and no delay: a lone call goes out at once.
//!
//! Each caller is answered only after the commit. If a batch fails for a reason that is
//! about its data rather than the database, each call is written again on its own, so one
//! bad call never takes the others down with it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::enqueue;
use super::from_sqlx;
use super::sql::Statements;
use crate::message::{Enqueued, NewMessage};
use crate::outbox::{Error, ErrorKind, Wakeups};
use crate::store::local::LocalSlot;
use crate::store::options::CommitCounters;

struct Job {
    messages: Vec<NewMessage>,
    reply: oneshot::Sender<Result<Vec<Enqueued>, Error>>,
}

/// Everything a batch needs to run.
#[derive(Clone)]
pub(crate) struct Writer {
    pub(crate) pool: PgPool,
    pub(crate) sql: Statements,
    pub(crate) channel: String,
    pub(crate) wakeups: Wakeups,
    pub(crate) counters: Arc<CommitCounters>,
    /// The dispatcher of this process new messages are handed to, if one is attached.
    pub(crate) local: Arc<LocalSlot>,
}

impl Writer {
    /// Writes `messages` in one transaction, sends the wake-up with it, and wakes this
    /// process's workers after the commit. The first messages, one per free slot of this
    /// process's dispatcher, are written leased to it and handed over after the commit.
    pub(crate) async fn write(&self, messages: &[NewMessage]) -> Result<Vec<Enqueued>, Error> {
        let grant = self.local.reserve(messages.len(), SystemTime::now());
        let (out, inserted) = if messages.iter().all(|m| m.idempotency_key.is_none()) {
            // One statement: its own transaction, one round trip.
            enqueue::insert_unkeyed(
                &self.pool,
                &self.sql,
                messages,
                &self.channel,
                grant.as_ref(),
            )
            .await?
        } else {
            let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
            let out = enqueue::insert_messages(
                &mut tx,
                &self.sql,
                messages,
                Some(&self.channel),
                grant.as_ref(),
            )
            .await?;
            tx.commit().await.map_err(from_sqlx)?;
            out
        };
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        if inserted.pending {
            self.wakeups.notify();
        }
        if let Some(grant) = grant {
            // The database set the stored times; the clock here agrees to the millisecond.
            let stored_at = SystemTime::now();
            let leased = grant.len();
            grant.hand_off(
                messages
                    .iter()
                    .zip(&out)
                    .take(leased)
                    .filter(|(m, e)| !e.deduplicated && e.id == m.id)
                    .map(|(m, _)| (m, stored_at)),
            );
        }
        Ok(out)
    }
}

/// The handle [`PgOutbox`](super::PgOutbox) queues enqueues on.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::Sender<Job>,
}

fn closed() -> Error {
    Error::new(
        ErrorKind::Closed,
        "the outbox committer has stopped (the store was dropped)",
    )
}

impl Committer {
    /// Starts the dispatcher task.
    pub(crate) fn spawn(writer: Writer, lanes: usize, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(dispatch(writer, rx, lanes.max(1), max_batch.max(1)));
        Committer { tx }
    }

    /// Queues `messages` and waits for their commit.
    pub(crate) async fn enqueue(&self, messages: Vec<NewMessage>) -> Result<Vec<Enqueued>, Error> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { messages, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn dispatch(writer: Writer, mut rx: mpsc::Receiver<Job>, lanes: usize, max_batch: usize) {
    let lanes = Arc::new(Semaphore::new(lanes));
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        // Wait for a free lane before gathering: calls that arrive meanwhile join this batch.
        let Ok(permit) = lanes.clone().acquire_owned().await else {
            break;
        };
        let mut size = first.messages.len();
        let mut batch = vec![first];
        while size < max_batch {
            match rx.try_recv() {
                Ok(job) if size + job.messages.len() <= max_batch => {
                    size += job.messages.len();
                    batch.push(job);
                }
                Ok(job) => {
                    carried = Some(job);
                    break;
                }
                Err(_) => break,
            }
        }
        let writer = writer.clone();
        tokio::spawn(async move {
            run_batch(&writer, batch).await;
            drop(permit);
        });
    }
}

async fn run_batch(writer: &Writer, batch: Vec<Job>) {
    writer
        .counters
        .jobs
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    if batch.len() == 1 {
        for job in batch {
            let out = writer.write(&job.messages).await;
            let _ = job.reply.send(out);
        }
        return;
    }
    let mut replies = Vec::with_capacity(batch.len());
    let mut all = Vec::new();
    for job in batch {
        replies.push((job.messages.len(), job.reply));
        all.extend(job.messages);
    }
    match writer.write(&all).await {
        Ok(out) => {
            let mut answers = out.into_iter();
            for (len, reply) in replies {
                let mine: Vec<Enqueued> = answers.by_ref().take(len).collect();
                let _ = reply.send(Ok(mine));
            }
        }
        // The database is away: every call gets the same answer, at once.
        Err(e) if e.is_unavailable() => {
            for (_, reply) in replies {
                let _ = reply.send(Err(e.duplicate()));
            }
        }
        // Something in one call's data: write each call alone.
        Err(_) => {
            writer.counters.rollbacks.fetch_add(1, Ordering::Relaxed);
            let mut rest = all.into_iter();
            for (len, reply) in replies {
                let mine: Vec<NewMessage> = rest.by_ref().take(len).collect();
                let _ = reply.send(writer.write(&mine).await);
            }
        }
    }
}
