//! Outbox store throughput without HTTP: claim-and-complete with a no-op sender, enqueue,
//! and the wake-up latency across store instances, on PostgreSQL and SQLite in one run.
//!
//! ```text
//! cargo run --release -p roundtrip-delivery --example outbox_bench -- all
//! cargo run --release -p roundtrip-delivery --example outbox_bench -- claim --messages 50000 --claimers 1,2,4
//! cargo run --release -p roundtrip-delivery --example outbox_bench -- enqueue --messages 20000 --concurrency 1,16,64
//! cargo run --release -p roundtrip-delivery --example outbox_bench -- wake --rounds 200
//! ```
//!
//! * `claim`: `--messages` are enqueued first (in batches of 1,000; that rate is printed
//!   too), then drained by claimers that claim `--batch` at a time and complete each
//!   message as delivered at once (an attempt row is written and the message moves to
//!   history, exactly as after a real 2xx). On PostgreSQL each claimer is a separate process
//!   (this binary, `claimer` mode) with its own pool; on SQLite the claimers are tasks
//!   sharing the one store (its single writer is the design). The clock runs from the
//!   moment every claimer is connected and told to go until the last one finds the queue
//!   empty.
//! * `enqueue`: single-message `enqueue` calls from `--concurrency` tasks, on PostgreSQL
//!   with group commit on (with `--lanes` transactions at once) and off, and on SQLite.
//! * `wake`: one message at a time enqueued on one store instance, picked up by another
//!   through its wake-up (LISTEN/NOTIFY on PostgreSQL) and claimed: p50 and p99.
//!
//! PostgreSQL is `ROUNDTRIP_BENCH_DATABASE_URL`, else `ROUNDTRIP_TEST_DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`; each run uses a fresh schema, dropped at the
//! end. Every count and time is bounded (`--timeout`, default 120 s per run).

use std::error::Error;
use std::io::{BufRead, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use roundtrip_delivery::message::{Completion, Decision, NewAttempt, NewMessage};
use roundtrip_delivery::outbox::Outbox;
use roundtrip_delivery::postgres::{PgOptions, PgOutbox};
use roundtrip_delivery::sqlite::{SqliteOptions, SqliteOutbox};
use sqlx::{AssertSqlSafe, Connection};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use url::Url;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const BODY: &str = r#"{"description":"Invoice paid","paid":true,"id":"inv_0001"}"#;

#[derive(Debug, Clone)]
struct Args {
    mode: String,
    messages: usize,
    claimers: Vec<usize>,
    concurrency: Vec<usize>,
    lanes: Vec<usize>,
    batch: usize,
    rounds: usize,
    timeout: Duration,
    url: String,
    schema: String,
    owner: String,
}

fn parse_list(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|p| p.trim().parse::<usize>().map_err(|e| e.into()))
        .collect()
}

fn args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let url = std::env::var("ROUNDTRIP_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("ROUNDTRIP_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let mut a = Args {
        mode: it.next().unwrap_or_else(|| "all".to_owned()),
        messages: 50_000,
        claimers: vec![1, 2, 4],
        concurrency: vec![1, 16, 64],
        lanes: vec![4],
        batch: 100,
        rounds: 200,
        timeout: Duration::from_secs(120),
        url,
        schema: String::new(),
        owner: String::new(),
    };
    while let Some(key) = it.next() {
        let value = it.next().ok_or_else(|| format!("{key} needs a value"))?;
        match key.as_str() {
            "--messages" => a.messages = value.parse()?,
            "--claimers" => a.claimers = parse_list(&value)?,
            "--concurrency" => a.concurrency = parse_list(&value)?,
            "--lanes" => a.lanes = parse_list(&value)?,
            "--batch" => a.batch = value.parse::<usize>()?.max(1),
            "--rounds" => a.rounds = value.parse()?,
            "--timeout" => a.timeout = Duration::from_secs(value.parse()?),
            "--url" => a.url = value,
            "--schema" => a.schema = value,
            "--owner" => a.owner = value,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    // Bounded, whatever was asked.
    a.messages = a.messages.min(1_000_000);
    a.rounds = a.rounds.min(10_000);
    Ok(a)
}

fn message(i: usize) -> NewMessage {
    let url = Url::parse("http://127.0.0.1:9/hook").unwrap_or_else(|e| panic!("{e}"));
    NewMessage::callback("invoice_notification", url, BODY).metadata("n", i.into())
}

fn fresh_schema() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "rt_bench_{secs}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

fn pg_options(url: &str, schema: &str, pool: u32) -> PgOptions {
    PgOptions::new(url)
        .schema(schema)
        .application_name(schema)
        .max_connections(pool)
}

async fn drop_schema(url: &str, schema: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(url).await {
        let _ = sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&mut conn)
        .await;
    }
}

/// A temporary directory for a SQLite file, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(fresh_schema());
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Enqueues `n` messages in batches of 1,000; answers messages per second.
async fn fill(outbox: &dyn Outbox, n: usize) -> Result<f64> {
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<NewMessage> = (i..(i + 1000).min(n)).map(message).collect();
        i += batch.len();
        outbox.enqueue(batch).await?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// What one claimer did.
#[derive(Debug, Default, Clone, Copy)]
struct Drained {
    messages: usize,
    batches: usize,
    claiming: Duration,
    completing: Duration,
}

impl Drained {
    fn add(&mut self, other: Drained) {
        self.messages += other.messages;
        self.batches += other.batches;
        self.claiming += other.claiming;
        self.completing += other.completing;
    }

    /// Mean milliseconds per batch spent in `claim` and in `complete`.
    fn per_batch(&self) -> (f64, f64) {
        let n = self.batches.max(1) as f64;
        (
            self.claiming.as_secs_f64() * 1e3 / n,
            self.completing.as_secs_f64() * 1e3 / n,
        )
    }
}

/// Claims and completes (as delivered, no HTTP) until the queue is empty.
async fn drain(outbox: &dyn Outbox, owner: &str, batch: usize) -> Result<Drained> {
    let mut done = Drained::default();
    loop {
        let t = Instant::now();
        let claimed = outbox.claim(owner, batch, Duration::from_secs(60)).await?;
        done.claiming += t.elapsed();
        if claimed.is_empty() {
            return Ok(done);
        }
        let now = SystemTime::now();
        let completions: Vec<Completion> = claimed
            .iter()
            .map(|m| Completion {
                message_id: m.meta.id.clone(),
                owner: owner.to_owned(),
                attempt: NewAttempt::new(
                    m.meta.next_attempt_number(),
                    now,
                    Duration::from_micros(50),
                )
                .response(204, Default::default(), false),
                decision: Decision::Succeeded,
            })
            .collect();
        done.messages += claimed.len();
        done.batches += 1;
        let t = Instant::now();
        outbox.complete(completions).await?;
        done.completing += t.elapsed();
    }
}

struct ClaimRun {
    store: &'static str,
    claimers: usize,
    fill_rate: f64,
    rate: f64,
    secs: f64,
    work: Drained,
}

async fn claim_sqlite(a: &Args, claimers: usize) -> Result<ClaimRun> {
    let dir = TempDir::new()?;
    let outbox = Arc::new(SqliteOutbox::open(SqliteOptions::new(dir.0.join("outbox.db"))).await?);
    let fill_rate = fill(&*outbox, a.messages).await?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..claimers {
        let (outbox, batch) = (outbox.clone(), a.batch);
        tasks.push(tokio::spawn(async move {
            drain(&*outbox, &format!("claimer-{c}"), batch).await
        }));
    }
    let mut work = Drained::default();
    for t in tasks {
        work.add(tokio::time::timeout(a.timeout, t).await???);
    }
    let total = work.messages;
    let secs = started.elapsed().as_secs_f64();
    if total != a.messages {
        return Err(format!("sqlite: drained {total} of {}", a.messages).into());
    }
    Ok(ClaimRun {
        store: "sqlite (tasks, 1 writer)",
        claimers,
        fill_rate,
        rate: total as f64 / secs,
        secs,
        work,
    })
}

async fn claim_pg_tasks(a: &Args, claimers: usize) -> Result<ClaimRun> {
    let schema = fresh_schema();
    let result = async {
        let pool = u32::try_from(claimers * 2).unwrap_or(8).max(4);
        let outbox = Arc::new(
            PgOutbox::connect_with(pg_options(&a.url, &schema, pool).listen(false)).await?,
        );
        let fill_rate = fill(&*outbox, a.messages).await?;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..claimers {
            let (outbox, batch) = (outbox.clone(), a.batch);
            tasks.push(tokio::spawn(async move {
                drain(&*outbox, &format!("claimer-{c}"), batch).await
            }));
        }
        let mut work = Drained::default();
        for t in tasks {
            work.add(tokio::time::timeout(a.timeout, t).await???);
        }
        let total = work.messages;
        let secs = started.elapsed().as_secs_f64();
        outbox.close().await;
        if total != a.messages {
            return Err(format!("postgres: drained {total} of {}", a.messages).into());
        }
        Ok(ClaimRun {
            store: "postgres (tasks, 1 process)",
            claimers,
            fill_rate,
            rate: total as f64 / secs,
            secs,
            work,
        })
    }
    .await;
    drop_schema(&a.url, &schema).await;
    result
}

async fn claim_pg_processes(a: &Args, claimers: usize) -> Result<ClaimRun> {
    let schema = fresh_schema();
    let result = async {
        let outbox = PgOutbox::connect_with(pg_options(&a.url, &schema, 4).listen(false)).await?;
        let fill_rate = fill(&outbox, a.messages).await?;
        let exe = std::env::current_exe()?;
        let mut children = Vec::new();
        for c in 0..claimers {
            let mut child = tokio::process::Command::new(&exe)
                .args([
                    "claimer",
                    "--url",
                    &a.url,
                    "--schema",
                    &schema,
                    "--owner",
                    &format!("process-{c}"),
                    "--batch",
                    &a.batch.to_string(),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let ready = tokio::time::timeout(a.timeout, lines.next_line()).await??;
            if ready.as_deref() != Some("ready") {
                return Err(format!("claimer {c} did not start: {ready:?}").into());
            }
            children.push((child, lines));
        }
        let started = Instant::now();
        for (child, _) in &mut children {
            let stdin = child.stdin.as_mut().ok_or("no stdin")?;
            stdin.write_all(b"go\n").await?;
            stdin.flush().await?;
        }
        let mut work = Drained::default();
        for (mut child, mut lines) in children {
            let line = tokio::time::timeout(a.timeout, lines.next_line())
                .await??
                .ok_or("a claimer exited without a report")?;
            let report: Vec<u64> = line
                .strip_prefix("done ")
                .ok_or_else(|| format!("unexpected report {line:?}"))?
                .split(' ')
                .map(|n| n.parse::<u64>())
                .collect::<std::result::Result<_, _>>()?;
            let [messages, batches, claim_us, complete_us] = report[..] else {
                return Err(format!("unexpected report {line:?}").into());
            };
            work.add(Drained {
                messages: usize::try_from(messages)?,
                batches: usize::try_from(batches)?,
                claiming: Duration::from_micros(claim_us),
                completing: Duration::from_micros(complete_us),
            });
            let _ = child.wait().await;
        }
        let total = work.messages;
        let secs = started.elapsed().as_secs_f64();
        outbox.close().await;
        if total != a.messages {
            return Err(format!("postgres: drained {total} of {}", a.messages).into());
        }
        Ok(ClaimRun {
            store: "postgres (processes)",
            claimers,
            fill_rate,
            rate: total as f64 / secs,
            secs,
            work,
        })
    }
    .await;
    drop_schema(&a.url, &schema).await;
    result
}

/// The child of `claim_pg_processes`: connects, says `ready`, waits for `go`, drains.
async fn claimer(a: &Args) -> Result<()> {
    let outbox = PgOutbox::connect_with(pg_options(&a.url, &a.schema, 2).listen(false)).await?;
    println!("ready");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let d = drain(&outbox, &a.owner, a.batch).await?;
    println!(
        "done {} {} {} {}",
        d.messages,
        d.batches,
        d.claiming.as_micros(),
        d.completing.as_micros()
    );
    std::io::stdout().flush()?;
    outbox.close().await;
    Ok(())
}

async fn claim_bench(a: &Args) -> Result<()> {
    println!(
        "\n## claim and complete, no HTTP: {} messages, batches of {}\n",
        a.messages, a.batch
    );
    println!(
        "| store | claimers | msg/s | seconds | ms per claim / complete call | enqueue msg/s (batches of 1,000) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for &c in &a.claimers {
        for run in [
            claim_sqlite(a, c).await,
            claim_pg_tasks(a, c).await,
            claim_pg_processes(a, c).await,
        ] {
            match run {
                Ok(r) => {
                    let (claim_ms, complete_ms) = r.work.per_batch();
                    println!(
                        "| {} | {} | {:.0} | {:.2} | {:.2} / {:.2} | {:.0} |",
                        r.store, r.claimers, r.rate, r.secs, claim_ms, complete_ms, r.fill_rate
                    )
                }
                Err(e) => println!("| error | {c} | {e} | | | |"),
            }
        }
    }
    Ok(())
}

/// `messages` single-message enqueues from `concurrency` tasks; answers messages per second.
async fn enqueue_rate(outbox: Arc<dyn Outbox>, messages: usize, concurrency: usize) -> Result<f64> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (outbox, next) = (outbox.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= messages {
                    return Ok::<(), roundtrip_delivery::outbox::Error>(());
                }
                outbox.enqueue(vec![message(i)]).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}

async fn enqueue_bench(a: &Args) -> Result<()> {
    let n = a.messages.min(50_000);
    println!("\n## enqueue, one message per call: {n} messages\n");
    println!("| store | concurrent callers | msg/s | commits |");
    println!("|---|---:|---:|---:|");
    for &c in &a.concurrency {
        let dir = TempDir::new()?;
        let sqlite = Arc::new(SqliteOutbox::open(SqliteOptions::new(dir.0.join("o.db"))).await?);
        let rate = tokio::time::timeout(a.timeout, enqueue_rate(sqlite.clone(), n, c)).await??;
        println!(
            "| sqlite (group commit, synchronous=FULL) | {c} | {rate:.0} | {} |",
            sqlite.stats().transactions
        );
        let variants = a
            .lanes
            .iter()
            .map(|&l| Some(l))
            .chain(std::iter::once(None));
        for lanes in variants {
            let group = lanes.is_some();
            let schema = fresh_schema();
            let pool = u32::try_from(c).unwrap_or(64).clamp(4, 32);
            let result = async {
                let pg = Arc::new(
                    PgOutbox::connect_with(
                        pg_options(&a.url, &schema, pool)
                            .group_commit(group)
                            .commit_lanes(lanes.unwrap_or(1)),
                    )
                    .await?,
                );
                let rate =
                    tokio::time::timeout(a.timeout, enqueue_rate(pg.clone(), n, c)).await??;
                let commits = pg.stats().transactions;
                pg.close().await;
                Ok::<_, Box<dyn Error + Send + Sync>>((rate, commits))
            }
            .await;
            drop_schema(&a.url, &schema).await;
            let (rate, commits) = result?;
            let label = match lanes {
                Some(l) => format!("postgres (group commit, {l} lanes, NOTIFY per commit)"),
                None => "postgres (a transaction per call, NOTIFY per call)".to_owned(),
            };
            println!("| {label} | {c} | {rate:.0} | {commits} |");
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Enqueue on `from`, wait for `to`'s wake-up, claim there: `rounds` times.
async fn wake_latency(from: &dyn Outbox, to: &dyn Outbox, rounds: usize) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(rounds);
    let mut wakeup = to.subscribe();
    for i in 0..rounds {
        wakeup.mark_seen();
        let started = Instant::now();
        from.enqueue(vec![message(i)]).await?;
        loop {
            tokio::time::timeout(Duration::from_secs(5), wakeup.wait())
                .await
                .map_err(|_| "no wake-up within 5 s")?;
            wakeup.mark_seen();
            let got = to.claim("waker", 10, Duration::from_secs(60)).await?;
            if !got.is_empty() {
                samples.push(started.elapsed());
                let done: Vec<Completion> = got
                    .iter()
                    .map(|m| Completion {
                        message_id: m.meta.id.clone(),
                        owner: "waker".into(),
                        attempt: NewAttempt::new(1, SystemTime::now(), Duration::ZERO),
                        decision: Decision::Succeeded,
                    })
                    .collect();
                to.complete(done).await?;
                break;
            }
        }
    }
    samples.sort();
    Ok(samples)
}

async fn wake_bench(a: &Args) -> Result<()> {
    println!(
        "\n## idle latency, enqueue on one instance to claim on another: {} rounds\n",
        a.rounds
    );
    println!("| store | p50 | p99 |");
    println!("|---|---:|---:|");
    let dir = TempDir::new()?;
    let sqlite = SqliteOutbox::open(SqliteOptions::new(dir.0.join("w.db"))).await?;
    let s = wake_latency(&sqlite, &sqlite, a.rounds).await?;
    println!(
        "| sqlite (one instance, in-process wake-up) | {:.2} ms | {:.2} ms |",
        percentile(&s, 0.5).as_secs_f64() * 1e3,
        percentile(&s, 0.99).as_secs_f64() * 1e3
    );
    let schema = fresh_schema();
    let result = async {
        let sender = PgOutbox::connect_with(pg_options(&a.url, &schema, 4)).await?;
        let receiver = PgOutbox::connect_with(pg_options(&a.url, &schema, 4)).await?;
        let s = wake_latency(&sender, &receiver, a.rounds).await?;
        Ok::<_, Box<dyn Error + Send + Sync>>(s)
    }
    .await;
    drop_schema(&a.url, &schema).await;
    let s = result?;
    println!(
        "| postgres (two instances, LISTEN/NOTIFY) | {:.2} ms | {:.2} ms |",
        percentile(&s, 0.5).as_secs_f64() * 1e3,
        percentile(&s, 0.99).as_secs_f64() * 1e3
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    match a.mode.as_str() {
        "claimer" => claimer(&a).await,
        "claim" => claim_bench(&a).await,
        "enqueue" => enqueue_bench(&a).await,
        "wake" => wake_bench(&a).await,
        "all" => {
            claim_bench(&a).await?;
            enqueue_bench(&Args {
                messages: 20_000,
                ..a.clone()
            })
            .await?;
            wake_bench(&a).await
        }
        other => Err(format!("unknown mode {other}; use all, claim, enqueue or wake").into()),
    }
}
