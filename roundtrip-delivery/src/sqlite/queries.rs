//! The SQL of the SQLite store, and the decoding of its rows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};
use url::Url;

use super::errors::{corrupt, from_sqlx};
use crate::message::{
    Attempt, AttemptError, AttemptErrorKind, Completion, Decision, Enqueued, Lease, LeaseCheck,
    Message, MessageId, MessageKind, MessageMeta, MessageStatus, NewMessage,
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
    if headers.is_empty() {
        return "[]".to_owned();
    }
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
        decision: get(row, "outcome")?,
        next_attempt_at: get::<Option<i64>>(row, "next_attempt_at")?.map(from_ms),
    })
}

/// Rows per multi-row INSERT of attempts (13 bound values each, far below SQLite's limit).
const ROWS_PER_INSERT: usize = 64;
/// Rows per multi-row INSERT of messages (14 bound values each).
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
    let mut answers = insert_many(conn, &[messages], now).await?;
    Ok(answers.pop().unwrap_or_default())
}

/// Writes `(?, ?, ...)` for `columns` parameters.
///
/// Multi-row statements use anonymous parameters: sqlx asks SQLite for the name of every
/// parameter it binds, and for numbered ones (`?NNN`) SQLite answers by scanning the list
/// of all of them, which makes binding a 700-parameter statement quadratic.
fn push_row(sql: &mut String, columns: usize) {
    sql.push('(');
    for c in 0..columns {
        sql.push_str(if c == 0 { "?" } else { ", ?" });
    }
    sql.push(')');
}

/// Inserts the messages of several `enqueue` calls (`jobs`, already validated) on `conn`,
/// inside a transaction, in as few statements as possible, and answers each call as if it
/// had run alone, one after the other: an idempotency key or an id taken by an earlier
/// message (of this call, an earlier call, or the table) deduplicates the later one.
pub(crate) async fn insert_many(
    conn: &mut SqliteConnection,
    jobs: &[&[NewMessage]],
    now: SystemTime,
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
            chunk.iter().map(|&i| all[i]),
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

/// Appends the multi-row `INSERT` of `messages` and binds its parameters. `deduplicate`:
/// skip ids already stored and return the ids inserted; otherwise a taken id fails the
/// statement.
fn push_insert<'m>(
    sql: &mut String,
    args: &mut SqliteArguments,
    messages: impl Iterator<Item = &'m NewMessage>,
    now: i64,
    deduplicate: bool,
) -> Result<(), Error> {
    sql.push_str(
        "INSERT INTO messages (status, attempts, created_at, next_attempt_at, id, kind, name, \
         url, method, headers, body, idempotency_key, endpoint_id, signing_key, \
         ordering_key, metadata) VALUES ",
    );
    for (n, m) in messages.enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        sql.push_str("('pending', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
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
        jobs.iter().flat_map(|job| job.iter()),
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
        return Err(Failed::Commit(corrupt(
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

fn push_arg<'q, T>(args: &mut SqliteArguments, value: T) -> Result<(), Error>
where
    T: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>,
{
    use sqlx::Arguments;
    args.add(value)
        .map_err(|e| Error::new(ErrorKind::Invalid, "a value could not be bound").with_source(e))
}

fn encode_metadata(metadata: &serde_json::Map<String, serde_json::Value>) -> String {
    if metadata.is_empty() {
        return "{}".to_owned();
    }
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
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

/// The claim, in one round trip to SQLite's thread: pick the oldest due ids, lease them,
/// read them back as one JSON document, and empty the scratch table. Parameters, in order:
/// now, the limit, the owner, the lease's expiry.
const CLAIM: &str = "INSERT INTO temp.claim_ids (id) SELECT id FROM messages \
     WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?; \
     UPDATE messages SET status = 'leased', lease_owner = ?, lease_expires_at = ? \
     WHERE id IN (SELECT id FROM temp.claim_ids); \
     SELECT json_group_array(json_object('id', id, 'kind', kind, 'name', name, 'url', url, \
     'method', method, 'created_at', created_at, 'attempts', attempts, \
     'next_attempt_at', next_attempt_at, 'lease_owner', lease_owner, \
     'lease_expires_at', lease_expires_at, 'lost_leases', lost_leases, \
     'last_error', last_error, 'idempotency_key', idempotency_key, \
     'endpoint_id', endpoint_id, 'signing_key', signing_key, 'ordering_key', ordering_key, \
     'metadata', json(metadata), 'headers', json(headers), 'body', hex(body))) \
     FROM (SELECT * FROM messages WHERE id IN (SELECT id FROM temp.claim_ids) \
     ORDER BY next_attempt_at, id); \
     DELETE FROM temp.claim_ids";

pub(crate) async fn claim(
    conn: &mut SqliteConnection,
    owner: &str,
    limit: usize,
    lease: Duration,
    now: SystemTime,
) -> Result<Vec<Message>, Error> {
    let now = to_ms(now);
    // Several statements in one query: only the SELECT yields a row. `fetch_all` runs them
    // all (`fetch_one` would stop after the row, before the scratch table is emptied).
    let rows = sqlx::query(CLAIM)
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(owner)
        .bind(now.saturating_add(duration_ms(lease)))
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    let document: String = match rows.first() {
        Some(row) => row
            .try_get(0)
            .map_err(|e| corrupt("reading the claimed messages").with_source(e))?,
        None => return Err(corrupt("the claim returned no document")),
    };
    if document == "[]" {
        return Ok(Vec::new());
    }
    let rows: Vec<ClaimedRow> = serde_json::from_str(&document)
        .map_err(|e| corrupt(format!("claimed messages could not be read back: {e}")))?;
    rows.into_iter().map(ClaimedRow::into_message).collect()
}

fn last_error_of(c: &Completion) -> Option<String> {
    if let Decision::Failed { reason } = &c.decision {
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

/// Columns of an attempt row, in the order [`push_attempt`] binds them.
const ATTEMPT_COLUMNS: usize = 13;

/// Appends `INSERT INTO attempts ... VALUES ...` for `rows` rows.
fn attempts_sql(sql: &mut String, rows: usize) {
    sql.push_str(
        "INSERT INTO attempts (message_id, number, worker, started_at, duration_us, \
         response_status, response_body, response_truncated, error_kind, error, \
         contract_violation, outcome, next_attempt_at) VALUES ",
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
    let body = (a.response_status.is_some() || !a.response_body.is_empty())
        .then(|| a.response_body.to_vec());
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
    push_arg(args, next_at)
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
