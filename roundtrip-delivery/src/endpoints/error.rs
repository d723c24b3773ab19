//! Errors of the endpoint stores: the shared classification of database errors
//! ([`store::error`](crate::store::error)), asked with the predicates of this store.

use std::fmt;

pub(crate) use crate::store::error::ErrorKind;
use crate::store::error::{self, Repr, Subject};

/// An error from an [`EndpointStore`](super::EndpointStore).
///
/// Ask it what went wrong with the `is_*` predicates; new kinds may be added without
/// breaking callers. Messages name endpoints by id and never hold secrets.
pub struct Error {
    repr: Repr,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Repr::new(kind, message).into()
    }

    pub(crate) fn with_source(
        self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.repr.with_source(source).into()
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub(crate) fn not_found(id: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            format!(
                "no webhook endpoint has the id `{}`",
                id.chars().take(80).collect::<String>()
            ),
        )
    }

    pub(crate) fn duplicate(existing: &str) -> Self {
        Self::new(
            ErrorKind::Conflict,
            format!(
                "the webhook endpoint `{existing}` already has this URL and these event types; \
                 update that one instead, or subscribe to other event types"
            ),
        )
    }

    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }

    /// The input was refused (a URL that is not http or https, an empty event type...):
    /// nothing was written.
    pub fn is_invalid(&self) -> bool {
        self.repr.kind() == ErrorKind::Invalid
    }

    /// No endpoint has the given id (it never existed, or it was deleted).
    pub fn is_not_found(&self) -> bool {
        self.repr.kind() == ErrorKind::NotFound
    }

    /// Another endpoint already has the same URL and event types (a duplicate), or a
    /// concurrent change of the same endpoint won.
    pub fn is_conflict(&self) -> bool {
        self.repr.kind() == ErrorKind::Conflict
    }

    /// The endpoint is disabled: its messages are not signed (nor sent) until it is
    /// enabled again.
    pub fn is_disabled(&self) -> bool {
        self.repr.kind() == ErrorKind::Disabled
    }

    /// The database could not be reached or used right now (locked past the busy timeout,
    /// or the store closed); trying again later may succeed.
    pub fn is_unavailable(&self) -> bool {
        self.repr.kind().is_unavailable()
    }

    /// The database cannot be written (permissions, a read-only file or standby).
    pub fn is_read_only(&self) -> bool {
        self.repr.kind() == ErrorKind::ReadOnly
    }

    /// Stored data could not be read back or the schema could not be brought up to date.
    pub fn is_corrupt(&self) -> bool {
        self.repr.kind() == ErrorKind::Corrupt
    }

    /// What went wrong, in one sentence (without the source).
    pub fn message(&self) -> &str {
        self.repr.message()
    }
}

impl From<Repr> for Error {
    fn from(repr: Repr) -> Self {
        Error { repr }
    }
}

impl From<Error> for Repr {
    fn from(error: Error) -> Self {
        error.repr
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.repr.debug("endpoints::Error", f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.repr, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.repr.source()
    }
}

/// Errors from SQLite.
pub(crate) fn from_sqlite(e: sqlx::Error) -> Error {
    error::from_sqlite(e, Subject::Endpoints).into()
}

/// Errors from PostgreSQL.
pub(crate) fn from_postgres(e: sqlx::Error) -> Error {
    error::from_postgres(e, Subject::Endpoints).into()
}
