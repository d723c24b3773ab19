//! Completions on SQLite: every attempt recorded, and each message moved on as decided
//! (delivered to history, due again later, or failed), under the reporter's lease only.

use std::time::SystemTime;

use sqlx::AssertSqlSafe;
use sqlx::sqlite::{SqliteArguments, SqliteConnection};

use super::from_sqlx;
use super::rows::{push_arg, push_row, to_history};
use crate::message::{Completion, Decision, LeaseCheck, MessageId};
use crate::outbox::Error;
use crate::store::rows::{last_error_of, stored_body, stored_headers};
use crate::store::time::to_ms;

/// Rows per multi-row INSERT of attempts (14 bound values each, far below SQLite's limit).
const ROWS_PER_INSERT: usize = 64;

/// Columns of an attempt row, in the order [`push_attempt`] binds them.
const ATTEMPT_COLUMNS: usize = 14;

/// Appends `INSERT INTO attempts ... VALUES ...` for `rows` rows.
fn attempts_sql(sql: &mut String, rows: usize) {
    sql.push_str(
        "INSERT INTO attempts (message_id, number, worker, started_at, duration_us, \
         response_status, response_body, response_truncated, error_kind, error, \
         contract_violation, outcome, next_attempt_at, response_headers) VALUES ",
    );
    for n in 0..rows {
        if n > 0 {
            sql.push_str(", ");
        }
        push_row(sql, ATTEMPT_COLUMNS);
    }
}

fn push_attempt(args: &mut SqliteArguments, c: &Completion) -> Result<(), Error> {
    let a = &c.attempt;
    let next_at = match &c.decision {
        Decision::Retry { at } => Some(to_ms(*at)),
        _ => None,
    };
    let body = stored_body(c).map(<[u8]>::to_vec);
    push_arg(args, c.message_id.as_str())?;
    push_arg(args, i64::from(a.number))?;
    push_arg(args, c.owner.as_str())?;
    push_arg(args, to_ms(a.started_at))?;
    push_arg(
        args,
        i64::try_from(a.duration.as_micros()).unwrap_or(i64::MAX),
    )?;
    push_arg(args, a.response_status.map(i64::from))?;
    push_arg(args, body)?;
    push_arg(args, i64::from(a.response_truncated))?;
    push_arg(args, a.error.as_ref().map(|e| e.kind.as_str()))?;
    push_arg(args, a.error.as_ref().map(|e| e.message.as_str()))?;
    push_arg(args, a.contract_violation.as_deref())?;
    push_arg(args, c.decision.as_str())?;
    push_arg(args, next_at)?;
    push_arg(args, stored_headers(c))
}

/// An owner's successes: the ids whose lease it lost, then the move of the others to
/// history and their removal from the queue. Its parameters, anonymous and in order (see
/// [`push_succeeded`]), may follow those of attempt rows in the same query: sqlx binds
/// anonymous parameters statement after statement, whereas numbered ones that do not start
/// at `?1` would leave gaps it fills with the wrong values.
const SUCCEEDED: &str = "SELECT value FROM json_each(?) WHERE value NOT IN \
     (SELECT id FROM messages WHERE status = 'leased' AND lease_owner = ?); \
     INSERT OR REPLACE INTO message_history (finished_at, id, kind, name, url, method, headers, \
     body, created_at, status, attempts, lost_leases, last_error, idempotency_key, \
     endpoint_id, signing_key, ordering_key, metadata) \
     SELECT ?, id, kind, name, url, method, headers, body, created_at, 'succeeded', \
     attempts + 1, lost_leases, last_error, idempotency_key, endpoint_id, signing_key, \
     ordering_key, metadata FROM messages WHERE id IN (SELECT value FROM json_each(?)) \
     AND status = 'leased' AND lease_owner = ?; \
     DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?)) \
     AND status = 'leased' AND lease_owner = ?";

fn push_succeeded(
    args: &mut SqliteArguments,
    ids: &str,
    owner: &str,
    now_ms: i64,
) -> Result<(), Error> {
    push_arg(args, ids)?;
    push_arg(args, owner)?;
    push_arg(args, now_ms)?;
    push_arg(args, ids)?;
    push_arg(args, owner)?;
    push_arg(args, ids)?;
    push_arg(args, owner)
}

/// An owner's retries, all in one statement: ?1 is `[[id, next_attempt_at, last_error]]`,
/// ?2 the owner. Answers the ids whose lease was still held.
const RETRIED: &str = "UPDATE messages SET status = 'pending', attempts = attempts + 1, \
     next_attempt_at = r.value ->> 1, last_error = r.value ->> 2, lease_owner = NULL, \
     lease_expires_at = NULL FROM json_each(?1) AS r \
     WHERE messages.id = r.value ->> 0 AND messages.status = 'leased' \
     AND messages.lease_owner = ?2 RETURNING id";

/// Records attempts and the decisions taken after them. Each owner's successes, with the attempt rows
/// (when they fit one statement), take one round trip to SQLite's thread; each owner's
/// retries one more; failures, rare, one message at a time.
pub(crate) async fn complete(
    conn: &mut SqliteConnection,
    completions: &[Completion],
    now: SystemTime,
) -> Result<Vec<LeaseCheck>, Error> {
    let now_ms = to_ms(now);
    let mut applied: Vec<bool> = vec![false; completions.len()];
    let mut owners: Vec<&str> = completions.iter().map(|c| c.owner.as_str()).collect();
    owners.sort_unstable();
    owners.dedup();

    // Every attempt is recorded, in multi-row inserts; the last chunk rides along with the
    // first owner's successes.
    let chunks: Vec<&[Completion]> = completions.chunks(ROWS_PER_INSERT).collect();
    let (mut pending, before) = match chunks.split_last() {
        Some((last, before)) => (Some(*last), before),
        None => (None, &[][..]),
    };
    for chunk in before {
        let mut sql = String::new();
        attempts_sql(&mut sql, chunk.len());
        let mut args = SqliteArguments::default();
        for c in chunk.iter() {
            push_attempt(&mut args, c)?;
        }
        sqlx::query_with(AssertSqlSafe(sql), args)
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx)?;
    }

    for owner in &owners {
        let succeeded: Vec<&str> = completions
            .iter()
            .filter(|c| matches!(c.decision, Decision::Succeeded) && c.owner == *owner)
            .map(|c| c.message_id.as_str())
            .collect();
        if succeeded.is_empty() {
            continue;
        }
        let json = serde_json::to_string(&succeeded).unwrap_or_else(|_| "[]".to_owned());
        let mut sql = String::new();
        let mut args = SqliteArguments::default();
        if let Some(chunk) = pending.take() {
            attempts_sql(&mut sql, chunk.len());
            sql.push_str("; ");
            for c in chunk {
                push_attempt(&mut args, c)?;
            }
        }
        sql.push_str(SUCCEEDED);
        push_succeeded(&mut args, &json, owner, now_ms)?;
        let lost: Vec<String> = sqlx::query_scalar_with(AssertSqlSafe(sql), args)
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx)?;
        for (done, c) in applied.iter_mut().zip(completions) {
            if matches!(c.decision, Decision::Succeeded)
                && c.owner == *owner
                && !lost.iter().any(|id| id == c.message_id.as_str())
            {
                *done = true;
            }
        }
    }
    if let Some(chunk) = pending {
        let mut sql = String::new();
        attempts_sql(&mut sql, chunk.len());
        let mut args = SqliteArguments::default();
        for c in chunk {
            push_attempt(&mut args, c)?;
        }
        sqlx::query_with(AssertSqlSafe(sql), args)
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx)?;
    }

    // Retries, one statement per owner.
    for owner in &owners {
        let retried: Vec<(&str, i64, Option<String>)> = completions
            .iter()
            .filter(|c| c.owner == *owner)
            .filter_map(|c| match &c.decision {
                Decision::Retry { at } => {
                    Some((c.message_id.as_str(), to_ms(*at), last_error_of(c)))
                }
                _ => None,
            })
            .collect();
        if retried.is_empty() {
            continue;
        }
        let json = serde_json::to_string(&retried).unwrap_or_else(|_| "[]".to_owned());
        let kept: Vec<String> = sqlx::query_scalar(RETRIED)
            .bind(json)
            .bind(*owner)
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx)?;
        for (done, c) in applied.iter_mut().zip(completions) {
            if matches!(c.decision, Decision::Retry { .. })
                && c.owner == *owner
                && kept.iter().any(|id| id == c.message_id.as_str())
            {
                *done = true;
            }
        }
    }

    // Failures, one by one.
    for (done, c) in applied.iter_mut().zip(completions) {
        if let Decision::Failed { .. } = &c.decision {
            let last_error = last_error_of(c);
            *done = move_to_history(
                conn,
                &c.message_id,
                Some(&c.owner),
                "failed",
                1,
                0,
                now_ms,
                last_error.as_deref(),
            )
            .await?;
        }
    }
    Ok(applied
        .into_iter()
        .map(|done| {
            if done {
                LeaseCheck::Held
            } else {
                LeaseCheck::Lost
            }
        })
        .collect())
}

/// Moves one live message to history. With `owner`, only if that owner still leases it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn move_to_history(
    conn: &mut SqliteConnection,
    id: &MessageId,
    owner: Option<&str>,
    status: &str,
    add_attempts: i64,
    add_lost: i64,
    now_ms: i64,
    last_error: Option<&str>,
) -> Result<bool, Error> {
    let copied = match owner {
        Some(owner) => sqlx::query(to_history!(
            "id = ?6 AND status = 'leased' AND lease_owner = ?7"
        ))
        .bind(status)
        .bind(add_attempts)
        .bind(add_lost)
        .bind(now_ms)
        .bind(last_error)
        .bind(id.as_str())
        .bind(owner),
        None => sqlx::query(to_history!("id = ?6"))
            .bind(status)
            .bind(add_attempts)
            .bind(add_lost)
            .bind(now_ms)
            .bind(last_error)
            .bind(id.as_str()),
    }
    .execute(&mut *conn)
    .await
    .map_err(from_sqlx)?
    .rows_affected();
    if copied == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM messages WHERE id = ?1")
        .bind(id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    Ok(true)
}
