//! Running the statements of the PostgreSQL store, and decoding its rows.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Postgres, QueryBuilder, Row};
use url::Url;

use super::errors::{corrupt, from_sqlx};
use super::sql::{self, Statements};
use crate::message::{
    Attempt, AttemptError, AttemptErrorKind, Completion, Decision, Enqueued, Lease, LeaseCheck,
    Message, MessageId, MessageKind, MessageMeta, MessageStatus, NewMessage,
};
use crate::outbox::{Error, ErrorKind, MessageFilter, Purged, Reclaimed};

/// Microseconds since the Unix epoch (negative before it).
pub(crate) fn to_us(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn from_us(us: i64) -> SystemTime {
    if us >= 0 {
        UNIX_EPOCH + Duration::from_micros(us as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(us.unsigned_abs())
    }
}

pub(crate) fn duration_us(d: Duration) -> i64 {
    // A lease or retention longer than this is "forever" for a queue; the cap keeps the
    // interval arithmetic in range.
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
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

/// PostgreSQL text cannot hold NUL, and `jsonb` refuses `\u0000`: refuse such a message
/// with a clear error before anything is written, instead of a database error mid-batch.
pub(crate) fn check_storable(m: &NewMessage) -> Result<(), Error> {
    let texts = [
        ("name", Some(m.name.as_str())),
        ("idempotency key", m.idempotency_key.as_deref()),
        ("endpoint id", m.endpoint_id.as_deref()),
        ("signing key", m.signing_key.as_deref()),
        ("ordering key", m.ordering_key.as_deref()),
    ];
    for (what, text) in texts {
        if text.is_some_and(|t| t.contains('\0')) {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "message {}: the {what} contains a NUL character, which PostgreSQL cannot store",
                    m.id
                ),
            ));
        }
    }
    if metadata_has_nul(&serde_json::Value::Object(m.metadata.clone())) {
        return Err(Error::new(
            ErrorKind::Invalid,
            format!(
                "message {}: the metadata contains a NUL character, which PostgreSQL cannot store",
                m.id
            ),
        ));
    }
    Ok(())
}

fn metadata_has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(metadata_has_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains('\0') || metadata_has_nul(v)),
        _ => false,
    }
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, Error>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| corrupt(format!("reading column `{column}`")).with_source(e))
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

pub(crate) fn meta_from_row(row: &PgRow) -> Result<MessageMeta, Error> {
    let id: String = get(row, "id")?;
    let kind: String = get(row, "kind")?;
    let status: String = get(row, "status")?;
    let url: String = get(row, "url")?;
    let method: String = get(row, "method")?;
    let metadata: String = get(row, "metadata")?;
    let lease_owner: Option<String> = get(row, "lease_owner")?;
    let lease_us: Option<i64> = get(row, "lease_us")?;
    let bad = |what: &str| corrupt(format!("message {id}: stored {what} is invalid"));
    Ok(MessageMeta {
        kind: kind.parse::<MessageKind>().map_err(|_| bad("kind"))?,
        name: get(row, "name")?,
        url: Url::parse(&url).map_err(|_| bad("url"))?,
        method: Method::from_bytes(method.as_bytes()).map_err(|_| bad("method"))?,
        created_at: from_us(get(row, "created_us")?),
        status: status.parse::<MessageStatus>().map_err(|_| bad("status"))?,
        attempts: count(get(row, "attempts")?),
        next_attempt_at: get::<Option<i64>>(row, "next_us")?.map(from_us),
        lease: match (lease_owner, lease_us) {
            (Some(owner), Some(exp)) => Some(Lease {
                owner,
                expires_at: from_us(exp),
            }),
            _ => None,
        },
        lost_leases: count(get(row, "lost_leases")?),
        finished_at: get::<Option<i64>>(row, "finished_us")?.map(from_us),
        last_error: get(row, "last_error")?,
        idempotency_key: get(row, "idempotency_key")?,
        endpoint_id: get(row, "endpoint_id")?,
        signing_key: get(row, "signing_key")?,
        ordering_key: get(row, "ordering_key")?,
        metadata: serde_json::from_str(&metadata).map_err(|_| bad("metadata"))?,
        id: MessageId::from_stored(id),
    })
}

pub(crate) fn message_from_row(row: &PgRow) -> Result<Message, Error> {
    let meta = meta_from_row(row)?;
    let headers: String = get(row, "headers")?;
    let body: Vec<u8> = get(row, "body")?;
    Ok(Message {
        headers: decode_headers(meta.id.as_str(), &headers)?,
        body: Bytes::from(body),
        meta,
    })
}

fn attempt_from_row(row: &PgRow) -> Result<Attempt, Error> {
    let error_kind: Option<String> = get(row, "error_kind")?;
    let error: Option<String> = get(row, "error")?;
    let body: Option<Vec<u8>> = get(row, "response_body")?;
    Ok(Attempt {
        message_id: MessageId::from_stored(get(row, "message_id")?),
        number: count(get(row, "number")?),
        worker: get(row, "worker")?,
        started_at: from_us(get(row, "started_us")?),
        duration: Duration::from_micros(
            u64::try_from(get::<i64>(row, "duration_us")?).unwrap_or(0),
        ),
        response_status: get::<Option<i32>>(row, "response_status")?
            .and_then(|s| u16::try_from(s).ok()),
        response_body: body.map(Bytes::from).unwrap_or_default(),
        response_truncated: get(row, "response_truncated")?,
        error: error_kind.map(|kind| AttemptError {
            kind: kind.parse().unwrap_or(AttemptErrorKind::Other),
            message: error.unwrap_or_default(),
        }),
        contract_violation: get(row, "contract_violation")?,
        decision: get(row, "outcome")?,
        next_attempt_at: get::<Option<i64>>(row, "next_us")?.map(from_us),
    })
}

/// Whether a message with an idempotency key is new, or answers an earlier one.
enum Slot {
    /// Insert this message (index into the batch).
    Insert,
    /// Deduplicated: answer this id.
    Existing(MessageId),
}

/// Inserts `messages` on `conn`, which must be inside a transaction (or a savepoint), and
/// sends the wake-up on `channel` if any was stored. The notification is delivered when the
/// transaction commits, and never if it rolls back.
pub(crate) async fn insert_messages(
    conn: &mut PgConnection,
    sql: &Statements,
    messages: &[NewMessage],
    channel: Option<&str>,
) -> Result<Vec<Enqueued>, Error> {
    let slots = claim_keys(conn, sql, messages).await?;
    let fresh: Vec<&NewMessage> = messages
        .iter()
        .zip(&slots)
        .filter(|(_, s)| matches!(s, Slot::Insert))
        .map(|(m, _)| m)
        .collect();
    let inserted = insert_rows(conn, sql, &fresh, channel).await?;
    Ok(answers(messages, slots, &inserted))
}

/// Inserts messages that carry no idempotency key in one statement, which also sends the
/// wake-up; on a connection outside a transaction it commits on its own.
pub(crate) async fn insert_unkeyed<'e, E>(
    executor: E,
    sql: &Statements,
    messages: &[NewMessage],
    channel: &str,
) -> Result<Vec<Enqueued>, Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let refs: Vec<&NewMessage> = messages.iter().collect();
    let inserted = insert_rows(executor, sql, &refs, Some(channel)).await?;
    let slots = messages.iter().map(|_| Slot::Insert).collect();
    Ok(answers(messages, slots, &inserted))
}

fn answers(
    messages: &[NewMessage],
    slots: Vec<Slot>,
    inserted: &std::collections::HashSet<String>,
) -> Vec<Enqueued> {
    messages
        .iter()
        .zip(slots)
        .map(|(m, slot)| match slot {
            Slot::Insert => Enqueued {
                id: m.id.clone(),
                deduplicated: !inserted.contains(m.id.as_str()),
            },
            Slot::Existing(id) => Enqueued {
                id,
                deduplicated: true,
            },
        })
        .collect()
}

/// Takes the idempotency keys of `messages`: the first message of each (name, key) that is
/// new is inserted, every other one answers the id already stored.
async fn claim_keys(
    conn: &mut PgConnection,
    sql: &Statements,
    messages: &[NewMessage],
) -> Result<Vec<Slot>, Error> {
    // The first message of the batch with each key; later ones answer its outcome.
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        if let Some(key) = &m.idempotency_key {
            first.entry((m.name.as_str(), key.as_str())).or_insert(i);
        }
    }
    let mut winners: HashMap<(&str, &str), MessageId> = HashMap::new();
    if !first.is_empty() {
        let mut pending: Vec<((&str, &str), usize)> = first.iter().map(|(k, i)| (*k, *i)).collect();
        pending.sort_by_key(|(_, i)| *i);
        // A key can vanish between the insert and the read that finds its holder (purged by
        // another process); go round again for those, a bounded number of times.
        for _ in 0..3 {
            if pending.is_empty() {
                break;
            }
            let names: Vec<&str> = pending.iter().map(|((n, _), _)| *n).collect();
            let keys: Vec<&str> = pending.iter().map(|((_, k), _)| *k).collect();
            let ids: Vec<&str> = pending
                .iter()
                .map(|(_, i)| messages[*i].id.as_str())
                .collect();
            let rows = sqlx::query(AssertSqlSafe(sql.insert_keys.clone()))
                .bind(&names)
                .bind(&keys)
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await
                .map_err(from_sqlx)?;
            let mut taken = std::collections::HashSet::new();
            for row in &rows {
                let name: String = get(row, "name")?;
                let key: String = get(row, "key")?;
                taken.insert((name, key));
            }
            let mut lost = Vec::new();
            for (k, i) in pending.drain(..) {
                if taken.contains(&(k.0.to_owned(), k.1.to_owned())) {
                    winners.insert(k, messages[i].id.clone());
                } else {
                    lost.push((k, i));
                }
            }
            if lost.is_empty() {
                break;
            }
            let names: Vec<&str> = lost.iter().map(|((n, _), _)| *n).collect();
            let keys: Vec<&str> = lost.iter().map(|((_, k), _)| *k).collect();
            let rows = sqlx::query(AssertSqlSafe(sql.select_keys.clone()))
                .bind(&names)
                .bind(&keys)
                .fetch_all(&mut *conn)
                .await
                .map_err(from_sqlx)?;
            let mut holders: HashMap<(String, String), String> = HashMap::new();
            for row in &rows {
                holders.insert(
                    (get(row, "name")?, get(row, "key")?),
                    get(row, "message_id")?,
                );
            }
            for (k, i) in lost {
                match holders.remove(&(k.0.to_owned(), k.1.to_owned())) {
                    Some(holder) => {
                        winners.insert(k, MessageId::from_stored(holder));
                    }
                    None => pending.push((k, i)),
                }
            }
        }
        if !pending.is_empty() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "idempotency keys kept changing under concurrent writers; try again",
            ));
        }
    }
    Ok(messages
        .iter()
        .enumerate()
        .map(|(i, m)| match &m.idempotency_key {
            None => Slot::Insert,
            Some(key) => {
                let k = (m.name.as_str(), key.as_str());
                let is_first = first.get(&k) == Some(&i);
                match winners.get(&k) {
                    Some(winner) if is_first && winner == &m.id => Slot::Insert,
                    Some(winner) => Slot::Existing(winner.clone()),
                    None => Slot::Insert,
                }
            }
        })
        .collect())
}

/// Inserts the rows; answers the ids that went in (an id already stored does not).
async fn insert_rows<'e, E>(
    executor: E,
    sql: &Statements,
    messages: &[&NewMessage],
    notify: Option<&str>,
) -> Result<std::collections::HashSet<String>, Error>
where
    E: sqlx::PgExecutor<'e>,
{
    if messages.is_empty() {
        return Ok(Default::default());
    }
    let n = messages.len();
    let mut ids = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut urls = Vec::with_capacity(n);
    let mut methods = Vec::with_capacity(n);
    let mut headers = Vec::with_capacity(n);
    let mut bodies: Vec<&[u8]> = Vec::with_capacity(n);
    let mut ikeys = Vec::with_capacity(n);
    let mut endpoints = Vec::with_capacity(n);
    let mut skeys = Vec::with_capacity(n);
    let mut okeys = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    for m in messages {
        ids.push(m.id.as_str());
        kinds.push(m.kind.as_str());
        names.push(m.name.as_str());
        urls.push(m.url.as_str());
        methods.push(m.method.as_str());
        headers.push(encode_headers(&m.headers));
        bodies.push(&m.body[..]);
        ikeys.push(m.idempotency_key.as_deref());
        endpoints.push(m.endpoint_id.as_deref());
        skeys.push(m.signing_key.as_deref());
        okeys.push(m.ordering_key.as_deref());
        metadata.push(serde_json::to_string(&m.metadata).unwrap_or_else(|_| "{}".to_owned()));
    }
    let text = match notify {
        Some(_) => sql.insert_messages_notify.clone(),
        None => sql.insert_messages.clone(),
    };
    let mut query = sqlx::query(AssertSqlSafe(text))
        .bind(&ids)
        .bind(&kinds)
        .bind(&names)
        .bind(&urls)
        .bind(&methods)
        .bind(&headers)
        .bind(&bodies)
        .bind(&ikeys)
        .bind(&endpoints)
        .bind(&skeys)
        .bind(&okeys)
        .bind(&metadata);
    if let Some(channel) = notify {
        query = query.bind(channel);
    }
    let rows = query.fetch_all(executor).await.map_err(from_sqlx)?;
    rows.iter().map(|r| get::<String>(r, "id")).collect()
}

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
    let rows = sqlx::query(AssertSqlSafe(sql.claim.clone()))
        .bind(owner)
        .bind(duration_us(lease))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(executor)
        .await?;
    let mut messages = Vec::with_capacity(rows.len());
    for row in &rows {
        match message_from_row(row) {
            Ok(m) => messages.push(m),
            Err(e) => return Err(sqlx::Error::Decode(Box::new(e))),
        }
    }
    messages.sort_by(|a, b| {
        (a.meta.next_attempt_at, &a.meta.id).cmp(&(b.meta.next_attempt_at, &b.meta.id))
    });
    Ok(messages)
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

pub(crate) async fn complete<'e, E>(
    executor: E,
    sql: &Statements,
    completions: &[Completion],
) -> Result<Vec<LeaseCheck>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    // Only the first completion of a message can apply; later ones in the same batch are
    // recorded as attempts and answered as lost, as they would be one after the other.
    let mut seen = std::collections::HashSet::new();
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
    for c in completions {
        let a = &c.attempt;
        a_ids.push(c.message_id.as_str());
        a_numbers.push(i32::try_from(a.number).unwrap_or(i32::MAX));
        a_owners.push(c.owner.as_str());
        a_started.push(to_us(a.started_at));
        a_durations.push(i64::try_from(a.duration.as_micros()).unwrap_or(i64::MAX));
        a_statuses.push(a.response_status.map(i32::from));
        a_bodies.push(
            (a.response_status.is_some() || !a.response_body.is_empty())
                .then_some(&a.response_body[..]),
        );
        a_truncated.push(a.response_truncated);
        a_error_kinds.push(a.error.as_ref().map(|e| e.kind.as_str()));
        a_errors.push(a.error.as_ref().map(|e| e.message.as_str()));
        a_violations.push(a.contract_violation.as_deref());
        a_decisions.push(c.decision.as_str());
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
        .fetch_all(executor)
        .await?;
    let mut applied = std::collections::HashSet::with_capacity(rows.len());
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
    let reason = format!(
        "abandoned: {cap} workers claimed it and stopped without recording an outcome (crash cap)"
    );
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

pub(crate) fn not_found(id: &MessageId) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("no message {id} in the outbox (it may have been purged after its retention)"),
    )
}

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
    row.as_ref().map(meta_from_row).transpose()
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
    row.as_ref().map(meta_from_row).transpose()
}

fn conflict_live(id: &MessageId, status: MessageStatus) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "message {id} is {status} and will be attempted again on its own; only finished messages can be retried"
        ),
    )
}

pub(crate) async fn retry(
    conn: &mut PgConnection,
    sql: &Statements,
    id: &MessageId,
) -> Result<MessageMeta, Error> {
    if let Some(live) = live_meta(conn, sql, id).await? {
        return Err(conflict_live(id, live.status));
    }
    let row = sqlx::query(AssertSqlSafe(sql.retry.clone()))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    match row {
        Some(row) => meta_from_row(&row),
        // Another retry may have won the race: then the message is live.
        None => match live_meta(conn, sql, id).await? {
            Some(live) => Err(conflict_live(id, live.status)),
            None => Err(not_found(id)),
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
        return meta_from_row(&row);
    }
    match history_meta(conn, sql, id).await? {
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

/// Pushes the filter's conditions (except status) on a query that already has a WHERE.
fn push_conditions(q: &mut QueryBuilder<Postgres>, filter: &MessageFilter) {
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
        q.push(" AND created_at >= (timestamptz 'epoch' + ")
            .push_bind(to_us(after))
            .push(" * interval '1 microsecond')");
    }
    if let Some(before) = filter.created_before {
        q.push(" AND created_at < (timestamptz 'epoch' + ")
            .push_bind(to_us(before))
            .push(" * interval '1 microsecond')");
    }
}

fn push_statuses(q: &mut QueryBuilder<Postgres>, statuses: &[MessageStatus]) {
    let names: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
    q.push(" AND status = ANY(")
        .push_bind(names)
        .push("::text[])");
}

pub(crate) async fn replay(
    conn: &mut PgConnection,
    sql: &Statements,
    filter: &MessageFilter,
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
    let mut q = QueryBuilder::<Postgres>::new(sql.qualify(sql::REPLAY_HEAD));
    push_statuses(&mut q, &statuses);
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
    row.as_ref().map(message_from_row).transpose()
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    sql: &Statements,
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
    let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM (");
    let mut parts = 0;
    for (table_is_live, statuses) in [(true, &live), (false, &done)] {
        if !any && statuses.is_empty() {
            continue;
        }
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        parts += 1;
        q.push("(");
        q.push(sql.qualify(if table_is_live {
            sql::LIST_LIVE
        } else {
            sql::LIST_HISTORY
        }));
        if !any {
            push_statuses(&mut q, statuses);
        }
        push_conditions(&mut q, filter);
        if let Some(before) = &filter.before {
            q.push(" AND id < ").push_bind(before.as_str().to_owned());
        }
        // Each side needs at most a page: let the primary key stop the scan early.
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(1000) + 1);
        q.push(")");
    }
    if parts == 0 {
        return Ok((Vec::new(), false));
    }
    q.push(") AS page ORDER BY id DESC LIMIT ")
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
    conn: &mut PgConnection,
    sql: &Statements,
    id: &MessageId,
) -> Result<Vec<Attempt>, Error> {
    let rows = sqlx::query(AssertSqlSafe(sql.attempts.clone()))
        .bind(id.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(attempt_from_row).collect()
}
