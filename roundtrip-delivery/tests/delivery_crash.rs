//! Crash safety: a delivery process killed with SIGKILL mid-delivery loses nothing.
//!
//! The test runs `examples/crash_worker.rs` as a child process (cargo builds examples with
//! the tests), kills it while deliveries are under way, restarts it, and checks with the
//! MockReceiver that every message arrived at least once, and that only the few attempts
//! in flight at the kill were repeated.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use roundtrip_delivery::message::{MessageId, MessageStatus};
use roundtrip_delivery::outbox::{MessageFilter, Outbox};
use roundtrip_delivery::sqlite::{SqliteOptions, SqliteOutbox};
use roundtrip_test::{Behaviour, MockReceiver};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const COUNT: usize = 200;
/// The example's `max_in_flight`; a crash repeats at most twice that many deliveries.
const IN_FLIGHT: usize = 8;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn example_binary() -> PathBuf {
    // target/debug/deps/delivery_crash-<hash> -> target/debug/examples/crash_worker
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile dir");
    let binary = profile_dir
        .join("examples")
        .join(format!("crash_worker{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        // `cargo test -p roundtrip-delivery` builds the examples; a filtered run may not.
        let built = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "roundtrip-delivery",
                "--example",
                "crash_worker",
            ])
            .status()
            .expect("run cargo");
        assert!(built.success(), "building the crash_worker example failed");
    }
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p roundtrip-delivery --examples`",
        binary.display()
    );
    binary
}

/// Starts the example and waits until it says its workers run.
async fn start(db: &PathBuf, receiver: &MockReceiver) -> Child {
    let mut child = Command::new(example_binary())
        .arg(db)
        .arg(receiver.url("/crash").as_str())
        .arg(COUNT.to_string())
        .arg(receiver.secret().to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn crash_worker");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line == "ready" {
                return true;
            }
        }
        false
    };
    let started = tokio::time::timeout(Duration::from_secs(20), ready)
        .await
        .expect("crash_worker starts within 20 s");
    assert!(started, "crash_worker exited before it was ready");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_loses_nothing_and_repeats_only_what_was_in_flight() {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "roundtrip-crash-{}-{}",
        std::process::id(),
        MessageId::generate()
    )));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let db = dir.0.join("outbox.db");
    let receiver = MockReceiver::start().await;
    // A slow receiver keeps deliveries in flight when the kill comes.
    receiver.set_behaviour(Behaviour::Delay(Duration::from_millis(15)));

    let mut first = start(&db, &receiver).await;
    receiver
        .wait_for(COUNT / 5, Duration::from_secs(20))
        .await
        .expect("deliveries under way");
    first.kill().await.expect("SIGKILL");
    let before_restart = receiver.unique_ids().len();
    assert!(
        before_restart < COUNT,
        "all {COUNT} were delivered before the kill: the test proves nothing"
    );

    let mut second = start(&db, &receiver).await;
    let status = tokio::time::timeout(Duration::from_secs(30), second.wait())
        .await
        .expect("the restarted process finishes within 30 s")
        .expect("wait");
    assert!(status.success(), "crash_worker failed: {status}");

    let deliveries = receiver.deliveries();
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for d in &deliveries {
        assert!(d.verified, "{:?}", d.verify_error);
        *per_id
            .entry(d.webhook_id().expect("webhook-id").to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), COUNT, "every message arrived at least once");
    let repeated: Vec<(&String, &usize)> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "{before_restart} of {COUNT} delivered before the kill; {} repeated after it",
        repeated.len()
    );
    assert!(
        repeated.len() <= 2 * IN_FLIGHT && repeated.iter().all(|(_, n)| **n == 2),
        "only attempts in flight at the kill may repeat, once: {repeated:?}"
    );

    // The store agrees: every message succeeded.
    let outbox = SqliteOutbox::open(SqliteOptions::new(&db).read_only(true))
        .await
        .expect("open read-only");
    let done = outbox
        .list(
            &MessageFilter::new()
                .status(MessageStatus::Succeeded)
                .limit(1000),
        )
        .await
        .expect("list");
    assert_eq!(done.messages.len(), COUNT);
}
