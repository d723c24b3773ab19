//! What a row of the SQLite store holds: its columns and how they are read, how rows are
//! bound into multi-row statements, and the claim's JSON document.
//!
//! Times are integers, milliseconds since the Unix epoch; booleans are integers.

use std::time::SystemTime;

use bytes::Bytes;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{QueryBuilder, Sqlite};

use crate::message::{Message, MessageStatus};
use crate::outbox::{Error, ErrorKind};
use crate::store::error::Repr;
use crate::store::listing::Dialect;
use crate::store::rows::{Columns, StoredMeta, get, headers_from_pairs};
use crate::store::time::{from_ms, to_ms};

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

pub(crate) use {from_history, history_meta, live_meta, to_history};

impl Columns for SqliteRow {
    fn text(&self, column: &str) -> Result<String, Repr> {
        get(self, column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, Repr> {
        get(self, column)
    }
    fn int(&self, column: &str) -> Result<Option<i64>, Repr> {
        get(self, column)
    }
    fn bigint(&self, column: &str) -> Result<i64, Repr> {
        get(self, column)
    }
    fn time(&self, column: &str) -> Result<Option<SystemTime>, Repr> {
        Ok(get::<_, Option<i64>>(self, column)?.map(from_ms))
    }
    fn flag(&self, column: &str) -> Result<bool, Repr> {
        Ok(get::<_, i64>(self, column)? != 0)
    }
    fn bytes(&self, column: &str) -> Result<Option<Vec<u8>>, Repr> {
        get(self, column)
    }
}

impl Dialect for Sqlite {
    fn push_time(q: &mut QueryBuilder<Self>, column: &str, op: &str, t: SystemTime) {
        q.push(format_args!(" AND {column} {op} "))
            .push_bind(to_ms(t));
    }

    fn push_statuses(q: &mut QueryBuilder<Self>, statuses: &[MessageStatus]) {
        q.push(" AND status IN (");
        let mut sep = q.separated(", ");
        for s in statuses {
            sep.push_bind(s.as_str());
        }
        q.push(")");
    }
}

/// Writes `(?, ?, ...)` for `columns` parameters.
///
/// Multi-row statements use anonymous parameters: sqlx asks SQLite for the name of every
/// parameter it binds, and for numbered ones (`?NNN`) SQLite answers by scanning the list
/// of all of them, which makes binding a 700-parameter statement quadratic.
pub(crate) fn push_row(sql: &mut String, columns: usize) {
    sql.push('(');
    for c in 0..columns {
        sql.push_str(if c == 0 { "?" } else { ", ?" });
    }
    sql.push(')');
}

/// Binds one value of a multi-row statement.
pub(crate) fn push_arg<'q, T>(args: &mut SqliteArguments, value: T) -> Result<(), Error>
where
    T: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>,
{
    use sqlx::Arguments;
    args.add(value)
        .map_err(|e| Error::new(ErrorKind::Invalid, "a value could not be bound").with_source(e))
}

/// A claimed message as the claim query hands it over: all rows in one JSON document, so
/// a batch crosses from SQLite's thread in one row instead of one per message.
#[derive(serde::Deserialize)]
pub(crate) struct ClaimedRow {
    pub(crate) id: String,
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

fn unhex(id: &str, text: &str) -> Result<Vec<u8>, Repr> {
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
        .ok_or_else(|| Repr::corrupt(format!("message {id}: the claimed body is not hex")))
}

impl ClaimedRow {
    pub(crate) fn into_message(self) -> Result<Message, Repr> {
        let headers = headers_from_pairs(&self.id, self.headers)?;
        let body = Bytes::from(unhex(&self.id, &self.body)?);
        let meta = StoredMeta {
            kind: self.kind,
            name: self.name,
            url: self.url,
            method: self.method,
            created_at: from_ms(self.created_at),
            status: MessageStatus::Leased,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: Some(from_ms(self.next_attempt_at)),
            lease_owner: Some(self.lease_owner),
            lease_expires_at: Some(from_ms(self.lease_expires_at)),
            lost_leases: u32::try_from(self.lost_leases).unwrap_or(0),
            finished_at: None,
            last_error: self.last_error,
            idempotency_key: self.idempotency_key,
            endpoint_id: self.endpoint_id,
            signing_key: self.signing_key,
            ordering_key: self.ordering_key,
            metadata: self.metadata,
            id: self.id,
        }
        .into_meta()?;
        Ok(Message {
            meta,
            headers,
            body,
        })
    }
}
