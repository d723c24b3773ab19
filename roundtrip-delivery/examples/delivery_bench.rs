//! Delivery throughput and idle latency on SQLite, beside a bare reqwest loop.
//!
//! ```text
//! cargo run --release -p roundtrip-delivery --example delivery_bench -- [MESSAGES] [CONCURRENCY] [PHASES] [RECEIVERS]
//! ```
//!
//! `PHASES` is a comma-separated list of `e2e`, `idle`, `enqueue` and `store` (default: all);
//! `RECEIVERS` of `mock` and `minimal` (default: both). Every figure is measured in the same
//! run, against the same loopback receiver:
//!
//! * `e2e`, per receiver: first a bare reqwest loop, `CONCURRENCY` tasks POSTing the same
//!   payload with no storage and no signing (the peer the design compares against); then
//!   end to end through the outbox: `MESSAGES` enqueued durably (`synchronous = FULL`, in
//!   batches of 100 from 8 concurrent senders) and delivered, signed, by a Dispatcher with
//!   `max_in_flight = CONCURRENCY`, from the first enqueue to the last delivery. The pair is
//!   run twice, bare first then outbox first, and the ratio of each pair is printed.
//! * `idle`, per receiver: one message at a time, from the call to `enqueue` to its arrival
//!   at the receiver (p50 and p99 over 200 messages).
//! * `enqueue`: `CONCURRENCY` tasks each enqueueing one message per call, as request
//!   handlers do (no workers): messages/s and how many share a commit.
//! * `store`: claim 64 and complete, with no HTTP at all; then the same backlog drained as
//!   the dispatcher drains it, each write recording 64 completions and refilling their
//!   slots in the same commit (`Outbox::complete_and_refill`), with no claim.
//!
//! The receivers: `mock` is roundtrip-test's MockReceiver (hyper; it verifies every
//! signature and records every request, so it does more work for signed deliveries than
//! for the bare loop's unsigned ones); `minimal` is a few lines of HTTP/1.1 over tokio that
//! only counts requests and notes their arrival, so the figures show the sender's cost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use roundtrip_delivery::message::{Completion, Decision, MessageId, NewAttempt, NewMessage};
use roundtrip_delivery::outbox::Outbox;
use roundtrip_delivery::retry::RetrySchedule;
use roundtrip_delivery::signing::Secret;
use roundtrip_delivery::sqlite::SqliteOutbox;
use roundtrip_delivery::ssrf::SsrfPolicy;
use roundtrip_delivery::worker::{Dispatcher, DispatcherConfig, StaticSecrets};
use roundtrip_test::MockReceiver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

const BODY: &str = r#"{"description":"Invoice paid","paid":true,"id":"inv_0001"}"#;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A receiver the benchmark posts to.
trait Receiver: Send + Sync {
    fn url(&self) -> Url;
    fn secret(&self) -> Secret;
    fn count(&self) -> usize;
    /// When request number `n` (from 0) arrived, once it has.
    fn arrival(&self, n: usize) -> Option<SystemTime>;
    fn clear(&self);
}

impl Receiver for MockReceiver {
    fn url(&self) -> Url {
        MockReceiver::url(self, "/hook")
    }
    fn secret(&self) -> Secret {
        MockReceiver::secret(self)
    }
    fn count(&self) -> usize {
        MockReceiver::count(self)
    }
    fn arrival(&self, n: usize) -> Option<SystemTime> {
        // Only the idle phase asks, with a handful of deliveries recorded.
        self.deliveries().get(n).map(|d| d.received_at)
    }
    fn clear(&self) {
        MockReceiver::clear(self)
    }
}

/// HTTP/1.1 keep-alive over tokio: reads each request (head and `content-length` body),
/// answers `200 {"ok":true}`, counts it and notes when it arrived.
struct MinimalReceiver {
    addr: std::net::SocketAddr,
    secret: Secret,
    count: Arc<AtomicUsize>,
    arrivals: Arc<Mutex<Vec<SystemTime>>>,
}

impl MinimalReceiver {
    async fn start() -> Result<Self, BoxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let count = Arc::new(AtomicUsize::new(0));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (c, a) = (count.clone(), arrivals.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_minimal(stream, c.clone(), a.clone()));
            }
        });
        Ok(MinimalReceiver {
            addr,
            secret: Secret::generate()?,
            count,
            arrivals,
        })
    }
}

async fn serve_minimal(
    mut stream: tokio::net::TcpStream,
    count: Arc<AtomicUsize>,
    arrivals: Arc<Mutex<Vec<SystemTime>>>,
) {
    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        // The head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        // The body.
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        if let Ok(mut arrivals) = arrivals.lock() {
            arrivals.push(SystemTime::now());
        }
        count.fetch_add(1, Ordering::Release);
        if stream.write_all(ANSWER).await.is_err() {
            return;
        }
    }
}

impl Receiver for MinimalReceiver {
    fn url(&self) -> Url {
        Url::parse(&format!("http://{}/hook", self.addr)).unwrap_or_else(|e| panic!("{e}"))
    }
    fn secret(&self) -> Secret {
        self.secret.clone()
    }
    fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
    fn arrival(&self, n: usize) -> Option<SystemTime> {
        self.arrivals.lock().ok()?.get(n).copied()
    }
    fn clear(&self) {
        self.count.store(0, Ordering::Release);
        if let Ok(mut arrivals) = self.arrivals.lock() {
            arrivals.clear();
        }
    }
}

/// Waits until the receiver has `n` requests, polling every 200 µs (cheap next to the
/// deliveries, and the same for every figure).
async fn wait_count(receiver: &dyn Receiver, n: usize, within: Duration) -> Result<(), BoxError> {
    let until = Instant::now() + within;
    while receiver.count() < n {
        if Instant::now() > until {
            return Err(format!(
                "only {} of {n} requests arrived in {within:?}",
                receiver.count()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(())
}

async fn bare_loop(
    receiver: &dyn Receiver,
    messages: usize,
    concurrency: usize,
) -> Result<f64, BoxError> {
    receiver.clear();
    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = receiver.url();
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
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    receiver.clear();
    Ok(rate)
}

fn dispatcher_config(receiver: &dyn Receiver, concurrency: usize) -> DispatcherConfig {
    DispatcherConfig::new(StaticSecrets::new(receiver.secret()))
        .ssrf_policy(SsrfPolicy::default().allow_loopback(true))
        .max_in_flight(concurrency)
        .claim_batch(concurrency)
        .per_destination(concurrency)
        .retry_schedule(RetrySchedule::from_delays([Duration::from_millis(50); 3]))
}

struct EndToEnd {
    rate: f64,
    enqueued_in: Duration,
    transactions: u64,
    claims: u64,
    handed_over: u64,
    completion_writes: u64,
}

async fn end_to_end(
    dir: &std::path::Path,
    receiver: &dyn Receiver,
    messages: usize,
    concurrency: usize,
) -> Result<EndToEnd, BoxError> {
    receiver.clear();
    let outbox =
        Arc::new(SqliteOutbox::open_path(dir.join(format!("{}.db", MessageId::generate()))).await?);
    let dispatcher =
        Dispatcher::start(outbox.clone(), dispatcher_config(receiver, concurrency)).await?;
    let url = receiver.url();
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
    wait_count(receiver, messages, Duration::from_secs(600)).await?;
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    let stats = outbox.stats();
    let workers = dispatcher.stats();
    dispatcher.shutdown(Duration::from_secs(5)).await;
    receiver.clear();
    Ok(EndToEnd {
        rate,
        enqueued_in,
        transactions: stats.transactions - stats_before.transactions,
        claims: workers.claims,
        handed_over: workers.handed_over,
        completion_writes: workers.completion_writes,
    })
}

async fn idle_latency(
    dir: &std::path::Path,
    receiver: &dyn Receiver,
) -> Result<(Duration, Duration), BoxError> {
    receiver.clear();
    let outbox =
        Arc::new(SqliteOutbox::open_path(dir.join(format!("{}.db", MessageId::generate()))).await?);
    let dispatcher = Dispatcher::start(outbox.clone(), dispatcher_config(receiver, 64)).await?;
    let url = receiver.url();
    let mut latencies = Vec::new();
    for i in 0..200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let sent = SystemTime::now();
        outbox
            .enqueue(vec![NewMessage::callback("bench", url.clone(), BODY)])
            .await?;
        wait_count(receiver, i + 1, Duration::from_secs(10)).await?;
        let arrived = receiver.arrival(i).ok_or("no arrival time")?;
        latencies.push(arrived.duration_since(sent).unwrap_or_default());
    }
    dispatcher.shutdown(Duration::from_secs(5)).await;
    receiver.clear();
    latencies.sort();
    Ok((
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
    ))
}

/// Single-message enqueues from `concurrency` tasks (the shape of request handlers).
async fn enqueue_rate(
    dir: &std::path::Path,
    messages: usize,
    concurrency: usize,
) -> Result<(f64, u64), BoxError> {
    let outbox = Arc::new(SqliteOutbox::open_path(dir.join("enqueue.db")).await?);
    let url = Url::parse("http://127.0.0.1:9/hook")?;
    let next = Arc::new(AtomicUsize::new(0));
    let before = outbox.stats();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (outbox, next, url) = (outbox.clone(), next.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < messages {
                outbox
                    .enqueue(vec![NewMessage::callback("bench", url.clone(), BODY)])
                    .await?;
            }
            Ok::<_, roundtrip_delivery::outbox::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    Ok((rate, outbox.stats().transactions - before.transactions))
}

/// Claim 64 and complete, with no HTTP.
async fn store_alone(
    dir: &std::path::Path,
    messages: usize,
) -> Result<(f64, Duration, Duration, Duration), BoxError> {
    let url = Url::parse("http://127.0.0.1:9/hook")?;
    let store = Arc::new(SqliteOutbox::open_path(dir.join("store-only.db")).await?);
    for _ in 0..messages.div_ceil(1000) {
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
                    decision: Decision::Succeeded,
                })
                .collect();
        done += claimed.len();
        let t = Instant::now();
        store.complete(completions).await?;
        in_complete += t.elapsed();
    }
    let rate = done as f64 / started.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..200 {
        store.claim("bench", 64, Duration::from_secs(60)).await?;
    }
    Ok((rate, in_claim, in_complete, t.elapsed() / 200))
}

/// A backlog drained through the local path with no HTTP: each write records 64
/// completions and leases the next 64 messages in the same commit. Answers messages/s and
/// how many writes it took.
async fn store_refilled(dir: &std::path::Path, messages: usize) -> Result<(f64, u64), BoxError> {
    use roundtrip_delivery::outbox::LocalDelivery;
    let url = Url::parse("http://127.0.0.1:9/hook")?;
    let store = Arc::new(SqliteOutbox::open_path(dir.join("store-refilled.db")).await?);
    for _ in 0..messages.div_ceil(1000) {
        let batch = (0..1000)
            .map(|_| NewMessage::callback("bench", url.clone(), BODY))
            .collect();
        store.enqueue(batch).await?;
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(64));
    let (tx, mut inbox) = tokio::sync::mpsc::unbounded_channel();
    let lease = Duration::from_secs(60);
    if !store.deliver_locally(LocalDelivery::new("bench", lease, slots.clone(), tx)) {
        return Err("the SQLite store has a fast path".into());
    }
    let started = Instant::now();
    let mut held = Vec::new();
    for message in store.claim("bench", 64, lease).await? {
        held.push((message, slots.clone().try_acquire_owned()?));
    }
    let (mut done, mut writes) = (0, 0);
    while !held.is_empty() {
        let completions =
            held.iter()
                .map(|(m, _)| Completion {
                    message_id: m.meta.id.clone(),
                    owner: "bench".into(),
                    attempt: NewAttempt::new(1, SystemTime::now(), Duration::from_millis(1))
                        .response(200, "{}".into(), false),
                    decision: Decision::Succeeded,
                })
                .collect();
        done += held.len();
        let mut freed: Vec<_> = held.drain(..).map(|(_, slot)| slot).collect();
        store.complete_and_refill(completions, &mut freed).await?;
        writes += 1;
        drop(freed);
        while let Ok(local) = inbox.try_recv() {
            held.push((local.message, local.slot));
        }
    }
    Ok((done as f64 / started.elapsed().as_secs_f64(), writes))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let messages: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let concurrency: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let phases = args.get(3).map_or("e2e,idle,enqueue,store", String::as_str);
    let receivers = args.get(4).map_or("mock,minimal", String::as_str);
    let phase = |p: &str| phases.split(',').any(|x| x == p);
    let _ = rustls::crypto::ring::default_provider().install_default();

    let dir = std::env::temp_dir().join(format!("roundtrip-bench-{}", MessageId::generate()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "messages: {messages}, concurrency: {concurrency}, load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    for name in receivers.split(',') {
        let receiver: Box<dyn Receiver> = match name {
            "mock" => Box::new(MockReceiver::start().await),
            "minimal" => Box::new(MinimalReceiver::start().await?),
            other => return Err(format!("unknown receiver {other}: mock or minimal").into()),
        };
        if phase("e2e") {
            let mut ratios = Vec::new();
            for round in 0..2 {
                let (bare, e2e) = if round == 0 {
                    let bare = bare_loop(&*receiver, messages, concurrency).await?;
                    (
                        bare,
                        end_to_end(&dir, &*receiver, messages, concurrency).await?,
                    )
                } else {
                    let e2e = end_to_end(&dir, &*receiver, messages, concurrency).await?;
                    (bare_loop(&*receiver, messages, concurrency).await?, e2e)
                };
                ratios.push(e2e.rate / bare);
                println!(
                    "[{name}] bare reqwest loop {bare:>7.0} req/s | outbox end to end {:>7.0} deliveries/s = {:.2}x \
                     (enqueue of all {:.0} ms, {} write transactions, {} claims, {} handed over without a claim, {} completion writes)",
                    e2e.rate,
                    e2e.rate / bare,
                    ms(e2e.enqueued_in),
                    e2e.transactions,
                    e2e.claims,
                    e2e.handed_over,
                    e2e.completion_writes,
                );
            }
            ratios.sort_by(f64::total_cmp);
            println!(
                "[{name}] end to end / bare: {:.2} (mean of {} pairs)",
                ratios.iter().sum::<f64>() / ratios.len() as f64,
                ratios.len()
            );
        }
        if phase("idle") {
            let (p50, p99) = idle_latency(&dir, &*receiver).await?;
            println!(
                "[{name}] idle enqueue-to-delivery: p50 {:.2} ms, p99 {:.2} ms",
                ms(p50),
                ms(p99)
            );
        }
    }
    if phase("enqueue") {
        let (rate, transactions) = enqueue_rate(&dir, messages, concurrency).await?;
        println!(
            "single-message enqueues from {concurrency} tasks: {rate:>7.0} msgs/s in {transactions} write transactions"
        );
    }
    if phase("store") {
        let (rate, in_claim, in_complete, empty) = store_alone(&dir, messages).await?;
        println!(
            "store alone (claim 64 + complete, no HTTP): {rate:>7.0} messages/s ({:.0} ms claiming, {:.0} ms completing; an empty claim {:.3} ms)",
            ms(in_claim),
            ms(in_complete),
            ms(empty)
        );
        let (rate, writes) = store_refilled(&dir, messages).await?;
        println!(
            "store alone, refilled (64 completions + the next 64 leased per write, no claim): {rate:>7.0} messages/s in {writes} writes"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
