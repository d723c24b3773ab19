//! Several processes, one PostgreSQL outbox: three processes of the invoices app take
//! 5,000 invoices through their HTTP APIs. Every callback is delivered, none twice, and
//! the work spreads across the processes. Then again with one process killed (SIGKILL)
//! midway: everything is still delivered, and repeats are bounded by what was in flight.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use roundtrip::delivery::Database;
use roundtrip::delivery::outbox::AttemptFilter;
use roundtrip_test::postgres::TestSchema;
use roundtrip_test::{Behaviour, ChildGuard, MockReceiver, free_port};
use serde_json::json;

const MESSAGES: usize = 5_000;
const PROCESSES: usize = 3;

struct Process {
    child: ChildGuard,
    port: u16,
}

/// Starts process `n`. `quick_takeover` shortens leases so that a killed process's
/// messages go to the others in seconds instead of a minute.
async fn spawn(schema: &TestSchema, secret: &str, n: usize, quick_takeover: bool) -> Process {
    let port = free_port();
    let mut args = vec![
        "serve".to_owned(),
        "--port".to_owned(),
        port.to_string(),
        "--allow-loopback".to_owned(),
    ];
    if quick_takeover {
        args.extend(["--delivery-lease", "10", "--delivery-timeout", "3"].map(str::to_owned));
    }
    let child = Command::new(env!("CARGO_BIN_EXE_example-invoices"))
        .args(&args)
        .env("ROUNDTRIP_DATABASE_URL", schema.database_url())
        .env("ROUNDTRIP_SIGNING_SECRET", secret)
        .env("ROUNDTRIP_WORKER_ID", format!("proc-{n}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the example starts");
    let mut child = ChildGuard(child);
    if let Err(err) = child.wait_listening(port, Duration::from_secs(60)).await {
        panic!("process {n} did not start: {err}");
    }
    let mut process = Process { child, port };
    // Listening is not enough: the workers start next, and a failure ends the process.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("process {n} exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    process
}

/// Posts `MESSAGES` invoices, round-robin over the processes' ports, 16 at a time.
async fn post_invoices(ports: &[u16], callback_url: &str, prefix: &str) {
    let client = reqwest::Client::new();
    let statuses: Vec<u16> = futures_util::stream::iter(0..MESSAGES)
        .map(|i| {
            let client = client.clone();
            let port = ports[i % ports.len()];
            let url = format!("http://127.0.0.1:{port}/invoices/");
            let body = json!({"id": format!("{prefix}-{i}"), "customer": "ACME", "total": 1.0});
            async move {
                match client
                    .post(url)
                    .query(&[("callback_url", callback_url)])
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert_eq!(failed, 0, "every invoice was accepted");
}

/// Attempts recorded per worker, from the outbox's attempt log.
async fn attempts_per_worker(schema: &TestSchema) -> HashMap<String, i64> {
    let outbox = Database::from_url(&schema.database_url())
        .map(|database| database.must_exist(true))
        .expect("the test schema's URL")
        .open_outbox()
        .await
        .expect("the outbox opens");
    let mut per_worker = HashMap::new();
    let mut filter = AttemptFilter::new().limit(AttemptFilter::MAX_LIMIT);
    loop {
        let page = outbox.attempt_log(&filter).await.expect("the attempt log");
        for attempt in page.attempts {
            *per_worker.entry(attempt.worker).or_insert(0) += 1;
        }
        match page.next {
            Some(cursor) => filter = filter.after(cursor),
            None => return per_worker,
        }
    }
}

fn setup() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_deliver_everything_once_and_share_the_work() {
    const QUICK: bool = false;
    setup();
    let schema = TestSchema::new().await;
    let receiver = MockReceiver::start().await;
    let secret = receiver.secret().to_string();
    let mut processes = Vec::new();
    for n in 0..PROCESSES {
        processes.push(spawn(&schema, &secret, n, QUICK).await);
    }
    let ports: Vec<u16> = processes.iter().map(|p| p.port).collect();
    post_invoices(&ports, receiver.url("/events").as_str(), "a").await;

    let deliveries = receiver
        .wait_for_unique(MESSAGES, Duration::from_secs(120))
        .await
        .expect("every callback arrives");
    assert_eq!(receiver.unique_ids().len(), MESSAGES);
    assert_eq!(deliveries.len(), MESSAGES, "none delivered twice");
    assert!(deliveries.iter().all(|d| d.verified));

    let per_worker = attempts_per_worker(&schema).await;
    assert_eq!(per_worker.values().sum::<i64>(), MESSAGES as i64);
    assert_eq!(
        per_worker.len(),
        PROCESSES,
        "every process delivered: {per_worker:?}"
    );
    for (worker, count) in &per_worker {
        assert!(
            *count >= (MESSAGES / 20) as i64,
            "{worker} did only {count} of {MESSAGES}: {per_worker:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_loses_nothing() {
    const QUICK: bool = true;
    setup();
    let schema = TestSchema::new().await;
    let receiver = MockReceiver::start().await;
    // Slow answers keep attempts in flight when the kill comes.
    // Answers slow enough that deliveries trail the posting: the kill lands midway.
    receiver.set_behaviour(Behaviour::Delay(Duration::from_millis(100)));
    let secret = receiver.secret().to_string();
    let mut processes = Vec::new();
    for n in 0..PROCESSES {
        processes.push(spawn(&schema, &secret, n, QUICK).await);
    }
    let ports: Vec<u16> = processes.iter().map(|p| p.port).collect();
    post_invoices(&ports, receiver.url("/events").as_str(), "b").await;

    receiver
        .wait_for_unique(MESSAGES / 4, Duration::from_secs(120))
        .await
        .expect("deliveries are under way");
    let victim = &mut processes[0];
    victim.child.kill().expect("SIGKILL");
    let _ = victim.child.wait();
    assert!(
        receiver.unique_ids().len() < MESSAGES,
        "the kill came before everything was delivered"
    );

    let deliveries = receiver
        .wait_for_unique(MESSAGES, Duration::from_secs(180))
        .await
        .expect("the survivors deliver everything, the victim's leases included");
    assert_eq!(receiver.unique_ids().len(), MESSAGES);
    let repeats = deliveries.len() - MESSAGES;
    // Only what the killed process held could repeat: at most twice its in-flight bound.
    assert!(repeats <= 2 * 64, "{repeats} repeats");
    let per_worker = attempts_per_worker(&schema).await;
    assert!(
        per_worker.contains_key("proc-1") && per_worker.contains_key("proc-2"),
        "the survivors worked: {per_worker:?}"
    );
}
