//! The response contracts of an app's callbacks and webhooks: what the workers check a
//! receiver's answer against (`R` of `Callback<P, R>` and `Webhook<P, R>`).

use std::collections::HashMap;

use roundtrip_delivery::message::{MessageKind, MessageMeta};
use roundtrip_delivery::worker::ResponseCheck;
use serde_json::Value;

use crate::callback::{CallbackSpec, WebhookSpec};
use crate::extract::validation::ValidatorFn;

/// The response contracts of every callback and webhook, by kind and name.
#[derive(Default)]
pub(crate) struct Contracts {
    pub(crate) responses: HashMap<(MessageKind, String), ValidatorFn>,
}

impl Contracts {
    /// The contracts of the app's webhooks and of the callbacks bound to its operations.
    pub(crate) fn new(webhooks: &[WebhookSpec], callbacks: &[CallbackSpec]) -> Self {
        let mut responses = HashMap::new();
        for webhook in webhooks {
            responses.insert(
                (MessageKind::Webhook, webhook.event.clone()),
                webhook.response_validator,
            );
        }
        for callback in callbacks {
            responses.insert(
                (MessageKind::Callback, callback.name.clone()),
                callback.response_validator,
            );
        }
        Contracts { responses }
    }
}

impl ResponseCheck for Contracts {
    fn check(&self, message: &MessageMeta, _status: u16, body: &[u8]) -> Option<String> {
        let validator = self.responses.get(&(message.kind, message.name.clone()))?;
        let validator = validator().ok()?;
        let mut value: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(err) => return Some(format!("the response is not JSON: {err}")),
        };
        let mut errors = Vec::new();
        validator.validator.validate(&mut value, &[], &mut errors);
        if errors.is_empty() {
            return None;
        }
        Some(format!(
            "the response does not match the declared schema: {}",
            crate::error::summarize(&errors)
        ))
    }
}
