//! Completions on PostgreSQL: the attempts recorded and every message moved on as decided,
//! in one statement, under the reporter's lease only.

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, Row};

use super::sql::Statements;
use crate::message::{Completion, Decision, LeaseCheck};
use crate::store::rows::{last_error_of, stored_body, stored_headers};
use crate::store::time::to_us;

pub(crate) async fn complete<'e, E>(
    executor: E,
    sql: &Statements,
    completions: &[Completion],
) -> Result<Vec<LeaseCheck>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    if completions.is_empty() {
        return Ok(Vec::new());
    }
    // Only the first completion of a message can apply; later ones in the same batch are
    // recorded as attempts and answered as lost, as they would be one after the other.
    let mut seen = HashSet::new();
    let mut first = Vec::with_capacity(completions.len());
    let (mut m_ids, mut m_owners, mut m_decisions, mut m_next, mut m_errors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in completions {
        let is_first = seen.insert(c.message_id.as_str());
        first.push(is_first);
        if is_first {
            m_ids.push(c.message_id.as_str());
            m_owners.push(c.owner.as_str());
            m_decisions.push(c.decision.as_str());
            m_next.push(match &c.decision {
                Decision::Retry { at } => Some(to_us(*at)),
                _ => None,
            });
            m_errors.push(last_error_of(c));
        }
    }
    let n = completions.len();
    let mut a_ids = Vec::with_capacity(n);
    let mut a_numbers = Vec::with_capacity(n);
    let mut a_owners = Vec::with_capacity(n);
    let mut a_started = Vec::with_capacity(n);
    let mut a_durations = Vec::with_capacity(n);
    let mut a_statuses = Vec::with_capacity(n);
    let mut a_bodies: Vec<Option<&[u8]>> = Vec::with_capacity(n);
    let mut a_truncated = Vec::with_capacity(n);
    let mut a_error_kinds = Vec::with_capacity(n);
    let mut a_errors = Vec::with_capacity(n);
    let mut a_violations = Vec::with_capacity(n);
    let mut a_decisions = Vec::with_capacity(n);
    let mut a_next = Vec::with_capacity(n);
    let mut a_headers = Vec::with_capacity(n);
    for c in completions {
        let a = &c.attempt;
        a_ids.push(c.message_id.as_str());
        a_numbers.push(i32::try_from(a.number).unwrap_or(i32::MAX));
        a_owners.push(c.owner.as_str());
        a_started.push(to_us(a.started_at));
        a_durations.push(i64::try_from(a.duration.as_micros()).unwrap_or(i64::MAX));
        a_statuses.push(a.response_status.map(i32::from));
        a_bodies.push(stored_body(c));
        a_truncated.push(a.response_truncated);
        a_error_kinds.push(a.error.as_ref().map(|e| e.kind.as_str()));
        a_errors.push(a.error.as_ref().map(|e| e.message.as_str()));
        a_violations.push(a.contract_violation.as_deref());
        a_decisions.push(c.decision.as_str());
        a_headers.push(stored_headers(c));
        a_next.push(match &c.decision {
            Decision::Retry { at } => Some(to_us(*at)),
            _ => None,
        });
    }
    let rows = sqlx::query(AssertSqlSafe(sql.complete.clone()))
        .bind(&m_ids)
        .bind(&m_owners)
        .bind(&m_decisions)
        .bind(&m_next)
        .bind(&m_errors)
        .bind(&a_ids)
        .bind(&a_numbers)
        .bind(&a_owners)
        .bind(&a_started)
        .bind(&a_durations)
        .bind(&a_statuses)
        .bind(&a_bodies)
        .bind(&a_truncated)
        .bind(&a_error_kinds)
        .bind(&a_errors)
        .bind(&a_violations)
        .bind(&a_decisions)
        .bind(&a_next)
        .bind(&a_headers)
        .fetch_all(executor)
        .await?;
    let mut applied = HashSet::with_capacity(rows.len());
    for row in &rows {
        applied.insert(row.try_get::<String, _>("id")?);
    }
    Ok(completions
        .iter()
        .zip(first)
        .map(|(c, is_first)| {
            if is_first && applied.contains(c.message_id.as_str()) {
                LeaseCheck::Held
            } else {
                LeaseCheck::Lost
            }
        })
        .collect())
}
