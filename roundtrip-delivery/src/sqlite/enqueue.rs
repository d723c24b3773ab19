//! Enqueueing on SQLite: messages of many `enqueue` calls written together, answered as if
//! each had run alone, and the one-round-trip transaction of plain enqueues.

use std::time::SystemTime;

use sqlx::AssertSqlSafe;
use sqlx::sqlite::{SqliteArguments, SqliteConnection};

use super::from_sqlx;
use super::rows::{push_arg, push_row};
use crate::message::{Enqueued, MessageId, NewMessage};
use crate::outbox::Error;
use crate::store::local::Grant;
use crate::store::options::Limits;
use crate::store::rows::{encode_headers, encode_metadata, get};
use crate::store::time::to_ms;

/// The lease the first `count` messages of a batch are written with (the in-process fast
/// path, [`crate::store::local`]).
#[derive(Clone, Copy)]
pub(crate) struct LeaseFirst<'a> {
    count: usize,
    owner: &'a str,
    expires_at: i64,
}

impl<'a> LeaseFirst<'a> {
    pub(crate) fn of(grant: Option<&'a Grant>) -> Option<Self> {
        grant.map(|g| LeaseFirst {
            count: g.len(),
            owner: g.owner(),
            expires_at: to_ms(g.expires_at()),
        })
    }

    /// The owner and expiry of the batch's `i`-th message, if it is written leased.
    fn of_index(this: Option<Self>, i: usize) -> Option<(&'a str, i64)> {
        this.filter(|l| i < l.count)
            .map(|l| (l.owner, l.expires_at))
    }

    /// How many of the batch's first messages are written leased.
    pub(crate) fn count(this: Option<Self>) -> usize {
        this.map_or(0, |l| l.count)
    }
}

/// Rows per multi-row INSERT of messages (17 bound values each).
const MESSAGES_PER_INSERT: usize = 64;
/// Rows per multi-row INSERT of idempotency keys (4 bound values each).
const KEYS_PER_INSERT: usize = 256;

/// Inserts messages on `conn`, which must be inside a transaction.
pub(crate) async fn insert_messages(
    conn: &mut SqliteConnection,
    messages: &[NewMessage],
    limits: &Limits,
    now: SystemTime,
) -> Result<Vec<Enqueued>, Error> {
    for message in messages {
        crate::outbox::validate(message, limits.max_body_bytes)?;
    }
    let mut answers = insert_many(conn, &[messages], now, None).await?;
    Ok(answers.pop().unwrap_or_default())
}

/// Inserts the messages of several `enqueue` calls (`jobs`, already validated) on `conn`,
/// inside a transaction, in as few statements as possible, and answers each call as if it
/// had run alone, one after the other: an idempotency key or an id taken by an earlier
/// message (of this call, an earlier call, or the table) deduplicates the later one. The
/// first messages of the batch are written leased when `lease` says so.
pub(crate) async fn insert_many(
    conn: &mut SqliteConnection,
    jobs: &[&[NewMessage]],
    now: SystemTime,
    lease: Option<LeaseFirst<'_>>,
) -> Result<Vec<Vec<Enqueued>>, Error> {
    let now = to_ms(now);
    let all: Vec<&NewMessage> = jobs.iter().flat_map(|job| job.iter()).collect();
    // Per message: the id it was deduplicated to by its idempotency key, if any.
    let mut deduplicated_to: Vec<Option<String>> = vec![None; all.len()];

    // Idempotency keys first: a message whose key is taken is not inserted.
    let keyed: Vec<usize> = (0..all.len())
        .filter(|&i| all[i].idempotency_key.is_some())
        .collect();
    if !keyed.is_empty() {
        // (name, key) -> the message id holding it, as this batch's statements left it.
        let mut holders: std::collections::HashMap<(&str, &str), String> =
            std::collections::HashMap::new();
        for chunk in keyed.chunks(KEYS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO idempotency_keys (name, key, message_id, created_at) VALUES ",
            );
            let mut args = SqliteArguments::default();
            for (n, &i) in chunk.iter().enumerate() {
                let m = all[i];
                if n > 0 {
                    sql.push_str(", ");
                }
                push_row(&mut sql, 4);
                push_arg(&mut args, m.name.as_str())?;
                push_arg(&mut args, m.idempotency_key.as_deref())?;
                push_arg(&mut args, m.id.as_str())?;
                push_arg(&mut args, now)?;
            }
            sql.push_str(" ON CONFLICT DO NOTHING RETURNING name, key, message_id");
            let rows = sqlx::query_with(AssertSqlSafe(sql), args)
                .fetch_all(&mut *conn)
                .await
                .map_err(from_sqlx)?;
            let claimed: Vec<(String, String, String)> = rows
                .iter()
                .map(|r| Ok((get(r, "name")?, get(r, "key")?, get(r, "message_id")?)))
                .collect::<Result<_, Error>>()?;
            for &i in chunk {
                let m = all[i];
                let key = m.idempotency_key.as_deref().unwrap_or_default();
                let slot = (m.name.as_str(), key);
                if let Some(holder) = holders.get(&slot) {
                    // Taken by an earlier message of this batch.
                    deduplicated_to[i] = Some(holder.clone());
                    continue;
                }
                let won = claimed
                    .iter()
                    .find(|(n, k, _)| n == slot.0 && k == slot.1)
                    .map(|(_, _, id)| id.clone());
                let holder = match won {
                    // Rows are inserted in order: the first message with this key holds it.
                    Some(id) if id == m.id.as_str() => {
                        holders.insert(slot, id);
                        continue;
                    }
                    Some(id) => id,
                    // Taken before this batch.
                    None => sqlx::query_scalar::<_, String>(
                        "SELECT message_id FROM idempotency_keys WHERE name = ?1 AND key = ?2",
                    )
                    .bind(slot.0)
                    .bind(slot.1)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(from_sqlx)?,
                };
                holders.insert(slot, holder.clone());
                deduplicated_to[i] = Some(holder);
            }
        }
    }

    let to_insert: Vec<usize> = (0..all.len())
        .filter(|&i| deduplicated_to[i].is_none())
        .collect();
    let mut inserted: std::collections::HashSet<String> = std::collections::HashSet::new();
    for chunk in to_insert.chunks(MESSAGES_PER_INSERT) {
        let mut sql = String::with_capacity(256 + chunk.len() * 48);
        let mut args = SqliteArguments::default();
        push_insert(
            &mut sql,
            &mut args,
            chunk
                .iter()
                .map(|&i| (all[i], LeaseFirst::of_index(lease, i))),
            now,
            true,
        )?;
        let ids: Vec<String> = sqlx::query_scalar_with(AssertSqlSafe(sql), args)
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx)?;
        inserted.extend(ids);
    }
    Ok(answer_jobs(jobs, deduplicated_to, inserted))
}

/// Appends the multi-row `INSERT` of `messages` (each pending, or leased to the owner
/// until the expiry given beside it) and binds its parameters. `deduplicate`: skip ids
/// already stored and return the ids inserted; otherwise a taken id fails the statement.
fn push_insert<'m, 'o>(
    sql: &mut String,
    args: &mut SqliteArguments,
    messages: impl Iterator<Item = (&'m NewMessage, Option<(&'o str, i64)>)>,
    now: i64,
    deduplicate: bool,
) -> Result<(), Error> {
    sql.push_str(
        "INSERT INTO messages (status, lease_owner, lease_expires_at, attempts, created_at, \
         next_attempt_at, id, kind, name, url, method, headers, body, idempotency_key, \
         endpoint_id, signing_key, ordering_key, metadata) VALUES ",
    );
    for (n, (m, lease)) in messages.enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        push_arg(args, if lease.is_some() { "leased" } else { "pending" })?;
        push_arg(args, lease.map(|(owner, _)| owner.to_owned()))?;
        push_arg(args, lease.map(|(_, expires_at)| expires_at))?;
        push_arg(args, now)?;
        push_arg(args, now)?;
        push_arg(args, m.id.as_str())?;
        push_arg(args, m.kind.as_str())?;
        push_arg(args, m.name.as_str())?;
        push_arg(args, m.url.as_str())?;
        push_arg(args, m.method.as_str())?;
        push_arg(args, encode_headers(&m.headers))?;
        push_arg(args, m.body.to_vec())?;
        push_arg(args, m.idempotency_key.as_deref())?;
        push_arg(args, m.endpoint_id.as_deref())?;
        push_arg(args, m.signing_key.as_deref())?;
        push_arg(args, m.ordering_key.as_deref())?;
        push_arg(args, encode_metadata(&m.metadata))?;
    }
    if deduplicate {
        sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
    }
    Ok(())
}

/// Which statement of [`enqueue_committed`] failed.
pub(crate) enum Failed {
    /// The `BEGIN` (or the `synchronous` switch before it): nothing ran.
    Begin(Error),
    /// The `INSERT` (an id already stored, say): the transaction is open and must be
    /// rolled back; [`insert_many`] then writes the batch, deduplicating.
    Insert(Error),
    /// The `COMMIT`: the transaction may be open and must be rolled back.
    Commit(Error),
}

/// Whether [`enqueue_committed`] can write these enqueues: no idempotency key (those need
/// a look at the keys table first) and few enough messages for one statement.
pub(crate) fn fits_one_statement(jobs: &[&[NewMessage]]) -> bool {
    let mut n = 0;
    for job in jobs {
        n += job.len();
        if n > MESSAGES_PER_INSERT || job.iter().any(|m| m.idempotency_key.is_some()) {
            return false;
        }
    }
    true
}

/// The whole transaction of a batch of plain enqueues in one round trip to SQLite's
/// thread: `begin` (`BEGIN IMMEDIATE`, maybe after a `synchronous` switch), the
/// `INSERT`, and `COMMIT`. Only for jobs that [`fits_one_statement`]. Ids are fresh but
/// for a message sent twice: the `INSERT` does not look for taken ids (so no row crosses
/// back per message) and fails on one; the caller then writes the batch again with
/// [`insert_many`].
pub(crate) async fn enqueue_committed(
    conn: &mut SqliteConnection,
    begin: &str,
    jobs: &[&[NewMessage]],
    now: SystemTime,
    lease: Option<LeaseFirst<'_>>,
) -> Result<Vec<Vec<Enqueued>>, Failed> {
    use futures_util::TryStreamExt;
    use sqlx::Executor;
    let now = to_ms(now);
    let begin_statements = begin.split(';').count();
    let mut sql = String::with_capacity(256 + jobs.len() * 48);
    sql.push_str(begin);
    sql.push_str("; ");
    let mut args = SqliteArguments::default();
    push_insert(
        &mut sql,
        &mut args,
        jobs.iter()
            .flat_map(|job| job.iter())
            .enumerate()
            .map(|(i, m)| (m, LeaseFirst::of_index(lease, i))),
        now,
        false,
    )
    .map_err(Failed::Begin)?;
    sql.push_str("; COMMIT");
    let mut done = 0;
    let mut results = conn.execute_many(sqlx::query_with(AssertSqlSafe(sql), args));
    loop {
        match results.try_next().await {
            Ok(Some(_)) => done += 1,
            Ok(None) => break,
            Err(e) => {
                let e = from_sqlx(e);
                return Err(if done < begin_statements {
                    Failed::Begin(e)
                } else if done == begin_statements {
                    Failed::Insert(e)
                } else {
                    Failed::Commit(e)
                });
            }
        }
    }
    if done != begin_statements + 2 {
        return Err(Failed::Commit(Error::corrupt(
            "the enqueue transaction ended before its COMMIT",
        )));
    }
    Ok(jobs
        .iter()
        .map(|job| {
            job.iter()
                .map(|m| Enqueued {
                    id: m.id.clone(),
                    deduplicated: false,
                })
                .collect()
        })
        .collect())
}

/// Each enqueue call's answers, in order: deduplicated to the holder of its idempotency
/// key, or to its own id when the row was not inserted (or inserted for an earlier
/// message with the same id).
fn answer_jobs(
    jobs: &[&[NewMessage]],
    mut deduplicated_to: Vec<Option<String>>,
    mut inserted: std::collections::HashSet<String>,
) -> Vec<Vec<Enqueued>> {
    let mut out = Vec::with_capacity(jobs.len());
    let mut i = 0;
    for job in jobs {
        let mut answers = Vec::with_capacity(job.len());
        for m in job.iter() {
            answers.push(match deduplicated_to[i].take() {
                Some(existing) => Enqueued {
                    id: MessageId::from_stored(existing),
                    deduplicated: true,
                },
                // A row is inserted once: a second message with the same id is a duplicate.
                None => Enqueued {
                    id: m.id.clone(),
                    deduplicated: !inserted.remove(m.id.as_str()),
                },
            });
            i += 1;
        }
        out.push(answers);
    }
    out
}
