//! The stores in the suite: SQLite on a temporary file, PostgreSQL in a fresh schema.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use roundtrip_delivery::message::{Enqueued, MessageId, NewMessage};
use roundtrip_delivery::outbox::{CommitStats, Error, Outbox};
use roundtrip_delivery::postgres::{PgOptions, PgOutbox};
use roundtrip_delivery::sqlite::{SqliteOptions, SqliteOutbox};
use sqlx::{AssertSqlSafe, Connection};

use super::harness::{StoreConfig, StoreFactory, TestDb};
use super::pg::TestSchema;

// ---- SQLite ----

/// SQLite stores, each on a new file in its own temporary directory.
pub(crate) struct Sqlite;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct SqliteDb {
    options: SqliteOptions,
    outbox: Arc<SqliteOutbox>,
    _dir: TempDir,
}

fn sqlite_options(path: PathBuf, c: &StoreConfig) -> SqliteOptions {
    SqliteOptions::new(path)
        .crash_cap(c.crash_cap)
        .max_body_bytes(c.max_body_bytes)
        .retention_succeeded(c.retention_succeeded)
        .retention_failed(c.retention_failed)
        .idempotency_retention(c.idempotency_retention)
        .busy_timeout(Duration::from_secs(10))
}

impl StoreFactory for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    /// One writer task writes whatever queued while the last commit ran.
    fn commit_sharing(&self) -> u64 {
        4
    }

    fn fresh(&self, config: StoreConfig) -> BoxFuture<'_, Box<dyn TestDb>> {
        Box::pin(async move {
            let dir = std::env::temp_dir().join(format!(
                "roundtrip-conformance-{}-{}",
                std::process::id(),
                MessageId::generate()
            ));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            let dir = TempDir(dir);
            let options = sqlite_options(dir.0.join("outbox.db"), &config);
            let outbox = SqliteOutbox::open(options.clone())
                .await
                .expect("open the SQLite store");
            Box::new(SqliteDb {
                options,
                outbox: Arc::new(outbox),
                _dir: dir,
            }) as Box<dyn TestDb>
        })
    }
}

impl TestDb for SqliteDb {
    fn outbox(&self) -> Arc<dyn Outbox> {
        self.outbox.clone()
    }

    fn commit_stats(&self) -> CommitStats {
        self.outbox.stats()
    }

    fn reopen(&self) -> BoxFuture<'_, Arc<dyn Outbox>> {
        Box::pin(async move {
            let other = SqliteOutbox::open(self.options.clone())
                .await
                .expect("open a second SQLite store on the same file");
            Arc::new(other) as Arc<dyn Outbox>
        })
    }

    fn enqueue_with_invoice(
        &self,
        invoice: &str,
        messages: Vec<NewMessage>,
        commit: bool,
    ) -> BoxFuture<'_, Result<Vec<Enqueued>, Error>> {
        let invoice = invoice.to_owned();
        Box::pin(async move {
            let mut conn = sqlx::SqliteConnection::connect_with(&self.options.connect_options())
                .await
                .expect("application connection");
            sqlx::query("CREATE TABLE IF NOT EXISTS invoices (id TEXT PRIMARY KEY)")
                .execute(&mut conn)
                .await
                .expect("create invoices");
            let mut tx = conn
                .begin_with("BEGIN IMMEDIATE")
                .await
                .expect("begin the application transaction");
            sqlx::query("INSERT INTO invoices (id) VALUES (?1)")
                .bind(&invoice)
                .execute(&mut *tx)
                .await
                .expect("insert the invoice");
            let out = self.outbox.enqueue_in(&mut tx, messages).await;
            if commit && out.is_ok() {
                tx.commit().await.expect("commit");
                self.outbox.notify();
            } else {
                tx.rollback().await.expect("rollback");
            }
            out
        })
    }

    fn invoice_exists(&self, invoice: &str) -> BoxFuture<'_, bool> {
        let invoice = invoice.to_owned();
        Box::pin(async move {
            let mut conn = sqlx::SqliteConnection::connect_with(&self.options.connect_options())
                .await
                .expect("application connection");
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM sqlite_master WHERE name = 'invoices'",
            )
            .fetch_one(&mut conn)
            .await
            .expect("look for invoices")
                > 0
                && sqlx::query_scalar::<_, i64>("SELECT count(*) FROM invoices WHERE id = ?1")
                    .bind(&invoice)
                    .fetch_one(&mut conn)
                    .await
                    .expect("count invoices")
                    > 0
        })
    }

    fn live_rows(&self) -> BoxFuture<'_, i64> {
        Box::pin(async move {
            let mut conn = sqlx::SqliteConnection::connect_with(&self.options.connect_options())
                .await
                .expect("connection");
            sqlx::query_scalar("SELECT count(*) FROM messages")
                .fetch_one(&mut conn)
                .await
                .expect("count")
        })
    }
}

// ---- PostgreSQL ----

/// PostgreSQL stores, each in a fresh schema of the test server.
pub(crate) struct Postgres;

/// Options for a store of the test `schema`; its sessions carry the schema's name as their
/// `application_name`, so a test can find (and terminate) them.
pub(crate) fn pg_options(schema: &TestSchema, c: &StoreConfig) -> PgOptions {
    PgOptions::new(schema.url.clone())
        .schema(schema.name.clone())
        .application_name(schema.name.clone())
        .max_connections(2)
        .crash_cap(c.crash_cap)
        .max_body_bytes(c.max_body_bytes)
        .retention_succeeded(c.retention_succeeded)
        .retention_failed(c.retention_failed)
        .idempotency_retention(c.idempotency_retention)
}

/// Connects a store, failing the test with directions if the server is unreachable.
pub(crate) async fn pg_connect(options: PgOptions) -> PgOutbox {
    match PgOutbox::connect_with(options).await {
        Ok(outbox) => outbox,
        Err(e) if e.is_unavailable() => panic!(
            "PostgreSQL cannot be reached at {}: {e}\nThe PostgreSQL tests need a server. \
             Start one on 127.0.0.1:5432 (user `postgres`, trust auth, database `test`), or \
             point the tests at another with {}=postgres://user:password@host:port/database. \
             These tests are never skipped.",
            super::pg::base_url(),
            super::pg::URL_ENV
        ),
        Err(e) => panic!("the PostgreSQL store failed to open: {e}"),
    }
}

struct PgDb {
    options: PgOptions,
    outbox: Arc<PgOutbox>,
    // Dropped last: the schema goes once the stores above are gone.
    schema: TestSchema,
}

impl StoreFactory for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    /// Two commit lanes write whatever queued while they were busy.
    fn commit_sharing(&self) -> u64 {
        2
    }

    fn fresh(&self, config: StoreConfig) -> BoxFuture<'_, Box<dyn TestDb>> {
        Box::pin(async move {
            let schema = TestSchema::new().await;
            let options = pg_options(&schema, &config);
            let outbox = pg_connect(options.clone()).await;
            Box::new(PgDb {
                options,
                outbox: Arc::new(outbox),
                schema,
            }) as Box<dyn TestDb>
        })
    }
}

impl PgDb {
    async fn app_connection(&self) -> sqlx::PgConnection {
        super::pg::admin(None).await
    }

    fn invoices(&self) -> String {
        format!("\"{}\".invoices", self.schema.name)
    }
}

impl TestDb for PgDb {
    fn outbox(&self) -> Arc<dyn Outbox> {
        self.outbox.clone()
    }

    fn commit_stats(&self) -> CommitStats {
        self.outbox.stats()
    }

    fn reopen(&self) -> BoxFuture<'_, Arc<dyn Outbox>> {
        Box::pin(async move { Arc::new(pg_connect(self.options.clone()).await) as Arc<dyn Outbox> })
    }

    fn enqueue_with_invoice(
        &self,
        invoice: &str,
        messages: Vec<NewMessage>,
        commit: bool,
    ) -> BoxFuture<'_, Result<Vec<Enqueued>, Error>> {
        let invoice = invoice.to_owned();
        Box::pin(async move {
            let mut conn = self.app_connection().await;
            sqlx::query(AssertSqlSafe(format!(
                "CREATE TABLE IF NOT EXISTS {} (id text PRIMARY KEY)",
                self.invoices()
            )))
            .execute(&mut conn)
            .await
            .expect("create invoices");
            let mut tx = conn.begin().await.expect("begin");
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {} (id) VALUES ($1)",
                self.invoices()
            )))
            .bind(&invoice)
            .execute(&mut *tx)
            .await
            .expect("insert the invoice");
            let out = self.outbox.enqueue_in(&mut tx, messages).await;
            if commit && out.is_ok() {
                tx.commit().await.expect("commit");
            } else {
                tx.rollback().await.expect("rollback");
            }
            out
        })
    }

    fn invoice_exists(&self, invoice: &str) -> BoxFuture<'_, bool> {
        let invoice = invoice.to_owned();
        Box::pin(async move {
            let mut conn = self.app_connection().await;
            let table: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
                .bind(self.invoices())
                .fetch_one(&mut conn)
                .await
                .expect("look for invoices");
            if table.is_none() {
                return false;
            }
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
                "SELECT count(*) FROM {} WHERE id = $1",
                self.invoices()
            )))
            .bind(&invoice)
            .fetch_one(&mut conn)
            .await
            .expect("count invoices")
                > 0
        })
    }

    fn live_rows(&self) -> BoxFuture<'_, i64> {
        Box::pin(async move {
            let mut conn = self.app_connection().await;
            sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT count(*) FROM \"{}\".messages",
                self.schema.name
            )))
            .fetch_one(&mut conn)
            .await
            .expect("count")
        })
    }
}
