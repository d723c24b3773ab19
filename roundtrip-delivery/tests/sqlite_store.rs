//! What only the SQLite store does, on real files: it runs in WAL mode, where any connection
//! sees what it committed, and a locked, read-only or damaged file is an error that says so.
//!
//! Everything both stores do is proved once for both, in the conformance suite
//! (`tests/conformance`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use roundtrip_delivery::message::{MessageId, NewMessage};
use roundtrip_delivery::outbox::{MessageFilter, Outbox};
use roundtrip_delivery::sqlite::{SqliteOptions, SqliteOutbox};
use sqlx::{Connection, SqliteConnection};
use url::Url;

/// A directory under the system temp dir, deleted when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "roundtrip-sqlite-{}-{}",
            std::process::id(),
            MessageId::generate()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn db(&self) -> PathBuf {
        self.0.join("outbox.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn msg(name: &str) -> NewMessage {
    let url = Url::parse("http://127.0.0.1:9/hook").expect("url");
    NewMessage::callback(name, url, r#"{"paid":true}"#)
}

async fn open(path: &Path) -> SqliteOutbox {
    SqliteOutbox::open_path(path).await.expect("open store")
}

async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("raw connection")
}

#[tokio::test]
async fn an_enqueue_is_in_the_wal_file_for_any_connection_when_it_returns() {
    let dir = TempDir::new();
    let outbox = open(&dir.db()).await;
    let m = msg("invoice_notification").idempotency_key("inv-1");
    let id = m.id().clone();
    let done = outbox.enqueue(vec![m]).await.expect("enqueue");
    assert_eq!(done[0].id, id);
    assert!(!done[0].deduplicated);

    // A fresh connection, which shares nothing with the store, sees the row.
    let mut conn = raw(&dir.db()).await;
    let stored: (String, String, Vec<u8>, String) =
        sqlx::query_as("SELECT kind, name, body, status FROM messages WHERE id = ?1")
            .bind(id.as_str())
            .fetch_one(&mut conn)
            .await
            .expect("row visible from another connection");
    assert_eq!(stored.0, "callback");
    assert_eq!(stored.1, "invoice_notification");
    assert_eq!(stored.2, br#"{"paid":true}"#);
    assert_eq!(stored.3, "pending");
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("pragma");
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn a_locked_database_is_a_clear_error_not_a_hang() {
    let dir = TempDir::new();
    let outbox =
        SqliteOutbox::open(SqliteOptions::new(dir.db()).busy_timeout(Duration::from_millis(100)))
            .await
            .expect("open");
    let mut other = raw(&dir.db()).await;
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .expect("lock");
    let err = outbox
        .enqueue(vec![msg("a")])
        .await
        .expect_err("locked by another connection");
    assert!(err.is_locked(), "{err:?}");
    assert!(err.is_unavailable());
    assert!(
        err.to_string().contains("locked by another connection"),
        "{err}"
    );
    sqlx::query("COMMIT")
        .execute(&mut other)
        .await
        .expect("unlock");
    outbox
        .enqueue(vec![msg("a")])
        .await
        .expect("works once the lock is gone");
}

#[tokio::test]
async fn read_only_and_damaged_files_are_clear_errors() {
    let dir = TempDir::new();
    drop(open(&dir.db()).await);
    let reader = SqliteOutbox::open(SqliteOptions::new(dir.db()).read_only(true))
        .await
        .expect("open read-only");
    let err = reader.enqueue(vec![msg("a")]).await.expect_err("read-only");
    assert!(err.is_read_only(), "{err:?}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(reader.list(&MessageFilter::new()).await.is_ok());

    let junk = dir.0.join("junk.db");
    std::fs::write(&junk, vec![b'x'; 8192]).expect("write junk");
    let err = SqliteOutbox::open_path(&junk)
        .await
        .expect_err("not a database");
    assert!(err.is_corrupt(), "{err:?}");
    let text = format!("{err}");
    assert!(text.contains("junk.db"), "{text}");

    let err = SqliteOutbox::open_path(&dir.0)
        .await
        .expect_err("a directory is not a database");
    assert!(
        err.to_string().contains("cannot open the outbox database"),
        "{err}"
    );
}
