//! How to open a [`SqliteOutbox`](super::SqliteOutbox): the file, its durability, and the
//! store's limits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};

use crate::store::options::{Limits, limit_setters};

/// The database file used when no path is given.
pub const DEFAULT_PATH: &str = "roundtrip-outbox.db";
/// The environment variable [`SqliteOptions::from_env`] reads the path from.
pub const PATH_ENV: &str = "ROUNDTRIP_OUTBOX_DB";

/// How hard a commit of the outbox waits for the disk: SQLite's `synchronous` level in WAL
/// mode.
///
/// roundtrip's own type rather than sqlx's, so that the store's options do not change with
/// the driver's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// No waiting: an operating system crash or power loss can lose commits and damage the
    /// file.
    Off,
    /// A process crash loses nothing; a power loss can lose the last commits.
    Normal,
    /// A commit is on disk when it returns (the default).
    #[default]
    Full,
    /// As `Full`, and the directory is synced too.
    Extra,
}

impl Synchronous {
    pub(crate) fn to_sqlx(self) -> SqliteSynchronous {
        match self {
            Synchronous::Off => SqliteSynchronous::Off,
            Synchronous::Normal => SqliteSynchronous::Normal,
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Extra => SqliteSynchronous::Extra,
        }
    }
}

/// How to open a [`SqliteOutbox`](super::SqliteOutbox).
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub(crate) path: PathBuf,
    pub(crate) synchronous: Synchronous,
    pub(crate) busy_timeout: Duration,
    pub(crate) read_only: bool,
    pub(crate) readers: u32,
    pub(crate) max_batch: usize,
    pub(crate) limits: Limits,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self::new(DEFAULT_PATH)
    }
}

impl SqliteOptions {
    /// Options for the database file at `path` (created if missing), with the defaults.
    pub fn new(path: impl AsRef<Path>) -> Self {
        SqliteOptions {
            path: path.as_ref().to_path_buf(),
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            read_only: false,
            readers: 4,
            max_batch: 1024,
            limits: Limits::default(),
        }
    }

    /// Options for the file named by `ROUNDTRIP_OUTBOX_DB`, or [`DEFAULT_PATH`] if unset.
    pub fn from_env() -> Self {
        match std::env::var_os(PATH_ENV) {
            Some(path) if !path.is_empty() => Self::new(PathBuf::from(path)),
            _ => Self::default(),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `synchronous` level of durable commits (default [`Synchronous::Full`]).
    pub fn synchronous(mut self, level: Synchronous) -> Self {
        self.synchronous = level;
        self
    }

    /// How long a write waits for a lock held by another connection or process before it
    /// fails with [`Error::is_locked`](crate::outbox::Error::is_locked) (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Opens the file for reading only (to inspect the outbox of a running app): no
    /// migrations run, and every write fails with
    /// [`Error::is_read_only`](crate::outbox::Error::is_read_only).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    limit_setters!();

    /// How many writes at most share one transaction (default 1024).
    pub fn max_batch(mut self, jobs: usize) -> Self {
        self.max_batch = jobs.max(1);
        self
    }

    /// How many read-only connections serve listings and `get` (default 4).
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// Connect options for the same file, for an application pool that calls
    /// [`SqliteOutbox::enqueue_in`](super::SqliteOutbox::enqueue_in) (the busy timeout set).
    ///
    /// This names a sqlx type on purpose: transactional enqueue runs on the application's
    /// own sqlx connection, which it opens with these.
    pub fn connect_options(&self) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(&self.path)
            .busy_timeout(self.busy_timeout)
            .disable_statement_logging()
    }
}
