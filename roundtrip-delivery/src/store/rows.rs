//! What a stored row holds, read the same way from both databases: messages, attempts and
//! the values they keep as JSON text.
//!
//! Each backend implements [`Columns`] for its row type (the integer widths and the unit of
//! times differ); the decoding of a message or an attempt is written once, here. Both
//! backends' queries name their columns alike (`created_at`, `next_attempt_at`, ...), times
//! included, whatever the type they are stored in.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value};
use url::Url;

use super::error::{ErrorKind, Repr};
use crate::message::{
    Attempt, AttemptError, AttemptErrorKind, Completion, Decision, Lease, Message, MessageId,
    MessageKind, MessageMeta, MessageStatus,
};

/// The typed columns of a row, as each database stores them.
pub(crate) trait Columns {
    /// A text column.
    fn text(&self, column: &str) -> Result<String, Repr>;
    /// A nullable text column.
    fn opt_text(&self, column: &str) -> Result<Option<String>, Repr>;
    /// A nullable integer column (counts, numbers, statuses).
    fn int(&self, column: &str) -> Result<Option<i64>, Repr>;
    /// A 64-bit integer column (durations in microseconds).
    fn bigint(&self, column: &str) -> Result<i64, Repr>;
    /// A nullable time column.
    fn time(&self, column: &str) -> Result<Option<SystemTime>, Repr>;
    /// A boolean column.
    fn flag(&self, column: &str) -> Result<bool, Repr>;
    /// A nullable binary column.
    fn bytes(&self, column: &str) -> Result<Option<Vec<u8>>, Repr>;
}

/// Reads `column` of `row` as `T`, or says which column could not be read.
pub(crate) fn get<'r, R, T>(row: &'r R, column: &str) -> Result<T, Repr>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| Repr::corrupt(format!("reading column `{column}`")).with_source(e))
}

/// A column that may not be NULL.
fn required<T>(value: Option<T>, column: &str) -> Result<T, Repr> {
    value.ok_or_else(|| Repr::corrupt(format!("column `{column}` is NULL")))
}

/// A stored count (attempts, lost leases, numbers): never negative.
fn count(value: Option<i64>) -> u32 {
    value.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

/// A message's metadata as the stores keep it, before its texts are parsed.
pub(crate) struct StoredMeta {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) method: String,
    pub(crate) created_at: SystemTime,
    pub(crate) status: MessageStatus,
    pub(crate) attempts: u32,
    pub(crate) next_attempt_at: Option<SystemTime>,
    pub(crate) lease_owner: Option<String>,
    pub(crate) lease_expires_at: Option<SystemTime>,
    pub(crate) lost_leases: u32,
    pub(crate) finished_at: Option<SystemTime>,
    pub(crate) last_error: Option<String>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) endpoint_id: Option<String>,
    pub(crate) signing_key: Option<String>,
    pub(crate) ordering_key: Option<String>,
    pub(crate) metadata: Map<String, Value>,
}

impl StoredMeta {
    /// Parses the kind, URL and method.
    pub(crate) fn into_meta(self) -> Result<MessageMeta, Repr> {
        let id = self.id;
        let bad = |what: &str| Repr::corrupt(format!("message {id}: stored {what} is invalid"));
        Ok(MessageMeta {
            kind: self.kind.parse::<MessageKind>().map_err(|_| bad("kind"))?,
            name: self.name,
            url: Url::parse(&self.url).map_err(|_| bad("url"))?,
            method: Method::from_bytes(self.method.as_bytes()).map_err(|_| bad("method"))?,
            created_at: self.created_at,
            status: self.status,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            lease: match (self.lease_owner, self.lease_expires_at) {
                (Some(owner), Some(expires_at)) => Some(Lease { owner, expires_at }),
                _ => None,
            },
            lost_leases: self.lost_leases,
            finished_at: self.finished_at,
            last_error: self.last_error,
            idempotency_key: self.idempotency_key,
            endpoint_id: self.endpoint_id,
            signing_key: self.signing_key,
            ordering_key: self.ordering_key,
            metadata: self.metadata,
            id: MessageId::from_stored(id),
        })
    }
}

/// A message's metadata from the columns every message query reads.
pub(crate) fn meta<R: Columns>(row: &R) -> Result<MessageMeta, Repr> {
    let id = row.text("id")?;
    let status = row.text("status")?;
    let metadata = row.text("metadata")?;
    let bad = |what: &str| Repr::corrupt(format!("message {id}: stored {what} is invalid"));
    let status = status.parse::<MessageStatus>().map_err(|_| bad("status"))?;
    let metadata = serde_json::from_str(&metadata).map_err(|_| bad("metadata"))?;
    StoredMeta {
        kind: row.text("kind")?,
        name: row.text("name")?,
        url: row.text("url")?,
        method: row.text("method")?,
        created_at: required(row.time("created_at")?, "created_at")?,
        status,
        attempts: count(row.int("attempts")?),
        next_attempt_at: row.time("next_attempt_at")?,
        lease_owner: row.opt_text("lease_owner")?,
        lease_expires_at: row.time("lease_expires_at")?,
        lost_leases: count(row.int("lost_leases")?),
        finished_at: row.time("finished_at")?,
        last_error: row.opt_text("last_error")?,
        idempotency_key: row.opt_text("idempotency_key")?,
        endpoint_id: row.opt_text("endpoint_id")?,
        signing_key: row.opt_text("signing_key")?,
        ordering_key: row.opt_text("ordering_key")?,
        metadata,
        id,
    }
    .into_meta()
}

/// A whole message: its metadata, and the `headers` and `body` columns.
pub(crate) fn message<R: Columns>(row: &R) -> Result<Message, Repr> {
    let meta = meta(row)?;
    let headers = row.text("headers")?;
    let body = required(row.bytes("body")?, "body")?;
    Ok(Message {
        headers: decode_headers(meta.id.as_str(), &headers)?,
        body: Bytes::from(body),
        meta,
    })
}

/// A recorded attempt.
pub(crate) fn attempt<R: Columns>(row: &R) -> Result<Attempt, Repr> {
    let error_kind = row.opt_text("error_kind")?;
    let error = row.opt_text("error")?;
    Ok(Attempt {
        message_id: MessageId::from_stored(row.text("message_id")?),
        number: count(row.int("number")?),
        worker: row.text("worker")?,
        started_at: required(row.time("started_at")?, "started_at")?,
        duration: Duration::from_micros(u64::try_from(row.bigint("duration_us")?).unwrap_or(0)),
        response_status: row
            .int("response_status")?
            .and_then(|s| u16::try_from(s).ok()),
        response_body: row
            .bytes("response_body")?
            .map(Bytes::from)
            .unwrap_or_default(),
        response_truncated: row.flag("response_truncated")?,
        response_headers: match row.opt_text("response_headers")? {
            // Written by the store from a list of pairs; anything else reads as none.
            Some(text) => serde_json::from_str(&text).unwrap_or_default(),
            None => Vec::new(),
        },
        error: error_kind.map(|kind| AttemptError {
            kind: kind.parse().unwrap_or(AttemptErrorKind::Other),
            message: error.unwrap_or_default(),
        }),
        contract_violation: row.opt_text("contract_violation")?,
        decision: row.text("outcome")?,
        next_attempt_at: row.time("next_attempt_at")?,
    })
}

/// Headers as stored: a JSON list of `[name, value]` pairs, order kept. Values that are not
/// visible ASCII were refused at enqueue.
pub(crate) fn encode_headers(headers: &HeaderMap) -> String {
    if headers.is_empty() {
        return "[]".to_owned();
    }
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

/// Headers from their stored JSON text.
pub(crate) fn decode_headers(id: &str, text: &str) -> Result<HeaderMap, Repr> {
    let pairs: Vec<(String, String)> = serde_json::from_str(text).map_err(|e| {
        Repr::corrupt(format!(
            "message {id}: stored headers are not valid JSON: {e}"
        ))
    })?;
    headers_from_pairs(id, pairs)
}

/// Headers from their stored `[name, value]` pairs.
pub(crate) fn headers_from_pairs(
    id: &str,
    pairs: Vec<(String, String)>,
) -> Result<HeaderMap, Repr> {
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Repr::corrupt(format!(
                "message {id}: stored header name `{name}` is invalid"
            ))
        })?;
        let value = HeaderValue::from_str(&value).map_err(|_| {
            Repr::corrupt(format!("message {id}: stored value of `{name}` is invalid"))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// Metadata as stored: a JSON object.
pub(crate) fn encode_metadata(metadata: &Map<String, Value>) -> String {
    if metadata.is_empty() {
        return "{}".to_owned();
    }
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

/// What a completion writes as its message's `last_error`: the reason it failed, the
/// attempt's error, or the status of a failed answer.
pub(crate) fn last_error_of(c: &Completion) -> Option<String> {
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

/// The attempt's response headers as stored: a JSON list of `[name, value]` pairs, or none
/// when there was no answer.
pub(crate) fn stored_headers(c: &Completion) -> Option<String> {
    let a = &c.attempt;
    if a.response_status.is_none() && a.response_headers.is_empty() {
        return None;
    }
    serde_json::to_string(&a.response_headers).ok()
}

/// The attempt's response body as stored: none when there was no answer and nothing read.
pub(crate) fn stored_body(c: &Completion) -> Option<&[u8]> {
    let a = &c.attempt;
    (a.response_status.is_some() || !a.response_body.is_empty()).then_some(&a.response_body[..])
}

/// No message with this id.
pub(crate) fn not_found(id: &MessageId) -> Repr {
    Repr::new(
        ErrorKind::NotFound,
        format!("no message {id} in the outbox (it may have been purged after its retention)"),
    )
}

/// A retry of a message whose attempt is running (or that another retry just queued).
pub(crate) fn still_live(id: &MessageId, status: MessageStatus) -> Repr {
    let why = if status == MessageStatus::Leased {
        "an attempt is running now; retry it once that attempt is over"
    } else {
        "it is already queued"
    };
    Repr::new(
        ErrorKind::Conflict,
        format!("message {id} is {status}: {why}"),
    )
}

/// A cancel of a message that has finished.
pub(crate) fn already_finished(id: &MessageId, status: MessageStatus) -> Repr {
    Repr::new(
        ErrorKind::Conflict,
        format!("message {id} is already {status}; only live messages can be cancelled"),
    )
}

/// Why the crash cap failed a message.
pub(crate) fn crash_cap_reason(cap: u32) -> String {
    format!(
        "abandoned: {cap} workers claimed it and stopped without recording an outcome (crash cap)"
    )
}
