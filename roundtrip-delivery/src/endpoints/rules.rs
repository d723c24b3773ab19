//! What an endpoint may be, and the words for its states: ids, URLs and event types checked
//! before anything is written, the reasons written when an endpoint is disabled.

use std::time::Duration;

use url::Url;

use super::error::{self, Error};
use super::{
    ALL_EVENTS, DisableKind, ENDPOINT_ID_PREFIX, Endpoint, MAX_EVENT_TYPE_LEN, MAX_EVENT_TYPES,
    MAX_URL_LEN,
};
use crate::outbox::MessageId;
use crate::signing::Secret;

/// A new endpoint id: `ep_` and 27 base62 characters that sort by creation time.
pub(crate) fn generate_id() -> String {
    let message = MessageId::generate();
    let body = message
        .as_str()
        .strip_prefix(crate::ids::MESSAGE_ID_PREFIX)
        .unwrap_or(message.as_str());
    format!("{ENDPOINT_ID_PREFIX}{body}")
}

/// Checks a URL for storing: `http` or `https`, a host, at most [`MAX_URL_LEN`] bytes.
pub(crate) fn check_url(url: &Url) -> Result<(), Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(format!(
            "a webhook endpoint URL must use http or https, not `{}`",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid("a webhook endpoint URL must name a host"));
    }
    if url.as_str().len() > MAX_URL_LEN {
        return Err(Error::invalid(format!(
            "a webhook endpoint URL may have at most {MAX_URL_LEN} characters"
        )));
    }
    Ok(())
}

/// Checks and normalizes event types: sorted, without duplicates.
pub(crate) fn normalize_event_types(types: &[String]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for event in types {
        if event.trim().is_empty() {
            return Err(Error::invalid(
                "an event type is empty; list the event names, or none to receive every event",
            ));
        }
        if event == ALL_EVENTS {
            return Err(Error::invalid(
                "`*` is not an event type; list no event types to receive every event",
            ));
        }
        if event.len() > MAX_EVENT_TYPE_LEN {
            return Err(Error::invalid(format!(
                "an event type may have at most {MAX_EVENT_TYPE_LEN} characters"
            )));
        }
        out.push(event.clone());
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_EVENT_TYPES {
        return Err(Error::invalid(format!(
            "an endpoint may list at most {MAX_EVENT_TYPES} event types; list none to receive \
             every event"
        )));
    }
    Ok(out)
}

/// The key that, with the URL, makes an endpoint unique.
pub(crate) fn event_types_key(types: &[String]) -> String {
    types.join("\n")
}

/// The rows of `webhook_endpoint_events` for these (normalized) event types.
pub(crate) fn event_rows(types: &[String]) -> Vec<&str> {
    if types.is_empty() {
        vec![ALL_EVENTS]
    } else {
        types.iter().map(String::as_str).collect()
    }
}

/// A duration as a person says it: `5 days`, `36 hours`, `300 ms`.
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs >= 86_400 && secs.is_multiple_of(86_400) {
        plural(secs / 86_400, "day")
    } else if secs >= 3_600 && secs.is_multiple_of(3_600) {
        plural(secs / 3_600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        plural(secs / 60, "minute")
    } else if secs >= 1 {
        plural(secs, "second")
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The reason written on an endpoint that answered 410.
pub(crate) fn gone_reason() -> String {
    "the endpoint answered 410 Gone".to_owned()
}

/// The reason written on an endpoint whose deliveries failed for the whole window.
pub(crate) fn failing_reason(window: Duration) -> String {
    format!(
        "every delivery failed for longer than {} without a success",
        human(window)
    )
}

/// A new secret, or the given one.
pub(crate) fn secret_or_generate(secret: Option<Secret>) -> Result<Secret, Error> {
    match secret {
        Some(secret) => Ok(secret),
        None => Secret::generate().map_err(|e| {
            Error::new(
                error::ErrorKind::Unavailable,
                "no secret could be generated for the webhook endpoint",
            )
            .with_source(e)
        }),
    }
}

/// The error of a secret look-up for a disabled endpoint.
pub(crate) fn disabled_error(id: &str, reason: Option<&str>) -> Error {
    Error::new(
        error::ErrorKind::Disabled,
        format!(
            "the webhook endpoint `{id}` is disabled ({}); its messages are sent once it is \
             enabled again",
            reason.unwrap_or("no reason recorded")
        ),
    )
}

/// Logs that an endpoint was disabled (never its secret; the URL redacted).
pub(crate) fn log_disabled(endpoint: &Endpoint) {
    let Some(disabled) = &endpoint.disabled else {
        return;
    };
    let url = crate::message::redact_url(&endpoint.url);
    match disabled.kind {
        DisableKind::Manual => tracing::info!(
            endpoint_id = %endpoint.id,
            url = %url,
            reason = %disabled.reason,
            "webhook endpoint disabled"
        ),
        kind => tracing::warn!(
            endpoint_id = %endpoint.id,
            url = %url,
            kind = %kind,
            reason = %disabled.reason,
            "webhook endpoint disabled; enable it again once it is fixed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::DEFAULT_FAILURE_WINDOW;

    #[test]
    fn ids_have_the_endpoint_prefix_and_sort_by_creation() {
        let a = generate_id();
        let b = generate_id();
        assert!(a.starts_with("ep_") && a.len() == 3 + 27, "{a}");
        assert!(a < b);
    }

    #[test]
    fn event_types_are_sorted_deduplicated_and_checked() {
        let types = ["b".to_owned(), "a".to_owned(), "b".to_owned()];
        assert_eq!(
            normalize_event_types(&types).ok(),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        for bad in ["", " ", "*"] {
            assert!(normalize_event_types(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
        assert_eq!(event_rows(&[]), vec!["*"]);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(DEFAULT_FAILURE_WINDOW), "5 days");
        assert_eq!(human(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human(Duration::from_millis(300)), "300 ms");
    }
}
