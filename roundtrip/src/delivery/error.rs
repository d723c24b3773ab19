//! Why an app's delivery could not be set up.

use std::error::Error;
use std::fmt;

/// Why an app's delivery could not be set up: a mistake in its configuration (a malformed
/// `ROUNDTRIP_SIGNING_SECRET`, an outbox URL that names no store roundtrip has), an outbox
/// that could not be opened, or delivery workers that could not start.
///
/// Returned by [`BuiltApp::outbox`](crate::BuiltApp::outbox) and
/// [`BuiltApp::start_delivery`](crate::BuiltApp::start_delivery). Its message says what
/// failed and where (a database URL is shown redacted); [`Error::source`] is the cause,
/// when there is one. Ask what kind it is with the `is_*` predicates.
#[derive(Debug)]
pub struct DeliverySetupError {
    kind: Kind,
    message: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Configuration,
    OpenStore,
    StartWorkers,
}

impl DeliverySetupError {
    pub(crate) fn configuration(message: String) -> Self {
        DeliverySetupError {
            kind: Kind::Configuration,
            message,
            source: None,
        }
    }

    pub(crate) fn open_store(message: String) -> Self {
        DeliverySetupError {
            kind: Kind::OpenStore,
            message,
            source: None,
        }
    }

    pub(crate) fn start_workers(message: String) -> Self {
        DeliverySetupError {
            kind: Kind::StartWorkers,
            message,
            source: None,
        }
    }

    pub(crate) fn caused_by(mut self, source: impl Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The configuration is wrong: a malformed signing secret, or an outbox URL that names
    /// no store roundtrip has. Nothing was opened or started.
    pub fn is_configuration(&self) -> bool {
        self.kind == Kind::Configuration
    }

    /// The outbox could not be opened (or migrated): the database is unreachable, say, or
    /// an outbox that must already exist does not.
    pub fn is_open_store(&self) -> bool {
        self.kind == Kind::OpenStore
    }

    /// The delivery workers could not start.
    pub fn is_start_workers(&self) -> bool {
        self.kind == Kind::StartWorkers
    }
}

impl fmt::Display for DeliverySetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for DeliverySetupError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn Error + 'static))
    }
}
