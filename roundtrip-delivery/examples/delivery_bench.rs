//! Delivery throughput and idle latency on SQLite, beside a bare reqwest loop.
//!
//! ```text
//! cargo run --release -p roundtrip-delivery --example delivery_bench -- [MESSAGES] [CONCURRENCY]
//! ```
//!
//! Three figures, measured in the same run against the same loopback MockReceiver:
//!
//! 1. a bare reqwest loop: `CONCURRENCY` tasks POSTing the same payload, no storage, no
//!    signing (the peer the design compares against);
//! 2. end to end through the outbox: `MESSAGES` enqueued durably (`synchronous = FULL`,
//!    in batches of 100 from 8 concurrent senders) and delivered, signed, by a Dispatcher
//!    with `max_in_flight = CONCURRENCY`, from the first enqueue to the last delivery;
//! 3. idle latency: one message at a time, from the call to `enqueue` to its arrival at
//!    the receiver (p50 and p99 over 200 messages).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use roundtrip_delivery::message::{Completion, MessageId, NewAttempt, NewMessage, Outcome};
use roundtrip_delivery::outbox::Outbox;
use roundtrip_delivery::retry::RetrySchedule;
use roundtrip_delivery::sqlite::SqliteOutbox;
use roundtrip_delivery::ssrf::SsrfPolicy;
use roundtrip_delivery::worker::{Dispatcher, DispatcherConfig, StaticSecrets};
use roundtrip_test::MockReceiver;

const BODY: &str = r#"{"description":"Invoice paid","paid":true,"id":"inv_0001"}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let messages: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let concurrency: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let _ = rustls::crypto::ring::default_provider().install_default();

    let receiver = MockReceiver::start().await;
    let url = receiver.url("/hook");

    // 1. The bare loop.
    let client = reqwest::Client::builder().no_proxy().build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, url) = (client.clone(), next.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < messages {
                let response = client
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .body(BODY)
                    .send()
                    .await;
                if let Ok(r) = response {
                    let _ = r.bytes().await;
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let bare = messages as f64 / started.elapsed().as_secs_f64();
    receiver.clear();

    // 2. End to end through the outbox.
    let dir = std::env::temp_dir().join(format!("roundtrip-bench-{}", MessageId::generate()));
    std::fs::create_dir_all(&dir)?;
    let outbox = Arc::new(SqliteOutbox::open_path(dir.join("outbox.db")).await?);
    let config = DispatcherConfig::new(StaticSecrets::new(receiver.secret()))
        .ssrf_policy(SsrfPolicy::default().allow_loopback(true))
        .max_in_flight(concurrency)
        .claim_batch(concurrency)
        .per_destination(concurrency)
        .retry_schedule(RetrySchedule::from_delays([Duration::from_millis(50); 3]));
    let dispatcher = Dispatcher::start(outbox.clone(), config).await?;
    let stats_before = outbox.stats();
    let started = Instant::now();
    let senders = 8;
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (outbox, url) = (outbox.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mine = messages / senders + usize::from(s < messages % senders);
            let mut left = mine;
            while left > 0 {
                let n = left.min(100);
                let batch = (0..n)
                    .map(|_| NewMessage::callback("bench", url.clone(), BODY))
                    .collect();
                outbox.enqueue(batch).await?;
                left -= n;
            }
            Ok::<_, roundtrip_delivery::outbox::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let enqueued_in = started.elapsed();
    receiver
        .wait_for(messages, Duration::from_secs(600))
        .await
        .map_err(|e| e.to_string())?;
    let e2e = messages as f64 / started.elapsed().as_secs_f64();
    let stats = outbox.stats();
    let transactions = stats.transactions - stats_before.transactions;
    let workers = dispatcher.stats();
    println!(
        "  claims: {} calls for {} messages; completions: {} writes",
        workers.claims, workers.claimed, workers.completion_writes
    );
    receiver.clear();

    // 3. Idle latency, one message at a time.
    let mut latencies = Vec::new();
    for i in 0..200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let sent = SystemTime::now();
        outbox
            .enqueue(vec![NewMessage::callback("bench", url.clone(), BODY)])
            .await?;
        let got = receiver
            .wait_for(i + 1, Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        let arrived = got[i].received_at;
        latencies.push(arrived.duration_since(sent).unwrap_or_default());
    }
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];

    dispatcher.shutdown(Duration::from_secs(5)).await;

    // 4. The store alone: claim and complete with no HTTP (a no-op handler).
    let store = Arc::new(SqliteOutbox::open_path(dir.join("store-only.db")).await?);
    for _ in 0..messages / 1000 {
        let batch = (0..1000)
            .map(|_| NewMessage::callback("bench", url.clone(), BODY))
            .collect();
        store.enqueue(batch).await?;
    }
    let started = Instant::now();
    let mut done = 0;
    let (mut in_claim, mut in_complete) = (Duration::ZERO, Duration::ZERO);
    loop {
        let t = Instant::now();
        let claimed = store.claim("bench", 64, Duration::from_secs(60)).await?;
        in_claim += t.elapsed();
        if claimed.is_empty() {
            break;
        }
        let completions =
            claimed
                .iter()
                .map(|m| Completion {
                    message_id: m.meta.id.clone(),
                    owner: "bench".into(),
                    attempt: NewAttempt::new(1, SystemTime::now(), Duration::from_millis(1))
                        .response(200, "{}".into(), false),
                    outcome: Outcome::Succeeded,
                })
                .collect();
        done += claimed.len();
        let t = Instant::now();
        store.complete(completions).await?;
        in_complete += t.elapsed();
    }
    println!(
        "  store alone: {:.0} ms claiming, {:.0} ms completing",
        in_claim.as_secs_f64() * 1000.0,
        in_complete.as_secs_f64() * 1000.0
    );
    let store_rate = done as f64 / started.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..200 {
        store.claim("bench", 64, Duration::from_secs(60)).await?;
    }
    println!(
        "  an empty claim (one write transaction): {:.3} ms",
        t.elapsed().as_secs_f64() * 1000.0 / 200.0
    );
    let _ = std::fs::remove_dir_all(&dir);

    println!("messages: {messages}, concurrency: {concurrency}");
    println!("bare reqwest loop:       {bare:>9.0} requests/s");
    println!(
        "outbox end to end:       {e2e:>9.0} deliveries/s  ({:.2}x the bare loop; enqueue of all took {:.0} ms in {} write transactions)",
        e2e / bare,
        enqueued_in.as_secs_f64() * 1000.0,
        transactions
    );
    println!("store alone (claim 64 + complete, no HTTP): {store_rate:>9.0} messages/s");
    println!(
        "idle enqueue-to-delivery: p50 {:.2} ms, p99 {:.2} ms",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
    Ok(())
}
