//! Connecting a store to a PostgreSQL schema: the URL read and shown without its password,
//! the schema's name checked and quoted, and the embedded migrations run once however many
//! processes start together. The outbox and the webhook endpoint store connect the same way.

use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::store::error::{ErrorKind, Repr, Subject, from_migrate, from_postgres};

/// Quotes an identifier for SQL.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether `name` may name a schema of roundtrip's: letters, digits and `_`, not starting
/// with a digit, at most 63 bytes (PostgreSQL's identifier limit).
pub(crate) fn valid_schema_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

/// Refuses a schema name roundtrip does not use.
pub(crate) fn check_schema(schema: &str, subject: Subject) -> Result<(), Repr> {
    if valid_schema_name(schema) {
        return Ok(());
    }
    Err(Repr::new(
        ErrorKind::Invalid,
        format!(
            "the schema name `{}` of {} is invalid: use letters, digits and `_`, not starting \
             with a digit, at most 63 bytes",
            schema.chars().take(80).collect::<String>(),
            subject.tables()
        ),
    ))
}

/// A database URL as it may be shown: never the user name, the password or a query's
/// values, even when the URL cannot be parsed ([`crate::redact`]).
pub(crate) fn redact_url(url: &str) -> String {
    crate::redact(url)
}

/// The connect options of `url`, with the store's `application_name` and no statement
/// logging.
pub(crate) fn parse_url(
    url: &str,
    application_name: &str,
    subject: Subject,
) -> Result<PgConnectOptions, Repr> {
    let options = url.parse::<PgConnectOptions>().map_err(|e| {
        Repr::new(
            ErrorKind::Invalid,
            format!(
                "the database URL `{}` of {} is invalid; expected \
                 postgres://user:password@host:port/database",
                redact_url(url),
                subject.tables()
            ),
        )
        .with_source(e)
    })?;
    Ok(configure(options, application_name))
}

/// Names the store's sessions and keeps its statements out of the logs.
pub(crate) fn configure(options: PgConnectOptions, application_name: &str) -> PgConnectOptions {
    options
        .application_name(application_name)
        .disable_statement_logging()
}

/// What a store's schema holds and how its migrations are recorded.
pub(crate) struct Migration {
    /// The embedded migrations.
    pub(crate) migrator: Migrator,
    /// The table, in the schema, that records them.
    pub(crate) table: &'static str,
    /// Whose tables they are.
    pub(crate) subject: Subject,
}

impl Migration {
    /// The outbox's tables.
    pub(crate) fn outbox() -> Self {
        Migration {
            migrator: sqlx::migrate!("./migrations/postgres"),
            table: "_roundtrip_migrations",
            subject: Subject::Outbox,
        }
    }

    /// The webhook endpoint tables.
    pub(crate) fn endpoints() -> Self {
        Migration {
            migrator: sqlx::migrate!("./migrations/endpoints-postgres"),
            table: "_roundtrip_endpoint_migrations",
            subject: Subject::Endpoints,
        }
    }
}

/// Creates `schema` if needed and brings its tables up to date, on a pool of one connection
/// whose `search_path` is the schema (the migrations name their tables without one). With
/// `must_exist`, a schema the store never migrated is an error instead of being created.
///
/// sqlx's migrator holds a database-wide advisory lock while it creates the schema and
/// applies migrations, so when several processes start at once exactly one does the work
/// and the others find it done. A pool of one connection bounds the connect by
/// `acquire_timeout`, and `Migrator::run` on a pool keeps the caller's future `Send`.
pub(crate) async fn migrate(
    connect: &PgConnectOptions,
    schema: &str,
    acquire_timeout: Duration,
    must_exist: bool,
    migration: Migration,
) -> Result<(), Repr> {
    let subject = migration.subject;
    let quoted = quote_ident(schema);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .connect_with(connect.clone().options([("search_path", quoted.as_str())]))
        .await
        .map_err(|e| from_postgres(e, subject))?;
    let table = format!("{quoted}.{}", migration.table);
    if must_exist {
        let missing = match sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
            .bind(&table)
            .fetch_one(&pool)
            .await
        {
            Ok(true) => None,
            Ok(false) => Some(Repr::new(
                ErrorKind::NotFound,
                format!(
                    "no roundtrip {} in schema `{schema}` of this database (check the database \
                     URL and its `schema=` parameter)",
                    match subject {
                        Subject::Outbox => "outbox",
                        Subject::Endpoints => "webhook endpoint tables",
                    }
                ),
            )),
            Err(err) => Some(from_postgres(err, subject)),
        };
        if let Some(err) = missing {
            pool.close().await;
            return Err(err);
        }
    }
    let mut migrator = migration.migrator;
    // Created under the migrator's advisory lock, so concurrent starts cannot race on it.
    migrator.create_schema(quoted.clone());
    migrator.dangerous_set_table_name(table);
    let result = migrator
        .run(&pool)
        .await
        .map_err(|e| from_migrate(e, subject, from_postgres));
    // Closing ends the session, which also drops the advisory lock if a failure left it held.
    pool.close().await;
    result
}

/// An error connecting to the database at `url`, saying so.
pub(crate) fn cannot_open(e: impl Into<Repr>, url: &str, schema: &str, subject: Subject) -> Repr {
    let what = match subject {
        Subject::Outbox => "the outbox database".to_owned(),
        Subject::Endpoints => format!("{} in", subject.tables()),
    };
    e.into().context(format!(
        "cannot open {what} `{}` (schema `{schema}`)",
        redact_url(url)
    ))
}
