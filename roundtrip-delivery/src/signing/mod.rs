//! Standard Webhooks v1 signing and verification.
//!
//! Every delivery carries three headers, as the [Standard Webhooks] specification
//! asks:
//!
//! - `webhook-id`: the message id, stable across retries, so that receivers can
//!   deduplicate (delivery is at least once);
//! - `webhook-timestamp`: when this attempt was signed, in integer Unix seconds, so
//!   that receivers can refuse replays;
//! - `webhook-signature`: space-separated `v1,<base64>` entries, each the
//!   HMAC-SHA256 of `{id}.{timestamp}.{body}` under one active secret.
//!
//! Secrets rotate without downtime: while a rotation runs, the [`Signer`] holds the
//! old and the new secret and signs with both, and a receiver that knows either one
//! accepts the message. The receiving side uses [`Verifier`], which compares in
//! constant time and allows 5 minutes of clock skew by default.
//!
//! ```
//! use roundtrip_delivery::signing::{Secret, Signer, Verifier};
//!
//! let secret = Secret::generate()?;
//! let signer = Signer::new(secret.clone());
//! let (id, now, body) = ("msg_2b1f", 1_700_000_000, br#"{"paid":true}"#);
//!
//! let mut headers = http::HeaderMap::new();
//! headers.extend(signer.headers(id, now, body)?);
//!
//! let verified = Verifier::new(secret).verify_at(&headers, body, now)?;
//! assert_eq!(verified.id, "msg_2b1f");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

mod secret;
mod verify;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac as _;
use http::{HeaderName, HeaderValue};

pub use secret::{Secret, SecretError};
pub use verify::{VerifiedHeaders, Verifier, VerifyError, VerifyErrorKind};

use secret::HmacSha256;

/// The `webhook-id` header: the message id, the same on every retry.
pub const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
/// The `webhook-timestamp` header: integer Unix seconds when the attempt was signed.
pub const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
/// The `webhook-signature` header: space-separated `v1,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// The version tag of HMAC-SHA256 signatures.
const V1: &str = "v1";

/// Signs outgoing messages with every active secret.
///
/// Hold one secret normally, and two while a rotation runs; every secret signs,
/// so receivers holding either accept the message.
#[derive(Clone, Debug)]
pub struct Signer {
    secrets: Vec<Secret>,
}

impl Signer {
    /// A signer with one active secret.
    pub fn new(secret: Secret) -> Self {
        Self {
            secrets: vec![secret],
        }
    }

    /// A signer with several active secrets, for example the old and the new one
    /// during a rotation. Fails when `secrets` is empty.
    pub fn from_secrets(secrets: impl IntoIterator<Item = Secret>) -> Result<Self, SecretError> {
        let secrets: Vec<Secret> = secrets.into_iter().collect();
        if secrets.is_empty() {
            return Err(SecretError::NoSecrets);
        }
        Ok(Self { secrets })
    }

    /// Adds another active secret; messages are then signed with it as well.
    #[must_use]
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// The active secrets, in signing order.
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// The `webhook-signature` value for this message: one `v1,<base64>` entry per
    /// active secret, separated by spaces.
    ///
    /// `timestamp` is in Unix seconds and must be the one sent in
    /// `webhook-timestamp`; `body` is the exact bytes sent.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        // "v1," + 44 base64 characters + a separating space, per secret.
        let mut header = String::with_capacity(self.secrets.len() * 48);
        for secret in &self.secrets {
            if !header.is_empty() {
                header.push(' ');
            }
            header.push_str(V1);
            header.push(',');
            STANDARD.encode_string(tag(secret, msg_id, timestamp, body), &mut header);
        }
        header
    }

    /// The three Standard Webhooks headers for this message: `webhook-id`,
    /// `webhook-timestamp` and `webhook-signature`, in that order.
    ///
    /// Fails only when `msg_id` cannot be a header value (it holds a control
    /// character); ids made by the outbox never do.
    pub fn headers(
        &self,
        msg_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Result<[(HeaderName, HeaderValue); 3], InvalidMessageId> {
        let invalid = || InvalidMessageId {
            id: msg_id.escape_debug().take(64).collect(),
        };
        let id = HeaderValue::from_str(msg_id).map_err(|_| invalid())?;
        // Base64, "v1," and spaces are visible ASCII, so this cannot fail; the
        // error branch keeps that assumption from ever becoming a panic.
        let signature =
            HeaderValue::try_from(self.sign(msg_id, timestamp, body)).map_err(|_| invalid())?;
        Ok([
            (WEBHOOK_ID, id),
            (WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp)),
            (WEBHOOK_SIGNATURE, signature),
        ])
    }
}

/// The HMAC-SHA256 of `{msg_id}.{timestamp}.{body}` under `secret`.
fn tag(secret: &Secret, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac: HmacSha256 = secret.mac().clone();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// A message id that cannot be sent in the `webhook-id` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the message id \"{id}\" cannot be sent in the `webhook-id` header: it holds a control \
     character or line break; use printable characters only"
)]
pub struct InvalidMessageId {
    id: String,
}
