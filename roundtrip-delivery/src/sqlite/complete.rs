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

/// The finished messages (succeeded or failed) of a batch, all owners at once: first the
/// ids whose lease their reporter lost, then the move of the others to history and their
/// removal from the queue. Its one JSON parameter, bound three times, is
/// `[[id, owner, status, last_error]]`; `finished_at` is bound between the first two.
/// Parameters are anonymous and in order, so they may follow those of the attempt rows in
/// the same query: sqlx binds anonymous parameters statement after statement, whereas
/// numbered ones that do not start at `?1` would leave gaps it fills with the wrong values.
///
/// `CROSS JOIN` keeps the JSON list as the outer loop: each message is found through its
/// primary key, never by a scan of the queue.
const FINISHED: &str = "SELECT 'lost', f.value ->> 0 FROM json_each(?) AS f WHERE NOT EXISTS \
     (SELECT 1 FROM messages AS m WHERE m.id = f.value ->> 0 AND m.status = 'leased' \
     AND m.lease_owner = f.value ->> 1); \
     INSERT OR REPLACE INTO message_history (finished_at, id, kind, name, url, method, headers, \
     body, created_at, status, attempts, lost_leases, last_error, idempotency_key, \
     endpoint_id, signing_key, ordering_key, metadata) \
     SELECT ?, m.id, m.kind, m.name, m.url, m.method, m.headers, m.body, m.created_at, \
     f.value ->> 2, m.attempts + 1, m.lost_leases, COALESCE(f.value ->> 3, m.last_error), \
     m.idempotency_key, m.endpoint_id, m.signing_key, m.ordering_key, m.metadata \
     FROM json_each(?) AS f CROSS JOIN messages AS m WHERE m.id = f.value ->> 0 \
     AND m.status = 'leased' AND m.lease_owner = f.value ->> 1; \
     DELETE FROM messages WHERE rowid IN (SELECT m.rowid FROM json_each(?) AS f \
     CROSS JOIN messages AS m WHERE m.id = f.value ->> 0 AND m.status = 'leased' \
     AND m.lease_owner = f.value ->> 1)";

/// The retried messages of a batch, all owners at once, in one statement: its parameter is
/// `[[id, next_attempt_at, last_error, owner]]`. Answers the ids whose lease was still held.
const RETRIED: &str = "UPDATE messages SET status = 'pending', attempts = attempts + 1, \
     next_attempt_at = r.value ->> 1, last_error = r.value ->> 2, lease_owner = NULL, \
     lease_expires_at = NULL FROM json_each(?) AS r \
     WHERE messages.id = r.value ->> 0 AND messages.status = 'leased' \
     AND messages.lease_owner = r.value ->> 3 RETURNING 'kept', id";

/// A batch of completions as one query, built before it reaches the writer: the attempt
/// rows in multi-row inserts, the finished messages moved to history in one statement, the
/// retried ones in another. Only the first completion of a message in the batch can apply;
/// later ones are recorded as attempts and answered as lost, as they would be one after
/// the other.
pub(crate) struct Prepared {
    /// The statements, each followed by `; `.
    sql: String,
    args: SqliteArguments,
}

impl Prepared {
    /// Builds the query for `completions`, recorded at `now`.
    pub(crate) fn new(completions: &[Completion], now: SystemTime) -> Result<Self, Error> {
        let now_ms = to_ms(now);
        let first = first_reports(completions);
        let mut finished: Vec<(&str, &str, &str, Option<String>)> = Vec::new();
        let mut retried: Vec<(&str, i64, Option<String>, &str)> = Vec::new();
        for (c, _) in completions.iter().zip(&first).filter(|(_, first)| **first) {
            let (id, owner) = (c.message_id.as_str(), c.owner.as_str());
            match &c.decision {
                Decision::Succeeded => finished.push((id, owner, "succeeded", None)),
                Decision::Failed { .. } => {
                    finished.push((id, owner, "failed", last_error_of(c)));
                }
                Decision::Retry { at } => {
                    retried.push((id, to_ms(*at), last_error_of(c), owner));
                }
            }
        }
        let mut sql = String::with_capacity(1024 + completions.len() * 64);
        let mut args = SqliteArguments::default();
        // Every attempt is recorded, in multi-row inserts.
        for chunk in completions.chunks(ROWS_PER_INSERT) {
            attempts_sql(&mut sql, chunk.len());
            sql.push_str("; ");
            for c in chunk {
                push_attempt(&mut args, c)?;
            }
        }
        if !finished.is_empty() {
            let json = serde_json::to_string(&finished).unwrap_or_else(|_| "[]".to_owned());
            sql.push_str(FINISHED);
            sql.push_str("; ");
            push_arg(&mut args, json.as_str())?;
            push_arg(&mut args, now_ms)?;
            push_arg(&mut args, json.as_str())?;
            push_arg(&mut args, json)?;
        }
        if !retried.is_empty() {
            let json = serde_json::to_string(&retried).unwrap_or_else(|_| "[]".to_owned());
            sql.push_str(RETRIED);
            sql.push_str("; ");
            push_arg(&mut args, json)?;
        }
        Ok(Prepared { sql, args })
    }
}

impl Prepared {
    /// Appends a claim of up to `limit` messages due at `now`, leased to `owner` for
    /// `lease` (the refill of the slots the batch frees): the query then also answers
    /// `('claimed', document)`, the document [`read_claimed`](super::lease::read_claimed)
    /// reads.
    pub(crate) fn then_claim(
        &mut self,
        owner: &str,
        limit: usize,
        lease: std::time::Duration,
        now: SystemTime,
    ) -> Result<(), Error> {
        let now = to_ms(now);
        self.sql.push_str(super::lease::CLAIM);
        self.sql.push_str("; ");
        push_arg(&mut self.args, now)?;
        push_arg(&mut self.args, i64::try_from(limit).unwrap_or(i64::MAX))?;
        push_arg(&mut self.args, owner)?;
        push_arg(
            &mut self.args,
            now.saturating_add(crate::store::time::duration_ms(lease)),
        )
    }
}

/// The claimed messages' document in what a batch's query answered, if it claimed.
pub(crate) fn claimed(answered: &Answered) -> Option<&str> {
    answered
        .iter()
        .find(|(tag, _)| tag == "claimed")
        .map(|(_, document)| document.as_str())
}

/// Whether each completion is the first report of its message in the batch.
fn first_reports(completions: &[Completion]) -> Vec<bool> {
    let mut seen = std::collections::HashSet::with_capacity(completions.len());
    completions
        .iter()
        .map(|c| seen.insert(c.message_id.as_str()))
        .collect()
}

/// What the query of a batch answered: `('lost', id)` for each finished message whose
/// reporter had lost its lease, `('kept', id)` for each retried one whose lease was held,
/// and `('claimed', document)` after [`Prepared::then_claim`].
pub(crate) type Answered = Vec<(String, String)>;

/// Runs a batch's query (one round trip to SQLite's thread) inside the writer's
/// transaction. With `whole`, the `BEGIN` statement of the writer's transaction, the query
/// opens the transaction itself and commits it (the writer runs this job alone): the whole
/// transaction is then one round trip too.
pub(crate) async fn run(
    conn: &mut SqliteConnection,
    prepared: Prepared,
    whole: Option<&str>,
) -> Result<Answered, Error> {
    let Prepared { mut sql, args } = prepared;
    match whole {
        Some(begin) => sql = format!("{begin}; {sql}COMMIT"),
        None => sql.truncate(sql.trim_end_matches("; ").len()),
    }
    sqlx::query_as_with(AssertSqlSafe(sql), args)
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)
}

/// Each completion's lease check, from what its batch's query answered.
pub(crate) fn checks(completions: &[Completion], answered: &Answered) -> Vec<LeaseCheck> {
    let lost: std::collections::HashSet<&str> = answered
        .iter()
        .filter(|(tag, _)| tag == "lost")
        .map(|(_, id)| id.as_str())
        .collect();
    let kept: std::collections::HashSet<&str> = answered
        .iter()
        .filter(|(tag, _)| tag == "kept")
        .map(|(_, id)| id.as_str())
        .collect();
    completions
        .iter()
        .zip(first_reports(completions))
        .map(|(c, first)| {
            let id = c.message_id.as_str();
            let held = first
                && match c.decision {
                    Decision::Succeeded | Decision::Failed { .. } => !lost.contains(id),
                    Decision::Retry { .. } => kept.contains(id),
                };
            if held {
                LeaseCheck::Held
            } else {
                LeaseCheck::Lost
            }
        })
        .collect()
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
