//! The SQL of the SQLite store, and the decoding of its rows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};
use url::Url;

use super::errors::{corrupt, from_sqlx};
use crate::message::{
    Attempt, AttemptError, AttemptErrorKind, Completion, CompletionStatus, Enqueued, Lease,
    Message, MessageId, MessageKind, MessageMeta, MessageStatus, NewMessage, Outcome,
};
use crate::outbox::{Error, ErrorKind, MessageFilter, Purged, Reclaimed};

/// The columns every message query reads, live table first. `headers, body` follow for
/// full reads.
macro_rules! live_meta {
    () => {
        "id, kind, name, url, method, created_at, status, attempts, next_attempt_at, \
         lease_owner, lease_expires_at, lost_leases, NULL AS finished_at, last_error, \
         idempotency_key, endpoint_id, signing_key, ordering_key, metadata"
    };
}
macro_rules! history_meta {
    () => {
        "id, kind, name, url, method, created_at, status, attempts, NULL AS next_attempt_at, \
         NULL AS lease_owner, NULL AS lease_expires_at, lost_leases, finished_at, last_error, \
         idempotency_key, endpoint_id, signing_key, ordering_key, metadata"
    };
}
/// Copies a live row into history (the status, finished_at and last_error are bound).
macro_rules! to_history {
    ($where:literal) => {
        concat!(
            "INSERT OR REPLACE INTO message_history (id, kind, name, url, method, headers, body, \
             created_at, status, attempts, lost_leases, finished_at, last_error, idempotency_key, \
             endpoint_id, signing_key, ordering_key, metadata) \
             SELECT id, kind, name, url, method, headers, body, created_at, ?1, attempts + ?2, \
             lost_leases + ?3, ?4, COALESCE(?5, last_error), idempotency_key, endpoint_id, \
             signing_key, ordering_key, metadata FROM messages WHERE ",
            $where
        )
    };
}
/// Copies history rows back into the live table, due at ?1.
macro_rules! from_history {
    () => {
        "INSERT INTO messages (id, kind, name, url, method, headers, body, created_at, status, \
         attempts, next_attempt_at, lost_leases, last_error, idempotency_key, endpoint_id, \
         signing_key, ordering_key, metadata) \
         SELECT id, kind, name, url, method, headers, body, created_at, 'pending', attempts, ?1, \
         0, last_error, idempotency_key, endpoint_id, signing_key, ordering_key, metadata \
         FROM message_history WHERE "
    };
}

pub(crate) fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn from_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The store-wide settings the queries need.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_body_bytes: usize,
    pub(crate) crash_cap: u32,
    pub(crate) retention_succeeded: Duration,
    pub(crate) retention_failed: Duration,
    pub(crate) idempotency_retention: Duration,
    pub(crate) purge_batch: u32,
}

fn encode_headers(headers: &HeaderMap) -> String {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_headers(id: &str, text: &str) -> Result<HeaderMap, Error> {
    let pairs: Vec<(String, String)> = serde_json::from_str(text).map_err(|e| {
        corrupt(format!(
            "message {id}: stored headers are not valid JSON: {e}"
        ))
    })?;
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            corrupt(format!(
                "message {id}: stored header name `{name}` is invalid"
            ))
        })?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| corrupt(format!("message {id}: stored value of `{name}` is invalid")))?;
        map.append(name, value);
    }
    Ok(map)
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, Error>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| corrupt(format!("reading column `{column}`")).with_source(e))
}

pub(crate) fn meta_from_row(row: &SqliteRow) -> Result<MessageMeta, Error> {
    let id: String = get(row, "id")?;
    let kind: String = get(row, "kind")?;
    let status: String = get(row, "status")?;
    let url: String = get(row, "url")?;
    let method: String = get(row, "method")?;
    let metadata: String = get(row, "metadata")?;
    let lease_owner: Option<String> = get(row, "lease_owner")?;
    let lease_expires_at: Option<i64> = get(row, "lease_expires_at")?;
    let bad = |what: &str| corrupt(format!("message {id}: stored {what} is invalid"));
    Ok(MessageMeta {
        kind: kind.parse::<MessageKind>().map_err(|_| bad("kind"))?,
        name: get(row, "name")?,
        url: Url::parse(&url).map_err(|_| bad("url"))?,
        method: Method::from_bytes(method.as_bytes()).map_err(|_| bad("method"))?,
        created_at: from_ms(get(row, "created_at")?),
        status: status.parse::<MessageStatus>().map_err(|_| bad("status"))?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(0),
        next_attempt_at: get::<Option<i64>>(row, "next_attempt_at")?.map(from_ms),
        lease: match (lease_owner, lease_expires_at) {
            (Some(owner), Some(exp)) => Some(Lease {
                owner,
                expires_at: from_ms(exp),
            }),
            _ => None,
        },
        lost_leases: u32::try_from(get::<i64>(row, "lost_leases")?).unwrap_or(0),
        finished_at: get::<Option<i64>>(row, "finished_at")?.map(from_ms),
        last_error: get(row, "last_error")?,
        idempotency_key: get(row, "idempotency_key")?,
        endpoint_id: get(row, "endpoint_id")?,
        signing_key: get(row, "signing_key")?,
        ordering_key: get(row, "ordering_key")?,
        metadata: serde_json::from_str(&metadata).map_err(|_| bad("metadata"))?,
        id: MessageId::from_stored(id),
    })
}

pub(crate) fn message_from_row(row: &SqliteRow) -> Result<Message, Error> {
    let meta = meta_from_row(row)?;
    let headers: String = get(row, "headers")?;
    let body: Vec<u8> = get(row, "body")?;
    Ok(Message {
        headers: decode_headers(meta.id.as_str(), &headers)?,
        body: Bytes::from(body),
        meta,
    })
}

fn attempt_from_row(row: &SqliteRow) -> Result<Attempt, Error> {
    let error_kind: Option<String> = get(row, "error_kind")?;
    let error: Option<String> = get(row, "error")?;
    let body: Option<Vec<u8>> = get(row, "response_body")?;
    Ok(Attempt {
        message_id: MessageId::from_stored(get(row, "message_id")?),
        number: u32::try_from(get::<i64>(row, "number")?).unwrap_or(0),
        worker: get(row, "worker")?,
        started_at: from_ms(get(row, "started_at")?),
        duration: Duration::from_micros(
            u64::try_from(get::<i64>(row, "duration_us")?).unwrap_or(0),
        ),
        response_status: get::<Option<i64>>(row, "response_status")?
            .and_then(|s| u16::try_from(s).ok()),
        response_body: body.map(Bytes::from).unwrap_or_default(),
        response_truncated: get::<i64>(row, "response_truncated")? != 0,
        error: error_kind.map(|kind| AttemptError {
            kind: kind.parse().unwrap_or(AttemptErrorKind::Other),
            message: error.unwrap_or_default(),
        }),
        contract_violation: get(row, "contract_violation")?,
        outcome: get(row, "outcome")?,
        next_attempt_at: get::<Option<i64>>(row, "next_attempt_at")?.map(from_ms),
    })
}

/// Rows per multi-row INSERT (13 bound values each, far below SQLite's limit).
const ROWS_PER_INSERT: usize = 32;

/// Messages per multi-row INSERT: the writer inserts every enqueue of a batch together, so
/// this is the size of a typical group commit (13 bound values each; SQLite allows 32,766).
const MESSAGES_PER_INSERT: usize = 256;

/// Inserts messages on `conn`, which must be inside a transaction.
pub(crate) async fn insert_messages(
    conn: &mut SqliteConnection,
    messages: &[&NewMessage],
    limits: &Limits,
    now: SystemTime,
) -> Result<Vec<Enqueued>, Error> {
    for message in messages {
        crate::outbox::validate(message, limits.max_body_bytes)?;
    }
    let now = to_ms(now);
    let mut out = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(MESSAGES_PER_INSERT) {
        // Idempotency keys first: a message whose key is taken is not inserted.
        let mut answers: Vec<Option<Enqueued>> = vec![None; chunk.len()];
        for (slot, m) in answers.iter_mut().zip(chunk) {
            let Some(key) = &m.idempotency_key else {
                continue;
            };
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (name, key, message_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )
            .bind(&m.name)
            .bind(key)
            .bind(m.id.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(from_sqlx)?;
            if claimed.rows_affected() == 0 {
                let existing: String = sqlx::query_scalar(
                    "SELECT message_id FROM idempotency_keys WHERE name = ?1 AND key = ?2",
                )
                .bind(&m.name)
                .bind(key)
                .fetch_one(&mut *conn)
                .await
                .map_err(from_sqlx)?;
                *slot = Some(Enqueued {
                    id: MessageId::from_stored(existing),
                    deduplicated: true,
                });
            }
        }
        let to_insert: Vec<&NewMessage> = chunk
            .iter()
            .zip(&answers)
            .filter(|(_, a)| a.is_none())
            .map(|(m, _)| *m)
            .collect();
        let mut inserted: Vec<String> = Vec::new();
        if !to_insert.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO messages (id, kind, name, url, method, headers, body, created_at, \
                 status, attempts, next_attempt_at, idempotency_key, endpoint_id, signing_key, \
                 ordering_key, metadata) ",
            );
            q.push_values(&to_insert, |mut row, m| {
                row.push_bind(m.id.as_str().to_owned())
                    .push_bind(m.kind.as_str())
                    .push_bind(m.name.clone())
                    .push_bind(m.url.as_str().to_owned())
                    .push_bind(m.method.as_str().to_owned())
                    .push_bind(encode_headers(&m.headers))
                    .push_bind(m.body.to_vec())
                    .push_bind(now)
                    .push("'pending'")
                    .push("0")
                    .push_bind(now)
                    .push_bind(m.idempotency_key.clone())
                    .push_bind(m.endpoint_id.clone())
                    .push_bind(m.signing_key.clone())
                    .push_bind(m.ordering_key.clone())
                    .push_bind(
                        serde_json::to_string(&m.metadata).unwrap_or_else(|_| "{}".to_owned()),
                    );
            });
            q.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            inserted = q
                .build_query_scalar::<String>()
                .fetch_all(&mut *conn)
                .await
                .map_err(from_sqlx)?;
        }
        for (answer, m) in answers.into_iter().zip(chunk) {
            out.push(answer.unwrap_or_else(|| Enqueued {
                id: m.id.clone(),
                deduplicated: !inserted.iter().any(|id| id == m.id.as_str()),
            }));
        }
    }
    Ok(out)
}

/// A claimed message as the claim query hands it over: all rows in one JSON document, so
/// a batch crosses from SQLite's thread in one row instead of one per message.
#[derive(serde::Deserialize)]
struct ClaimedRow {
    id: String,
    kind: String,
    name: String,
    url: String,
    method: String,
    created_at: i64,
    attempts: i64,
    next_attempt_at: i64,
    lease_owner: String,
    lease_expires_at: i64,
    lost_leases: i64,
    last_error: Option<String>,
    idempotency_key: Option<String>,
    endpoint_id: Option<String>,
    signing_key: Option<String>,
    ordering_key: Option<String>,
    metadata: serde_json::Map<String, serde_json::Value>,
    headers: Vec<(String, String)>,
    body: String,
}

fn unhex(id: &str, text: &str) -> Result<Vec<u8>, Error> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| corrupt(format!("message {id}: the claimed body is not hex")))
}

impl ClaimedRow {
    fn into_message(self) -> Result<Message, Error> {
        let bad = |what: &str| corrupt(format!("message {}: stored {what} is invalid", self.id));
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("header name"))?;
            let value = HeaderValue::from_str(value).map_err(|_| bad("header value"))?;
            headers.append(name, value);
        }
        let body = Bytes::from(unhex(&self.id, &self.body)?);
        let meta = MessageMeta {
            kind: self.kind.parse().map_err(|_| bad("kind"))?,
            url: Url::parse(&self.url).map_err(|_| bad("url"))?,
            method: Method::from_bytes(self.method.as_bytes()).map_err(|_| bad("method"))?,
            created_at: from_ms(self.created_at),
            status: MessageStatus::Leased,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: Some(from_ms(self.next_attempt_at)),
            lease: Some(Lease {
                owner: self.lease_owner,
                expires_at: from_ms(self.lease_expires_at),
            }),
            lost_leases: u32::try_from(self.lost_leases).unwrap_or(0),
            finished_at: None,
            last_error: self.last_error,
            idempotency_key: self.idempotency_key,
            endpoint_id: self.endpoint_id,
            signing_key: self.signing_key,
            ordering_key: self.ordering_key,
            metadata: self.metadata,
            name: self.name,
            id: MessageId::from_stored(self.id),
        };
        Ok(Message {
            meta,
            headers,
            body,
        })
    }
}

/// Creates the connection-local scratch table the claim uses (once per writer connection).
pub(crate) async fn prepare_writer(conn: &mut SqliteConnection) -> Result<(), Error> {
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS claim_ids (id TEXT PRIMARY KEY) WITHOUT ROWID")
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

pub(crate) async fn claim(
    conn: &mut SqliteConnection,
    owner: &str,
    limit: usize,
    lease: Duration,
    now: SystemTime,
) -> Result<Vec<Message>, Error> {
    let now = to_ms(now);
    let picked = sqlx::query(
        "INSERT INTO temp.claim_ids (id) SELECT id FROM messages WHERE status = 'pending' \
         AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
    )
    .bind(now)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await
    .map_err(from_sqlx)?
    .rows_affected();
    if picked == 0 {
        return Ok(Vec::new());
    }
    sqlx::query(
        "UPDATE messages SET status = 'leased', lease_owner = ?1, lease_expires_at = ?2 \
         WHERE id IN (SELECT id FROM temp.claim_ids)",
    )
    .bind(owner)
    .bind(now.saturating_add(duration_ms(lease)))
    .execute(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    let document: String = sqlx::query_scalar(
        "SELECT json_group_array(json_object('id', id, 'kind', kind, 'name', name, 'url', url, \
         'method', method, 'created_at', created_at, 'attempts', attempts, \
         'next_attempt_at', next_attempt_at, 'lease_owner', lease_owner, \
         'lease_expires_at', lease_expires_at, 'lost_leases', lost_leases, \
         'last_error', last_error, 'idempotency_key', idempotency_key, \
         'endpoint_id', endpoint_id, 'signing_key', signing_key, 'ordering_key', ordering_key, \
         'metadata', json(metadata), 'headers', json(headers), 'body', hex(body))) \
         FROM (SELECT * FROM messages WHERE id IN (SELECT id FROM temp.claim_ids) \
         ORDER BY next_attempt_at, id)",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    sqlx::query("DELETE FROM temp.claim_ids")
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    let rows: Vec<ClaimedRow> = serde_json::from_str(&document)
        .map_err(|e| corrupt(format!("claimed messages could not be read back: {e}")))?;
    rows.into_iter().map(ClaimedRow::into_message).collect()
}

fn last_error_of(c: &Completion) -> Option<String> {
    if let Outcome::Failed { reason } = &c.outcome {
        return Some(reason.clone());
    }
    if let Some(e) = &c.attempt.error {
        return Some(format!("{}: {}", e.kind, e.message));
    }
    match c.attempt.response_status {
        Some(s) if !(200..300).contains(&s) => Some(format!("HTTP {s}")),
        _ => None,
    }
}

pub(crate) async fn complete(
    conn: &mut SqliteConnection,
    completions: &[Completion],
    now: SystemTime,
) -> Result<Vec<CompletionStatus>, Error> {
    let now_ms = to_ms(now);
    // Every attempt is recorded, in multi-row inserts.
    for chunk in completions.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO attempts (message_id, number, worker, started_at, duration_us, \
             response_status, response_body, response_truncated, error_kind, error, \
             contract_violation, outcome, next_attempt_at) ",
        );
        q.push_values(chunk, |mut row, c| {
            let a = &c.attempt;
            let next_at = match &c.outcome {
                Outcome::Retry { at } => Some(to_ms(*at)),
                _ => None,
            };
            let body = (a.response_status.is_some() || !a.response_body.is_empty())
                .then(|| a.response_body.to_vec());
            row.push_bind(c.message_id.as_str().to_owned())
                .push_bind(i64::from(a.number))
                .push_bind(c.owner.clone())
                .push_bind(to_ms(a.started_at))
                .push_bind(i64::try_from(a.duration.as_micros()).unwrap_or(i64::MAX))
                .push_bind(a.response_status.map(i64::from))
                .push_bind(body)
                .push_bind(i64::from(a.response_truncated))
                .push_bind(a.error.as_ref().map(|e| e.kind.as_str()))
                .push_bind(a.error.as_ref().map(|e| e.message.clone()))
                .push_bind(a.contract_violation.clone())
                .push_bind(c.outcome.as_str())
                .push_bind(next_at);
        });
        q.build().execute(&mut *conn).await.map_err(from_sqlx)?;
    }

    // Successes, the common case, move to history together, per owner.
    let mut applied: Vec<bool> = vec![false; completions.len()];
    let mut owners: Vec<&str> = completions
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Succeeded))
        .map(|c| c.owner.as_str())
        .collect();
    owners.sort_unstable();
    owners.dedup();
    for owner in owners {
        let ids: Vec<&str> = completions
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Succeeded) && c.owner == owner)
            .map(|c| c.message_id.as_str())
            .collect();
        let json = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned());
        // Usually none: the ids whose lease this owner no longer holds.
        let lost: Vec<String> = sqlx::query_scalar(
            "SELECT value FROM json_each(?1) WHERE value NOT IN \
             (SELECT id FROM messages WHERE status = 'leased' AND lease_owner = ?2)",
        )
        .bind(&json)
        .bind(owner)
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
        sqlx::query(to_history!(
            "id IN (SELECT value FROM json_each(?6)) AND status = 'leased' AND lease_owner = ?7"
        ))
        .bind("succeeded")
        .bind(1i64)
        .bind(0i64)
        .bind(now_ms)
        .bind(None::<String>)
        .bind(&json)
        .bind(owner)
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
        sqlx::query(
            "DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?1)) \
             AND status = 'leased' AND lease_owner = ?2",
        )
        .bind(&json)
        .bind(owner)
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
        for (done, c) in applied.iter_mut().zip(completions) {
            if matches!(c.outcome, Outcome::Succeeded)
                && c.owner == owner
                && !lost.iter().any(|id| id == c.message_id.as_str())
            {
                *done = true;
            }
        }
    }

    // Retries and failures, one by one.
    for (done, c) in applied.iter_mut().zip(completions) {
        let last_error = last_error_of(c);
        match &c.outcome {
            Outcome::Succeeded => {}
            Outcome::Retry { at } => {
                *done = sqlx::query(
                    "UPDATE messages SET status = 'pending', attempts = attempts + 1, \
                     next_attempt_at = ?1, lease_owner = NULL, lease_expires_at = NULL, \
                     last_error = ?2 WHERE id = ?3 AND status = 'leased' AND lease_owner = ?4",
                )
                .bind(to_ms(*at))
                .bind(last_error)
                .bind(c.message_id.as_str())
                .bind(&c.owner)
                .execute(&mut *conn)
                .await
                .map_err(from_sqlx)?
                .rows_affected()
                    > 0;
            }
            Outcome::Failed { .. } => {
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
    }
    Ok(applied
        .into_iter()
        .map(|done| {
            if done {
                CompletionStatus::Applied
            } else {
                CompletionStatus::LeaseLost
            }
        })
        .collect())
}

/// Moves one live message to history. With `owner`, only if that owner still leases it.
#[allow(clippy::too_many_arguments)]
async fn move_to_history(
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
        .map(|r| get::<String>(r, "id").map(MessageId::from_stored))
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
    let reason = format!(
        "abandoned: {cap} workers claimed it and stopped without recording an outcome (crash cap)"
    );
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

pub(crate) async fn retry(
    conn: &mut SqliteConnection,
    id: &MessageId,
    now: SystemTime,
) -> Result<MessageMeta, Error> {
    if let Some(live) = live_meta(conn, id).await? {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "message {id} is {} and will be attempted again on its own; only finished messages can be retried",
                live.status
            ),
        ));
    }
    let copied = sqlx::query(concat!(from_history!(), "id = ?2"))
        .bind(to_ms(now))
        .bind(id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if copied == 0 {
        return Err(not_found(id));
    }
    sqlx::query("DELETE FROM message_history WHERE id = ?1")
        .bind(id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    live_meta(conn, id).await?.ok_or_else(|| not_found(id))
}

fn not_found(id: &MessageId) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("no message {id} in the outbox (it may have been purged after its retention)"),
    )
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
    row.as_ref().map(meta_from_row).transpose()
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
    row.as_ref().map(meta_from_row).transpose()
}

/// Pushes the filter's conditions (except status) on a query that already has a WHERE.
fn push_conditions(q: &mut QueryBuilder<Sqlite>, filter: &MessageFilter) {
    if let Some(kind) = filter.kind {
        q.push(" AND kind = ").push_bind(kind.as_str());
    }
    if let Some(name) = &filter.name {
        q.push(" AND name = ").push_bind(name.clone());
    }
    if let Some(endpoint) = &filter.endpoint_id {
        q.push(" AND endpoint_id = ").push_bind(endpoint.clone());
    }
    if let Some(after) = filter.created_after {
        q.push(" AND created_at >= ").push_bind(to_ms(after));
    }
    if let Some(before) = filter.created_before {
        q.push(" AND created_at < ").push_bind(to_ms(before));
    }
}

fn push_statuses(q: &mut QueryBuilder<Sqlite>, statuses: &[MessageStatus]) {
    q.push(" AND status IN (");
    let mut sep = q.separated(", ");
    for s in statuses {
        sep.push_bind(s.as_str());
    }
    q.push(")");
}

pub(crate) async fn replay(
    conn: &mut SqliteConnection,
    filter: &MessageFilter,
    now: SystemTime,
) -> Result<u64, Error> {
    let statuses: Vec<MessageStatus> = if filter.statuses.is_empty() {
        vec![MessageStatus::Failed]
    } else {
        filter
            .statuses
            .iter()
            .copied()
            .filter(|s| !s.is_live())
            .collect()
    };
    if statuses.is_empty() {
        return Ok(0);
    }
    let mut q = QueryBuilder::<Sqlite>::new("SELECT id FROM message_history WHERE 1 = 1");
    push_statuses(&mut q, &statuses);
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
        return history_meta(conn, id).await?.ok_or_else(|| not_found(id));
    }
    match history_meta(conn, id).await? {
        Some(done) => Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "message {id} is already {}; only live messages can be cancelled",
                done.status
            ),
        )),
        None => Err(not_found(id)),
    }
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
    row.as_ref().map(message_from_row).transpose()
}

pub(crate) async fn list(
    conn: &mut SqliteConnection,
    filter: &MessageFilter,
) -> Result<(Vec<MessageMeta>, bool), Error> {
    let limit = filter.effective_limit();
    let live: Vec<MessageStatus> = filter
        .statuses
        .iter()
        .copied()
        .filter(|s| s.is_live())
        .collect();
    let done: Vec<MessageStatus> = filter
        .statuses
        .iter()
        .copied()
        .filter(|s| !s.is_live())
        .collect();
    let any = filter.statuses.is_empty();
    let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM (");
    let mut parts = 0;
    for (table_is_live, statuses) in [(true, &live), (false, &done)] {
        if !any && statuses.is_empty() {
            continue;
        }
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        parts += 1;
        if table_is_live {
            q.push(concat!(
                "SELECT ",
                live_meta!(),
                " FROM messages WHERE 1 = 1"
            ));
        } else {
            q.push(concat!(
                "SELECT ",
                history_meta!(),
                " FROM message_history WHERE 1 = 1"
            ));
        }
        if !any {
            push_statuses(&mut q, statuses);
        }
        push_conditions(&mut q, filter);
        if let Some(before) = &filter.before {
            q.push(" AND id < ").push_bind(before.as_str().to_owned());
        }
    }
    if parts == 0 {
        return Ok((Vec::new(), false));
    }
    q.push(") ORDER BY id DESC LIMIT ")
        .push_bind(i64::try_from(limit).unwrap_or(1000) + 1);
    let rows = q.build().fetch_all(&mut *conn).await.map_err(from_sqlx)?;
    let more = rows.len() > limit;
    let messages = rows
        .iter()
        .take(limit)
        .map(meta_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((messages, more))
}

pub(crate) async fn attempts(
    conn: &mut SqliteConnection,
    id: &MessageId,
) -> Result<Vec<Attempt>, Error> {
    let rows = sqlx::query(
        "SELECT message_id, number, worker, started_at, duration_us, response_status, \
         response_body, response_truncated, error_kind, error, contract_violation, outcome, \
         next_attempt_at FROM attempts WHERE message_id = ?1 ORDER BY seq",
    )
    .bind(id.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(attempt_from_row).collect()
}
