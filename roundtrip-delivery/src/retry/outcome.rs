//! What happened on one delivery attempt.

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header::RETRY_AFTER};

use super::parse_retry_after;
use crate::message::AttemptErrorKind;
use crate::ssrf::SsrfError;

/// What happened on one delivery attempt: the one description of it that the workers
/// record (its [`error_kind`](Self::error_kind) and text go into the attempt log) and
/// that [`RetrySchedule::decide`] turns into a [`Decision`](super::Decision).
///
/// Texts carried here describe the failure without the URL, whose path and query
/// can hold tokens; they are fit for the attempt log.
///
/// [`RetrySchedule::decide`]: super::RetrySchedule::decide
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The receiver answered with this status.
    Status {
        /// The HTTP status code.
        code: u16,
        /// The wait its `Retry-After` header asked for, if any.
        retry_after: Option<Duration>,
    },
    /// The connection or the whole request timed out.
    Timeout,
    /// No connection: refused, reset, unreachable, TLS failure, or a host name that
    /// did not resolve.
    Connect(String),
    /// The SSRF guard refused the target.
    Refused(SsrfError),
    /// The connection broke while the request was sent or the response read.
    Io(String),
    /// The secrets to sign the message could not be had, so nothing was sent.
    Secret(String),
    /// Anything else that went wrong while sending.
    Other(String),
}

impl AttemptOutcome {
    /// The outcome of a response: its status, and the `Retry-After` header read
    /// relative to `now`.
    pub fn from_response(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Self {
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, now));
        Self::Status {
            code: status.as_u16(),
            retry_after,
        }
    }

    /// Classifies an error from reqwest: a refusal by the SSRF guard (which
    /// reqwest wraps), a timeout, a connection failure, a connection that broke
    /// while sending or reading, or something else.
    pub(crate) fn from_reqwest_error(error: &reqwest::Error) -> Self {
        if let Some(ssrf) = SsrfError::find_in(error) {
            return if ssrf.is_permanent() {
                Self::Refused(ssrf.clone())
            } else {
                Self::Connect(ssrf.to_string())
            };
        }
        if error.is_timeout() {
            return Self::Timeout;
        }
        let description = describe_without_url(error);
        if error.is_connect() {
            Self::Connect(description)
        } else if error.is_request() || error.is_body() || error.is_decode() {
            Self::Io(description)
        } else {
            Self::Other(description)
        }
    }

    /// Whether this outcome delivered the message (a `2xx` status).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Status { code, .. } if (200..300).contains(code))
    }

    /// Whether the receiver is overloaded or slow: a `429` or a timeout. These
    /// wait at least the schedule's throttle floor.
    pub fn is_throttle(&self) -> bool {
        matches!(self, Self::Timeout | Self::Status { code: 429, .. })
    }

    /// A short name of the kind of outcome: `status` when the receiver answered,
    /// otherwise the name of its [`error_kind`](Self::error_kind) (`timeout`,
    /// `connect`, `refused`, `io`, `secret` or `other`).
    pub fn kind(&self) -> &'static str {
        self.error_kind().map_or("status", AttemptErrorKind::as_str)
    }

    /// The kind of failure to record, or `None` when the receiver answered.
    pub fn error_kind(&self) -> Option<AttemptErrorKind> {
        Some(match self {
            Self::Status { .. } => return None,
            Self::Timeout => AttemptErrorKind::Timeout,
            Self::Connect(_) => AttemptErrorKind::Connect,
            Self::Refused(_) => AttemptErrorKind::Refused,
            Self::Io(_) => AttemptErrorKind::Io,
            Self::Secret(_) => AttemptErrorKind::Secret,
            Self::Other(_) => AttemptErrorKind::Other,
        })
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { code, retry_after } => {
                match StatusCode::from_u16(*code)
                    .ok()
                    .and_then(|status| status.canonical_reason())
                {
                    Some(reason) => write!(f, "the receiver answered {code} {reason}")?,
                    None => write!(f, "the receiver answered {code}")?,
                }
                if let Some(wait) = retry_after {
                    write!(f, " (Retry-After: {} s)", wait.as_secs())?;
                }
                Ok(())
            }
            Self::Timeout => f.write_str("the request timed out"),
            Self::Connect(detail) => write!(f, "could not connect: {detail}"),
            Self::Refused(error) => write!(f, "{error}"),
            Self::Io(detail) | Self::Secret(detail) | Self::Other(detail) => {
                write!(f, "the request failed: {detail}")
            }
        }
    }
}

/// The causes of a reqwest error, which name what went wrong without the URL
/// that reqwest's own message includes.
fn describe_without_url(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Wrappers often repeat their cause; keep each text once.
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        let kind = if error.is_connect() {
            "connection failed"
        } else if error.is_body() {
            "sending the body failed"
        } else if error.is_request() {
            "building or sending the request failed"
        } else {
            "unknown error"
        };
        parts.push(kind.to_owned());
    }
    parts.join(": ")
}
