//! Leases on PostgreSQL: claims with `FOR UPDATE SKIP LOCKED`, renewals, releases, and
//! taking back the leases of workers that vanished. Every lease time is the database's.

use std::time::Duration;

use sqlx::{AssertSqlSafe, Row};

use super::sql::Statements;
use crate::message::{Message, MessageId};
use crate::outbox::{Error, Reclaimed};
use crate::store::rows::{self, crash_cap_reason};
use crate::store::time::duration_us;

pub(crate) async fn claim<'e, E>(
    executor: E,
    sql: &Statements,
    owner: &str,
    limit: usize,
    lease: Duration,
) -> Result<Vec<Message>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(AssertSqlSafe(sql.claim.clone()))
        .bind(owner)
        .bind(duration_us(lease))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(executor)
        .await?;
    let mut messages = Vec::with_capacity(rows.len());
    for row in &rows {
        match rows::message(row) {
            Ok(m) => messages.push(m),
            Err(e) => return Err(sqlx::Error::Decode(Box::new(Error::from(e)))),
        }
    }
    messages.sort_by(|a, b| {
        (a.meta.next_attempt_at, &a.meta.id).cmp(&(b.meta.next_attempt_at, &b.meta.id))
    });
    Ok(messages)
}

pub(crate) async fn renew<'e, E>(
    executor: E,
    sql: &Statements,
    owner: &str,
    ids: &[MessageId],
    lease: Duration,
) -> Result<Vec<MessageId>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<&str> = ids.iter().map(MessageId::as_str).collect();
    let rows = sqlx::query(AssertSqlSafe(sql.renew.clone()))
        .bind(duration_us(lease))
        .bind(owner)
        .bind(&list)
        .fetch_all(executor)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("id").map(MessageId::from_stored))
        .collect()
}

pub(crate) async fn release<'e, E>(
    executor: E,
    sql: &Statements,
    owner: &str,
) -> Result<u64, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    Ok(sqlx::query(AssertSqlSafe(sql.release.clone()))
        .bind(owner)
        .execute(executor)
        .await?
        .rows_affected())
}

pub(crate) async fn reclaim<'e, E>(
    executor: E,
    sql: &Statements,
    owner: Option<&str>,
    crash_cap: u32,
) -> Result<Reclaimed, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let cap = crash_cap.max(1);
    let reason = crash_cap_reason(cap);
    let row = sqlx::query(AssertSqlSafe(sql.reclaim.clone()))
        .bind(i32::try_from(cap).unwrap_or(i32::MAX))
        .bind(reason)
        .bind(owner)
        .fetch_one(executor)
        .await?;
    let requeued: i64 = row.try_get("requeued")?;
    let failed: i64 = row.try_get("failed")?;
    Ok(Reclaimed {
        requeued: u64::try_from(requeued).unwrap_or(0),
        failed: u64::try_from(failed).unwrap_or(0),
    })
}
