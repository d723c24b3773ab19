//! Webhook endpoints in the SQLite file of the outbox.
//!
//! Writes go through one connection of their own, in `BEGIN IMMEDIATE` transactions, so they
//! wait for the outbox's writer (up to the busy timeout) instead of failing with
//! `database is locked`. Reads (listings, publishing, the workers' secret look-ups) use a
//! small pool of read-only connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, Transaction};

use super::error::from_sqlite;
use super::rows;
use super::rules::{event_rows, failing_reason, gone_reason, log_disabled};
use super::tables::{Change, Creation, Tables, endpoint_store};
use super::{
    CreatedEndpoint, DEFAULT_FAILURE_WINDOW, DEFAULT_ROTATION_GRACE, Endpoint, EndpointFilter,
    EndpointPage, EndpointSettings, EndpointUpdate, Error, HealthSignal, HealthUpdate, NewEndpoint,
    RotatedSecret, Rotation, endpoint_setters, health,
};
use crate::signing::Secret;
use crate::sqlite::connect::{self, cannot_open};
use crate::store::error::{Repr, Subject};
use crate::store::time::{from_ms, to_ms};

/// The endpoint columns every read returns; `?1` is the current time (for the rotation).
macro_rules! columns {
    () => {
        "e.id, e.url, e.description, e.event_types, e.metadata, e.enabled, e.disabled_at, \
         e.disabled_kind, e.disabled_reason, e.failing_since, e.last_success_at, e.created_at, \
         e.updated_at, (SELECT MAX(s.expires_at) FROM webhook_endpoint_secrets s \
         WHERE s.endpoint_id = e.id AND s.expires_at > ?1) AS rotation_ends_at"
    };
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM webhook_endpoints e WHERE e.id = ?2"
);

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM webhook_endpoints e WHERE (?2 IS NULL OR e.enabled = ?2) \
     AND (?3 IS NULL OR e.id IN (SELECT endpoint_id FROM webhook_endpoint_events \
     WHERE event_type IN (?3, '*'))) AND (?4 IS NULL OR e.id > ?4) ORDER BY e.id LIMIT ?5"
);

const MATCHING: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM webhook_endpoints e WHERE e.enabled = 1 AND e.id IN (SELECT endpoint_id \
     FROM webhook_endpoint_events WHERE event_type IN (?2, '*')) ORDER BY e.id"
);

/// How to open a [`SqliteEndpointStore`].
#[derive(Debug, Clone)]
pub struct SqliteEndpointOptions {
    path: PathBuf,
    busy_timeout: Duration,
    readers: u32,
    rotation_grace: Duration,
    failure_window: Duration,
}

impl SqliteEndpointOptions {
    /// Options for the database file at `path` (the outbox's), with the defaults: a rotated-out
    /// secret signs for 24 hours, and 5 days of failures disable an endpoint.
    pub fn new(path: impl AsRef<Path>) -> Self {
        SqliteEndpointOptions {
            path: path.as_ref().to_path_buf(),
            busy_timeout: Duration::from_secs(5),
            readers: 2,
            rotation_grace: DEFAULT_ROTATION_GRACE,
            failure_window: DEFAULT_FAILURE_WINDOW,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long a write waits for the file's lock (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How many read-only connections serve reads (default 2).
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }

    endpoint_setters!();

    /// Applies `settings`.
    pub(crate) fn settings(self, settings: &EndpointSettings) -> Self {
        self.rotation_grace(settings.rotation_grace)
            .failure_window(settings.failure_window)
    }
}

/// Webhook endpoints in a SQLite file. Cheap to clone; every clone is the same store.
///
/// It is also a [`SecretSource`](crate::worker::SecretSource) (the secrets of a message's
/// endpoint) and an [`AttemptObserver`](crate::worker::AttemptObserver) (disables endpoints
/// that answer 410 or fail for too long); [`hooks`](Self::hooks) gives both with the store.
#[derive(Clone)]
pub struct SqliteEndpointStore {
    shared: Arc<Shared>,
}

struct Shared {
    writer: SqlitePool,
    readers: SqlitePool,
    options: SqliteEndpointOptions,
    tracker: Arc<health::Tracker>,
}

endpoint_store!(SqliteEndpointStore);

impl std::fmt::Debug for SqliteEndpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEndpointStore")
            .field("path", &self.shared.options.path)
            .finish_non_exhaustive()
    }
}

impl SqliteEndpointStore {
    /// Opens the endpoint tables in the file at `path` with the default options.
    pub async fn open_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open(SqliteEndpointOptions::new(path)).await
    }

    /// Opens the store: creates the file if needed (in WAL mode, as the outbox keeps it),
    /// and brings the endpoint tables up to date. Must be called inside a Tokio runtime.
    pub async fn open(options: SqliteEndpointOptions) -> Result<Self, Error> {
        let path = options.path.clone();
        let opening = |e: Repr| Error::from(cannot_open(e, &path, Subject::Endpoints));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .connect_with(connect::writer_options(
                &path,
                SqliteSynchronous::Full,
                options.busy_timeout,
            ))
            .await
            .map_err(|e| opening(from_sqlite(e).into()))?;
        {
            let mut conn = writer
                .acquire()
                .await
                .map_err(|e| opening(from_sqlite(e).into()))?;
            connect::migrate(
                sqlx::migrate!("./migrations/endpoints-sqlite"),
                "_roundtrip_endpoint_migrations",
                &mut conn,
                Subject::Endpoints,
            )
            .await
            .map_err(opening)?;
        }
        let readers = connect::open_readers(
            &path,
            options.readers,
            options.busy_timeout,
            Subject::Endpoints,
        )
        .await
        .map_err(opening)?;
        Ok(SqliteEndpointStore {
            shared: Arc::new(Shared {
                writer,
                readers,
                options,
                tracker: Arc::new(health::Tracker::default()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.options.path
    }

    /// Closes the store's connections; calls made afterwards fail with
    /// [`Error::is_unavailable`].
    pub async fn close(&self) {
        self.shared.writer.close().await;
        self.shared.readers.close().await;
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<Sqlite>, Error> {
        self.shared.readers.acquire().await.map_err(from_sqlite)
    }

    async fn get_endpoint(&self, id: &str) -> Result<Endpoint, Error> {
        must_read(&mut *self.reader().await?, id, SystemTime::now()).await
    }

    async fn list_endpoints(&self, filter: &EndpointFilter) -> Result<EndpointPage, Error> {
        let limit = filter.effective_limit();
        let rows = sqlx::query(LIST)
            .bind(to_ms(SystemTime::now()))
            .bind(filter.enabled.map(i64::from))
            .bind(filter.event_type.as_deref())
            .bind(filter.after.as_deref())
            .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(from_sqlite)?;
        rows::page(&rows, filter)
    }

    async fn matching_endpoints(&self, event: &str) -> Result<Vec<Endpoint>, Error> {
        let rows = sqlx::query(MATCHING)
            .bind(to_ms(SystemTime::now()))
            .bind(event)
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(from_sqlite)?;
        rows.iter().map(rows::endpoint).collect()
    }

    async fn secrets_of(&self, id: &str) -> Result<Vec<Secret>, Error> {
        let rows = sqlx::query(
            "SELECT e.enabled, e.disabled_reason, s.secret FROM webhook_endpoints e \
             LEFT JOIN webhook_endpoint_secrets s ON s.endpoint_id = e.id \
             AND (s.expires_at IS NULL OR s.expires_at > ?2) WHERE e.id = ?1 ORDER BY s.seq DESC",
        )
        .bind(id)
        .bind(to_ms(SystemTime::now()))
        .fetch_all(&mut *self.reader().await?)
        .await
        .map_err(from_sqlite)?;
        rows::signing_secrets(id, &rows)
    }

    async fn record(
        &self,
        id: &str,
        result: HealthSignal,
        at: SystemTime,
    ) -> Result<HealthUpdate, Error> {
        let window = self.shared.options.failure_window;
        let mut tx = Tables::begin(self).await?;
        let disabled = match result {
            HealthSignal::Delivered => {
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = NULL, last_success_at = ?2 \
                     WHERE id = ?1",
                )
                .bind(id)
                .bind(to_ms(at))
                .execute(&mut *tx)
                .await
                .map_err(from_sqlite)?;
                false
            }
            HealthSignal::Failed => {
                let row = sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?2) \
                     WHERE id = ?1 RETURNING failing_since, enabled",
                )
                .bind(id)
                .bind(to_ms(at))
                .fetch_optional(&mut *tx)
                .await
                .map_err(from_sqlite)?
                .ok_or_else(|| Error::not_found(id))?;
                let since: i64 = row.try_get("failing_since").map_err(from_sqlite)?;
                let enabled: i64 = row.try_get("enabled").map_err(from_sqlite)?;
                let failing_for = at.duration_since(from_ms(since)).unwrap_or_default();
                enabled != 0
                    && failing_for >= window
                    && sqlx::query(
                        "UPDATE webhook_endpoints SET enabled = 0, disabled_at = ?2, \
                         disabled_kind = 'failing', disabled_reason = ?3, updated_at = ?2 \
                         WHERE id = ?1 AND enabled = 1",
                    )
                    .bind(id)
                    .bind(to_ms(at))
                    .bind(failing_reason(window))
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlite)?
                    .rows_affected()
                        > 0
            }
            HealthSignal::Gone => {
                sqlx::query(
                    "UPDATE webhook_endpoints SET enabled = 0, disabled_at = ?2, \
                     disabled_kind = 'gone', disabled_reason = ?3, \
                     failing_since = COALESCE(failing_since, ?2), updated_at = ?2 \
                     WHERE id = ?1 AND enabled = 1",
                )
                .bind(id)
                .bind(to_ms(at))
                .bind(gone_reason())
                .execute(&mut *tx)
                .await
                .map_err(from_sqlite)?
                .rows_affected()
                    > 0
            }
        };
        let endpoint = must_read(&mut tx, id, at).await?;
        Self::commit(tx).await?;
        if disabled {
            log_disabled(&endpoint);
        }
        Ok(HealthUpdate::of(endpoint, disabled))
    }
}

/// The statements of the changes. Writes run in `BEGIN IMMEDIATE` transactions on the one
/// writing connection, so they are serialized: `lock` only checks that the endpoint exists.
impl Tables for SqliteEndpointStore {
    type Tx = Transaction<'static, Sqlite>;

    fn stored(t: SystemTime) -> SystemTime {
        from_ms(to_ms(t))
    }

    async fn begin(&self) -> Result<Self::Tx, Error> {
        self.shared
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(from_sqlite)
    }

    async fn commit(tx: Self::Tx) -> Result<(), Error> {
        tx.commit().await.map_err(from_sqlite)
    }

    async fn read(&self, tx: &mut Self::Tx, id: &str, now: SystemTime) -> Result<Endpoint, Error> {
        must_read(tx, id, now).await
    }

    async fn lock(&self, tx: &mut Self::Tx, id: &str) -> Result<(), Error> {
        let exists = sqlx::query("SELECT 1 FROM webhook_endpoints WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(from_sqlite)?;
        exists.map(|_| ()).ok_or_else(|| Error::not_found(id))
    }

    async fn duplicate_of(
        &self,
        tx: &mut Self::Tx,
        url: &str,
        key: &str,
        except: &str,
    ) -> Result<Option<String>, Error> {
        duplicate_of(tx, url, key, except).await
    }

    async fn duplicate_outside(
        &self,
        url: &str,
        key: &str,
        except: &str,
    ) -> Result<Option<String>, Error> {
        duplicate_of(&mut *self.reader().await?, url, key, except).await
    }

    async fn insert(&self, tx: &mut Self::Tx, new: &Creation) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, description, event_types, event_types_key, \
             metadata, enabled, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7)",
        )
        .bind(&new.id)
        .bind(&new.url)
        .bind(&new.description)
        .bind(&new.types_json)
        .bind(&new.key)
        .bind(&new.metadata_json)
        .bind(to_ms(new.now))
        .execute(&mut **tx)
        .await
        .map_err(from_sqlite)?;
        insert_events(tx, &new.id, &new.types).await?;
        sqlx::query(
            "INSERT INTO webhook_endpoint_secrets (endpoint_id, seq, secret, created_at) \
             VALUES (?1, 1, ?2, ?3)",
        )
        .bind(&new.id)
        .bind(new.secret.to_string())
        .bind(to_ms(new.now))
        .execute(&mut **tx)
        .await
        .map_err(from_sqlite)?;
        Ok(())
    }

    async fn write(
        &self,
        tx: &mut Self::Tx,
        id: &str,
        change: &Change,
        now: SystemTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE webhook_endpoints SET url = ?2, description = ?3, event_types = ?4, \
             event_types_key = ?5, metadata = ?6, updated_at = ?7 WHERE id = ?1",
        )
        .bind(id)
        .bind(&change.url)
        .bind(&change.description)
        .bind(&change.types_json)
        .bind(&change.key)
        .bind(&change.metadata_json)
        .bind(to_ms(now))
        .execute(&mut **tx)
        .await
        .map_err(from_sqlite)?;
        if change.types_changed {
            sqlx::query("DELETE FROM webhook_endpoint_events WHERE endpoint_id = ?1")
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(from_sqlite)?;
            insert_events(tx, id, &change.types).await?;
        }
        Ok(())
    }

    async fn delete_rows(&self, id: &str) -> Result<bool, Error> {
        let mut tx = Tables::begin(self).await?;
        let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlite)?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        for table in [
            "DELETE FROM webhook_endpoint_events WHERE endpoint_id = ?1",
            "DELETE FROM webhook_endpoint_secrets WHERE endpoint_id = ?1",
        ] {
            sqlx::query(table)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlite)?;
        }
        Self::commit(tx).await?;
        Ok(true)
    }

    async fn add_secret(
        &self,
        tx: &mut Self::Tx,
        id: &str,
        secret: &Secret,
        now: SystemTime,
        expires: SystemTime,
    ) -> Result<(), Error> {
        for statement in [
            // Secrets whose grace ended sign no more: forget them.
            "DELETE FROM webhook_endpoint_secrets WHERE endpoint_id = ?1 \
             AND expires_at IS NOT NULL AND expires_at <= ?2",
            "UPDATE webhook_endpoint_secrets SET expires_at = ?3 \
             WHERE endpoint_id = ?1 AND expires_at IS NULL",
            "UPDATE webhook_endpoints SET updated_at = ?2 WHERE id = ?1",
        ] {
            sqlx::query(statement)
                .bind(id)
                .bind(to_ms(now))
                .bind(to_ms(expires))
                .execute(&mut **tx)
                .await
                .map_err(from_sqlite)?;
        }
        sqlx::query(
            "INSERT INTO webhook_endpoint_secrets (endpoint_id, seq, secret, created_at) \
             SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3 FROM webhook_endpoint_secrets \
             WHERE endpoint_id = ?1",
        )
        .bind(id)
        .bind(secret.to_string())
        .bind(to_ms(now))
        .execute(&mut **tx)
        .await
        .map_err(from_sqlite)?;
        Ok(())
    }

    async fn write_enabled(
        &self,
        tx: &mut Self::Tx,
        id: &str,
        disable: Option<(&str, &str)>,
        at: SystemTime,
    ) -> Result<bool, Error> {
        let query = match disable {
            None => sqlx::query(
                "UPDATE webhook_endpoints SET enabled = 1, disabled_at = NULL, \
                 disabled_kind = NULL, disabled_reason = NULL, failing_since = NULL, \
                 updated_at = ?2 WHERE id = ?1 AND enabled = 0",
            )
            .bind(id)
            .bind(to_ms(at)),
            Some((kind, reason)) => sqlx::query(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_at = ?2, disabled_kind = ?3, \
                 disabled_reason = ?4, updated_at = ?2 WHERE id = ?1 AND enabled = 1",
            )
            .bind(id)
            .bind(to_ms(at))
            .bind(kind)
            .bind(reason),
        };
        let done = query.execute(&mut **tx).await.map_err(from_sqlite)?;
        Ok(done.rows_affected() > 0)
    }
}

async fn read(
    conn: &mut SqliteConnection,
    id: &str,
    now: SystemTime,
) -> Result<Option<Endpoint>, Error> {
    let row = sqlx::query(GET)
        .bind(to_ms(now))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(from_sqlite)?;
    row.as_ref().map(rows::endpoint).transpose()
}

async fn must_read(
    conn: &mut SqliteConnection,
    id: &str,
    now: SystemTime,
) -> Result<Endpoint, Error> {
    read(conn, id, now)
        .await?
        .ok_or_else(|| Error::not_found(id))
}

/// The endpoint (other than `except`) that already has this URL and event types.
async fn duplicate_of(
    conn: &mut SqliteConnection,
    url: &str,
    key: &str,
    except: &str,
) -> Result<Option<String>, Error> {
    sqlx::query_scalar::<_, String>(
        "SELECT id FROM webhook_endpoints WHERE url = ?1 AND event_types_key = ?2 AND id <> ?3",
    )
    .bind(url)
    .bind(key)
    .bind(except)
    .fetch_optional(conn)
    .await
    .map_err(from_sqlite)
}

async fn insert_events(
    conn: &mut SqliteConnection,
    id: &str,
    types: &[String],
) -> Result<(), Error> {
    for event in event_rows(types) {
        sqlx::query(
            "INSERT INTO webhook_endpoint_events (event_type, endpoint_id) VALUES (?1, ?2)",
        )
        .bind(event)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(from_sqlite)?;
    }
    Ok(())
}
