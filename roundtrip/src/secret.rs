//! A field that holds a secret (a password, a signing key, a token): pydantic's
//! `SecretStr`.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A string that holds a secret. It reads like a `String`, but it is never shown:
/// `Debug` prints `[redacted]`, serializing writes `**********` (as pydantic's `SecretStr`
/// does), and a 422 never echoes it as `input`, also when the error is about the object
/// that holds it. The schema is `type: string`, `format: password`, `writeOnly: true`, so
/// documentation UIs mask it and clients know it is not returned.
///
/// ```
/// use roundtrip::SecretString;
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Login {
///     username: String,
///     password: SecretString,
/// }
///
/// let login: Login = serde_json::from_str(r#"{"username": "ada", "password": "hunter2"}"#)?;
/// assert_eq!(login.password.expose_secret(), "hunter2");
/// assert_eq!(format!("{:?}", login.password), "[redacted]");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

/// What a secret is serialized as.
const MASK: &str = "**********";

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretString(secret.into())
    }

    /// The secret itself: the one place it can be read.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The secret, unwrapped.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        SecretString(secret)
    }
}

impl From<&str> for SecretString {
    fn from(secret: &str) -> Self {
        SecretString(secret.to_owned())
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretString)
    }
}

impl serde::Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

impl JsonSchema for SecretString {
    fn schema_name() -> Cow<'static, str> {
        "SecretString".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "password", "writeOnly": true})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_shown() {
        let secret = SecretString::from("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(
            serde_json::to_string(&secret).ok().as_deref(),
            Some("\"**********\"")
        );
        assert_eq!(secret.expose_secret(), "hunter2");
    }
}
