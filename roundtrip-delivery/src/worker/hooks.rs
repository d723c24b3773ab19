//! The workers' extension points: where signing secrets come from, and how a response is
//! checked against the declared contract.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::message::MessageMeta;
use crate::signing::Secret;

/// An error from a [`SecretSource`]. The attempt is recorded as failed with error kind
/// `secret` and retried on the schedule.
pub type SecretSourceError = Box<dyn std::error::Error + Send + Sync>;

/// Finds the secrets that sign a message, at send time.
///
/// A message stores only a `signing_key` reference (for example a customer or endpoint
/// id); the secrets themselves are looked up here for every attempt, so rotating a secret
/// takes effect on the next attempt and no secret sits in the queue. During a rotation,
/// return every active secret: each one signs.
pub trait SecretSource: Send + Sync + 'static {
    /// The active secrets for `message`, at least one.
    fn secrets<'a>(
        &'a self,
        message: &'a MessageMeta,
    ) -> BoxFuture<'a, Result<Vec<Secret>, SecretSourceError>>;
}

/// One app-wide set of secrets that signs every message (the default source).
#[derive(Clone, Debug)]
pub struct StaticSecrets {
    secrets: Arc<[Secret]>,
}

impl StaticSecrets {
    /// Signs with one secret.
    pub fn new(secret: Secret) -> Self {
        StaticSecrets {
            secrets: Arc::from(vec![secret]),
        }
    }

    /// Signs with every secret in `secrets` (several during a rotation).
    pub fn from_secrets(secrets: impl IntoIterator<Item = Secret>) -> Self {
        StaticSecrets {
            secrets: secrets.into_iter().collect(),
        }
    }
}

impl SecretSource for StaticSecrets {
    fn secrets<'a>(
        &'a self,
        _message: &'a MessageMeta,
    ) -> BoxFuture<'a, Result<Vec<Secret>, SecretSourceError>> {
        let secrets = self.secrets.to_vec();
        Box::pin(async move {
            if secrets.is_empty() {
                Err("no signing secret is configured: give StaticSecrets at least one".into())
            } else {
                Ok(secrets)
            }
        })
    }
}

/// Checks a 2xx response against the contract the callback declared.
///
/// The framework implements it with the declared response schema; a mismatch is recorded
/// on the attempt as a contract violation and logged as a warning. It never changes the
/// outcome: the receiver answered 2xx, so the message is delivered.
pub trait ResponseCheck: Send + Sync + 'static {
    /// Why the response breaks the contract, or `None` if it keeps it. `body` holds the
    /// first bytes of the response only (the stored cap).
    fn check(&self, message: &MessageMeta, status: u16, body: &[u8]) -> Option<String>;
}

impl<F> ResponseCheck for F
where
    F: Fn(&MessageMeta, u16, &[u8]) -> Option<String> + Send + Sync + 'static,
{
    fn check(&self, message: &MessageMeta, status: u16, body: &[u8]) -> Option<String> {
        self(message, status, body)
    }
}

/// What one finished attempt did, as an [`AttemptObserver`] sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct AttemptReport<'a> {
    /// The message, as it was when claimed.
    pub message: &'a MessageMeta,
    /// The attempt as it will be recorded.
    pub attempt: &'a crate::message::NewAttempt,
    /// What was decided after it: the message's next state.
    pub decision: &'a crate::message::Decision,
}

/// Learns about every attempt as it starts and finishes: for metrics, or to act on what
/// receivers answer (a webhook endpoint that answers 410 is disabled).
///
/// Called on the worker's task: keep it quick and never block; hand slow work to a task of
/// your own.
pub trait AttemptObserver: Send + Sync + 'static {
    /// An attempt is about to be made.
    fn started(&self, message: &MessageMeta) {
        let _ = message;
    }

    /// An attempt finished and what follows from it is decided.
    fn finished(&self, report: &AttemptReport<'_>);
}
