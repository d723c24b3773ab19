//! Fresh PostgreSQL schemas and databases for tests, deleted when dropped.
//!
//! Shared by every crate's PostgreSQL tests.
//!
//! The tests use the PostgreSQL at `postgres://postgres@127.0.0.1:5432/test` unless
//! `ROUNDTRIP_TEST_DATABASE_URL` names another. Each test gets its own schema (or database),
//! named `rt_test_<unix seconds>_<pid>_<n>`, so parallel runs never meet; leftovers of a
//! crashed run are dropped by the next run once they are an hour old. If the server cannot
//! be reached the test fails and says how to point it elsewhere: it is never skipped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

/// The environment variable that points the PostgreSQL tests at another server.
pub const URL_ENV: &str = "ROUNDTRIP_TEST_DATABASE_URL";
/// The server the tests use by default.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The URL of the test server.
pub fn base_url() -> String {
    std::env::var(URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

fn unreachable(url: &str, e: &dyn std::fmt::Display) -> ! {
    panic!(
        "PostgreSQL cannot be reached at {url}: {e}\n\
         The PostgreSQL tests need a server. Start one on 127.0.0.1:5432 (user `postgres`, \
         trust auth, database `test`), or point the tests at another server with \
         {URL_ENV}=postgres://user:password@host:port/database (the user must be allowed to \
         create schemas and databases). These tests are never skipped."
    )
}

/// A plain connection to the test server (or to `database` on it).
pub async fn admin(database: Option<&str>) -> PgConnection {
    let url = base_url();
    let mut options: PgConnectOptions = url
        .parse()
        .unwrap_or_else(|e| panic!("{URL_ENV} is not a PostgreSQL URL ({url}): {e}"));
    if let Some(db) = database {
        options = options.database(db);
    }
    options = options
        .application_name("roundtrip-test-admin")
        .disable_statement_logging();
    match options.connect().await {
        Ok(conn) => conn,
        Err(e) => unreachable(&url, &e),
    }
}

/// A name no other test (in this run or another) uses.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{prefix}_{secs}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops schemas and databases left by crashed runs, once per process.
async fn sweep_leftovers(conn: &mut PgConnection) {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::SeqCst) {
        return;
    }
    let cutoff = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .saturating_sub(3600);
    let old = |name: &str, prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok())
            .is_some_and(|secs| secs < cutoff)
    };
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'rt\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for s in schemas.iter().filter(|s| old(s, "rt_test_")) {
        let _ = sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{s}\" CASCADE"
        )))
        .execute(&mut *conn)
        .await;
    }
    let dbs: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'rt\\_testdb\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for d in dbs.iter().filter(|d| old(d, "rt_testdb_")) {
        let _ = sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{d}\" WITH (FORCE)"
        )))
        .execute(&mut *conn)
        .await;
    }
}

/// Runs `cleanup` on a thread of its own with its own runtime, so it also runs when a test
/// panics (from `Drop`) and whatever runtime the test used.
fn run_detached<F>(cleanup: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let done = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(30), cleanup).await;
            });
        }
    });
    let _ = done.join();
}

/// Closes every session whose `application_name` is `name` (the stores of one test).
pub async fn terminate_sessions(conn: &mut PgConnection, name: &str) -> u64 {
    let rows: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .expect("pg_terminate_backend");
    rows.into_iter().filter(|ok| *ok).count() as u64
}

/// A fresh schema on the test server, dropped (with every session of the same name closed)
/// when this is dropped.
pub struct TestSchema {
    /// The schema's name.
    pub name: String,
    /// The server's URL.
    pub url: String,
}

impl TestSchema {
    /// Reserves a fresh schema name; the store under test creates the schema itself.
    pub async fn new() -> Self {
        let mut conn = admin(None).await;
        sweep_leftovers(&mut conn).await;
        let _ = conn.close().await;
        TestSchema {
            name: unique_name("rt_test"),
            url: base_url(),
        }
    }
}

impl TestSchema {
    /// The server's URL with `?schema=<name>`, as an app's `database_url` takes it.
    pub fn database_url(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{separator}schema={}", self.url, self.name)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        run_detached(async move {
            let mut conn = admin(None).await;
            terminate_sessions(&mut conn, &name).await;
            let _ = sqlx::query(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
            )))
            .execute(&mut conn)
            .await;
        });
    }
}

/// A fresh database on the test server, dropped (WITH FORCE) when this is dropped.
pub struct TestDatabase {
    /// The database's name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates a fresh database.
    pub async fn new() -> Self {
        let mut conn = admin(None).await;
        sweep_leftovers(&mut conn).await;
        let name = unique_name("rt_testdb");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE (the test user must be allowed to create databases)");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&base_url()).expect("test URL");
        url.set_path(&format!("/{name}"));
        TestDatabase {
            name,
            url: url.to_string(),
        }
    }

    /// Refuses or allows new connections to this database (existing ones stay).
    pub async fn allow_connections(&self, allow: bool) {
        let mut conn = admin(None).await;
        sqlx::query(AssertSqlSafe(format!(
            "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {allow}",
            self.name
        )))
        .execute(&mut conn)
        .await
        .expect("ALTER DATABASE ... ALLOW_CONNECTIONS");
        let _ = conn.close().await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        run_detached(async move {
            let mut conn = admin(None).await;
            let _ = sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        });
    }
}
