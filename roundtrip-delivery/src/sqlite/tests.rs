//! The writer's shared statements: enqueues written together answer as if each ran alone,
//! and completions of many messages and owners are recorded whole.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::{Connection, SqliteConnection};
use url::Url;

use super::{SqliteOutbox, enqueue};
use crate::message::{
    Completion, Decision, Enqueued, LeaseCheck, MessageId, NewAttempt, NewMessage,
};
use crate::outbox::Outbox;

/// A directory under the system temp dir, deleted when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "roundtrip-sqlite-unit-{}-{}",
            std::process::id(),
            MessageId::generate()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn db(&self, name: &str) -> PathBuf {
        self.0.join(name)
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

async fn raw(path: &std::path::Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("raw connection")
}

async fn count(conn: &mut SqliteConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .expect("count")
}

/// Runs `jobs` through `insert_many` in one transaction on a fresh store at `path`, after
/// an earlier message took the key `taken`.
async fn write_together(
    path: &std::path::Path,
    earlier: &NewMessage,
    jobs: &[Vec<NewMessage>],
) -> Vec<Vec<Enqueued>> {
    let store = SqliteOutbox::open_path(path).await.expect("open");
    store.enqueue(vec![earlier.clone()]).await.expect("earlier");
    let mut conn = raw(path).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .expect("begin");
    let slices: Vec<&[NewMessage]> = jobs.iter().map(Vec::as_slice).collect();
    let out = enqueue::insert_many(&mut conn, &slices, SystemTime::now(), None)
        .await
        .expect("insert");
    sqlx::query("COMMIT")
        .execute(&mut conn)
        .await
        .expect("commit");
    out
}

#[tokio::test]
async fn enqueues_written_together_answer_as_if_each_ran_alone() {
    let dir = TempDir::new();
    let earlier = msg("paid").idempotency_key("taken");
    let a1 = msg("paid").idempotency_key("k");
    let a2 = msg("paid").idempotency_key("k");
    let a3 = msg("paid");
    let b1 = msg("paid").idempotency_key("k");
    let b2 = msg("paid").idempotency_key("taken");
    let c1 = msg("paid").idempotency_key("j");
    // The same key under another name is another key.
    let c2 = msg("refunded").idempotency_key("k");
    let jobs = vec![
        vec![a1.clone(), a2.clone(), a3.clone()],
        vec![b1.clone(), b2.clone(), a3.clone()],
        vec![c1.clone(), c2.clone()],
    ];

    let together = write_together(&dir.db("together.db"), &earlier, &jobs).await;

    // The same jobs, one transaction each, on another file.
    let path = dir.db("alone.db");
    let store = SqliteOutbox::open_path(&path).await.expect("open");
    store.enqueue(vec![earlier.clone()]).await.expect("earlier");
    let mut alone = Vec::new();
    for job in &jobs {
        alone.push(store.enqueue(job.clone()).await.expect("enqueue"));
    }
    let answers = |out: &[Vec<Enqueued>]| -> Vec<Vec<(String, bool)>> {
        out.iter()
            .map(|job| {
                job.iter()
                    .map(|e| (e.id.to_string(), e.deduplicated))
                    .collect()
            })
            .collect()
    };
    assert_eq!(answers(&together), answers(&alone));

    let expected = vec![
        vec![
            (a1.id().to_string(), false),
            (a1.id().to_string(), true),
            (a3.id().to_string(), false),
        ],
        vec![
            (a1.id().to_string(), true),
            (earlier.id().to_string(), true),
            (a3.id().to_string(), true),
        ],
        vec![(c1.id().to_string(), false), (c2.id().to_string(), false)],
    ];
    assert_eq!(answers(&together), expected);
    let mut conn = raw(&dir.db("together.db")).await;
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM messages").await,
        5,
        "earlier, a1, a3, c1, c2"
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM idempotency_keys").await,
        4,
        "taken, k, j, and k under another name"
    );
}

#[tokio::test]
async fn one_failing_enqueue_leaves_the_others_of_its_batch_stored() {
    let dir = TempDir::new();
    let path = dir.db("outbox.db");
    let outbox = Arc::new(SqliteOutbox::open_path(&path).await.expect("open"));
    let mut conn = raw(&path).await;
    sqlx::query(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON messages WHEN NEW.name = 'boom' \
         BEGIN SELECT RAISE(ABORT, 'boom refused'); END",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");
    let sends = 60;
    let mut tasks = Vec::new();
    for i in 0..sends {
        let outbox = outbox.clone();
        let name = if i == sends / 2 { "boom" } else { "paid" };
        tasks.push(tokio::spawn(async move {
            outbox.enqueue(vec![msg(name), msg(name)]).await
        }));
    }
    let mut failed = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(out) => assert!(out.iter().all(|e| !e.deduplicated)),
            Err(e) => {
                failed += 1;
                assert!(e.to_string().contains("boom refused"), "{e}");
            }
        }
    }
    assert_eq!(failed, 1, "only the refused enqueue fails");
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM messages").await,
        2 * (sends - 1),
        "every other enqueue is stored whole"
    );
}

fn completion(id: &MessageId, owner: &str, decision: Decision) -> Completion {
    let attempt = NewAttempt::new(1, SystemTime::now(), Duration::from_millis(3));
    let attempt = match decision {
        Decision::Succeeded => attempt.response(200, "{}".into(), false),
        _ => attempt.response(503, "{}".into(), false),
    };
    Completion {
        message_id: id.clone(),
        owner: owner.to_owned(),
        attempt,
        decision,
    }
}

#[tokio::test]
async fn one_completion_call_records_many_messages_of_several_owners() {
    let dir = TempDir::new();
    let path = dir.db("outbox.db");
    let outbox = SqliteOutbox::open_path(&path).await.expect("open");
    let batch: Vec<NewMessage> = (0..150).map(|_| msg("paid")).collect();
    outbox.enqueue(batch).await.expect("enqueue");
    let lease = Duration::from_secs(60);
    let first = outbox.claim("w1", 80, lease).await.expect("claim");
    let second = outbox.claim("w2", 80, lease).await.expect("claim");
    assert_eq!((first.len(), second.len()), (80, 70));

    let later = SystemTime::now() + Duration::from_secs(3600);
    let mut completions = Vec::new();
    for (owner, claimed) in [("w1", &first), ("w2", &second)] {
        for (i, m) in claimed.iter().enumerate() {
            let decision = match i % 5 {
                0 => Decision::Retry { at: later },
                1 => Decision::Failed {
                    reason: "gone".into(),
                },
                _ => Decision::Succeeded,
            };
            completions.push(completion(&m.meta.id, owner, decision));
        }
    }
    // One report under a lease its reporter does not hold.
    completions.push(completion(&first[2].meta.id, "w2", Decision::Succeeded));
    let statuses = outbox.complete(completions).await.expect("complete");
    assert_eq!(statuses.len(), 151);
    assert!(statuses[..150].iter().all(|s| *s == LeaseCheck::Held));
    assert_eq!(statuses[150], LeaseCheck::Lost);

    let mut conn = raw(&path).await;
    assert_eq!(count(&mut conn, "SELECT count(*) FROM attempts").await, 151);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM messages WHERE status = 'pending' AND attempts = 1 \
             AND lease_owner IS NULL AND last_error = 'HTTP 503'"
        )
        .await,
        30,
        "retries wait for their turn"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM message_history WHERE status = 'succeeded' AND attempts = 1"
        )
        .await,
        90
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM message_history WHERE status = 'failed' AND last_error = 'gone'"
        )
        .await,
        30
    );
    assert_eq!(
        outbox
            .claim("w3", 10, lease)
            .await
            .expect("nothing due")
            .len(),
        0
    );
}

#[tokio::test]
async fn plain_enqueues_commit_in_one_round_trip_and_a_resent_id_falls_back() {
    let dir = TempDir::new();
    let path = dir.db("outbox.db");
    let store = SqliteOutbox::open_path(&path).await.expect("open");
    let earlier = msg("paid");
    store.enqueue(vec![earlier.clone()]).await.expect("earlier");
    let (a, b, c) = (msg("paid"), msg("paid"), msg("paid"));
    let mut conn = raw(&path).await;
    let fresh = [vec![a.clone()], vec![b.clone(), c.clone()]];
    let slices: Vec<&[NewMessage]> = fresh.iter().map(Vec::as_slice).collect();
    assert!(enqueue::fits_one_statement(&slices));
    let answers = match enqueue::enqueue_committed(
        &mut conn,
        "PRAGMA synchronous = FULL; BEGIN IMMEDIATE",
        &slices,
        SystemTime::now(),
        None,
    )
    .await
    {
        Ok(answers) => answers,
        Err(_) => panic!("the enqueue transaction failed"),
    };
    let ids: Vec<Vec<(String, bool)>> = answers
        .iter()
        .map(|job| {
            job.iter()
                .map(|e| (e.id.to_string(), e.deduplicated))
                .collect()
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            vec![(a.id().to_string(), false)],
            vec![(b.id().to_string(), false), (c.id().to_string(), false)]
        ]
    );
    // Committed: another connection sees the rows.
    let mut other = raw(&path).await;
    assert_eq!(count(&mut other, "SELECT count(*) FROM messages").await, 4);

    // A message sent again fails the shared statement, and nothing of it stays...
    let d = msg("paid");
    let again = [vec![d.clone()], vec![earlier.clone()]];
    let slices: Vec<&[NewMessage]> = again.iter().map(Vec::as_slice).collect();
    let failed = enqueue::enqueue_committed(
        &mut conn,
        "BEGIN IMMEDIATE",
        &slices,
        SystemTime::now(),
        None,
    )
    .await;
    assert!(matches!(failed, Err(enqueue::Failed::Insert(_))));
    sqlx::query("ROLLBACK")
        .execute(&mut conn)
        .await
        .expect("rollback");
    assert_eq!(count(&mut other, "SELECT count(*) FROM messages").await, 4);
    // ...and through the writer it is answered as a duplicate, the other one stored.
    let answers = store
        .enqueue(vec![d.clone(), earlier.clone()])
        .await
        .expect("enqueue");
    assert!(!answers[0].deduplicated);
    assert!(answers[1].deduplicated);
    assert_eq!(answers[1].id, *earlier.id());
    assert_eq!(count(&mut other, "SELECT count(*) FROM messages").await, 5);
    assert!(!enqueue::fits_one_statement(&[&[
        msg("paid").idempotency_key("k")
    ]]));
}

#[tokio::test]
async fn the_checkpointer_copies_the_wal_into_the_database_file() {
    let dir = TempDir::new();
    let path = dir.db("outbox.db");
    let store = SqliteOutbox::open_path(&path).await.expect("open");
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let batch: Vec<NewMessage> = (0..2000).map(|_| msg("paid")).collect();
    store.enqueue(batch).await.expect("enqueue");
    // Far below the writer's own checkpoint mark: only the checkpointer copies the pages.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while size() <= before {
        assert!(
            std::time::Instant::now() < until,
            "the database file never grew past {before} bytes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_claimed_row_that_cannot_be_read_leaves_the_others_delivered() {
    let dir = TempDir::new();
    let path = dir.db("outbox.db");
    let outbox = SqliteOutbox::open_path(&path).await.expect("open");
    let sent: Vec<MessageId> = outbox
        .enqueue(vec![msg("a"), msg("b"), msg("c")])
        .await
        .expect("enqueue")
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut conn = raw(&path).await;
    sqlx::query("UPDATE messages SET url = 'not a url' WHERE id = ?1")
        .bind(sent[1].as_str())
        .execute(&mut conn)
        .await
        .expect("damage one row");

    let claimed = outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("the claim answers the rows it can read");
    let got: Vec<&MessageId> = claimed.iter().map(|m| &m.meta.id).collect();
    assert_eq!(got, vec![&sent[0], &sent[2]]);
    // The damaged one stays leased: its lease runs out, and the crash cap fails it.
    let status: String = sqlx::query_scalar("SELECT status FROM messages WHERE id = ?1")
        .bind(sent[1].as_str())
        .fetch_one(&mut conn)
        .await
        .expect("status");
    assert_eq!(status, "leased");
}
