//! Signing secrets: parsing, generating and printing `whsec_…` keys.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, KeyInit as _};
use sha2::Sha256;

/// HMAC-SHA256 keyed once per secret; cloned for each message.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The prefix Standard Webhooks puts before the base64 key.
const PREFIX: &str = "whsec_";

/// How many bytes of key [`Secret::parse_strict`] accepts.
const STRICT_LEN: std::ops::RangeInclusive<usize> = 24..=64;

/// How many random bytes [`Secret::generate`] draws: 256 bits, the size of the
/// HMAC-SHA256 output, as RFC 2104 recommends for the key.
const GENERATED_LEN: usize = 32;

/// Base64 as the reference libraries read secrets: standard alphabet, padding
/// optional, and stray low bits of the last character ignored. The Python library
/// decodes `secret + "=="` leniently, so secrets copied from other services in
/// unpadded form work there; they work here too, with the same key.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// A Standard Webhooks signing secret: the raw HMAC key, written `whsec_<base64>`.
///
/// `Display` (and so `to_string()`) prints the `whsec_` form, which is how a
/// secret is stored and handed to the receiver. `Debug` never prints key
/// material, so a secret inside a logged struct stays secret.
///
/// ```
/// use roundtrip_delivery::signing::Secret;
///
/// let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// assert_eq!(secret.to_string(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
/// assert_eq!(format!("{secret:?}"), "Secret(REDACTED)");
/// # Ok::<(), roundtrip_delivery::signing::SecretError>(())
/// ```
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
    mac: HmacSha256,
}

impl Secret {
    /// Parses `whsec_<base64>`, or the bare base64 key as the reference
    /// libraries also accept. Surrounding whitespace is ignored; padding is
    /// optional. An empty key is refused.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let encoded = text.strip_prefix(PREFIX).unwrap_or(text);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = LENIENT
            .decode(encoded)
            .map_err(|error| SecretError::NotBase64(error.to_string()))?;
        Self::from_bytes(&key)
    }

    /// Parses a secret given as configuration (an environment variable, an endpoint's
    /// registration): `whsec_` followed by the base64 of 24 to 64 bytes, as Svix asks.
    /// Stricter than [`Secret::parse`], which reads what the reference verifiers read: a
    /// missing prefix or a short key is more likely a mistake (a password, a truncated
    /// copy) than a key, and a server must not sign with it.
    pub fn parse_strict(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        if !text.starts_with(PREFIX) {
            return Err(SecretError::NoPrefix);
        }
        let secret = Self::parse(text)?;
        if !STRICT_LEN.contains(&secret.key_len()) {
            return Err(SecretError::Length(secret.key_len()));
        }
        Ok(secret)
    }

    /// Uses `key` as the raw HMAC key. An empty key is refused.
    pub fn from_bytes(key: &[u8]) -> Result<Self, SecretError> {
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        // HMAC takes keys of any length; the error branch is unreachable in practice.
        let mac = HmacSha256::new_from_slice(key).map_err(|_| SecretError::Empty)?;
        Ok(Self {
            key: key.to_vec(),
            mac,
        })
    }

    /// Draws a new 32-byte secret from the operating system's random source.
    ///
    /// Fails only when the operating system cannot provide randomness.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = [0u8; GENERATED_LEN];
        getrandom::fill(&mut key).map_err(|error| SecretError::NoRandomness(error.to_string()))?;
        Self::from_bytes(&key)
    }

    /// The length of the raw key in bytes.
    pub fn key_len(&self) -> usize {
        self.key.len()
    }

    /// The HMAC state keyed with this secret, ready to be cloned per message.
    pub(crate) fn mac(&self) -> &HmacSha256 {
        &self.mac
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        f.write_str(&STANDARD.encode(&self.key))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(REDACTED)")
    }
}

/// A signing secret could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The key is empty (`whsec_` alone, or no bytes).
    #[error("the webhook secret is empty: expected `whsec_` followed by a base64 key")]
    Empty,
    /// The text after `whsec_` is not base64.
    #[error(
        "the webhook secret is not valid base64 ({0}): expected `whsec_` followed by a \
         standard-alphabet base64 key"
    )]
    NotBase64(String),
    /// The secret does not start with `whsec_` ([`Secret::parse_strict`]).
    #[error(
        "the webhook secret does not start with `whsec_`: expected `whsec_` followed by a \
         base64 key"
    )]
    NoPrefix,
    /// The key is shorter than 24 or longer than 64 bytes ([`Secret::parse_strict`]).
    #[error(
        "the webhook secret's key holds {0} bytes; it must hold 24 to 64 bytes (`whsec_` \
         and 32 to 88 base64 characters)"
    )]
    Length(usize),
    /// The operating system gave no random bytes for a new secret.
    #[error(
        "could not generate a webhook secret: the operating system's random source failed ({0})"
    )]
    NoRandomness(String),
    /// A signer or verifier was given no secrets at all.
    #[error("no secrets given: a signer or verifier needs at least one active secret")]
    NoSecrets,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_secrets_need_the_prefix_and_24_to_64_bytes() {
        let key = |n: usize| STANDARD.encode(vec![7u8; n]);
        assert_eq!(
            Secret::parse_strict(&key(32)).err(),
            Some(SecretError::NoPrefix)
        );
        assert_eq!(
            Secret::parse_strict("nope").err(),
            Some(SecretError::NoPrefix)
        );
        assert_eq!(
            Secret::parse_strict(&format!("whsec_{}", key(23))).err(),
            Some(SecretError::Length(23))
        );
        assert_eq!(
            Secret::parse_strict(&format!("whsec_{}", key(65))).err(),
            Some(SecretError::Length(65))
        );
        assert!(matches!(
            Secret::parse_strict("whsec_not*base64"),
            Err(SecretError::NotBase64(_))
        ));
        for n in [24, 32, 64] {
            let secret = Secret::parse_strict(&format!(" whsec_{} ", key(n)));
            assert_eq!(secret.map(|s| s.key_len()).ok(), Some(n));
        }
        // The errors never show the secret.
        let given = format!("whsec_{}", key(10));
        let err = Secret::parse_strict(&given).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| !e.contains(&given[6..])));
    }
}
