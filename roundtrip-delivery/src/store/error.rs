//! One classification of database errors for every store: what went wrong, in words that
//! say what to do.
//!
//! The outbox's [`Error`](crate::outbox::Error) and the endpoint stores'
//! [`Error`](crate::endpoints::Error) are both a [`Repr`]: a kind, a message and a source.
//! Each answers its own predicates; both classify sqlx errors here, with messages that name
//! the store they come from ([`Subject`]).

use std::fmt;

/// What went wrong, whatever the store; private so that new kinds can be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The database cannot be reached, is busy past the timeout, or failed an I/O.
    Unavailable,
    /// The database is locked by another connection or process past the busy timeout.
    Locked,
    /// The database cannot be written.
    ReadOnly,
    /// The input was refused before anything was written.
    Invalid,
    /// Nothing has that id.
    NotFound,
    /// The state of what was named does not allow the operation, or a concurrent change won.
    Conflict,
    /// The store was shut down.
    Closed,
    /// Stored data could not be read back, or the schema could not be brought up to date.
    Corrupt,
    /// A webhook endpoint is disabled, so its messages are not signed.
    Disabled,
}

impl ErrorKind {
    /// Whether trying again later may succeed: the kinds `is_unavailable` answers for.
    pub(crate) fn is_unavailable(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Locked | ErrorKind::Closed
        )
    }
}

/// Which store an error comes from, for its messages (and the few causes the stores read
/// differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject {
    /// The outbox: messages, attempts, idempotency keys.
    Outbox,
    /// The webhook endpoint tables beside it.
    Endpoints,
}

impl Subject {
    /// The database, as a message names it.
    fn database(self) -> &'static str {
        match self {
            Subject::Outbox => "the outbox database",
            Subject::Endpoints => "the webhook endpoint database",
        }
    }

    /// The tables, as a message names them.
    pub(crate) fn tables(self) -> &'static str {
        match self {
            Subject::Outbox => "the outbox tables",
            Subject::Endpoints => "the webhook endpoint tables",
        }
    }

    /// The store, as a message names it.
    fn store(self) -> &'static str {
        match self {
            Subject::Outbox => "the outbox store",
            Subject::Endpoints => "the webhook endpoint store",
        }
    }

    /// A stored row, as a message names it.
    fn row(self) -> &'static str {
        match self {
            Subject::Outbox => "a stored row of the outbox",
            Subject::Endpoints => "a stored webhook endpoint",
        }
    }
}

/// An error of any store: its kind, its message (without the source) and its source.
pub(crate) struct Repr {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Repr {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Repr {
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

    /// A stored value that cannot be read back.
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    pub(crate) fn message(&self) -> &str {
        &self.inner.message
    }

    /// The same error under a message that says what was being done, keeping the kind:
    /// `cannot open ...: <the error>`.
    pub(crate) fn context(self, message: impl Into<String>) -> Self {
        let kind = self.kind();
        Repr::new(kind, message).with_source(ErrorText(self))
    }

    /// An error of the same kind and message, for callers that each need their own copy (a
    /// failed group commit answers every caller in it).
    pub(crate) fn duplicate(&self) -> Self {
        let mut copy = Repr::new(self.inner.kind, self.inner.message.clone());
        if let Some(source) = &self.inner.source {
            copy.inner.source = Some(source.to_string().into());
        }
        copy
    }

    /// `Debug` under the public type's name.
    pub(crate) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(name);
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }

    pub(crate) fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

/// The constructors, conversions and formatting of a public error type over a [`Repr`] (a struct with
/// one field, `repr`), named `$name` in its `Debug`.
macro_rules! repr_error {
    ($error:ty, $name:literal) => {
        impl $error {
            pub(crate) fn new(
                kind: $crate::store::error::ErrorKind,
                message: impl Into<String>,
            ) -> Self {
                $crate::store::error::Repr::new(kind, message).into()
            }

            pub(crate) fn with_source(
                self,
                source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
            ) -> Self {
                self.repr.with_source(source).into()
            }
        }

        impl From<$crate::store::error::Repr> for $error {
            fn from(repr: $crate::store::error::Repr) -> Self {
                Self { repr }
            }
        }

        impl From<$error> for $crate::store::error::Repr {
            fn from(error: $error) -> Self {
                error.repr
            }
        }

        impl std::fmt::Debug for $error {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.repr.debug($name, f)
            }
        }

        impl std::fmt::Display for $error {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.repr, f)
            }
        }

        impl std::error::Error for $error {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.repr.source()
            }
        }
    };
}

pub(crate) use repr_error;

/// The `is_*` predicates of a public error type over a [`Repr`], each answering whether
/// the error is of one [`ErrorKind`] (`unavailable` answers for every kind that may pass).
macro_rules! predicates {
    ($($(#[$doc:meta])* $name:ident => $kind:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> bool {
                predicates!(@test self, $kind)
            }
        )*
    };
    (@test $self:ident, Unavailable) => {
        $self.repr.kind().is_unavailable()
    };
    (@test $self:ident, $kind:ident) => {
        $self.repr.kind() == $crate::store::error::ErrorKind::$kind
    };
}

pub(crate) use predicates;

/// A [`Repr`] as the source of another.
struct ErrorText(Repr);

impl fmt::Debug for ErrorText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("Error", f)
    }
}

impl fmt::Display for ErrorText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for ErrorText {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
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

/// The SQLSTATE of an error, if the server sent one.
pub(crate) fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Whether running the same PostgreSQL statement again may succeed at once: the server
/// chose this transaction as a deadlock or serialization victim.
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(sqlstate(e).as_deref(), Some("40001" | "40P01"))
}

/// An error from SQLite, by primary result code.
pub(crate) fn from_sqlite(e: sqlx::Error, subject: Subject) -> Repr {
    let db = subject.database();
    let (kind, message) = match sqlite_code(&e) {
        Some(5 | 6) => (
            ErrorKind::Locked,
            format!(
                "{db} is locked by another connection or process, past the busy timeout; find \
                 what holds it (a long transaction, another program), or raise the busy timeout"
            ),
        ),
        Some(8) => (
            ErrorKind::ReadOnly,
            format!(
                "{db} cannot be written: check the permissions of the file, its `-wal` and \
                 `-shm` files and their directory, and that the disk is not mounted read-only"
            ),
        ),
        Some(13) => (
            ErrorKind::Unavailable,
            format!("the disk holding {db} is full"),
        ),
        Some(10 | 14 | 3) => (
            ErrorKind::Unavailable,
            format!("{db} file could not be opened or accessed"),
        ),
        Some(11 | 26) => (
            ErrorKind::Corrupt,
            format!("{db} file is damaged or is not a SQLite database"),
        ),
        // A unique index refused the row: for an endpoint, the same URL and event types.
        Some(19) if subject == Subject::Endpoints => (
            ErrorKind::Conflict,
            "another webhook endpoint already has this URL and these event types".to_owned(),
        ),
        _ => common(&e, subject),
    };
    Repr::new(kind, message).with_source(e)
}

/// An error from PostgreSQL, by SQLSTATE.
pub(crate) fn from_postgres(e: sqlx::Error, subject: Subject) -> Repr {
    let db = subject.database();
    let code = sqlstate(&e);
    let (kind, message) = match code.as_deref() {
        // connection_exception, admin/crash shutdown, cannot connect now, database dropped.
        Some(c) if c.starts_with("08") => (
            ErrorKind::Unavailable,
            format!("the connection to {db} broke"),
        ),
        Some("57P01" | "57P02" | "57P03" | "57P04" | "57P05") => (
            ErrorKind::Unavailable,
            format!(
                "{db} closed the connection (terminated, shutting down or starting up); the \
                 store reconnects on its next use"
            ),
        ),
        Some("55000") => (
            ErrorKind::Unavailable,
            format!("{db} does not accept connections right now"),
        ),
        Some("53100") => (ErrorKind::Unavailable, format!("the disk of {db} is full")),
        Some("53300") => (
            ErrorKind::Unavailable,
            format!(
                "{db} has no connection slots left; lower the pool sizes or raise \
                 max_connections"
            ),
        ),
        Some(c) if c.starts_with("53") => {
            (ErrorKind::Unavailable, format!("{db} is out of resources"))
        }
        // A change of one endpoint lost to a concurrent change of the same endpoint.
        Some("40001" | "40P01") if subject == Subject::Endpoints => (
            ErrorKind::Conflict,
            "a concurrent change of the same webhook endpoint won; try again".to_owned(),
        ),
        Some("40001" | "40P01") => (
            ErrorKind::Unavailable,
            format!("{db} aborted the write (deadlock or serialization failure); try again"),
        ),
        // A unique index refused the row: for an endpoint, the same URL and event types.
        Some("23505") if subject == Subject::Endpoints => (
            ErrorKind::Conflict,
            "another webhook endpoint already has this URL and these event types".to_owned(),
        ),
        Some("55P03") => (
            ErrorKind::Locked,
            format!(
                "a lock on {} could not be taken in time; find the long transaction that \
                 holds it",
                subject.tables()
            ),
        ),
        Some("57014") => (
            ErrorKind::Unavailable,
            format!("a query of {db} was cancelled (statement timeout or a cancel request)"),
        ),
        Some("25006") => (
            ErrorKind::ReadOnly,
            format!(
                "{db} is read-only (a standby, or `default_transaction_read_only`); point the \
                 store at the primary"
            ),
        ),
        Some("42501") => (
            ErrorKind::ReadOnly,
            format!(
                "the database user may not write {}; grant it INSERT, UPDATE and DELETE on \
                 their schema",
                subject.tables()
            ),
        ),
        Some("42P01" | "3F000") => (
            ErrorKind::Corrupt,
            format!(
                "a table or the schema of {} is missing (was it dropped while the store ran?)",
                subject.tables()
            ),
        ),
        Some(c) if c.starts_with("22") => (ErrorKind::Invalid, format!("{db} refused a value")),
        Some(c) if c.starts_with("28") => (
            ErrorKind::Unavailable,
            format!("{db} refused the credentials"),
        ),
        Some("3D000") => (
            ErrorKind::Unavailable,
            format!("{db} does not exist; create it, or fix the database name in the URL"),
        ),
        _ => common(&e, subject),
    };
    Repr::new(kind, message).with_source(e)
}

/// What both databases' errors mean when they are not the server's own.
fn common(e: &sqlx::Error, subject: Subject) -> (ErrorKind, String) {
    let db = subject.database();
    match e {
        sqlx::Error::PoolTimedOut => (
            ErrorKind::Unavailable,
            format!(
                "no connection to {db} could be had in time (it is unreachable, or every \
                 pooled connection is busy)"
            ),
        ),
        sqlx::Error::PoolClosed => (ErrorKind::Closed, format!("{} was closed", subject.store())),
        sqlx::Error::WorkerCrashed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            (ErrorKind::Unavailable, format!("{db} cannot be reached"))
        }
        sqlx::Error::Protocol(_) => (
            ErrorKind::Unavailable,
            format!("the connection to {db} broke"),
        ),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::Decode(_) => (
            ErrorKind::Corrupt,
            format!("{} could not be read", subject.row()),
        ),
        sqlx::Error::Configuration(_) => (
            ErrorKind::Invalid,
            format!("{db} URL or options are invalid"),
        ),
        _ => (ErrorKind::Unavailable, format!("{db} failed")),
    }
}

/// A migration failure: the database's own error, or a schema this version cannot bring up
/// to date.
pub(crate) fn from_migrate(
    e: sqlx::migrate::MigrateError,
    subject: Subject,
    from_db: fn(sqlx::Error, Subject) -> Repr,
) -> Repr {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => from_db(e, subject),
        other => Repr::new(
            ErrorKind::Corrupt,
            format!(
                "{} could not be brought up to date (were they written by a newer roundtrip?)",
                subject.tables()
            ),
        )
        .with_source(other),
    }
}
