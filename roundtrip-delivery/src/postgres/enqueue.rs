//! Enqueueing on PostgreSQL: idempotency keys taken first, then every new message in one
//! statement that also sends the wake-up, delivered when the transaction commits.

use std::collections::{HashMap, HashSet};

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;

use super::from_sqlx;
use super::sql::Statements;
use crate::message::{Enqueued, MessageId, NewMessage};
use crate::outbox::{Error, ErrorKind};
use crate::store::local::Grant;
use crate::store::rows::{encode_headers, encode_metadata, get};
use crate::store::time::duration_us;

/// What an insert wrote: the ids that went in, and which of them pending.
#[derive(Default)]
pub(crate) struct Inserted {
    ids: HashSet<String>,
    /// Whether any message went in pending (not leased to this process's dispatcher).
    pub(crate) pending: bool,
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

/// Whether a message with an idempotency key is new, or answers an earlier one.
enum Slot {
    /// Insert this message (index into the batch).
    Insert,
    /// Deduplicated: answer this id.
    Existing(MessageId),
}

/// Inserts `messages` on `conn`, which must be inside a transaction (or a savepoint), and
/// sends the wake-up on `channel` if any was stored pending. The notification is delivered
/// when the transaction commits, and never if it rolls back. The first `grant.len()`
/// messages are written leased to the grant's owner.
pub(crate) async fn insert_messages(
    conn: &mut PgConnection,
    sql: &Statements,
    messages: &[NewMessage],
    channel: Option<&str>,
    grant: Option<&Grant>,
) -> Result<(Vec<Enqueued>, Inserted), Error> {
    let slots = claim_keys(conn, sql, messages).await?;
    let fresh: Vec<(&NewMessage, bool)> = messages
        .iter()
        .enumerate()
        .zip(&slots)
        .filter(|(_, s)| matches!(s, Slot::Insert))
        .map(|((i, m), _)| (m, grant.is_some_and(|g| i < g.len())))
        .collect();
    let inserted = insert_rows(conn, sql, &fresh, channel, grant).await?;
    Ok((answers(messages, slots, &inserted), inserted))
}

/// Inserts messages that carry no idempotency key in one statement, which also sends the
/// wake-up; on a connection outside a transaction it commits on its own. The first
/// `grant.len()` messages are written leased to the grant's owner.
pub(crate) async fn insert_unkeyed<'e, E>(
    executor: E,
    sql: &Statements,
    messages: &[NewMessage],
    channel: &str,
    grant: Option<&Grant>,
) -> Result<(Vec<Enqueued>, Inserted), Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let rows: Vec<(&NewMessage, bool)> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m, grant.is_some_and(|g| i < g.len())))
        .collect();
    let inserted = insert_rows(executor, sql, &rows, Some(channel), grant).await?;
    let slots = messages.iter().map(|_| Slot::Insert).collect();
    Ok((answers(messages, slots, &inserted), inserted))
}

fn answers(messages: &[NewMessage], slots: Vec<Slot>, inserted: &Inserted) -> Vec<Enqueued> {
    messages
        .iter()
        .zip(slots)
        .map(|(m, slot)| match slot {
            Slot::Insert => Enqueued {
                id: m.id.clone(),
                deduplicated: !inserted.ids.contains(m.id.as_str()),
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
            let mut taken = HashSet::new();
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

/// Inserts the rows, each leased to the grant's owner or pending as its flag says; answers
/// the ids that went in (an id already stored does not).
async fn insert_rows<'e, E>(
    executor: E,
    sql: &Statements,
    messages: &[(&NewMessage, bool)],
    notify: Option<&str>,
    grant: Option<&Grant>,
) -> Result<Inserted, Error>
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
    let mut owners: Vec<Option<&str>> = Vec::with_capacity(n);
    for &(m, leased) in messages {
        owners.push(grant.filter(|_| leased).map(Grant::owner));
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
        metadata.push(encode_metadata(&m.metadata));
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
        .bind(&metadata)
        .bind(&owners)
        .bind(grant.map_or(0, |g| duration_us(g.lease())));
    if let Some(channel) = notify {
        query = query.bind(channel);
    }
    let rows = query.fetch_all(executor).await.map_err(from_sqlx)?;
    let mut inserted = Inserted::default();
    for r in &rows {
        let status: String = get(r, "status")?;
        inserted.pending |= status == "pending";
        inserted.ids.insert(get(r, "id")?);
    }
    Ok(inserted)
}
