//! Turning sqlx and PostgreSQL errors into outbox errors that say what to do.

use crate::outbox::{Error, ErrorKind};

pub(crate) fn corrupt(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Corrupt, message)
}

/// The SQLSTATE of an error, if the server sent one.
pub(crate) fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Whether running the same statement again may succeed at once: the server chose this
/// transaction as a deadlock or serialization victim.
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(sqlstate(e).as_deref(), Some("40001" | "40P01"))
}

pub(crate) fn from_sqlx(e: sqlx::Error) -> Error {
    let code = sqlstate(&e);
    let (kind, message) = match code.as_deref() {
        // connection_exception, admin/crash shutdown, cannot connect now, database dropped.
        Some(c) if c.starts_with("08") => (
            ErrorKind::Unavailable,
            "the connection to the outbox database broke",
        ),
        Some("57P01" | "57P02" | "57P03" | "57P04" | "57P05") => (
            ErrorKind::Unavailable,
            "the outbox database closed the connection (terminated, shutting down or starting \
             up); the store reconnects on its next use",
        ),
        Some("55000") => (
            ErrorKind::Unavailable,
            "the outbox database does not accept connections right now",
        ),
        Some("53100") => (
            ErrorKind::Unavailable,
            "the disk of the outbox database is full",
        ),
        Some("53300") => (
            ErrorKind::Unavailable,
            "the outbox database has no connection slots left; lower the pool sizes or raise \
             max_connections",
        ),
        Some(c) if c.starts_with("53") => (
            ErrorKind::Unavailable,
            "the outbox database is out of resources",
        ),
        Some("40001" | "40P01") => (
            ErrorKind::Unavailable,
            "the outbox database aborted the write (deadlock or serialization failure); try \
             again",
        ),
        Some("55P03") => (
            ErrorKind::Locked,
            "a lock on the outbox tables could not be taken in time; find the long transaction \
             that holds it",
        ),
        Some("57014") => (
            ErrorKind::Unavailable,
            "the outbox query was cancelled (statement timeout or a cancel request)",
        ),
        Some("25006") => (
            ErrorKind::ReadOnly,
            "the outbox database is read-only (a standby, or `default_transaction_read_only`); \
             point the store at the primary",
        ),
        Some("42501") => (
            ErrorKind::ReadOnly,
            "the database user may not write the outbox tables; grant it INSERT, UPDATE and \
             DELETE on the outbox schema",
        ),
        Some("42P01" | "3F000") => (
            ErrorKind::Corrupt,
            "an outbox table or schema is missing (was it dropped while the store ran?)",
        ),
        Some(c) if c.starts_with("22") => (
            ErrorKind::Invalid,
            "the outbox database refused a value of the message",
        ),
        Some(c) if c.starts_with("28") => (
            ErrorKind::Unavailable,
            "the outbox database refused the credentials",
        ),
        Some("3D000") => (
            ErrorKind::Unavailable,
            "the outbox database does not exist; create it, or fix the database name in the URL",
        ),
        _ => match &e {
            sqlx::Error::PoolTimedOut => (
                ErrorKind::Unavailable,
                "no connection to the outbox database could be had in time (the database is \
                 unreachable, or every pooled connection is busy)",
            ),
            sqlx::Error::PoolClosed => (ErrorKind::Closed, "the outbox store was closed"),
            sqlx::Error::WorkerCrashed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => (
                ErrorKind::Unavailable,
                "the outbox database cannot be reached",
            ),
            sqlx::Error::Protocol(_) => (
                ErrorKind::Unavailable,
                "the connection to the outbox database broke",
            ),
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::Decode(_) => (
                ErrorKind::Corrupt,
                "a stored row of the outbox could not be read",
            ),
            sqlx::Error::Configuration(_) => (
                ErrorKind::Invalid,
                "the outbox database URL or options are invalid",
            ),
            _ => (ErrorKind::Unavailable, "the outbox database failed"),
        },
    };
    Error::new(kind, message).with_source(e)
}
