//! Stores by database URL, the way sqlx connects: the scheme chooses SQLite or PostgreSQL,
//! and the outbox and the webhook endpoint store open side by side in the same database.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::endpoints::{
    self, EndpointHooks, EndpointSettings, PgEndpointOptions, PgEndpointStore,
    SqliteEndpointOptions, SqliteEndpointStore,
};
use crate::outbox::{Error, ErrorKind, Outbox};
use crate::postgres::{PgOptions, PgOutbox};
use crate::sqlite::{SqliteOptions, SqliteOutbox};
use crate::store::error::Repr;

/// Where an app's stores live: an SQLite file or a PostgreSQL schema.
///
/// Read one from a URL with [`Database::from_url`], or build one from a store's own options;
/// then open the [outbox](Self::open_outbox), the [endpoint store](Self::open_endpoints), or
/// [both](Self::connect).
#[derive(Clone, Debug)]
pub struct Database {
    backend: Backend,
    must_exist: bool,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteOptions),
    Postgres(Box<PgOptions>),
}

/// The outbox and, beside it in the same database, the webhook endpoint store.
#[derive(Clone)]
#[non_exhaustive]
pub struct Stores {
    /// The outbox.
    pub outbox: Arc<dyn Outbox>,
    /// The endpoint store, with the secret source and attempt observer the workers use.
    pub endpoints: EndpointHooks,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

/// Opens the outbox and the endpoint store of the database at `url` (see
/// [`Database::from_url`]), creating and migrating their tables if needed.
///
/// ```no_run
/// # async fn demo() -> Result<(), roundtrip_delivery::outbox::Error> {
/// use roundtrip_delivery::outbox::MessageFilter;
/// let stores = roundtrip_delivery::connect("postgres://app@127.0.0.1/app?schema=outbox").await?;
/// let page = stores.outbox.list(&MessageFilter::new()).await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<Stores, Error> {
    Database::from_url(url)?.connect().await
}

impl Database {
    /// Reads a database URL: `sqlite://path/to/file.db` (or `sqlite:path`) for an embedded
    /// SQLite file, or `postgres://user:password@host:port/database` (or `postgresql://`) for
    /// PostgreSQL, where a `schema` query parameter names the schema the tables live in
    /// (`roundtrip` by default; it is taken out before the URL reaches the driver). Any
    /// other scheme is [`Error::is_invalid`].
    pub fn from_url(url: &str) -> Result<Self, Error> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            return Ok(Self::sqlite(SqliteOptions::new(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (url, schema) = split_schema(url);
            let mut options = PgOptions::new(url);
            if let Some(schema) = schema {
                options = options.schema(schema);
            }
            return Ok(Self::postgres(options));
        }
        Err(Error::new(
            ErrorKind::Invalid,
            format!(
                "unsupported database URL `{}`: expected sqlite:// or postgres://",
                crate::postgres::connect::redact_url(url)
            ),
        ))
    }

    /// The SQLite file these options name.
    pub fn sqlite(options: SqliteOptions) -> Self {
        Database {
            backend: Backend::Sqlite(options),
            must_exist: false,
        }
    }

    /// The PostgreSQL schema these options name.
    pub fn postgres(options: PgOptions) -> Self {
        Database {
            backend: Backend::Postgres(Box::new(options)),
            must_exist: false,
        }
    }

    /// The file, when the database is an SQLite one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(options) => Some(options.path()),
            Backend::Postgres(_) => None,
        }
    }

    /// Opens only an outbox that already exists (default: off, one is created). For tools
    /// that inspect a running application's outbox: a mistyped file, database or `schema=`
    /// is then an error that says so ([`Error::is_not_found`] when nothing is there), not a
    /// new, empty outbox that lists nothing.
    pub fn must_exist(mut self, on: bool) -> Self {
        self.must_exist = on;
        self
    }

    /// Opens the outbox.
    pub async fn open_outbox(&self) -> Result<Arc<dyn Outbox>, Error> {
        match &self.backend {
            Backend::Sqlite(options) => {
                if self.must_exist && !options.path().exists() {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "no roundtrip outbox at `{}`: the file does not exist",
                            options.path().display()
                        ),
                    ));
                }
                Ok(Arc::new(SqliteOutbox::open(options.clone()).await?))
            }
            Backend::Postgres(options) => {
                let options = (**options).clone().must_exist(self.must_exist);
                Ok(Arc::new(PgOutbox::connect_with(options).await?))
            }
        }
    }

    /// Opens the webhook endpoint store beside the outbox (the same SQLite file, or the same
    /// PostgreSQL schema), creating and migrating its tables if needed.
    pub async fn open_endpoints(
        &self,
        settings: &EndpointSettings,
    ) -> Result<EndpointHooks, endpoints::Error> {
        Ok(match &self.backend {
            Backend::Sqlite(options) => {
                let options = SqliteEndpointOptions::new(options.path()).settings(settings);
                SqliteEndpointStore::open(options).await?.hooks()
            }
            Backend::Postgres(options) => {
                let options = PgEndpointOptions::beside(options).settings(settings);
                PgEndpointStore::connect_with(options).await?.hooks()
            }
        })
    }

    /// Opens the outbox and, beside it, the endpoint store with the default settings. An
    /// endpoint store that cannot be opened is reported as an outbox error of the same kind.
    pub async fn connect(&self) -> Result<Stores, Error> {
        let outbox = self.open_outbox().await?;
        let endpoints = self
            .open_endpoints(&EndpointSettings::default())
            .await
            .map_err(|e| Error::from(Repr::from(e)))?;
        Ok(Stores { outbox, endpoints })
    }
}

/// The database as messages name it: the file, or the URL without its credentials and the
/// schema.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Sqlite(options) => write!(f, "{}", options.path().display()),
            Backend::Postgres(options) => write!(
                f,
                "{} (schema `{}`)",
                crate::postgres::connect::redact_url(&options.url),
                options.schema
            ),
        }
    }
}

/// Takes a `schema=` query parameter out of a database URL.
fn split_schema(url: &str) -> (String, Option<String>) {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "schema" {
                schema = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    if schema.is_none() {
        return (url.to_owned(), None);
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    (parsed.to_string(), schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_of_the_url() {
        assert_eq!(
            split_schema("postgres://u@h/db?schema=outbox&sslmode=disable"),
            (
                "postgres://u@h/db?sslmode=disable".to_owned(),
                Some("outbox".to_owned())
            )
        );
        assert_eq!(
            split_schema("postgres://u@h/db?schema=x"),
            ("postgres://u@h/db".to_owned(), Some("x".to_owned()))
        );
        assert_eq!(
            split_schema("postgres://u@h/db"),
            ("postgres://u@h/db".to_owned(), None)
        );
    }

    #[test]
    fn the_scheme_chooses_the_backend() {
        let sqlite = Database::from_url("sqlite://dir/outbox.db").expect("sqlite");
        assert_eq!(sqlite.sqlite_path(), Some(Path::new("dir/outbox.db")));
        let short = Database::from_url("sqlite:outbox.db").expect("sqlite");
        assert_eq!(short.sqlite_path(), Some(Path::new("outbox.db")));
        let pg = Database::from_url("postgresql://u:pw@h/db?schema=s").expect("postgres");
        assert!(pg.sqlite_path().is_none());
        assert_eq!(pg.to_string(), "postgresql://h/db (schema `s`)");
        let err = Database::from_url("mysql://root:pw@h/app").expect_err("mysql");
        assert!(err.is_invalid());
        assert!(
            err.to_string()
                .contains("expected sqlite:// or postgres://")
        );
        assert!(!err.to_string().contains("pw"));
    }
}
