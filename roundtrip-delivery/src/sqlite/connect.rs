//! Opening an SQLite file for a store: the writer's connection in WAL mode, the pool of
//! read-only connections, and the embedded migrations. The outbox and the webhook endpoint
//! store open their file the same way.

use std::path::Path;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::store::error::{Repr, Subject, from_migrate, from_sqlite};

/// The options of a connection that writes: the file created if missing, WAL, the given
/// `synchronous` level and busy timeout.
pub(crate) fn writer_options(
    path: &Path,
    synchronous: SqliteSynchronous,
    busy_timeout: Duration,
) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(busy_timeout)
        .foreign_keys(false)
        .disable_statement_logging()
}

/// A pool of `readers` read-only connections to `path`, which never wait for the writer.
pub(crate) async fn open_readers(
    path: &Path,
    readers: u32,
    busy_timeout: Duration,
    subject: Subject,
) -> Result<SqlitePool, Repr> {
    SqlitePoolOptions::new()
        .max_connections(readers)
        .min_connections(0)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .busy_timeout(busy_timeout)
                .disable_statement_logging(),
        )
        .await
        .map_err(|e| from_sqlite(e, subject))
}

/// Brings the tables of `migrator` up to date on `conn`, recording the migrations in
/// `table` (so that an application can keep its own sqlx migrations in the same file).
///
/// `run_direct` on the connection: `Migrator::run` takes any `Acquire`, and that
/// higher-ranked bound makes the opening future not `Send` for callers that await it inside
/// generic code (a request handler's future).
pub(crate) async fn migrate(
    mut migrator: Migrator,
    table: &'static str,
    conn: &mut SqliteConnection,
    subject: Subject,
) -> Result<(), Repr> {
    migrator.dangerous_set_table_name(table);
    migrator
        .run_direct(None, conn, false)
        .await
        .map_err(|e| from_migrate(e, subject, from_sqlite))
}

/// An error opening the file at `path`, saying so.
pub(crate) fn cannot_open(e: impl Into<Repr>, path: &Path, subject: Subject) -> Repr {
    let what = match subject {
        Subject::Outbox => "the outbox database".to_owned(),
        Subject::Endpoints => format!("{} in", subject.tables()),
    };
    e.into()
        .context(format!("cannot open {what} `{}`", path.display()))
}
