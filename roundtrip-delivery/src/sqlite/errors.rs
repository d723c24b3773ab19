//! Turning sqlx and SQLite errors into outbox errors that say what to do.

use crate::outbox::{Error, ErrorKind};

pub(crate) fn corrupt(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Corrupt, message)
}

/// The primary SQLite result code of an error, if it came from SQLite.
pub(crate) fn sqlite_code(e: &sqlx::Error) -> Option<i32> {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .map(|c| c & 0xff),
        _ => None,
    }
}

pub(crate) fn from_sqlx(e: sqlx::Error) -> Error {
    let (kind, message) = match sqlite_code(&e) {
        Some(5 | 6) => (
            ErrorKind::Locked,
            "the outbox database is locked by another connection or process, past the busy \
             timeout; find what holds it (a long transaction, another program), or raise the \
             busy timeout",
        ),
        Some(8) => (
            ErrorKind::ReadOnly,
            "the outbox database cannot be written: check the permissions of the file, its \
             `-wal` and `-shm` files and their directory, and that the disk is not mounted \
             read-only",
        ),
        Some(13) => (
            ErrorKind::Unavailable,
            "the disk holding the outbox database is full",
        ),
        Some(10 | 14 | 3) => (
            ErrorKind::Unavailable,
            "the outbox database file could not be opened or accessed",
        ),
        Some(11 | 26) => (
            ErrorKind::Corrupt,
            "the outbox database file is damaged or is not a SQLite database",
        ),
        _ => match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => (
                ErrorKind::Unavailable,
                "the outbox database connection is gone",
            ),
            sqlx::Error::Io(_) => (
                ErrorKind::Unavailable,
                "an I/O error reached the outbox database",
            ),
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::Decode(_) => (
                ErrorKind::Corrupt,
                "a stored row of the outbox could not be read",
            ),
            _ => (ErrorKind::Unavailable, "the outbox database failed"),
        },
    };
    Error::new(kind, message).with_source(e)
}
