//! Where the signing secrets come from: the app's (given, or read from
//! `ROUNDTRIP_SIGNING_SECRET`) and, for messages bound for a webhook endpoint, the
//! endpoint's own.

use std::sync::Arc;

use roundtrip_delivery::message::MessageMeta;
use roundtrip_delivery::signing::Secret;
use roundtrip_delivery::worker::SecretSource;

use super::config::SIGNING_SECRET_ENV;
use super::error::DeliverySetupError;

/// The signing secret of `ROUNDTRIP_SIGNING_SECRET`, if it is set: `whsec_` and the base64
/// of 24 to 64 bytes ([`Secret::parse_strict`]). A malformed one is an error, never
/// replaced by a random secret no receiver could verify.
pub(super) fn env_secret() -> Result<Option<Secret>, DeliverySetupError> {
    match std::env::var(SIGNING_SECRET_ENV) {
        Ok(text) => Secret::parse_strict(&text).map(Some).map_err(|err| {
            DeliverySetupError::configuration(format!(
                "{SIGNING_SECRET_ENV} is not a valid signing secret: {err}"
            ))
            .caused_by(err)
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(DeliverySetupError::configuration(format!(
            "{SIGNING_SECRET_ENV} is not a valid signing secret: it is not UTF-8"
        ))),
    }
}

/// Messages bound for a webhook endpoint are signed with the endpoint's secrets; every
/// other message with the app's.
pub(super) struct RoutedSecrets {
    pub(super) app: Arc<dyn SecretSource>,
    pub(super) endpoints: Option<Arc<dyn SecretSource>>,
}

impl SecretSource for RoutedSecrets {
    fn secrets<'a>(
        &'a self,
        message: &'a MessageMeta,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<Vec<Secret>, roundtrip_delivery::worker::SecretSourceError>,
    > {
        match (&message.endpoint_id, &self.endpoints) {
            (Some(_), Some(endpoints)) => endpoints.secrets(message),
            _ => self.app.secrets(message),
        }
    }
}
