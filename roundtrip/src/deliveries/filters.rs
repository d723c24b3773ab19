//! Reading the deliveries API's inputs: message ids, endpoint ids, hosts, events and time
//! ranges, checked into the store's filters, every problem in FastAPI's 422 shape.

use std::str::FromStr;
use std::time::SystemTime;

use roundtrip_delivery::message::MessageId;
use roundtrip_delivery::outbox::MessageFilter;
use roundtrip_openapi::validate::{LocItem, ValidationError};
use serde_json::Value;

use crate::error::value_error;

use super::DeliveryError;
use super::models::{MessageQuery, ReplayRequest};

/// A 422 entry, boxed while it travels in a `Result`.
pub(super) type Problem = Box<ValidationError>;

/// The 422 entry of a value at `loc`.
pub(super) fn problem(loc: &[&str], message: &str, input: Value) -> Problem {
    Box::new(invalid(loc, message, input))
}

/// The 422 entry of a value at `loc`.
pub(super) fn invalid(loc: &[&str], message: &str, input: Value) -> ValidationError {
    value_error(
        loc.iter().map(|k| LocItem::key(*k)).collect(),
        message,
        input,
    )
}

pub(super) fn parse_message_id(text: &str, loc: &[&str]) -> Result<MessageId, Problem> {
    MessageId::from_str(text).map_err(|err| {
        problem(
            loc,
            &format!("not a message id: {err}"),
            Value::String(text.to_owned()),
        )
    })
}

pub(super) fn message_id(text: &str) -> Result<MessageId, DeliveryError> {
    parse_message_id(text, &["path", "message_id"]).map_err(|e| DeliveryError::Invalid(vec![*e]))
}

pub(super) fn check_endpoint_id(text: &str, loc: &[&str]) -> Result<(), Problem> {
    let ok = text
        .strip_prefix("ep_")
        .is_some_and(|rest| rest.len() == 27 && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(problem(
            loc,
            "not a webhook endpoint id: `ep_` and 27 letters or digits",
            Value::String(text.to_owned()),
        ))
    }
}

/// Why `text` is not a host as a URL writes it, if it is not.
pub(crate) fn host_problem(text: &str) -> Option<&'static str> {
    check_host(text, &[]).err().map(|_| HOST_PROBLEM)
}

const HOST_PROBLEM: &str = "not a host: a name, an IPv4 address, or an IPv6 address in brackets";

pub(super) fn check_host(text: &str, loc: &[&str]) -> Result<(), Problem> {
    let bracketed = text.starts_with('[')
        && text.ends_with(']')
        && text.len() > 2
        && text[1..text.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    let name = !text.is_empty()
        && text.len() <= 255
        && text.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if bracketed || name {
        Ok(())
    } else {
        Err(problem(loc, HOST_PROBLEM, Value::String(text.to_owned())))
    }
}

pub(super) fn check_event(text: &str, loc: &[&str]) -> Result<(), Problem> {
    if text.is_empty() || text.len() > 255 {
        Err(problem(
            loc,
            "an event type or callback name has 1 to 255 characters",
            Value::String(text.to_owned()),
        ))
    } else {
        Ok(())
    }
}

pub(super) fn check_range(
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    loc: &[&str],
    input: Value,
) -> Result<(), Problem> {
    match (since, until) {
        (Some(since), Some(until)) if since >= until => {
            Err(problem(loc, "`until` must be later than `since`", input))
        }
        _ => Ok(()),
    }
}

/// The store's filter of a query, or every problem with it (located under `query`).
pub(crate) fn message_filter(query: &MessageQuery) -> Result<MessageFilter, Vec<ValidationError>> {
    let mut problems = Vec::new();
    let mut filter = MessageFilter::new();
    for status in &query.status {
        filter = filter.status((*status).into());
    }
    if let Some(kind) = query.kind {
        filter = filter.kind(kind.into());
    }
    if let Some(event) = &query.event {
        match check_event(event, &["query", "event"]) {
            Ok(()) => filter = filter.name(event.clone()),
            Err(e) => problems.push(*e),
        }
    }
    if let Some(endpoint) = &query.endpoint_id {
        match check_endpoint_id(endpoint, &["query", "endpoint_id"]) {
            Ok(()) => filter = filter.endpoint_id(endpoint.clone()),
            Err(e) => problems.push(*e),
        }
    }
    if let Some(host) = &query.host {
        match check_host(host, &["query", "host"]) {
            Ok(()) => filter = filter.host(host.clone()),
            Err(e) => problems.push(*e),
        }
    }
    let since = query.since.map(SystemTime::from);
    let until = query.until.map(SystemTime::from);
    if let Err(e) = check_range(
        since,
        until,
        &["query", "until"],
        serde_json::to_value(query.until).unwrap_or(Value::Null),
    ) {
        problems.push(*e);
    }
    if let Some(since) = since {
        filter = filter.created_after(since);
    }
    if let Some(until) = until {
        filter = filter.created_before(until);
    }
    if query.id.len() > 100 {
        problems.push(invalid(
            &["query", "id"],
            "at most 100 ids at once",
            Value::from(query.id.len()),
        ));
    }
    for text in &query.id {
        match parse_message_id(text, &["query", "id"]) {
            Ok(id) => filter = filter.id(id),
            Err(e) => problems.push(*e),
        }
    }
    if let Some(before) = &query.before {
        match parse_message_id(before, &["query", "before"]) {
            Ok(id) => filter = filter.before(id),
            Err(e) => problems.push(*e),
        }
    }
    match query.limit {
        Some(limit) if !(1..=1000).contains(&limit) => problems.push(invalid(
            &["query", "limit"],
            "from 1 to 1000",
            Value::from(limit),
        )),
        Some(limit) => filter = filter.limit(limit as usize),
        None => {}
    }
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(problems)
    }
}

/// The store's filter of a replay request, or every problem with it (under `body`).
pub(crate) fn replay_filter(
    request: &ReplayRequest,
) -> Result<MessageFilter, Vec<ValidationError>> {
    let mut problems = Vec::new();
    let since = SystemTime::from(request.since);
    let until = request.until.map(SystemTime::from);
    if let Err(e) = check_range(
        Some(since),
        until,
        &["body", "until"],
        serde_json::to_value(request.until).unwrap_or(Value::Null),
    ) {
        problems.push(*e);
    }
    let mut filter = MessageFilter::new().created_after(since);
    if let Some(until) = until {
        filter = filter.created_before(until);
    }
    for status in &request.status {
        filter = filter.status((*status).into());
    }
    if let Some(kind) = request.kind {
        filter = filter.kind(kind.into());
    }
    if let Some(event) = &request.event {
        match check_event(event, &["body", "event"]) {
            Ok(()) => filter = filter.name(event.clone()),
            Err(e) => problems.push(*e),
        }
    }
    if let Some(endpoint) = &request.endpoint_id {
        match check_endpoint_id(endpoint, &["body", "endpoint_id"]) {
            Ok(()) => filter = filter.endpoint_id(endpoint.clone()),
            Err(e) => problems.push(*e),
        }
    }
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(problems)
    }
}
