//! Verifying a received message: headers, timestamp tolerance, signatures.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac as _;
use hmac::digest::{CtOutput, Output};
use http::HeaderMap;

use super::secret::HmacSha256;
use super::{Secret, SecretError, V1};

/// The clock skew Standard Webhooks allows by default: 5 minutes either way.
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Checks the Standard Webhooks headers of a received message.
///
/// Holds one or more secrets (several while the sender rotates) and accepts a
/// message when any `v1` signature in `webhook-signature` matches any of them.
/// Entries of other versions are ignored, so a sender can add `v1a` signatures
/// without breaking this receiver. The timestamp must lie within the tolerance
/// (5 minutes by default) of the receiver's clock, which stops replays.
///
/// Verify the raw body bytes, before parsing them: re-serialised JSON does not
/// carry the same signature.
#[derive(Clone, Debug)]
pub struct Verifier {
    secrets: Vec<Secret>,
    tolerance_secs: i64,
}

/// The identity of a verified message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedHeaders {
    /// The `webhook-id`: deduplicate on it, because delivery is at least once.
    pub id: String,
    /// The `webhook-timestamp`, in Unix seconds.
    pub timestamp: i64,
}

impl Verifier {
    /// A verifier that accepts messages signed with `secret`.
    pub fn new(secret: Secret) -> Self {
        Self {
            secrets: vec![secret],
            tolerance_secs: saturating_secs(DEFAULT_TOLERANCE),
        }
    }

    /// A verifier that accepts messages signed with any of `secrets`. Fails when
    /// `secrets` is empty.
    pub fn from_secrets(secrets: impl IntoIterator<Item = Secret>) -> Result<Self, SecretError> {
        let secrets: Vec<Secret> = secrets.into_iter().collect();
        if secrets.is_empty() {
            return Err(SecretError::NoSecrets);
        }
        Ok(Self {
            secrets,
            tolerance_secs: saturating_secs(DEFAULT_TOLERANCE),
        })
    }

    /// Also accepts messages signed with `secret`.
    #[must_use]
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Sets how far `webhook-timestamp` may lie from the receiver's clock, in
    /// either direction (default 5 minutes). Whole seconds count.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance_secs = saturating_secs(tolerance);
        self
    }

    /// The timestamp tolerance, in either direction.
    pub fn tolerance(&self) -> Duration {
        Duration::from_secs(self.tolerance_secs.unsigned_abs())
    }

    /// Verifies `headers` and `body` against the system clock.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<VerifiedHeaders, VerifyError> {
        let now = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since_epoch) => saturating_secs(since_epoch),
            // A clock before 1970 is broken; every timestamp then looks too new.
            Err(_) => 0,
        };
        self.verify_at(headers, body, now)
    }

    /// Verifies `headers` and `body` as if the clock read `now` (Unix seconds).
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<VerifiedHeaders, VerifyError> {
        let id = header_text(headers, "webhook-id")?;
        let timestamp_text = header_text(headers, "webhook-timestamp")?;
        let signatures = header_text(headers, "webhook-signature")?;

        let timestamp = parse_timestamp(timestamp_text)?;
        let age = i128::from(now) - i128::from(timestamp);
        let tolerance = i128::from(self.tolerance_secs);
        if age > tolerance {
            return Err(VerifyError::new(ErrorDetail::TooOld { age, tolerance }));
        }
        if -age > tolerance {
            return Err(VerifyError::new(ErrorDetail::TooNew {
                ahead: -age,
                tolerance,
            }));
        }

        // Signed over the integer as the reference libraries print it, so a
        // zero-padded header verifies as it does for them.
        let timestamp_digits = timestamp.to_string();
        // One HMAC per secret, however many entries the header lists: a header
        // stuffed with signatures costs comparisons, not hashing of the body.
        let expected: Vec<CtOutput<HmacSha256>> = self
            .secrets
            .iter()
            .map(|secret| {
                let mut mac = secret.mac().clone();
                mac.update(id.as_bytes());
                mac.update(b".");
                mac.update(timestamp_digits.as_bytes());
                mac.update(b".");
                mac.update(body);
                mac.finalize()
            })
            .collect();

        let mut matched = false;
        for entry in signatures.split_ascii_whitespace() {
            let Some((V1, encoded)) = entry.split_once(',') else {
                continue;
            };
            let Ok(decoded) = STANDARD.decode(encoded) else {
                continue;
            };
            let Ok(candidate) = Output::<HmacSha256>::try_from(decoded.as_slice()) else {
                continue;
            };
            let candidate = CtOutput::<HmacSha256>::new(candidate);
            // Constant-time equality (`CtOutput`); keep looking after a match so
            // that the time taken does not say which entry or secret matched.
            for tag in &expected {
                matched |= *tag == candidate;
            }
        }
        if !matched {
            return Err(VerifyError::new(ErrorDetail::NoMatch));
        }
        Ok(VerifiedHeaders {
            id: id.to_owned(),
            timestamp,
        })
    }
}

/// A header's value as text, or the error naming what is wrong with it.
/// `name` is one of the lowercase `webhook-*` names that
/// [`WEBHOOK_ID`](super::WEBHOOK_ID) and its siblings spell.
fn header_text<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    let value = headers
        .get(name)
        .ok_or(VerifyError::new(ErrorDetail::Missing(name)))?;
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| VerifyError::new(ErrorDetail::NotText(name)))?;
    if text.trim().is_empty() {
        return Err(VerifyError::new(ErrorDetail::Missing(name)));
    }
    Ok(text)
}

/// Integer Unix seconds: ASCII digits only, as every reference library sends.
/// Signs, fractions, exponents and spaces are refused.
fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    let invalid = || {
        VerifyError::new(ErrorDetail::BadTimestamp(
            text.escape_debug().take(32).collect(),
        ))
    };
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid());
    }
    text.parse::<i64>().map_err(|_| invalid())
}

fn saturating_secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// What went wrong when verifying a message.
///
/// Ask it with [`kind`](Self::kind) or the `is_*` predicates; map any of them to
/// `400 Bad Request` or `401 Unauthorized`, and never process the body.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyError {
    detail: ErrorDetail,
}

/// The kinds of [`VerifyError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerifyErrorKind {
    /// `webhook-id`, `webhook-timestamp` or `webhook-signature` is absent or empty.
    MissingHeader,
    /// One of the three headers is not UTF-8 text.
    InvalidHeader,
    /// `webhook-timestamp` is not an integer number of Unix seconds.
    InvalidTimestamp,
    /// The timestamp is older than the tolerance allows: a replay, or a slow clock
    /// at the sender.
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance allows.
    TimestampTooNew,
    /// No `v1` signature matches any of the verifier's secrets.
    NoMatchingSignature,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ErrorDetail {
    Missing(&'static str),
    NotText(&'static str),
    BadTimestamp(String),
    TooOld { age: i128, tolerance: i128 },
    TooNew { ahead: i128, tolerance: i128 },
    NoMatch,
}

impl VerifyError {
    fn new(detail: ErrorDetail) -> Self {
        Self { detail }
    }

    /// Which check failed.
    pub fn kind(&self) -> VerifyErrorKind {
        match self.detail {
            ErrorDetail::Missing(_) => VerifyErrorKind::MissingHeader,
            ErrorDetail::NotText(_) => VerifyErrorKind::InvalidHeader,
            ErrorDetail::BadTimestamp(_) => VerifyErrorKind::InvalidTimestamp,
            ErrorDetail::TooOld { .. } => VerifyErrorKind::TimestampTooOld,
            ErrorDetail::TooNew { .. } => VerifyErrorKind::TimestampTooNew,
            ErrorDetail::NoMatch => VerifyErrorKind::NoMatchingSignature,
        }
    }

    /// The header that is missing or unreadable, if that is the problem.
    pub fn header(&self) -> Option<&'static str> {
        match self.detail {
            ErrorDetail::Missing(name) | ErrorDetail::NotText(name) => Some(name),
            _ => None,
        }
    }

    /// A required header is absent or empty.
    pub fn is_missing_header(&self) -> bool {
        self.kind() == VerifyErrorKind::MissingHeader
    }

    /// The timestamp is malformed, too old or too new.
    pub fn is_timestamp(&self) -> bool {
        matches!(
            self.kind(),
            VerifyErrorKind::InvalidTimestamp
                | VerifyErrorKind::TimestampTooOld
                | VerifyErrorKind::TimestampTooNew
        )
    }

    /// The headers were fine but no signature matched.
    pub fn is_signature(&self) -> bool {
        self.kind() == VerifyErrorKind::NoMatchingSignature
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            ErrorDetail::Missing(name) => write!(
                f,
                "the `{name}` header is missing or empty: a Standard Webhooks message carries \
                 webhook-id, webhook-timestamp and webhook-signature"
            ),
            ErrorDetail::NotText(name) => write!(f, "the `{name}` header is not UTF-8 text"),
            ErrorDetail::BadTimestamp(text) => write!(
                f,
                "the `webhook-timestamp` header \"{text}\" is not an integer number of Unix seconds"
            ),
            ErrorDetail::TooOld { age, tolerance } => write!(
                f,
                "the message timestamp is {age} s old, more than the {tolerance} s tolerance: \
                 a replayed message, or the sender's clock is behind"
            ),
            ErrorDetail::TooNew { ahead, tolerance } => write!(
                f,
                "the message timestamp is {ahead} s in the future, more than the {tolerance} s \
                 tolerance: the sender's clock is ahead of this one"
            ),
            ErrorDetail::NoMatch => f.write_str(
                "no `v1` signature in `webhook-signature` matches: the secret is wrong, or the \
                 body changed on the way (verify the raw bytes, before parsing them)",
            ),
        }
    }
}

impl fmt::Debug for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyError")
            .field("kind", &self.kind())
            .field("message", &self.to_string())
            .finish()
    }
}

impl std::error::Error for VerifyError {}
