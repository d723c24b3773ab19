//! Webhook endpoints in the PostgreSQL schema of the outbox.
//!
//! Statements name their tables with the schema, so they work whatever a connection's
//! `search_path` is. Changes of one endpoint lock its row (`FOR UPDATE`), so concurrent
//! updates and rotations from several processes apply one after the other. Times are the
//! callers' clocks, stored as `timestamptz`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres, Row, Transaction};

use super::error::from_postgres;
use super::rows;
use super::rules::{event_rows, failing_reason, gone_reason};
use super::tables::{Change, Creation, Tables, endpoint_store};
use super::{
    CreatedEndpoint, DEFAULT_FAILURE_WINDOW, DEFAULT_ROTATION_GRACE, Endpoint, EndpointFilter,
    EndpointPage, EndpointSettings, EndpointUpdate, Error, HealthSignal, HealthUpdate, NewEndpoint,
    RotatedSecret, Rotation, endpoint_setters, health,
};
use crate::postgres::connect::{
    self, Migration, cannot_open, check_schema, configure, parse_url, quote_ident, redact_url,
};
use crate::postgres::options::pool_setters;
use crate::signing::Secret;
use crate::store::error::{Repr, Subject};
use crate::store::time::{from_us, to_us};

/// A `timestamptz` column as microseconds since the Unix epoch.
macro_rules! us {
    ($col:literal) => {
        concat!("(extract(epoch from ", $col, ") * 1000000)::int8")
    };
}

/// Microseconds since the Unix epoch (a parameter) as a `timestamptz`.
macro_rules! ts {
    ($param:literal) => {
        concat!(
            "(timestamptz 'epoch' + ",
            $param,
            "::int8 * interval '1 microsecond')"
        )
    };
}

/// The endpoint columns every read returns; `$1` is the current time (for the rotation).
macro_rules! columns {
    () => {
        concat!(
            "e.id, e.url, e.description, e.event_types::text AS event_types, \
             e.metadata::text AS metadata, e.enabled, ",
            us!("e.disabled_at"),
            " AS disabled_at, e.disabled_kind, e.disabled_reason, ",
            us!("e.failing_since"),
            " AS failing_since, ",
            us!("e.last_success_at"),
            " AS last_success_at, ",
            us!("e.created_at"),
            " AS created_at, ",
            us!("e.updated_at"),
            " AS updated_at, (SELECT ",
            us!("MAX(s.expires_at)"),
            " FROM _rt_.webhook_endpoint_secrets s WHERE s.endpoint_id = e.id AND s.expires_at > ",
            ts!("$1"),
            ") AS rotation_ends_at"
        )
    };
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM _rt_.webhook_endpoints e WHERE e.id = $2"
);

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM _rt_.webhook_endpoints e WHERE ($2::boolean IS NULL OR e.enabled = $2) \
     AND ($3::text IS NULL OR e.id IN (SELECT endpoint_id FROM _rt_.webhook_endpoint_events \
     WHERE event_type IN ($3, '*'))) AND ($4::text IS NULL OR e.id > $4) ORDER BY e.id LIMIT $5"
);

const MATCHING: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM _rt_.webhook_endpoints e WHERE e.enabled AND e.id IN (SELECT endpoint_id \
     FROM _rt_.webhook_endpoint_events WHERE event_type IN ($2, '*')) ORDER BY e.id"
);

const DUPLICATE: &str = "SELECT id FROM _rt_.webhook_endpoints \
     WHERE url = $1 AND event_types_key = $2 AND id <> $3";

const LOCK: &str = "SELECT id FROM _rt_.webhook_endpoints WHERE id = $1 FOR UPDATE";

const INSERT: &str = concat!(
    "INSERT INTO _rt_.webhook_endpoints (id, url, description, event_types, event_types_key, \
     metadata, enabled, created_at, updated_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6::jsonb, \
     true, ",
    ts!("$7"),
    ", ",
    ts!("$7"),
    ")"
);

const INSERT_EVENTS: &str = "INSERT INTO _rt_.webhook_endpoint_events (event_type, endpoint_id) \
     SELECT unnest($2::text[]), $1";

const DELETE_EVENTS: &str = "DELETE FROM _rt_.webhook_endpoint_events WHERE endpoint_id = $1";

const INSERT_FIRST_SECRET: &str = concat!(
    "INSERT INTO _rt_.webhook_endpoint_secrets (endpoint_id, seq, secret, created_at) \
     VALUES ($1, 1, $2, ",
    ts!("$3"),
    ")"
);

const UPDATE: &str = concat!(
    "UPDATE _rt_.webhook_endpoints SET url = $2, description = $3, event_types = $4::jsonb, \
     event_types_key = $5, metadata = $6::jsonb, updated_at = ",
    ts!("$7"),
    " WHERE id = $1"
);

const DELETE: &str = "DELETE FROM _rt_.webhook_endpoints WHERE id = $1";

const ROTATE: &str = concat!(
    "WITH purged AS (DELETE FROM _rt_.webhook_endpoint_secrets WHERE endpoint_id = $1 \
     AND expires_at IS NOT NULL AND expires_at <= ",
    ts!("$2"),
    "), retired AS (UPDATE _rt_.webhook_endpoint_secrets SET expires_at = ",
    ts!("$3"),
    " WHERE endpoint_id = $1 AND expires_at IS NULL), touched AS (UPDATE _rt_.webhook_endpoints \
     SET updated_at = ",
    ts!("$2"),
    " WHERE id = $1) INSERT INTO _rt_.webhook_endpoint_secrets (endpoint_id, seq, secret, \
     created_at) SELECT $1, COALESCE(MAX(seq), 0) + 1, $4, ",
    ts!("$2"),
    " FROM _rt_.webhook_endpoint_secrets WHERE endpoint_id = $1"
);

const ENABLE: &str = concat!(
    "UPDATE _rt_.webhook_endpoints SET enabled = true, disabled_at = NULL, disabled_kind = NULL, \
     disabled_reason = NULL, failing_since = NULL, updated_at = ",
    ts!("$2"),
    " WHERE id = $1 AND NOT enabled"
);

const DISABLE: &str = concat!(
    "UPDATE _rt_.webhook_endpoints SET enabled = false, disabled_at = ",
    ts!("$2"),
    ", disabled_kind = $3, disabled_reason = $4, failing_since = CASE WHEN $3 = 'gone' \
     THEN COALESCE(failing_since, ",
    ts!("$2"),
    ") ELSE failing_since END, updated_at = ",
    ts!("$2"),
    " WHERE id = $1 AND enabled"
);

const SECRETS: &str = concat!(
    "SELECT e.enabled, e.disabled_reason, s.secret FROM _rt_.webhook_endpoints e \
     LEFT JOIN _rt_.webhook_endpoint_secrets s ON s.endpoint_id = e.id \
     AND (s.expires_at IS NULL OR s.expires_at > ",
    ts!("$2"),
    ") WHERE e.id = $1 ORDER BY s.seq DESC"
);

const SUCCEEDED: &str = concat!(
    "UPDATE _rt_.webhook_endpoints SET failing_since = NULL, last_success_at = ",
    ts!("$2"),
    " WHERE id = $1"
);

const FAILED: &str = concat!(
    "UPDATE _rt_.webhook_endpoints SET failing_since = COALESCE(failing_since, ",
    ts!("$2"),
    ") WHERE id = $1 RETURNING ",
    us!("failing_since"),
    " AS failing_since, enabled"
);

/// The statements, with the schema filled in once when the store opens.
struct Statements {
    get: String,
    list: String,
    matching: String,
    duplicate: String,
    lock: String,
    insert: String,
    insert_events: String,
    delete_events: String,
    insert_first_secret: String,
    update: String,
    delete: String,
    rotate: String,
    enable: String,
    disable: String,
    secrets: String,
    succeeded: String,
    failed: String,
}

impl Statements {
    fn new(schema: &str) -> Self {
        let prefix = format!("{}.", quote_ident(schema));
        let q = |template: &str| template.replace("_rt_.", &prefix);
        Statements {
            get: q(GET),
            list: q(LIST),
            matching: q(MATCHING),
            duplicate: q(DUPLICATE),
            lock: q(LOCK),
            insert: q(INSERT),
            insert_events: q(INSERT_EVENTS),
            delete_events: q(DELETE_EVENTS),
            insert_first_secret: q(INSERT_FIRST_SECRET),
            update: q(UPDATE),
            delete: q(DELETE),
            rotate: q(ROTATE),
            enable: q(ENABLE),
            disable: q(DISABLE),
            secrets: q(SECRETS),
            succeeded: q(SUCCEEDED),
            failed: q(FAILED),
        }
    }
}

fn sql(text: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(text.to_owned())
}

/// How to connect a [`PgEndpointStore`].
///
/// ```
/// use roundtrip_delivery::endpoints::PgEndpointOptions;
/// let options = PgEndpointOptions::new("postgres://app@127.0.0.1/app").schema("outbox");
/// assert_eq!(options.get_schema(), "outbox");
/// ```
#[derive(Clone)]
pub struct PgEndpointOptions {
    url: String,
    /// Connect options built in code (those of a [`PgOptions`](crate::postgres::PgOptions)
    /// made with `from_connect_options`), used instead of parsing `url`.
    connect: Option<sqlx::postgres::PgConnectOptions>,
    schema: String,
    max_connections: u32,
    acquire_timeout: Duration,
    application_name: String,
    rotation_grace: Duration,
    failure_window: Duration,
}

impl std::fmt::Debug for PgEndpointOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEndpointOptions")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl PgEndpointOptions {
    /// Options for the database at `url`, with the defaults: the outbox's default schema
    /// (`roundtrip`), 4 connections, a 24-hour rotation grace and a 5-day failure window.
    pub fn new(url: impl Into<String>) -> Self {
        PgEndpointOptions {
            url: url.into(),
            connect: None,
            schema: crate::postgres::DEFAULT_SCHEMA.to_owned(),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
            application_name: "roundtrip-endpoints".to_owned(),
            rotation_grace: DEFAULT_ROTATION_GRACE,
            failure_window: DEFAULT_FAILURE_WINDOW,
        }
    }

    /// The schema that holds the tables: the outbox's (default `roundtrip`). Letters,
    /// digits and `_`, not starting with a digit, at most 63 bytes. Created if missing.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The schema.
    pub fn get_schema(&self) -> &str {
        &self.schema
    }

    /// The most connections the store opens (default 4).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    pool_setters!("roundtrip-endpoints");

    /// The same database as `outbox`'s, reached the same way (its URL, or the connect
    /// options it was built from), in its schema.
    pub(crate) fn beside(outbox: &crate::postgres::PgOptions) -> Self {
        let mut options = Self::new(outbox.url.clone()).schema(outbox.schema.clone());
        options.connect = outbox.connect.clone();
        options
    }

    /// Applies `settings`.
    pub(crate) fn settings(self, settings: &EndpointSettings) -> Self {
        self.rotation_grace(settings.rotation_grace)
            .failure_window(settings.failure_window)
    }

    endpoint_setters!();
}

/// Webhook endpoints in a PostgreSQL schema. Cheap to clone; every clone is the same store.
///
/// It is also a [`SecretSource`](crate::worker::SecretSource) (the secrets of a message's
/// endpoint) and an [`AttemptObserver`](crate::worker::AttemptObserver) (disables endpoints
/// that answer 410 or fail for too long); [`hooks`](Self::hooks) gives both with the store.
#[derive(Clone)]
pub struct PgEndpointStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: PgPool,
    sql: Statements,
    options: PgEndpointOptions,
    tracker: Arc<health::Tracker>,
}

endpoint_store!(PgEndpointStore);

impl std::fmt::Debug for PgEndpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEndpointStore")
            .field("schema", &self.shared.options.schema)
            .finish_non_exhaustive()
    }
}

impl PgEndpointStore {
    /// Connects to the database at `url` with the default options (schema `roundtrip`).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(PgEndpointOptions::new(url)).await
    }

    /// Connects: creates the schema and brings the endpoint tables up to date (safe when
    /// several processes start at once), and opens the pool.
    pub async fn connect_with(options: PgEndpointOptions) -> Result<Self, Error> {
        check_schema(&options.schema, Subject::Endpoints)?;
        let opening = |e: Repr| {
            Error::from(cannot_open(
                e,
                &options.url,
                &options.schema,
                Subject::Endpoints,
            ))
        };
        let connect = match &options.connect {
            Some(connect) => configure(connect.clone(), &options.application_name),
            None => parse_url(&options.url, &options.application_name, Subject::Endpoints)
                .map_err(opening)?,
        };
        let migration = Migration::endpoints();
        connect::migrate(
            &connect,
            &options.schema,
            options.acquire_timeout,
            false,
            migration,
        )
        .await
        .map_err(opening)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(PgEndpointStore {
            shared: Arc::new(Shared {
                pool,
                sql: Statements::new(&options.schema),
                options,
                tracker: Arc::new(health::Tracker::default()),
            }),
        })
    }

    /// The schema that holds the tables.
    pub fn schema(&self) -> &str {
        &self.shared.options.schema
    }

    /// Closes the pool; calls made afterwards fail with [`Error::is_unavailable`].
    pub async fn close(&self) {
        self.shared.pool.close().await;
    }

    async fn read_on(
        &self,
        conn: &mut PgConnection,
        id: &str,
        now: SystemTime,
    ) -> Result<Endpoint, Error> {
        let row = sqlx::query(sql(&self.shared.sql.get))
            .bind(to_us(now))
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(from_postgres)?;
        match row {
            Some(row) => rows::endpoint(&row),
            None => Err(Error::not_found(id)),
        }
    }

    async fn duplicate_on(
        &self,
        conn: &mut PgConnection,
        url: &str,
        key: &str,
        except: &str,
    ) -> Result<Option<String>, Error> {
        sqlx::query_scalar::<_, String>(sql(&self.shared.sql.duplicate))
            .bind(url)
            .bind(key)
            .bind(except)
            .fetch_optional(conn)
            .await
            .map_err(from_postgres)
    }

    async fn events_on(
        &self,
        conn: &mut PgConnection,
        id: &str,
        types: &[String],
    ) -> Result<(), Error> {
        let rows: Vec<String> = event_rows(types).into_iter().map(str::to_owned).collect();
        sqlx::query(sql(&self.shared.sql.insert_events))
            .bind(id)
            .bind(&rows)
            .execute(conn)
            .await
            .map_err(from_postgres)?;
        Ok(())
    }

    async fn list_endpoints(&self, filter: &EndpointFilter) -> Result<EndpointPage, Error> {
        let limit = filter.effective_limit();
        let rows = sqlx::query(sql(&self.shared.sql.list))
            .bind(to_us(SystemTime::now()))
            .bind(filter.enabled)
            .bind(filter.event_type.as_deref())
            .bind(filter.after.as_deref())
            .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
            .fetch_all(&self.shared.pool)
            .await
            .map_err(from_postgres)?;
        rows::page(&rows, filter)
    }

    async fn get_endpoint(&self, id: &str) -> Result<Endpoint, Error> {
        let mut conn = self.shared.pool.acquire().await.map_err(from_postgres)?;
        self.read_on(&mut conn, id, SystemTime::now()).await
    }

    async fn matching_endpoints(&self, event: &str) -> Result<Vec<Endpoint>, Error> {
        let rows = sqlx::query(sql(&self.shared.sql.matching))
            .bind(to_us(SystemTime::now()))
            .bind(event)
            .fetch_all(&self.shared.pool)
            .await
            .map_err(from_postgres)?;
        rows.iter().map(rows::endpoint).collect()
    }

    async fn secrets_of(&self, id: &str) -> Result<Vec<Secret>, Error> {
        let rows = sqlx::query(sql(&self.shared.sql.secrets))
            .bind(id)
            .bind(to_us(SystemTime::now()))
            .fetch_all(&self.shared.pool)
            .await
            .map_err(from_postgres)?;
        rows::signing_secrets(id, &rows)
    }

    async fn record(
        &self,
        id: &str,
        result: HealthSignal,
        at: SystemTime,
    ) -> Result<HealthUpdate, Error> {
        let window = self.shared.options.failure_window;
        match result {
            HealthSignal::Delivered => {
                let changed = sqlx::query(sql(&self.shared.sql.succeeded))
                    .bind(id)
                    .bind(to_us(at))
                    .execute(&self.shared.pool)
                    .await
                    .map_err(from_postgres)?
                    .rows_affected();
                if changed == 0 {
                    return Err(Error::not_found(id));
                }
                Ok(HealthUpdate {
                    failing_since: None,
                    disabled: None,
                })
            }
            HealthSignal::Failed => {
                let row = sqlx::query(sql(&self.shared.sql.failed))
                    .bind(id)
                    .bind(to_us(at))
                    .fetch_optional(&self.shared.pool)
                    .await
                    .map_err(from_postgres)?
                    .ok_or_else(|| Error::not_found(id))?;
                let since = from_us(row.try_get("failing_since").map_err(from_postgres)?);
                let enabled: bool = row.try_get("enabled").map_err(from_postgres)?;
                let failing_for = at.duration_since(since).unwrap_or_default();
                if enabled && failing_for >= window {
                    let reason = failing_reason(window);
                    let (endpoint, changed) =
                        Tables::set_enabled(self, id, Some(("failing", &reason)), at).await?;
                    return Ok(HealthUpdate::of(endpoint, changed));
                }
                Ok(HealthUpdate {
                    failing_since: Some(since),
                    disabled: None,
                })
            }
            HealthSignal::Gone => {
                let reason = gone_reason();
                let (endpoint, changed) =
                    Tables::set_enabled(self, id, Some(("gone", &reason)), at).await?;
                Ok(HealthUpdate::of(endpoint, changed))
            }
        }
    }
}

/// The statements of the changes. A change locks its endpoint's row (`FOR UPDATE`), so
/// concurrent changes from several processes apply one after the other; deleting an
/// endpoint takes its event types and secrets with it (`ON DELETE CASCADE`).
impl Tables for PgEndpointStore {
    type Tx = Transaction<'static, Postgres>;

    fn stored(t: SystemTime) -> SystemTime {
        from_us(to_us(t))
    }

    async fn begin(&self) -> Result<Self::Tx, Error> {
        self.shared.pool.begin().await.map_err(from_postgres)
    }

    async fn commit(tx: Self::Tx) -> Result<(), Error> {
        tx.commit().await.map_err(from_postgres)
    }

    async fn read(&self, tx: &mut Self::Tx, id: &str, now: SystemTime) -> Result<Endpoint, Error> {
        self.read_on(tx, id, now).await
    }

    async fn lock(&self, tx: &mut Self::Tx, id: &str) -> Result<(), Error> {
        let found = sqlx::query(sql(&self.shared.sql.lock))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(from_postgres)?;
        found.map(|_| ()).ok_or_else(|| Error::not_found(id))
    }

    async fn duplicate_of(
        &self,
        tx: &mut Self::Tx,
        url: &str,
        key: &str,
        except: &str,
    ) -> Result<Option<String>, Error> {
        self.duplicate_on(tx, url, key, except).await
    }

    async fn duplicate_outside(
        &self,
        url: &str,
        key: &str,
        except: &str,
    ) -> Result<Option<String>, Error> {
        let mut conn = self.shared.pool.acquire().await.map_err(from_postgres)?;
        self.duplicate_on(&mut conn, url, key, except).await
    }

    async fn insert(&self, tx: &mut Self::Tx, new: &Creation) -> Result<(), Error> {
        sqlx::query(sql(&self.shared.sql.insert))
            .bind(&new.id)
            .bind(&new.url)
            .bind(&new.description)
            .bind(&new.types_json)
            .bind(&new.key)
            .bind(&new.metadata_json)
            .bind(to_us(new.now))
            .execute(&mut **tx)
            .await
            .map_err(from_postgres)?;
        self.events_on(tx, &new.id, &new.types).await?;
        sqlx::query(sql(&self.shared.sql.insert_first_secret))
            .bind(&new.id)
            .bind(new.secret.to_string())
            .bind(to_us(new.now))
            .execute(&mut **tx)
            .await
            .map_err(from_postgres)?;
        Ok(())
    }

    async fn write(
        &self,
        tx: &mut Self::Tx,
        id: &str,
        change: &Change,
        now: SystemTime,
    ) -> Result<(), Error> {
        sqlx::query(sql(&self.shared.sql.update))
            .bind(id)
            .bind(&change.url)
            .bind(&change.description)
            .bind(&change.types_json)
            .bind(&change.key)
            .bind(&change.metadata_json)
            .bind(to_us(now))
            .execute(&mut **tx)
            .await
            .map_err(from_postgres)?;
        if change.types_changed {
            sqlx::query(sql(&self.shared.sql.delete_events))
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(from_postgres)?;
            self.events_on(tx, id, &change.types).await?;
        }
        Ok(())
    }

    async fn delete_rows(&self, id: &str) -> Result<bool, Error> {
        let deleted = sqlx::query(sql(&self.shared.sql.delete))
            .bind(id)
            .execute(&self.shared.pool)
            .await
            .map_err(from_postgres)?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn add_secret(
        &self,
        tx: &mut Self::Tx,
        id: &str,
        secret: &Secret,
        now: SystemTime,
        expires: SystemTime,
    ) -> Result<(), Error> {
        sqlx::query(sql(&self.shared.sql.rotate))
            .bind(id)
            .bind(to_us(now))
            .bind(to_us(expires))
            .bind(secret.to_string())
            .execute(&mut **tx)
            .await
            .map_err(from_postgres)?;
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
            None => sqlx::query(sql(&self.shared.sql.enable))
                .bind(id)
                .bind(to_us(at)),
            Some((kind, reason)) => sqlx::query(sql(&self.shared.sql.disable))
                .bind(id)
                .bind(to_us(at))
                .bind(kind)
                .bind(reason),
        };
        let done = query.execute(&mut **tx).await.map_err(from_postgres)?;
        Ok(done.rows_affected() > 0)
    }
}
