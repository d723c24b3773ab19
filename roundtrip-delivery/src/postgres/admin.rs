//! What users and operators do with a PostgreSQL outbox: read messages and attempts, list
//! them, retry, replay, cancel and retarget them, and purge old history.

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Postgres, QueryBuilder};

use super::from_sqlx;
use super::sql::{self, Statements};
use crate::message::{Attempt, Message, MessageId, MessageMeta, MessageStatus};
use crate::outbox::{AttemptFilter, AttemptPage, Error, MessageFilter, MessagePage, Purged};
use crate::store::listing::{
    Dialect, ListSql, attempt_log_query, attempt_page, list_query, page, push_conditions,
    replay_statuses,
};
use crate::store::options::Limits;
use crate::store::rows::{self, already_finished, get, not_found, still_live};
use crate::store::time::duration_us;

pub(crate) async fn live_meta(
    conn: &mut PgConnection,
    sql: &Statements,
    id: &MessageId,
) -> Result<Option<MessageMeta>, Error> {
    let row = sqlx::query(AssertSqlSafe(sql.live_meta_by_id.clone()))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    Ok(row.as_ref().map(rows::meta).transpose()?)
}

pub(crate) async fn history_meta(
    conn: &mut PgConnection,
    sql: &Statements,
    id: &MessageId,
) -> Result<Option<MessageMeta>, Error> {
    let row = sqlx::query(AssertSqlSafe(sql.history_meta_by_id.clone()))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    Ok(row.as_ref().map(rows::meta).transpose()?)
}

pub(crate) async fn retry(
    conn: &mut PgConnection,
    sql: &Statements,
    id: &MessageId,
) -> Result<MessageMeta, Error> {
    if let Some(live) = live_meta(conn, sql, id).await? {
        if live.status != MessageStatus::Pending {
            return Err(still_live(id, live.status).into());
        }
        // Waiting out its backoff: due now, with its attempt count kept.
        let row = sqlx::query(AssertSqlSafe(sql.retry_now.clone()))
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(from_sqlx)?;
        return match row {
            Some(row) => Ok(rows::meta(&row)?),
            // Claimed or finished meanwhile.
            None => match live_meta(conn, sql, id).await? {
                Some(live) => Err(still_live(id, live.status).into()),
                None => Err(not_found(id).into()),
            },
        };
    }
    let row = sqlx::query(AssertSqlSafe(sql.retry.clone()))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    match row {
        Some(row) => Ok(rows::meta(&row)?),
        // Another retry may have won the race: then the message is live.
        None => match live_meta(conn, sql, id).await? {
            Some(live) => Err(still_live(id, live.status).into()),
            None => Err(not_found(id).into()),
        },
    }
}

pub(crate) async fn cancel(
    conn: &mut PgConnection,
    sql: &Statements,
    id: &MessageId,
) -> Result<MessageMeta, Error> {
    let row = sqlx::query(AssertSqlSafe(sql.cancel.clone()))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    if let Some(row) = row {
        return Ok(rows::meta(&row)?);
    }
    match history_meta(conn, sql, id).await? {
        Some(done) => Err(already_finished(id, done.status).into()),
        None => Err(not_found(id).into()),
    }
}

/// Points the live messages of a webhook endpoint at its new URL.
pub(crate) async fn retarget(
    conn: &mut PgConnection,
    sql: &Statements,
    endpoint: &str,
    url: &url::Url,
) -> Result<u64, Error> {
    let done = sqlx::query(AssertSqlSafe(sql.qualify(
        "UPDATE _rt_.messages SET url = $2 WHERE endpoint_id = $1 AND url <> $2",
    )))
    .bind(endpoint)
    .bind(url.as_str())
    .execute(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    Ok(done.rows_affected())
}

pub(crate) async fn replay(
    conn: &mut PgConnection,
    sql: &Statements,
    filter: &MessageFilter,
) -> Result<u64, Error> {
    let statuses = replay_statuses(filter);
    if statuses.is_empty() {
        return Ok(0);
    }
    let mut q = QueryBuilder::<Postgres>::new(sql.qualify(sql::REPLAY_HEAD));
    <Postgres as Dialect>::push_statuses(&mut q, &statuses);
    push_conditions(&mut q, filter);
    q.push(sql.qualify(sql::REPLAY_TAIL));
    let n: i64 = q
        .build_query_scalar()
        .fetch_one(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) async fn purge(
    conn: &mut PgConnection,
    sql: &Statements,
    limits: &Limits,
) -> Result<Purged, Error> {
    // Retention is measured against the database clock, like every other time the store
    // writes; the process clock only picks the cut-off.
    let now: i64 =
        sqlx::query_scalar("SELECT (extract(epoch from clock_timestamp()) * 1000000)::int8")
            .fetch_one(&mut *conn)
            .await
            .map_err(from_sqlx)?;
    let ok_before = now.saturating_sub(duration_us(limits.retention_succeeded));
    let failed_before = now.saturating_sub(duration_us(limits.retention_failed));
    let keys_before = now.saturating_sub(duration_us(limits.idempotency_retention));
    let batch = i64::from(limits.purge_batch.max(1));
    let row = sqlx::query(AssertSqlSafe(sql.purge_messages.clone()))
        .bind(ok_before)
        .bind(failed_before)
        .bind(batch)
        .fetch_one(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    let messages: i64 = get(&row, "messages")?;
    let attempts: i64 = get(&row, "attempts")?;
    let keys = sqlx::query(AssertSqlSafe(sql.purge_keys.clone()))
        .bind(keys_before)
        .bind(batch)
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    Ok(Purged {
        messages: u64::try_from(messages).unwrap_or(0),
        attempts: u64::try_from(attempts).unwrap_or(0),
        idempotency_keys: keys,
    })
}

pub(crate) async fn get_message(
    conn: &mut PgConnection,
    sql: &Statements,
    id: &MessageId,
) -> Result<Option<Message>, Error> {
    let row = sqlx::query(AssertSqlSafe(sql.get.clone()))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    Ok(row.as_ref().map(rows::message).transpose()?)
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    sql: &Statements,
    filter: &MessageFilter,
) -> Result<MessagePage, Error> {
    let sides = ListSql {
        live: &sql.list_live,
        history: &sql.list_history,
        limit_each_side: true,
    };
    let Some(mut q) = list_query::<Postgres>(&sides, filter) else {
        return Ok(MessagePage {
            messages: Vec::new(),
            next: None,
        });
    };
    let rows = q.build().fetch_all(&mut *conn).await.map_err(from_sqlx)?;
    Ok(page(&rows, filter)?)
}

pub(crate) async fn attempts(
    conn: &mut PgConnection,
    sql: &Statements,
    id: &MessageId,
) -> Result<Vec<Attempt>, Error> {
    let rows = sqlx::query(AssertSqlSafe(sql.attempts.clone()))
        .bind(id.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    Ok(rows.iter().map(rows::attempt).collect::<Result<_, _>>()?)
}

/// One page of the attempt log. The attempts table has no index on `seq` alone: the log is
/// an inspection tool, and recording attempts stays as cheap as it was.
pub(crate) async fn attempt_log(
    conn: &mut PgConnection,
    sql: &Statements,
    filter: &AttemptFilter,
) -> Result<AttemptPage, Error> {
    let mut q = attempt_log_query::<Postgres>(&sql.attempt_log, filter);
    let rows = q.build().fetch_all(&mut *conn).await.map_err(from_sqlx)?;
    Ok(attempt_page(&rows, filter)?)
}
