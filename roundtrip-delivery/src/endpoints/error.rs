//! Errors of the endpoint stores, and how database errors become them.

use std::fmt;

/// An error from an [`EndpointStore`](super::EndpointStore).
///
/// Ask it what went wrong with the `is_*` predicates; new kinds may be added without
/// breaking callers. Messages name endpoints by id and never hold secrets.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The input was refused before anything was written.
    Invalid,
    /// No endpoint with that id.
    NotFound,
    /// Another endpoint already has the same URL and event types, or a concurrent change won.
    Conflict,
    /// The endpoint is disabled, so its messages are not signed.
    Disabled,
    /// The database cannot be reached or used right now.
    Unavailable,
    /// The database cannot be written.
    ReadOnly,
    /// Stored data could not be read back, or the schema could not be brought up to date.
    Corrupt,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source: None,
            }),
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.inner.source = Some(source.into());
        self
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
        self.inner.kind == ErrorKind::Invalid
    }

    /// No endpoint has the given id (it never existed, or it was deleted).
    pub fn is_not_found(&self) -> bool {
        self.inner.kind == ErrorKind::NotFound
    }

    /// Another endpoint already has the same URL and event types (a duplicate), or a
    /// concurrent change of the same endpoint won.
    pub fn is_conflict(&self) -> bool {
        self.inner.kind == ErrorKind::Conflict
    }

    /// The endpoint is disabled: its messages are not signed (nor sent) until it is
    /// enabled again.
    pub fn is_disabled(&self) -> bool {
        self.inner.kind == ErrorKind::Disabled
    }

    /// The database could not be reached or used right now; trying again later may succeed.
    pub fn is_unavailable(&self) -> bool {
        self.inner.kind == ErrorKind::Unavailable
    }

    /// The database cannot be written (permissions, a read-only file or standby).
    pub fn is_read_only(&self) -> bool {
        self.inner.kind == ErrorKind::ReadOnly
    }

    /// Stored data could not be read back or the schema could not be brought up to date.
    pub fn is_corrupt(&self) -> bool {
        self.inner.kind == ErrorKind::Corrupt
    }

    /// What went wrong, in one sentence (without the source).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        self.inner.kind
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("endpoints::Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

/// Errors from SQLite, by primary result code.
pub(crate) fn from_sqlite(e: sqlx::Error) -> Error {
    let code = match &e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .map(|c| c & 0xff),
        _ => None,
    };
    let (kind, message) = match code {
        Some(5 | 6) => (
            ErrorKind::Unavailable,
            "the webhook endpoint database is locked by another connection or process, past \
             the busy timeout; find what holds it, or raise the busy timeout",
        ),
        Some(8) => (
            ErrorKind::ReadOnly,
            "the webhook endpoint database cannot be written: check the permissions of the \
             file, its `-wal` and `-shm` files and their directory",
        ),
        Some(13) => (
            ErrorKind::Unavailable,
            "the disk holding the webhook endpoint database is full",
        ),
        Some(19) => (
            ErrorKind::Conflict,
            "another webhook endpoint already has this URL and these event types",
        ),
        Some(11 | 26) => (
            ErrorKind::Corrupt,
            "the webhook endpoint database file is damaged or is not a SQLite database",
        ),
        Some(_) => (
            ErrorKind::Unavailable,
            "the webhook endpoint database failed",
        ),
        None => common(&e),
    };
    Error::new(kind, message).with_source(e)
}

/// Errors from PostgreSQL, by SQLSTATE.
pub(crate) fn from_postgres(e: sqlx::Error) -> Error {
    let code = match &e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    let (kind, message) = match code.as_deref() {
        Some("23505") => (
            ErrorKind::Conflict,
            "another webhook endpoint already has this URL and these event types",
        ),
        Some("40001" | "40P01") => (
            ErrorKind::Conflict,
            "a concurrent change of the same webhook endpoint won; try again",
        ),
        Some("25006" | "42501") => (
            ErrorKind::ReadOnly,
            "the webhook endpoint tables cannot be written (a standby, or a user without \
             INSERT, UPDATE and DELETE on the schema)",
        ),
        Some("42P01" | "3F000") => (
            ErrorKind::Corrupt,
            "a webhook endpoint table or its schema is missing (was it dropped while the store \
             ran?)",
        ),
        Some(c) if c.starts_with("22") => (
            ErrorKind::Invalid,
            "the database refused a value of the webhook endpoint",
        ),
        Some(_) => (
            ErrorKind::Unavailable,
            "the webhook endpoint database failed",
        ),
        None => common(&e),
    };
    Error::new(kind, message).with_source(e)
}

fn common(e: &sqlx::Error) -> (ErrorKind, &'static str) {
    match e {
        sqlx::Error::PoolTimedOut => (
            ErrorKind::Unavailable,
            "no connection to the webhook endpoint database could be had in time (it is \
             unreachable, or every pooled connection is busy)",
        ),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => (
            ErrorKind::Unavailable,
            "the webhook endpoint store was closed",
        ),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => (
            ErrorKind::Unavailable,
            "the webhook endpoint database cannot be reached",
        ),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::Decode(_) => (
            ErrorKind::Corrupt,
            "a stored webhook endpoint could not be read",
        ),
        sqlx::Error::Configuration(_) => (
            ErrorKind::Invalid,
            "the webhook endpoint database URL or options are invalid",
        ),
        _ => (
            ErrorKind::Unavailable,
            "the webhook endpoint database failed",
        ),
    }
}

/// A migration failure, as the store reports it.
pub(crate) fn from_migrate(
    e: sqlx::migrate::MigrateError,
    from_db: fn(sqlx::Error) -> Error,
) -> Error {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => from_db(e),
        other => Error::new(
            ErrorKind::Corrupt,
            "the webhook endpoint tables could not be brought up to date (were they written by a \
             newer roundtrip?)",
        )
        .with_source(other),
    }
}
