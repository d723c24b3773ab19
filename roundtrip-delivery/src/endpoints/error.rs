//! Errors of the endpoint stores: the shared classification of database errors
//! ([`store::error`](crate::store::error)), asked with the predicates of this store.

pub(crate) use crate::store::error::ErrorKind;
use crate::store::error::{self, Repr, Subject, predicates, repr_error};

/// An error from an [`EndpointStore`](super::EndpointStore).
///
/// Ask it what went wrong with the `is_*` predicates; new kinds may be added without
/// breaking callers. Messages name endpoints by id and never hold secrets.
pub struct Error {
    repr: Repr,
}

impl Error {
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

    predicates! {
        /// The input was refused (a URL that is not http or https, an empty event type...):
        /// nothing was written.
        is_invalid => Invalid,
        /// No endpoint has the given id (it never existed, or it was deleted).
        is_not_found => NotFound,
        /// Another endpoint already has the same URL and event types (a duplicate), or a
        /// concurrent change of the same endpoint won.
        is_conflict => Conflict,
        /// The endpoint is disabled: its messages are not signed (nor sent) until it is
        /// enabled again.
        is_disabled => Disabled,
        /// The database could not be reached or used right now (locked past the busy timeout,
        /// or the store closed); trying again later may succeed.
        is_unavailable => Unavailable,
        /// The database cannot be written (permissions, a read-only file or standby).
        is_read_only => ReadOnly,
        /// Stored data could not be read back or the schema could not be brought up to date.
        is_corrupt => Corrupt,
    }

    /// What went wrong, in one sentence (without the source).
    pub fn message(&self) -> &str {
        self.repr.message()
    }
}

repr_error!(Error, "endpoints::Error");

/// Errors from SQLite.
pub(crate) fn from_sqlite(e: sqlx::Error) -> Error {
    error::from_sqlite(e, Subject::Endpoints).into()
}

/// Errors from PostgreSQL.
pub(crate) fn from_postgres(e: sqlx::Error) -> Error {
    error::from_postgres(e, Subject::Endpoints).into()
}
