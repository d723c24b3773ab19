//! A delivery process for the crash-safety test: it enqueues `COUNT` messages (idempotent,
//! so a restart adds none) and runs the workers until every message is delivered.
//!
//! ```text
//! cargo run -p roundtrip-delivery --example crash_worker -- DB_PATH RECEIVER_URL COUNT WHSEC
//! ```
//!
//! It prints `enqueued <new> of <count>`, then `ready` once the workers run, and `done` when
//! no message is left to deliver. The test kills it with SIGKILL in between, restarts it,
//! and checks that every message arrives at least once. The worker id is fixed, so the
//! restarted process takes back the leases of the killed one at once.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use roundtrip_delivery::message::{MessageStatus, NewMessage};
use roundtrip_delivery::outbox::{MessageFilter, Outbox};
use roundtrip_delivery::retry::RetrySchedule;
use roundtrip_delivery::signing::Secret;
use roundtrip_delivery::sqlite::SqliteOutbox;
use roundtrip_delivery::ssrf::SsrfPolicy;
use roundtrip_delivery::worker::{Dispatcher, DispatcherConfig, StaticSecrets};
use url::Url;

/// How many requests run at once; a crash repeats at most twice that many deliveries.
const IN_FLIGHT: usize = 8;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, url, count, secret] = args.as_slice() else {
        eprintln!("usage: crash_worker DB_PATH RECEIVER_URL COUNT WHSEC_SECRET");
        std::process::exit(2);
    };
    let url = Url::parse(url)?;
    let count: usize = count.parse()?;
    let secret = Secret::parse(secret)?;

    let outbox = Arc::new(SqliteOutbox::open_path(db).await?);
    let messages = (0..count)
        .map(|i| {
            NewMessage::callback("crash_test", url.clone(), format!(r#"{{"n":{i}}}"#))
                .idempotency_key(format!("crash-{i}"))
        })
        .collect();
    let enqueued = outbox.enqueue(messages).await?;
    let new = enqueued.iter().filter(|e| !e.deduplicated).count();
    println!("enqueued {new} of {count}");

    let config = DispatcherConfig::new(StaticSecrets::new(secret))
        .worker_id("crash-worker")
        .ssrf_policy(SsrfPolicy::default().allow_loopback(true))
        .max_in_flight(IN_FLIGHT)
        .per_destination(IN_FLIGHT)
        .retry_schedule(
            RetrySchedule::from_delays([Duration::from_millis(20); 5])
                .with_throttle_floor(Duration::from_millis(20)),
        )
        .poll_interval(Duration::from_millis(50))
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(2))
        .lease(Duration::from_secs(10));
    let dispatcher = Dispatcher::start(outbox.clone(), config).await?;
    println!("ready");

    let live = MessageFilter::new()
        .status(MessageStatus::Pending)
        .status(MessageStatus::Leased)
        .limit(1);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if outbox.list(&live).await?.messages.is_empty() {
            break;
        }
    }
    dispatcher.shutdown(Duration::from_secs(1)).await;
    println!("done");
    Ok(())
}
