//! Leases on SQLite: the claim, renewals, releases, and taking back the leases of workers
//! that vanished.

use std::time::{Duration, SystemTime};

use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};

use super::complete::move_to_history;
use super::from_sqlx;
use super::rows::ClaimedRow;
use crate::message::{Message, MessageId};
use crate::outbox::{Error, Reclaimed};
use crate::store::rows::{crash_cap_reason, get};
use crate::store::time::{duration_ms, to_ms};

/// Creates the connection-local scratch table the claim uses (once per writer connection).
pub(crate) async fn prepare_writer(conn: &mut SqliteConnection) -> Result<(), Error> {
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS claim_ids (id TEXT PRIMARY KEY) WITHOUT ROWID")
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

/// The claim, in one query: pick the oldest due ids, lease them,
/// read them back as one JSON document (the second column of the one row it answers, beside
/// `'claimed'`), and empty the scratch table. Parameters, anonymous and in order: now, the
/// limit, the owner, the lease's expiry.
pub(crate) const CLAIM: &str = "INSERT INTO temp.claim_ids (id) SELECT id FROM messages \
     WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?; \
     UPDATE messages SET status = 'leased', lease_owner = ?, lease_expires_at = ? \
     WHERE id IN (SELECT id FROM temp.claim_ids); \
     SELECT 'claimed', json_group_array(json_object('id', id, 'kind', kind, 'name', name, 'url', url, \
     'method', method, 'created_at', created_at, 'attempts', attempts, \
     'next_attempt_at', next_attempt_at, 'lease_owner', lease_owner, \
     'lease_expires_at', lease_expires_at, 'lost_leases', lost_leases, \
     'last_error', last_error, 'idempotency_key', idempotency_key, \
     'endpoint_id', endpoint_id, 'signing_key', signing_key, 'ordering_key', ordering_key, \
     'metadata', json(metadata), 'headers', json(headers), 'body', hex(body))) \
     FROM (SELECT * FROM messages WHERE id IN (SELECT id FROM temp.claim_ids) \
     ORDER BY next_attempt_at, id); \
     DELETE FROM temp.claim_ids";

/// Runs the claim and answers the claimed messages as the JSON document the query built.
/// The caller reads it with [`read_claimed`], outside the writer: the writer and SQLite's
/// thread are the one serial path every write takes, and reading the messages (their JSON,
/// their URLs) is work that need not hold them up.
pub(crate) async fn claim(
    conn: &mut SqliteConnection,
    owner: &str,
    limit: usize,
    lease: Duration,
    now: SystemTime,
    whole: Option<&str>,
) -> Result<String, Error> {
    let now = to_ms(now);
    // Run alone, the claim's query opens and commits its transaction too: one round trip
    // to SQLite's thread for the whole transaction.
    let sql = match whole {
        Some(begin) => std::borrow::Cow::Owned(format!("{begin}; {CLAIM}; COMMIT")),
        None => std::borrow::Cow::Borrowed(CLAIM),
    };
    // Several statements in one query: only the SELECT yields a row. `fetch_all` runs them
    // all (`fetch_one` would stop after the row, before the scratch table is emptied).
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(owner)
        .bind(now.saturating_add(duration_ms(lease)))
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    match rows.first() {
        Some(row) => row
            .try_get(1)
            .map_err(|e| Error::corrupt("reading the claimed messages").with_source(e)),
        None => Err(Error::corrupt("the claim returned no document")),
    }
}

/// The messages of a claim's JSON document (see [`claim`]).
///
/// The claim has committed by then. A row that cannot be read (a damaged value) is left
/// out, with a warning, rather than failing the others: it stays leased until its lease
/// expires, and being reclaimed again and again it is failed at the crash cap, alone.
pub(crate) fn read_claimed(document: &str) -> Result<Vec<Message>, Error> {
    if document == "[]" {
        return Ok(Vec::new());
    }
    let rows: Vec<ClaimedRow> = serde_json::from_str(document)
        .map_err(|e| Error::corrupt(format!("claimed messages could not be read back: {e}")))?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let id = row.id.clone();
            match row.into_message() {
                Ok(message) => Some(message),
                Err(e) => {
                    tracing::warn!(message_id = %id, error = %Error::from(e), "a claimed message could not be read; it will be failed at the crash cap");
                    None
                }
            }
        })
        .collect())
}

pub(crate) async fn renew(
    conn: &mut SqliteConnection,
    owner: &str,
    ids: &[MessageId],
    lease: Duration,
    now: SystemTime,
) -> Result<Vec<MessageId>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<&str> = ids.iter().map(MessageId::as_str).collect();
    let json = serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned());
    let rows = sqlx::query(
        "UPDATE messages SET lease_expires_at = ?1 WHERE status = 'leased' AND lease_owner = ?2 \
         AND id IN (SELECT value FROM json_each(?3)) RETURNING id",
    )
    .bind(to_ms(now).saturating_add(duration_ms(lease)))
    .bind(owner)
    .bind(json)
    .fetch_all(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| Ok(MessageId::from_stored(get(r, "id")?)))
        .collect()
}

pub(crate) async fn release(conn: &mut SqliteConnection, owner: &str) -> Result<u64, Error> {
    Ok(sqlx::query(
        "UPDATE messages SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL \
         WHERE status = 'leased' AND lease_owner = ?1",
    )
    .bind(owner)
    .execute(&mut *conn)
    .await
    .map_err(from_sqlx)?
    .rows_affected())
}

/// Which leases [`reclaim`] takes back.
pub(crate) enum LeaseScope<'a> {
    Expired,
    Owner(&'a str),
}

pub(crate) async fn reclaim(
    conn: &mut SqliteConnection,
    scope: LeaseScope<'_>,
    crash_cap: u32,
    now: SystemTime,
) -> Result<Reclaimed, Error> {
    let now_ms = to_ms(now);
    let cap = i64::from(crash_cap.max(1));
    let reason = crash_cap_reason(crash_cap.max(1));
    let owner = match scope {
        LeaseScope::Expired => None,
        LeaseScope::Owner(owner) => Some(owner.to_owned()),
    };
    let push_scope = |q: &mut QueryBuilder<Sqlite>| match &owner {
        None => {
            q.push(" AND lease_expires_at <= ").push_bind(now_ms);
        }
        Some(owner) => {
            q.push(" AND lease_owner = ").push_bind(owner.clone());
        }
    };
    // Messages at the cap go to history as failed.
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT id FROM messages WHERE status = 'leased' AND lost_leases + 1 >= ",
    );
    q.push_bind(cap);
    push_scope(&mut q);
    let ids: Vec<String> = q
        .build_query_scalar::<String>()
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    for id in &ids {
        let id = MessageId::from_stored(id.clone());
        move_to_history(conn, &id, None, "failed", 0, 1, now_ms, Some(&reason)).await?;
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "UPDATE messages SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, \
         lost_leases = lost_leases + 1 WHERE status = 'leased'",
    );
    push_scope(&mut q);
    let requeued = q
        .build()
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    Ok(Reclaimed {
        requeued,
        failed: ids.len() as u64,
    })
}
