//! What a row of the endpoint tables holds, read the same way from both databases.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use url::Url;

use super::error::Error;
use super::{DisableKind, Disabled, Endpoint, EndpointFilter, EndpointPage};
use crate::signing::Secret;
use crate::store::rows::Columns;

/// An endpoint from the columns every endpoint query reads.
pub(crate) fn endpoint<R: Columns>(row: &R) -> Result<Endpoint, Error> {
    let url = row.text("url")?;
    let event_types = row.text("event_types")?;
    let metadata = row.text("metadata")?;
    let kind = row.opt_text("disabled_kind")?;
    Ok(Endpoint {
        id: row.text("id")?,
        url: parse_url(&url)?,
        description: row.text("description")?,
        event_types: parse_event_types(&event_types)?,
        metadata: parse_metadata(&metadata)?,
        disabled: disabled_from(
            row.flag("enabled")?,
            row.time("disabled_at")?,
            kind.as_deref(),
            row.opt_text("disabled_reason")?,
        ),
        created_at: row.time("created_at")?.unwrap_or(UNIX_EPOCH),
        updated_at: row.time("updated_at")?.unwrap_or(UNIX_EPOCH),
        failing_since: row.time("failing_since")?,
        last_success_at: row.time("last_success_at")?,
        rotation_ends_at: row.time("rotation_ends_at")?,
    })
}

/// One page of a listing that read one row more than `filter`'s limit.
pub(crate) fn page<R: Columns>(rows: &[R], filter: &EndpointFilter) -> Result<EndpointPage, Error> {
    let limit = filter.effective_limit();
    let mut endpoints = rows.iter().map(endpoint).collect::<Result<Vec<_>, _>>()?;
    let next = if endpoints.len() > limit {
        endpoints.truncate(limit);
        endpoints.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(EndpointPage { endpoints, next })
}

/// The secrets that sign for endpoint `id`, from the rows of the secrets query (the
/// endpoint's `enabled` and `disabled_reason`, and each signing `secret`, newest first).
pub(crate) fn signing_secrets<R: Columns>(id: &str, rows: &[R]) -> Result<Vec<Secret>, Error> {
    let Some(first) = rows.first() else {
        return Err(Error::not_found(id));
    };
    if !first.flag("enabled")? {
        let reason = first.opt_text("disabled_reason")?;
        return Err(super::rules::disabled_error(id, reason.as_deref()));
    }
    let mut secrets = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(text) = row.opt_text("secret")? {
            secrets.push(parse_secret(&text)?);
        }
    }
    if secrets.is_empty() {
        return Err(Error::corrupt(format!(
            "the webhook endpoint `{id}` has no current secret; rotate it to make one"
        )));
    }
    Ok(secrets)
}

/// Parses stored JSON metadata.
pub(crate) fn parse_metadata(text: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::corrupt(
            "the stored metadata of a webhook endpoint is not a JSON object",
        )),
    }
}

/// Parses stored event types.
pub(crate) fn parse_event_types(text: &str) -> Result<Vec<String>, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::corrupt("the stored event types of a webhook endpoint are not a JSON list")
            .with_source(e)
    })
}

/// A value stored as JSON text (event types, metadata).
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value)
        .map_err(|e| Error::invalid("a webhook endpoint value is not JSON").with_source(e))
}

/// Parses a stored URL.
pub(crate) fn parse_url(text: &str) -> Result<Url, Error> {
    Url::parse(text).map_err(|e| {
        Error::corrupt("the stored URL of a webhook endpoint cannot be parsed").with_source(e)
    })
}

/// Parses a stored secret.
pub(crate) fn parse_secret(text: &str) -> Result<Secret, Error> {
    Secret::parse(text).map_err(|e| {
        Error::corrupt("a stored webhook endpoint secret cannot be read").with_source(e)
    })
}

/// The disabled state from its stored columns.
pub(crate) fn disabled_from(
    enabled: bool,
    at: Option<SystemTime>,
    kind: Option<&str>,
    reason: Option<String>,
) -> Option<Disabled> {
    if enabled {
        return None;
    }
    Some(Disabled {
        at: at.unwrap_or(SystemTime::UNIX_EPOCH),
        kind: kind
            .and_then(DisableKind::parse)
            .unwrap_or(DisableKind::Manual),
        reason: reason.unwrap_or_default(),
    })
}
