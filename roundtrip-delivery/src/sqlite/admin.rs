//! What users and operators do with an SQLite outbox: read messages and attempts, list
//! them, retry, replay, cancel and retarget them, and purge old history.

use std::time::SystemTime;

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use super::complete::move_to_history;
use super::from_sqlx;
use super::rows::{from_history, history_meta, live_meta};
use crate::message::{Attempt, Message, MessageId, MessageMeta, MessageStatus};
use crate::outbox::{AttemptFilter, AttemptPage, Error, MessageFilter, MessagePage, Purged};
use crate::store::listing::{
    Dialect, ListSql, attempt_log_query, attempt_page, list_query, page, push_conditions,
    replay_statuses,
};
use crate::store::options::Limits;
use crate::store::rows::{self, already_finished, not_found, still_live};
use crate::store::time::{duration_ms, to_ms};

pub(crate) async fn retry(
    conn: &mut SqliteConnection,
    id: &MessageId,
    now: SystemTime,
) -> Result<MessageMeta, Error> {
    if let Some(live) = live_meta(conn, id).await? {
        if live.status != MessageStatus::Pending {
            return Err(still_live(id, live.status).into());
        }
        // Waiting out its backoff: due now, with its attempt count kept.
        sqlx::query(
            "UPDATE messages SET next_attempt_at = ?1 WHERE id = ?2 AND status = 'pending'",
        )
        .bind(to_ms(now))
        .bind(id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
        return live_meta(conn, id)
            .await?
            .ok_or_else(|| not_found(id).into());
    }
    let copied = sqlx::query(concat!(from_history!(), "id = ?2"))
        .bind(to_ms(now))
        .bind(id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if copied == 0 {
        return Err(not_found(id).into());
    }
    sqlx::query("DELETE FROM message_history WHERE id = ?1")
        .bind(id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    live_meta(conn, id)
        .await?
        .ok_or_else(|| not_found(id).into())
}

async fn live_meta(
    conn: &mut SqliteConnection,
    id: &MessageId,
) -> Result<Option<MessageMeta>, Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        live_meta!(),
        " FROM messages WHERE id = ?1"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    Ok(row.as_ref().map(rows::meta).transpose()?)
}

async fn history_meta(
    conn: &mut SqliteConnection,
    id: &MessageId,
) -> Result<Option<MessageMeta>, Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        history_meta!(),
        " FROM message_history WHERE id = ?1"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    Ok(row.as_ref().map(rows::meta).transpose()?)
}

pub(crate) async fn replay(
    conn: &mut SqliteConnection,
    filter: &MessageFilter,
    now: SystemTime,
) -> Result<u64, Error> {
    let statuses = replay_statuses(filter);
    if statuses.is_empty() {
        return Ok(0);
    }
    let mut q = QueryBuilder::<Sqlite>::new("SELECT id FROM message_history WHERE 1 = 1");
    <Sqlite as Dialect>::push_statuses(&mut q, &statuses);
    push_conditions(&mut q, filter);
    q.push(" AND id NOT IN (SELECT id FROM messages)");
    let ids: Vec<String> = q
        .build_query_scalar()
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    let now_ms = to_ms(now);
    for id in &ids {
        sqlx::query(concat!(from_history!(), "id = ?2"))
            .bind(now_ms)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx)?;
        sqlx::query("DELETE FROM message_history WHERE id = ?1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx)?;
    }
    Ok(ids.len() as u64)
}

pub(crate) async fn cancel(
    conn: &mut SqliteConnection,
    id: &MessageId,
    now: SystemTime,
) -> Result<MessageMeta, Error> {
    let moved = move_to_history(
        conn,
        id,
        None,
        "cancelled",
        0,
        0,
        to_ms(now),
        Some("cancelled by a user"),
    )
    .await?;
    if moved {
        return history_meta(conn, id)
            .await?
            .ok_or_else(|| not_found(id).into());
    }
    match history_meta(conn, id).await? {
        Some(done) => Err(already_finished(id, done.status).into()),
        None => Err(not_found(id).into()),
    }
}

/// Points the live messages of a webhook endpoint at its new URL. (The live table holds
/// only pending and leased messages, and stays small: no index on `endpoint_id`.)
pub(crate) async fn retarget(
    conn: &mut SqliteConnection,
    endpoint: &str,
    url: &str,
) -> Result<u64, Error> {
    let done = sqlx::query("UPDATE messages SET url = ? WHERE endpoint_id = ? AND url <> ?")
        .bind(url)
        .bind(endpoint)
        .bind(url)
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    Ok(done.rows_affected())
}

pub(crate) async fn purge(
    conn: &mut SqliteConnection,
    limits: &Limits,
    now: SystemTime,
) -> Result<Purged, Error> {
    let now_ms = to_ms(now);
    let ok_before = now_ms.saturating_sub(duration_ms(limits.retention_succeeded));
    let failed_before = now_ms.saturating_sub(duration_ms(limits.retention_failed));
    let keys_before = now_ms.saturating_sub(duration_ms(limits.idempotency_retention));
    let batch = i64::from(limits.purge_batch.max(1));
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS purge_ids (id TEXT PRIMARY KEY) WITHOUT ROWID")
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    sqlx::query("DELETE FROM temp.purge_ids")
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    sqlx::query(
        "INSERT INTO temp.purge_ids (id) SELECT id FROM message_history \
         WHERE (status = 'succeeded' AND finished_at < ?1) \
            OR (status <> 'succeeded' AND finished_at < ?2) LIMIT ?3",
    )
    .bind(ok_before)
    .bind(failed_before)
    .bind(batch)
    .execute(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    let attempts =
        sqlx::query("DELETE FROM attempts WHERE message_id IN (SELECT id FROM temp.purge_ids)")
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
    let messages =
        sqlx::query("DELETE FROM message_history WHERE id IN (SELECT id FROM temp.purge_ids)")
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
    let idempotency_keys = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (name, key) IN (SELECT k.name, k.key FROM \
         idempotency_keys k WHERE k.created_at < ?1 AND NOT EXISTS \
         (SELECT 1 FROM messages m WHERE m.id = k.message_id) LIMIT ?2)",
    )
    .bind(keys_before)
    .bind(batch)
    .execute(&mut *conn)
    .await
    .map_err(from_sqlx)?
    .rows_affected();
    Ok(Purged {
        messages,
        attempts,
        idempotency_keys,
    })
}

// ---- reads (on the reader pool or any connection) ----

pub(crate) async fn get_message(
    conn: &mut SqliteConnection,
    id: &MessageId,
) -> Result<Option<Message>, Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        live_meta!(),
        ", headers, body FROM messages WHERE id = ?1 UNION ALL SELECT ",
        history_meta!(),
        ", headers, body FROM message_history WHERE id = ?1 LIMIT 1"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    Ok(row.as_ref().map(rows::message).transpose()?)
}

/// The two sides of a listing.
const LIST: ListSql<'static> = ListSql {
    live: concat!("SELECT ", live_meta!(), " FROM messages WHERE 1 = 1"),
    history: concat!(
        "SELECT ",
        history_meta!(),
        " FROM message_history WHERE 1 = 1"
    ),
    limit_each_side: false,
};

pub(crate) async fn list(
    conn: &mut SqliteConnection,
    filter: &MessageFilter,
) -> Result<MessagePage, Error> {
    let Some(mut q) = list_query::<Sqlite>(&LIST, filter) else {
        return Ok(MessagePage {
            messages: Vec::new(),
            next: None,
        });
    };
    let rows = q.build().fetch_all(&mut *conn).await.map_err(from_sqlx)?;
    Ok(page(&rows, filter)?)
}

pub(crate) async fn attempts(
    conn: &mut SqliteConnection,
    id: &MessageId,
) -> Result<Vec<Attempt>, Error> {
    let rows = sqlx::query(
        "SELECT message_id, number, worker, started_at, duration_us, response_status, \
         response_body, response_truncated, error_kind, error, contract_violation, outcome, \
         next_attempt_at, response_headers FROM attempts WHERE message_id = ?1 ORDER BY seq",
    )
    .bind(id.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    Ok(rows.iter().map(rows::attempt).collect::<Result<_, _>>()?)
}

/// The attempt log: every attempt, with its `seq`.
const ATTEMPT_LOG: &str = "SELECT seq, message_id, number, worker, started_at, duration_us, \
     response_status, response_body, response_truncated, error_kind, error, \
     contract_violation, outcome, next_attempt_at, response_headers FROM attempts WHERE 1 = 1";

/// One page of the attempt log. (`seq` is the table's rowid: the order costs nothing.)
pub(crate) async fn attempt_log(
    conn: &mut SqliteConnection,
    filter: &AttemptFilter,
) -> Result<AttemptPage, Error> {
    let mut q = attempt_log_query::<Sqlite>(ATTEMPT_LOG, filter);
    let rows = q.build().fetch_all(&mut *conn).await.map_err(from_sqlx)?;
    Ok(attempt_page(&rows, filter)?)
}
