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
use super::rows::{self, json_text};
use super::rules::{
    check_url, event_rows, event_types_key, failing_reason, generate_id, gone_reason, log_disabled,
    normalize_event_types, secret_or_generate,
};
use super::{
    CreatedEndpoint, DEFAULT_FAILURE_WINDOW, DEFAULT_ROTATION_GRACE, Endpoint, EndpointFilter,
    EndpointPage, EndpointStore, EndpointUpdate, Error, HealthSignal, HealthUpdate, NewEndpoint,
    RotatedSecret, Rotation, endpoint_setters, health,
};
use crate::message::MessageMeta;
use crate::signing::Secret;
use crate::sqlite::connect::{self, cannot_open};
use crate::store::error::{Repr, Subject};
use crate::store::time::{from_ms, to_ms};
use crate::worker::{AttemptObserver, AttemptReport, SecretSource, SecretSourceError};

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
}

/// Webhook endpoints in a SQLite file. Cheap to clone; every clone is the same store.
///
/// It is also a [`SecretSource`] (the secrets of a message's endpoint) and an
/// [`AttemptObserver`] (disables endpoints that answer 410 or fail for too long).
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

impl std::fmt::Debug for SqliteEndpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEndpointStore")
            .field("path", &self.shared.options.path)
            .finish_non_exhaustive()
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

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, Error> {
        self.shared
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(from_sqlite)
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<Sqlite>, Error> {
        self.shared.readers.acquire().await.map_err(from_sqlite)
    }

    async fn create_endpoint(&self, new: NewEndpoint) -> Result<CreatedEndpoint, Error> {
        check_url(&new.url)?;
        let types = normalize_event_types(&new.event_types)?;
        let key = event_types_key(&types);
        let types_json = json_text(&types)?;
        let metadata = json_text(&new.metadata)?;
        let secret = secret_or_generate(new.secret)?;
        let id = generate_id();
        let now = SystemTime::now();
        let mut tx = self.begin().await?;
        if let Some(existing) = duplicate_of(&mut tx, new.url.as_str(), &key, &id).await? {
            return Err(Error::duplicate(&existing));
        }
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, description, event_types, event_types_key, \
             metadata, enabled, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7)",
        )
        .bind(&id)
        .bind(new.url.as_str())
        .bind(&new.description)
        .bind(&types_json)
        .bind(&key)
        .bind(&metadata)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .map_err(from_sqlite)?;
        insert_events(&mut tx, &id, &types).await?;
        sqlx::query(
            "INSERT INTO webhook_endpoint_secrets (endpoint_id, seq, secret, created_at) \
             VALUES (?1, 1, ?2, ?3)",
        )
        .bind(&id)
        .bind(secret.to_string())
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .map_err(from_sqlite)?;
        let endpoint = must_read(&mut tx, &id, now).await?;
        tx.commit().await.map_err(from_sqlite)?;
        Ok(CreatedEndpoint { endpoint, secret })
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

    async fn update_endpoint(&self, id: &str, update: EndpointUpdate) -> Result<Endpoint, Error> {
        if let Some(url) = &update.url {
            check_url(url)?;
        }
        let types = update
            .event_types
            .as_deref()
            .map(normalize_event_types)
            .transpose()?;
        let now = SystemTime::now();
        let mut tx = self.begin().await?;
        let current = must_read(&mut tx, id, now).await?;
        if update.is_empty() {
            return Ok(current);
        }
        let url = update.url.unwrap_or_else(|| current.url.clone());
        let types = types.unwrap_or_else(|| current.event_types.clone());
        let key = event_types_key(&types);
        let types_changed = types != current.event_types;
        if (url != current.url || types_changed)
            && let Some(existing) = duplicate_of(&mut tx, url.as_str(), &key, id).await?
        {
            return Err(Error::duplicate(&existing));
        }
        let description = update.description.unwrap_or(current.description);
        let metadata = update.metadata.unwrap_or(current.metadata);
        sqlx::query(
            "UPDATE webhook_endpoints SET url = ?2, description = ?3, event_types = ?4, \
             event_types_key = ?5, metadata = ?6, updated_at = ?7 WHERE id = ?1",
        )
        .bind(id)
        .bind(url.as_str())
        .bind(&description)
        .bind(json_text(&types)?)
        .bind(&key)
        .bind(json_text(&metadata)?)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .map_err(from_sqlite)?;
        if types_changed {
            sqlx::query("DELETE FROM webhook_endpoint_events WHERE endpoint_id = ?1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlite)?;
            insert_events(&mut tx, id, &types).await?;
        }
        let endpoint = must_read(&mut tx, id, now).await?;
        tx.commit().await.map_err(from_sqlite)?;
        Ok(endpoint)
    }

    async fn delete_endpoint(&self, id: &str) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlite)?
            .rows_affected();
        if deleted == 0 {
            return Err(Error::not_found(id));
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
        tx.commit().await.map_err(from_sqlite)?;
        self.shared.tracker.forget(id);
        Ok(())
    }

    async fn rotate(&self, id: &str, rotation: Rotation) -> Result<RotatedSecret, Error> {
        let grace = rotation.grace.unwrap_or(self.shared.options.rotation_grace);
        let secret = secret_or_generate(rotation.secret)?;
        let now = SystemTime::now();
        let expires = now.checked_add(grace).unwrap_or(now);
        let mut tx = self.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM webhook_endpoints WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(from_sqlite)?;
        if exists.is_none() {
            return Err(Error::not_found(id));
        }
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
                .execute(&mut *tx)
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
        .execute(&mut *tx)
        .await
        .map_err(from_sqlite)?;
        let endpoint = must_read(&mut tx, id, now).await?;
        tx.commit().await.map_err(from_sqlite)?;
        Ok(RotatedSecret {
            endpoint,
            secret,
            // As stored, so that it equals the endpoint's `rotation_ends_at`.
            previous_expires_at: from_ms(to_ms(expires)),
        })
    }

    async fn set_enabled(
        &self,
        id: &str,
        disable: Option<(&str, &str)>,
    ) -> Result<Endpoint, Error> {
        let now = SystemTime::now();
        let mut tx = self.begin().await?;
        let changed = match disable {
            None => sqlx::query(
                "UPDATE webhook_endpoints SET enabled = 1, disabled_at = NULL, \
                 disabled_kind = NULL, disabled_reason = NULL, failing_since = NULL, \
                 updated_at = ?2 WHERE id = ?1 AND enabled = 0",
            )
            .bind(id)
            .bind(to_ms(now)),
            Some((kind, reason)) => sqlx::query(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_at = ?2, disabled_kind = ?3, \
                 disabled_reason = ?4, updated_at = ?2 WHERE id = ?1 AND enabled = 1",
            )
            .bind(id)
            .bind(to_ms(now))
            .bind(kind)
            .bind(reason),
        }
        .execute(&mut *tx)
        .await
        .map_err(from_sqlite)?
        .rows_affected()
            > 0;
        let endpoint = must_read(&mut tx, id, now).await?;
        tx.commit().await.map_err(from_sqlite)?;
        if changed {
            self.shared.tracker.forget(id);
            log_disabled(&endpoint);
        }
        Ok(endpoint)
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
        let mut tx = self.begin().await?;
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
        tx.commit().await.map_err(from_sqlite)?;
        if disabled {
            log_disabled(&endpoint);
        }
        Ok(HealthUpdate {
            failing_since: endpoint.failing_since,
            disabled: disabled.then_some(endpoint),
        })
    }
}

impl EndpointStore for SqliteEndpointStore {
    fn create(&self, endpoint: NewEndpoint) -> BoxFuture<'_, Result<CreatedEndpoint, Error>> {
        Box::pin(self.create_endpoint(endpoint))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Endpoint, Error>> {
        Box::pin(async move { must_read(&mut *self.reader().await?, id, SystemTime::now()).await })
    }

    fn list<'a>(
        &'a self,
        filter: &'a EndpointFilter,
    ) -> BoxFuture<'a, Result<EndpointPage, Error>> {
        Box::pin(self.list_endpoints(filter))
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        update: EndpointUpdate,
    ) -> BoxFuture<'a, Result<Endpoint, Error>> {
        Box::pin(self.update_endpoint(id, update))
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.delete_endpoint(id))
    }

    fn rotate_secret<'a>(
        &'a self,
        id: &'a str,
        rotation: Rotation,
    ) -> BoxFuture<'a, Result<RotatedSecret, Error>> {
        Box::pin(self.rotate(id, rotation))
    }

    fn enable<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Endpoint, Error>> {
        Box::pin(self.set_enabled(id, None))
    }

    fn disable<'a>(
        &'a self,
        id: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Endpoint, Error>> {
        Box::pin(self.set_enabled(id, Some(("manual", reason))))
    }

    fn matching<'a>(&'a self, event: &'a str) -> BoxFuture<'a, Result<Vec<Endpoint>, Error>> {
        Box::pin(self.matching_endpoints(event))
    }

    fn signing_secrets<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<Secret>, Error>> {
        Box::pin(self.secrets_of(id))
    }

    fn record_health<'a>(
        &'a self,
        id: &'a str,
        result: HealthSignal,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<HealthUpdate, Error>> {
        Box::pin(self.record(id, result, at))
    }

    fn failure_window(&self) -> Duration {
        self.shared.options.failure_window
    }
}

impl SecretSource for SqliteEndpointStore {
    fn secrets<'a>(
        &'a self,
        message: &'a MessageMeta,
    ) -> BoxFuture<'a, Result<Vec<Secret>, SecretSourceError>> {
        health::secrets(self, message)
    }
}

impl AttemptObserver for SqliteEndpointStore {
    fn finished(&self, report: &AttemptReport<'_>) {
        let store: Arc<dyn EndpointStore> = Arc::new(self.clone());
        health::observe(&store, &self.shared.tracker, report);
    }
}
