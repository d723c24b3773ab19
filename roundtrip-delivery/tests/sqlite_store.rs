//! The SQLite outbox store, driven through its public API on real files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use roundtrip_delivery::message::{
    Completion, Decision, LeaseCheck, MessageId, MessageKind, MessageStatus, NewAttempt, NewMessage,
};
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

fn url(path: &str) -> Url {
    Url::parse(&format!("http://127.0.0.1:9{path}")).expect("url")
}

fn msg(name: &str) -> NewMessage {
    NewMessage::callback(name, url("/hook"), r#"{"paid":true}"#)
}

async fn open(path: &Path) -> SqliteOutbox {
    SqliteOutbox::open_path(path).await.expect("open store")
}

async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("raw connection")
}

async fn count(conn: &mut SqliteConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .expect("count query")
}

fn success(id: &MessageId, owner: &str, number: u32) -> Completion {
    Completion {
        message_id: id.clone(),
        owner: owner.into(),
        attempt: NewAttempt::new(number, SystemTime::now(), Duration::from_millis(3)).response(
            200,
            "ok".into(),
            false,
        ),
        decision: Decision::Succeeded,
    }
}

fn failure(id: &MessageId, owner: &str, number: u32, decision: Decision) -> Completion {
    Completion {
        message_id: id.clone(),
        owner: owner.into(),
        attempt: NewAttempt::new(number, SystemTime::now(), Duration::from_millis(3)).response(
            500,
            "boom".into(),
            false,
        ),
        decision,
    }
}

#[tokio::test]
async fn enqueue_is_committed_when_it_returns() {
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
async fn concurrent_enqueues_share_commits() {
    let dir = TempDir::new();
    let outbox = Arc::new(open(&dir.db()).await);
    let before = outbox.stats();
    let sends = 200;
    let mut tasks = Vec::new();
    for i in 0..sends {
        let outbox = outbox.clone();
        tasks.push(tokio::spawn(async move {
            outbox.enqueue(vec![msg(&format!("n{}", i % 3))]).await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("enqueue");
    }
    let after = outbox.stats();
    let transactions = after.transactions - before.transactions;
    let jobs = after.jobs - before.jobs;
    assert_eq!(jobs, sends);
    assert!(
        transactions * 4 <= sends,
        "{sends} concurrent enqueues used {transactions} transactions; group commit should share them"
    );
    let mut conn = raw(&dir.db()).await;
    assert_eq!(count(&mut conn, "SELECT count(*) FROM messages").await, 200);
}

#[tokio::test]
async fn concurrent_enqueues_with_one_key_store_one_message() {
    // Enqueues of one batch are inserted together: the key still admits only one, and
    // every caller learns the id that was stored.
    let dir = TempDir::new();
    let outbox = Arc::new(open(&dir.db()).await);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let outbox = outbox.clone();
        tasks.push(tokio::spawn(async move {
            outbox
                .enqueue(vec![msg("keyed").idempotency_key("same-key"), msg("free")])
                .await
        }));
    }
    let mut keyed_ids = std::collections::BTreeSet::new();
    let mut stored = 0;
    for t in tasks {
        let out = t.await.expect("join").expect("enqueue");
        assert_eq!(out.len(), 2, "one answer per message, in order");
        keyed_ids.insert(out[0].id.to_string());
        stored += out.iter().filter(|e| !e.deduplicated).count();
        assert!(!out[1].deduplicated);
    }
    assert_eq!(keyed_ids.len(), 1, "every caller got the one stored id");
    assert_eq!(stored, 51);
    let mut conn = raw(&dir.db()).await;
    assert_eq!(count(&mut conn, "SELECT count(*) FROM messages").await, 51);
}

#[tokio::test]
async fn claims_lease_messages_and_expired_leases_are_taken_over() {
    let dir = TempDir::new();
    let outbox = open(&dir.db()).await;
    let ids: Vec<MessageId> = outbox
        .enqueue(vec![msg("a"), msg("a"), msg("a")])
        .await
        .expect("enqueue")
        .into_iter()
        .map(|e| e.id)
        .collect();

    let first = outbox
        .claim("worker-a", 2, Duration::ZERO)
        .await
        .expect("claim");
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].meta.status, MessageStatus::Leased);
    assert_eq!(
        first[0].meta.lease.as_ref().map(|l| l.owner.as_str()),
        Some("worker-a")
    );
    // The oldest come first.
    assert_eq!(first[0].meta.id, ids[0]);
    let second = outbox
        .claim("worker-b", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(second.len(), 1, "a leased message is never claimed twice");
    assert_eq!(second[0].meta.id, ids[2]);

    // worker-a's zero-length leases have expired: they go back, counted as lost.
    let reclaimed = outbox.reclaim_expired().await.expect("reclaim");
    assert_eq!(reclaimed.requeued, 2);
    let taken = outbox
        .claim("worker-b", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(taken.len(), 2);
    assert!(taken.iter().all(|m| m.meta.lost_leases == 1));

    // worker-a reports late: its attempt is kept, the message is left to worker-b.
    let late = outbox
        .complete(vec![success(&ids[0], "worker-a", 1)])
        .await
        .expect("complete");
    assert_eq!(late, vec![LeaseCheck::Lost]);
    let still = outbox.get(&ids[0]).await.expect("get").expect("exists");
    assert_eq!(still.meta.status, MessageStatus::Leased);
    assert_eq!(outbox.attempts(&ids[0]).await.expect("attempts").len(), 1);

    // Renewal keeps a lease alive; it fails for leases one does not hold.
    let kept = outbox
        .renew("worker-b", &ids, Duration::from_secs(60))
        .await
        .expect("renew");
    assert_eq!(kept.len(), 3);
    let none = outbox
        .renew("worker-a", &ids, Duration::from_secs(60))
        .await
        .expect("renew");
    assert!(none.is_empty());
    assert_eq!(outbox.reclaim_expired().await.expect("reclaim").requeued, 0);

    // A graceful release hands everything back without counting a lost lease.
    assert_eq!(outbox.release("worker-b").await.expect("release"), 3);
    let again = outbox
        .claim("worker-c", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(again.len(), 3);
    let lost: Vec<u32> = again.iter().map(|m| m.meta.lost_leases).collect();
    assert_eq!(lost.iter().filter(|&&l| l == 1).count(), 2);
    assert_eq!(lost.iter().filter(|&&l| l == 0).count(), 1);
}

#[tokio::test]
async fn completions_move_messages_on_and_finished_ones_to_history() {
    let dir = TempDir::new();
    let outbox = open(&dir.db()).await;
    let a = msg("a");
    let b = msg("b");
    let (ida, idb) = (a.id().clone(), b.id().clone());
    outbox.enqueue(vec![a, b]).await.expect("enqueue");
    outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    let retry_at = SystemTime::now() + Duration::from_secs(3600);
    let statuses = outbox
        .complete(vec![
            success(&ida, "w", 1),
            failure(&idb, "w", 1, Decision::Retry { at: retry_at }),
        ])
        .await
        .expect("complete");
    assert_eq!(statuses, vec![LeaseCheck::Held; 2]);

    let delivered = outbox.get(&ida).await.expect("get").expect("kept");
    assert_eq!(delivered.meta.status, MessageStatus::Succeeded);
    assert_eq!(delivered.meta.attempts, 1);
    assert!(delivered.meta.finished_at.is_some());
    assert_eq!(delivered.body, &br#"{"paid":true}"#[..]);

    let waiting = outbox.get(&idb).await.expect("get").expect("kept");
    assert_eq!(waiting.meta.status, MessageStatus::Pending);
    assert_eq!(waiting.meta.attempts, 1);
    assert_eq!(waiting.meta.last_error.as_deref(), Some("HTTP 500"));
    // Not due yet: not claimed.
    assert!(
        outbox
            .claim("w", 10, Duration::from_secs(60))
            .await
            .expect("claim")
            .is_empty()
    );

    // The hot table holds only the live message.
    let mut conn = raw(&dir.db()).await;
    assert_eq!(count(&mut conn, "SELECT count(*) FROM messages").await, 1);
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM message_history").await,
        1
    );
    let attempts = outbox.attempts(&ida).await.expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].response_status, Some(200));
    assert_eq!(attempts[0].decision, "succeeded");
    assert_eq!(attempts[0].worker, "w");
}

#[tokio::test]
async fn idempotency_keys_deduplicate_but_never_swallow_a_retry() {
    let dir = TempDir::new();
    let outbox = open(&dir.db()).await;
    let first = msg("invoice_paid").idempotency_key("inv-7");
    let id = first.id().clone();
    let done = outbox
        .enqueue(vec![
            first,
            msg("invoice_paid").idempotency_key("inv-7"),
            msg("invoice_sent").idempotency_key("inv-7"),
        ])
        .await
        .expect("enqueue");
    assert!(!done[0].deduplicated);
    assert!(done[1].deduplicated, "same name and key: deduplicated");
    assert_eq!(done[1].id, id, "answers the first message's id");
    assert!(!done[2].deduplicated, "keys are per name");

    // Still deduplicated once the first message has finished.
    outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    outbox
        .complete(vec![failure(
            &id,
            "w",
            1,
            Decision::Failed {
                reason: "gone".into(),
            },
        )])
        .await
        .expect("complete");
    let again = outbox
        .enqueue(vec![msg("invoice_paid").idempotency_key("inv-7")])
        .await
        .expect("enqueue");
    assert!(again[0].deduplicated);
    assert_eq!(again[0].id, id);

    // A manual retry is not a new send: it always goes through.
    let retried = outbox.retry(&id).await.expect("retry");
    assert_eq!(retried.status, MessageStatus::Pending);
    assert_eq!(retried.attempts, 1, "the attempt count is kept");
    let claimed = outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    let back = claimed
        .iter()
        .find(|m| m.meta.id == id)
        .expect("the retried message is claimable");
    assert_eq!(back.meta.next_attempt_number(), 2);
}

#[tokio::test]
async fn a_message_that_keeps_crashing_workers_is_failed_at_the_crash_cap() {
    let dir = TempDir::new();
    let outbox = SqliteOutbox::open(SqliteOptions::new(dir.db()).crash_cap(2))
        .await
        .expect("open");
    let m = msg("poison");
    let id = m.id().clone();
    outbox.enqueue(vec![m]).await.expect("enqueue");

    outbox.claim("w1", 1, Duration::ZERO).await.expect("claim");
    let r = outbox.reclaim_expired().await.expect("reclaim");
    assert_eq!((r.requeued, r.failed), (1, 0));

    // The second crash is by owner: a worker restarting under the same name.
    outbox
        .claim("w2", 1, Duration::from_secs(60))
        .await
        .expect("claim");
    let r = outbox.reclaim_owner("w2").await.expect("reclaim");
    assert_eq!((r.requeued, r.failed), (0, 1));

    let dead = outbox.get(&id).await.expect("get").expect("kept");
    assert_eq!(dead.meta.status, MessageStatus::Failed);
    assert_eq!(dead.meta.lost_leases, 2);
    let why = dead.meta.last_error.unwrap_or_default();
    assert!(why.contains("crash cap"), "{why}");
    assert!(
        outbox
            .claim("w3", 1, Duration::from_secs(60))
            .await
            .expect("claim")
            .is_empty()
    );
}

#[tokio::test]
async fn history_is_purged_after_its_retention_longer_for_undelivered() {
    let dir = TempDir::new();
    let outbox = SqliteOutbox::open(
        SqliteOptions::new(dir.db())
            .retention_succeeded(Duration::ZERO)
            .retention_failed(Duration::from_secs(3600))
            .idempotency_retention(Duration::ZERO),
    )
    .await
    .expect("open");
    let ok = msg("a").idempotency_key("k1");
    let bad = msg("a");
    let (ok_id, bad_id) = (ok.id().clone(), bad.id().clone());
    outbox.enqueue(vec![ok, bad]).await.expect("enqueue");
    outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    outbox
        .complete(vec![
            success(&ok_id, "w", 1),
            failure(
                &bad_id,
                "w",
                1,
                Decision::Failed {
                    reason: "exhausted".into(),
                },
            ),
        ])
        .await
        .expect("complete");
    // Let the clock pass the finish time (millisecond resolution).
    tokio::time::sleep(Duration::from_millis(5)).await;
    let purged = outbox.purge().await.expect("purge");
    assert_eq!(purged.messages, 1);
    assert_eq!(purged.attempts, 1);
    assert_eq!(purged.idempotency_keys, 1);
    assert!(outbox.get(&ok_id).await.expect("get").is_none());
    assert!(outbox.attempts(&ok_id).await.expect("attempts").is_empty());
    let kept = outbox.get(&bad_id).await.expect("get").expect("kept");
    assert_eq!(kept.meta.status, MessageStatus::Failed);
    // With its key purged, the same key sends again.
    let again = outbox
        .enqueue(vec![msg("a").idempotency_key("k1")])
        .await
        .expect("enqueue");
    assert!(!again[0].deduplicated);
}

#[tokio::test]
async fn retry_replay_and_cancel_follow_the_states() {
    let dir = TempDir::new();
    let outbox = open(&dir.db()).await;
    let batch: Vec<NewMessage> = (0..4)
        .map(|i| msg(if i < 3 { "paid" } else { "sent" }))
        .collect();
    let ids: Vec<MessageId> = batch.iter().map(|m| m.id().clone()).collect();
    outbox.enqueue(batch).await.expect("enqueue");

    // A live message cannot be retried; an unknown one is not found.
    let live = outbox.retry(&ids[0]).await.expect_err("live");
    assert!(live.is_conflict(), "{live}");
    let unknown: MessageId = "msg_doesnotexist".parse().expect("id");
    assert!(
        outbox
            .retry(&unknown)
            .await
            .expect_err("unknown")
            .is_not_found()
    );
    assert!(outbox.get(&unknown).await.expect("get").is_none());

    // Cancel one; cancelling it again is a conflict.
    let cancelled = outbox.cancel(&ids[3]).await.expect("cancel");
    assert_eq!(cancelled.status, MessageStatus::Cancelled);
    assert!(
        outbox
            .cancel(&ids[3])
            .await
            .expect_err("twice")
            .is_conflict()
    );

    // Fail the three "paid" ones, then replay them by filter.
    outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    let failed: Vec<Completion> = ids[..3]
        .iter()
        .map(|id| {
            failure(
                id,
                "w",
                1,
                Decision::Failed {
                    reason: "exhausted".into(),
                },
            )
        })
        .collect();
    outbox.complete(failed).await.expect("complete");
    let page = outbox
        .list(&MessageFilter::new().status(MessageStatus::Failed))
        .await
        .expect("list");
    assert_eq!(page.messages.len(), 3);

    let replayed = outbox
        .replay(&MessageFilter::new().name("paid"))
        .await
        .expect("replay");
    assert_eq!(replayed, 3, "only failed messages are replayed by default");
    let pending = outbox
        .list(&MessageFilter::new().status(MessageStatus::Pending))
        .await
        .expect("list");
    assert_eq!(pending.messages.len(), 3);
    assert!(pending.messages.iter().all(|m| m.attempts == 1));
    // The cancelled one is still cancelled, and can be retried by hand.
    let back = outbox.retry(&ids[3]).await.expect("retry cancelled");
    assert_eq!(back.status, MessageStatus::Pending);
}

#[tokio::test]
async fn listings_filter_and_page_newest_first() {
    let dir = TempDir::new();
    let outbox = open(&dir.db()).await;
    let mut all = Vec::new();
    for i in 0..5 {
        let m = if i % 2 == 0 {
            msg("paid").endpoint_id("ep_1")
        } else {
            NewMessage::webhook("new-subscription", url("/w"), "{}")
        };
        all.push(m.id().clone());
        outbox.enqueue(vec![m]).await.expect("enqueue");
    }
    let everything = outbox.list(&MessageFilter::new()).await.expect("list");
    let listed: Vec<MessageId> = everything.messages.iter().map(|m| m.id.clone()).collect();
    let mut newest_first = all.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    assert!(everything.next.is_none());

    let webhooks = outbox
        .list(&MessageFilter::new().kind(MessageKind::Webhook))
        .await
        .expect("list");
    assert_eq!(webhooks.messages.len(), 2);
    let endpoint = outbox
        .list(&MessageFilter::new().endpoint_id("ep_1"))
        .await
        .expect("list");
    assert_eq!(endpoint.messages.len(), 3);

    let page1 = outbox
        .list(&MessageFilter::new().limit(2))
        .await
        .expect("list");
    assert_eq!(page1.messages.len(), 2);
    let cursor = page1.next.clone().expect("more pages");
    let page2 = outbox
        .list(&MessageFilter::new().limit(2).before(cursor))
        .await
        .expect("list");
    assert_eq!(page2.messages[0].id, newest_first[2]);
    let future = outbox
        .list(&MessageFilter::new().created_after(SystemTime::now() + Duration::from_secs(60)))
        .await
        .expect("list");
    assert!(future.messages.is_empty());
}

#[tokio::test]
async fn transactional_enqueue_commits_or_rolls_back_with_the_business_row() {
    let dir = TempDir::new();
    let options = SqliteOptions::new(dir.db());
    let outbox = SqliteOutbox::open(options.clone()).await.expect("open");
    let pool = sqlx::SqlitePool::connect_with(options.connect_options())
        .await
        .expect("app pool");
    sqlx::query("CREATE TABLE invoices (id TEXT PRIMARY KEY)")
        .execute(&pool)
        .await
        .expect("create");

    // Rolled back: neither the invoice nor its callback exists.
    let lost = msg("invoice_notification");
    let lost_id = lost.id().clone();
    {
        let mut conn = pool.acquire().await.expect("conn");
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.expect("begin");
        sqlx::query("INSERT INTO invoices (id) VALUES ('1')")
            .execute(&mut *tx)
            .await
            .expect("insert");
        outbox
            .enqueue_in(&mut tx, vec![lost])
            .await
            .expect("enqueue_in");
        tx.rollback().await.expect("rollback");
    }
    assert!(outbox.get(&lost_id).await.expect("get").is_none());

    // Committed: both exist, and the message is claimable.
    let kept = msg("invoice_notification");
    let kept_id = kept.id().clone();
    {
        let mut conn = pool.acquire().await.expect("conn");
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.expect("begin");
        sqlx::query("INSERT INTO invoices (id) VALUES ('2')")
            .execute(&mut *tx)
            .await
            .expect("insert");
        outbox
            .enqueue_in(&mut tx, vec![kept])
            .await
            .expect("enqueue_in");
        tx.commit().await.expect("commit");
    }
    let mut wakeup = outbox.subscribe();
    wakeup.mark_seen();
    outbox.notify();
    tokio::time::timeout(Duration::from_secs(1), wakeup.wait())
        .await
        .expect("notify wakes subscribers");
    assert!(outbox.get(&kept_id).await.expect("get").is_some());
    let claimed = outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].meta.id, kept_id);
}

#[tokio::test]
async fn bad_messages_are_refused_at_enqueue_and_nothing_is_stored() {
    let dir = TempDir::new();
    let outbox = SqliteOutbox::open(SqliteOptions::new(dir.db()).max_body_bytes(16))
        .await
        .expect("open");
    let file = NewMessage::callback("x", Url::parse("file:///etc/passwd").expect("url"), "{}");
    let err = outbox
        .enqueue(vec![msg("ok"), file])
        .await
        .expect_err("file: URL");
    assert!(err.is_invalid());
    assert!(err.to_string().contains("scheme `file`"), "{err}");
    let big = NewMessage::callback("x", url("/"), vec![b'1'; 17]);
    let err = outbox.enqueue(vec![big]).await.expect_err("too big");
    assert!(err.is_invalid());
    assert!(
        err.to_string().contains("over the limit of 16 bytes"),
        "{err}"
    );
    let page = outbox.list(&MessageFilter::new()).await.expect("list");
    assert!(page.messages.is_empty(), "all or nothing");
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
