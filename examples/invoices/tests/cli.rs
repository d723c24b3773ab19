//! The app's command line, driven as a user drives it: the `example-invoices` binary, run
//! as a child process, against a real SQLite file and a fresh PostgreSQL schema, with
//! messages that succeeded, were retried, failed, broke their contract, and still wait.
//!
//! Every filter of `deliveries list` is checked (tables and `--json`), then `show`,
//! `retry`, `replay` and `cancel`, then bad input: filters that match nothing, ids that do
//! not exist or are not ids, and databases the command line cannot open. `openapi` and
//! `openapi lint` are checked with their exit codes, and the command line is used on the
//! SQLite file while the app serves from it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roundtrip::delivery::message::NewMessage;
use roundtrip::delivery::outbox::{MessageFilter, MessageId, MessageStatus, Outbox};
use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::delivery::ssrf::SsrfPolicy;
use roundtrip::{App, Json, get};
use roundtrip_test::postgres::TestSchema;
use roundtrip_test::{Behaviour, MockReceiver, TempDir, TestClient};
use serde_json::{Value, json};

const USER: &str = "cli-user-u5";
const PASSWORD: &str = "cli-pass-p8";

/// What one run of the command line did.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
    args: Vec<String>,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

impl Out {
    /// Asserts exit code 0 and no error on stderr.
    #[track_caller]
    fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "{self:?}");
        assert!(!self.stderr.contains("error"), "{self:?}");
        self
    }

    /// Asserts a non-zero exit `code` and that stderr says `why`.
    #[track_caller]
    fn fails(self, code: i32, why: &str) -> Self {
        assert_eq!(self.code, Some(code), "{self:?}");
        assert!(
            self.stderr.contains(why),
            "stderr should say `{why}`: {self:?}"
        );
        assert!(
            self.stderr.starts_with("error"),
            "errors are reported as `error: ...`: {self:?}"
        );
        self
    }

    /// Stdout parsed as one JSON document.
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// The ids of a `list --json`, in order.
    #[track_caller]
    fn listed(&self) -> Vec<String> {
        let value = self.json();
        let Some(items) = value.as_array() else {
            panic!("list --json prints an array: {self:?}");
        };
        items
            .iter()
            .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The rows of a table, without its header.
    fn rows(&self) -> Vec<&str> {
        self.stdout.lines().skip(1).collect()
    }
}

/// Runs the app binary in `dir` with these arguments, without the caller's database
/// environment.
async fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let dir = dir.to_path_buf();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut command = Command::new(env!("CARGO_BIN_EXE_example-invoices"));
        command
            .args(&args)
            .current_dir(&dir)
            .env_remove("ROUNDTRIP_DATABASE_URL")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        for (k, v) in &env {
            command.env(k, v);
        }
        let output = command.output().expect("the app binary runs");
        Out {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            took: started.elapsed(),
            args,
        }
    })
    .await
    .expect("the child's thread")
}

/// Runs the app binary with its stdout and stderr on a terminal (a pseudo-terminal from
/// util-linux's `script`, which every Debian system has); both arrive in `stdout`, with
/// the terminal's line ends turned back into `\n`.
async fn run_on_terminal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let line = std::iter::once(env!("CARGO_BIN_EXE_example-invoices"))
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let dir = dir.to_path_buf();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut command = Command::new("script");
        command
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .current_dir(&dir)
            .env_remove("ROUNDTRIP_DATABASE_URL")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        for (k, v) in &env {
            command.env(k, v);
        }
        let output = command
            .output()
            .expect("`script` (util-linux) runs the command on a terminal");
        Out {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n"),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            took: started.elapsed(),
            args: vec![line],
        }
    })
    .await
    .expect("the child's thread")
}

/// The command line pointed at one outbox.
struct Cli {
    dir: PathBuf,
    database_url: String,
}

impl Cli {
    /// `deliveries <args> --database-url <url>`.
    async fn deliveries(&self, args: &[&str]) -> Out {
        let mut all = vec!["deliveries"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &self.database_url]);
        run_in(&self.dir, &all, &[]).await
    }
}

/// Messages in every state, and what is known about each.
struct Fixture {
    ids: BTreeMap<&'static str, String>,
    outbox: Arc<dyn Outbox>,
    /// The port of the receiver the message with credentials went to.
    creds_port: u16,
    _receivers: Vec<MockReceiver>,
}

impl Fixture {
    fn id(&self, which: &str) -> &str {
        self.ids
            .get(which)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no message `{which}`"))
    }

    fn set(&self, which: &[&str]) -> BTreeSet<String> {
        which.iter().map(|w| self.id(w).to_owned()).collect()
    }

    async fn status(&self, which: &str) -> MessageStatus {
        let id: MessageId = self.id(which).parse().expect("an id");
        self.outbox
            .get(&id)
            .await
            .expect("get")
            .expect("stored")
            .meta
            .status
    }
}

/// Runs the invoices app in this process on `database_url` and leaves behind: `ok`,
/// `flaky` (503 then 200), `contract` (200 breaking the declared response), `creds` (a
/// URL with a user and password) and `webhook` (endpoint `ep_live`) succeeded; `gone-1`
/// and `gone-2` failed (410); `pending` never attempted.
async fn populate(database_url: &str) -> Fixture {
    let ok = MockReceiver::start().await;
    let secret = ok.secret();
    let flaky = MockReceiver::start().await.with_secret(secret.clone());
    flaky.set_behaviour(Behaviour::fail_times(1, 503));
    let gone = MockReceiver::start().await.with_secret(secret.clone());
    gone.set_behaviour(Behaviour::Status(410));
    let contract = MockReceiver::start().await.with_secret(secret.clone());
    contract.set_behaviour(Behaviour::json(json!({"status": "fine"})));

    let built = example_invoices::app()
        .database_url(database_url)
        .signing_secret(secret)
        .ssrf_policy(
            SsrfPolicy::new()
                .allow_loopback(true)
                .allow_credentials_in_url(true),
        )
        .configure_dispatcher(|config| {
            config.retry_schedule(
                RetrySchedule::from_delays([Duration::from_millis(20)]).with_jitter(0.0),
            )
        })
        .build()
        .expect("the app builds");
    let outbox = built.outbox().await.expect("the outbox opens");
    let workers = built
        .start_delivery()
        .await
        .expect("workers start")
        .expect("the app sends callbacks");
    let client = TestClient::new(built);
    let creds_url = format!("http://{USER}:{PASSWORD}@{}/cb", ok.addr());
    let sends = [
        ("ok", ok.url("/cb").to_string()),
        ("flaky", flaky.url("/cb").to_string()),
        ("gone-1", gone.url("/cb").to_string()),
        ("gone-2", gone.url("/cb").to_string()),
        ("contract", contract.url("/cb").to_string()),
        ("creds", creds_url),
    ];
    for (which, url) in &sends {
        let response = client
            .post("/invoices/")
            .query(&[("callback_url", url)])
            .json(&json!({"id": which, "customer": "ACME", "total": 1.0}))
            .send()
            .await;
        assert_eq!(response.status(), 200, "{which}: {}", response.text());
    }
    let webhook = NewMessage::webhook(
        "invoice-paid",
        ok.url("/wh"),
        br#"{"invoice":"ok"}"#.to_vec(),
    )
    .endpoint_id("ep_live");
    let webhook_id = outbox.enqueue(vec![webhook]).await.expect("enqueued")[0]
        .id
        .to_string();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let messages = loop {
        let page = outbox.list(&MessageFilter::new()).await.expect("list");
        if page.messages.len() == 7 && page.messages.iter().all(|m| !m.status.is_live()) {
            break page.messages;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries did not finish: {:?}",
            page.messages
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    workers.shutdown(Duration::from_secs(2)).await;

    // Enqueued with no worker running: it waits.
    let pending = NewMessage::callback(
        "invoice_notification",
        ok.url("/cb/invoices/pending"),
        br#"{"description":"later","paid":false}"#.to_vec(),
    );
    let pending_id = outbox.enqueue(vec![pending]).await.expect("enqueued")[0]
        .id
        .to_string();

    let mut ids = BTreeMap::new();
    for (which, _) in &sends {
        let path = format!("/cb/invoices/{which}");
        let found = messages
            .iter()
            .find(|m| m.url.path() == path)
            .unwrap_or_else(|| panic!("no message to {path}: {messages:?}"));
        ids.insert(*which, found.id.to_string());
    }
    ids.insert("webhook", webhook_id);
    ids.insert("pending", pending_id);
    let fixture = Fixture {
        ids,
        outbox,
        creds_port: ok.addr().port(),
        _receivers: vec![ok, flaky, gone, contract],
    };
    for (which, expected) in [
        ("ok", MessageStatus::Succeeded),
        ("flaky", MessageStatus::Succeeded),
        ("contract", MessageStatus::Succeeded),
        ("creds", MessageStatus::Succeeded),
        ("webhook", MessageStatus::Succeeded),
        ("gone-1", MessageStatus::Failed),
        ("gone-2", MessageStatus::Failed),
        ("pending", MessageStatus::Pending),
    ] {
        assert_eq!(fixture.status(which).await, expected, "{which}");
    }
    fixture
}

fn as_set(ids: Vec<String>) -> BTreeSet<String> {
    ids.into_iter().collect()
}

/// Everything `deliveries` does, checked against one populated outbox.
async fn exercise(cli: &Cli, f: &Fixture) {
    let everything: BTreeSet<String> = f.ids.values().cloned().collect();
    let callbacks = f.set(&[
        "ok", "flaky", "gone-1", "gone-2", "contract", "creds", "pending",
    ]);

    // list --json: every message, newest first, URLs without credentials.
    let all = cli.deliveries(&["list", "--json"]).await.success();
    assert_eq!(as_set(all.listed()), everything, "{all:?}");
    let listed = all.json();
    let created: Vec<&str> = listed
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["created_at"].as_str().unwrap_or_default())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
    assert!(!all.stdout.contains(PASSWORD) && !all.stdout.contains(USER));
    let creds = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"] == f.id("creds"))
        .expect("the message with credentials is listed");
    assert_eq!(
        creds["url"],
        format!("http://127.0.0.1:{}/cb/invoices/creds", f.creds_port)
    );

    // The table: a header, one row per message, no colour when stdout is not a terminal.
    let table = cli.deliveries(&["list"]).await.success();
    assert!(table.stdout.starts_with("ID "), "{table:?}");
    for column in ["STATUS", "KIND", "NAME", "ATTEMPTS", "CREATED", "URL"] {
        assert!(
            table
                .stdout
                .lines()
                .next()
                .unwrap_or_default()
                .contains(column),
            "{table:?}"
        );
    }
    assert_eq!(table.rows().len(), everything.len(), "{table:?}");
    for id in &everything {
        assert!(table.stdout.contains(id.as_str()), "{id}: {table:?}");
    }
    assert!(!table.stdout.contains('\u{1b}'), "no colour: {table:?}");
    assert!(!table.stdout.contains(PASSWORD) && !table.stdout.contains(USER));
    let flaky_row = table
        .rows()
        .into_iter()
        .find(|r| r.starts_with(f.id("flaky")))
        .expect("a row for flaky");
    let cells: Vec<&str> = flaky_row.split_whitespace().collect();
    assert_eq!(
        cells[1..5],
        ["succeeded", "callback", "invoice_notification", "2"],
        "{flaky_row}"
    );

    // Each filter.
    let cases: Vec<(Vec<&str>, BTreeSet<String>)> = vec![
        (vec!["--status", "failed"], f.set(&["gone-1", "gone-2"])),
        (
            vec!["--status", "failed,pending"],
            f.set(&["gone-1", "gone-2", "pending"]),
        ),
        (
            vec!["--status", "succeeded"],
            f.set(&["ok", "flaky", "contract", "creds", "webhook"]),
        ),
        (vec!["--kind", "webhook"], f.set(&["webhook"])),
        (vec!["--kind", "callback"], callbacks.clone()),
        (vec!["--name", "invoice-paid"], f.set(&["webhook"])),
        (vec!["--name", "invoice_notification"], callbacks.clone()),
        (vec!["--endpoint", "ep_live"], f.set(&["webhook"])),
        (
            vec!["--kind", "callback", "--status", "succeeded"],
            f.set(&["ok", "flaky", "contract", "creds"]),
        ),
        (vec!["--since", "1h"], everything.clone()),
        (vec!["--since", "2000-01-01T00:00:00Z"], everything.clone()),
        (vec!["--until", "1h"], BTreeSet::new()),
        (vec!["--since", "2999-01-01T00:00:00Z"], BTreeSet::new()),
        (vec!["--until", "2999-01-01T00:00:00Z"], everything.clone()),
        (vec!["--name", "no-such-callback"], BTreeSet::new()),
        (vec!["--endpoint", "ep_nobody"], BTreeSet::new()),
    ];
    for (filter, expected) in cases {
        let mut args = vec!["list", "--json"];
        args.extend_from_slice(&filter);
        let out = cli.deliveries(&args).await.success();
        assert_eq!(as_set(out.listed()), expected, "{out:?}");
    }

    // Nothing matches: said plainly, and not an error.
    let none = cli
        .deliveries(&["list", "--status", "cancelled"])
        .await
        .success();
    assert_eq!(none.stdout.trim(), "no messages match", "{none:?}");
    let none = cli
        .deliveries(&["list", "--json", "--name", "nope"])
        .await
        .success();
    assert_eq!(none.json(), json!([]));

    // --limit: the newest ones.
    let newest: Vec<String> = all.listed().into_iter().take(3).collect();
    let limited = cli
        .deliveries(&["list", "--json", "--limit", "3"])
        .await
        .success();
    assert_eq!(limited.listed(), newest);
    let limited = cli.deliveries(&["list", "--limit", "3"]).await.success();
    assert_eq!(limited.rows().len(), 3, "{limited:?}");
    assert!(limited.stderr.contains("more match"), "{limited:?}");
    let all_shown = cli.deliveries(&["list", "--limit", "100"]).await.success();
    assert!(all_shown.stderr.is_empty(), "{all_shown:?}");
    cli.deliveries(&["list", "--limit", "0"])
        .await
        .fails(2, "--limit");

    // By destination host: every receiver of the fixture is on 127.0.0.1.
    let local = cli
        .deliveries(&["list", "--json", "--host", "127.0.0.1", "--limit", "100"])
        .await
        .success();
    assert_eq!(as_set(local.listed()), as_set(all.listed()));
    let elsewhere = cli
        .deliveries(&["list", "--json", "--host", "LOCALHOST"])
        .await
        .success();
    assert_eq!(elsewhere.json(), json!([]));

    // Filters that are not filters.
    cli.deliveries(&["list", "--host", "evil.example/x"])
        .await
        .fails(2, "not a host");
    cli.deliveries(&["list", "--status", "lost"])
        .await
        .fails(2, "pending, leased, succeeded, failed, cancelled");
    cli.deliveries(&["list", "--kind", "email"])
        .await
        .fails(2, "callback, webhook");
    cli.deliveries(&["list", "--since", "yesterday"])
        .await
        .fails(2, "RFC 3339");
    cli.deliveries(&["list", "--since", "5w"])
        .await
        .fails(2, "s, m, h or d");

    // show: the message, its attempts, status codes, timings and contract violations.
    let flaky = cli
        .deliveries(&["show", f.id("flaky"), "--json"])
        .await
        .success()
        .json();
    assert_eq!(flaky["status"], "succeeded");
    assert_eq!(flaky["attempts"], 2);
    assert_eq!(
        flaky["body"],
        json!({"description": "Invoice flaky for ACME paid", "paid": true})
    );
    let log = flaky["attempt_log"].as_array().expect("an attempt log");
    let codes: Vec<&Value> = log.iter().map(|a| &a["response_status"]).collect();
    assert_eq!(codes, [&json!(503), &json!(200)], "{flaky}");
    let outcomes: Vec<&Value> = log.iter().map(|a| &a["outcome"]).collect();
    assert_eq!(outcomes, [&json!("retry"), &json!("succeeded")]);
    for attempt in log {
        assert!(attempt["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
        assert!(
            attempt["started_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }
    assert_eq!(log[0]["number"], 1);
    assert_eq!(log[1]["number"], 2);
    let table = cli.deliveries(&["show", f.id("flaky")]).await.success();
    for expected in [
        f.id("flaky"),
        "succeeded",
        "invoice_notification",
        "503",
        "200",
        "retry",
        " ms",
        "STARTED",
    ] {
        assert!(table.stdout.contains(expected), "`{expected}`: {table:?}");
    }

    let contract = cli
        .deliveries(&["show", f.id("contract"), "--json"])
        .await
        .success()
        .json();
    let violation = contract["attempt_log"][0]["contract_violation"]
        .as_str()
        .expect("a contract violation");
    assert!(violation.contains("ok"), "{violation}");
    assert_eq!(contract["status"], "succeeded", "a 2xx is delivered");
    let table = cli.deliveries(&["show", f.id("contract")]).await.success();
    assert!(table.stdout.contains("contract:"), "{table:?}");

    let gone = cli
        .deliveries(&["show", f.id("gone-1"), "--json"])
        .await
        .success()
        .json();
    assert_eq!(gone["status"], "failed");
    assert_eq!(gone["attempt_log"][0]["response_status"], 410);
    assert!(
        gone["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("410")),
        "{gone}"
    );

    for args in [
        vec!["show", f.id("creds")],
        vec!["show", f.id("creds"), "--json"],
    ] {
        let shown = cli.deliveries(&args).await.success();
        assert!(
            !shown.stdout.contains(PASSWORD) && !shown.stdout.contains(USER),
            "{shown:?}"
        );
        assert!(shown.stdout.contains("/cb/invoices/creds"), "{shown:?}");
    }

    let webhook = cli
        .deliveries(&["show", f.id("webhook"), "--json"])
        .await
        .success()
        .json();
    assert_eq!(webhook["kind"], "webhook");
    assert_eq!(webhook["endpoint_id"], "ep_live");
    let pending = cli.deliveries(&["show", f.id("pending")]).await.success();
    assert!(pending.stdout.contains("no attempts yet"), "{pending:?}");

    // Ids that do not exist, and text that is not an id.
    let missing = MessageId::generate().to_string();
    for command in ["show", "retry", "cancel"] {
        cli.deliveries(&[command, &missing])
            .await
            .fails(1, &format!("no message {missing}"));
        cli.deliveries(&[command, "inv-ok"])
            .await
            .fails(2, "is not a message id");
    }

    // retry: a finished message goes back in the queue with its attempts kept; a live
    // one cannot be retried.
    let retried = cli
        .deliveries(&["retry", f.id("gone-1"), "--json"])
        .await
        .success()
        .json();
    assert_eq!(retried["status"], "pending");
    assert_eq!(retried["attempts"], 1);
    assert_eq!(f.status("gone-1").await, MessageStatus::Pending);
    let retried = cli.deliveries(&["retry", f.id("ok")]).await.success();
    assert!(retried.stdout.contains("is pending again"), "{retried:?}");
    // A pending message (new, or waiting out its backoff) is made due now; one that has
    // not finished cannot be replayed.
    let due = cli.deliveries(&["retry", f.id("pending")]).await.success();
    assert!(due.stdout.contains("is pending again, due now"), "{due:?}");
    cli.deliveries(&["replay", f.id("pending")])
        .await
        .fails(1, "has not finished");
    cli.deliveries(&["replay", f.id("pending"), "--status", "failed"])
        .await
        .fails(1, "not both");

    // replay: a dry run counts, the replay puts back, and --json stays one document.
    let dry = cli
        .deliveries(&[
            "replay",
            "--status",
            "failed",
            "--since",
            "1h",
            "--dry-run",
            "--json",
        ])
        .await
        .success();
    assert_eq!(dry.json(), json!({"would_replay": 1}));
    assert_eq!(f.status("gone-2").await, MessageStatus::Failed, "a dry run");
    let replay = cli
        .deliveries(&["replay", "--status", "failed", "--since", "1h", "--json"])
        .await
        .success();
    assert_eq!(replay.json(), json!({"replayed": 1, "skipped": 0}));
    assert!(!replay.stderr.contains('\r'), "no progress into a pipe");
    assert_eq!(f.status("gone-2").await, MessageStatus::Pending);
    let failed = cli
        .deliveries(&["list", "--status", "failed", "--json"])
        .await
        .success();
    assert_eq!(failed.json(), json!([]));
    let nothing = cli
        .deliveries(&["replay", "--status", "failed"])
        .await
        .success();
    assert!(nothing.stdout.contains("no messages match"), "{nothing:?}");
    cli.deliveries(&["replay", "--status", "pending"])
        .await
        .fails(1, "only finished messages can be replayed");

    // cancel: a live message stops; a finished one cannot be cancelled.
    let cancelled = cli.deliveries(&["cancel", f.id("pending")]).await.success();
    assert!(cancelled.stdout.contains("is cancelled"), "{cancelled:?}");
    assert_eq!(f.status("pending").await, MessageStatus::Cancelled);
    cli.deliveries(&["cancel", f.id("pending")])
        .await
        .fails(1, "cancel");
    cli.deliveries(&["cancel", f.id("flaky")])
        .await
        .fails(1, "cancel");
    let listed = cli
        .deliveries(&["list", "--status", "cancelled", "--json"])
        .await
        .success();
    assert_eq!(as_set(listed.listed()), f.set(&["pending"]));
    // A cancelled message can be replayed, by its id.
    let replayed = cli
        .deliveries(&["replay", f.id("pending"), "--json"])
        .await
        .success()
        .json();
    assert_eq!(replayed["id"], f.id("pending"));
    assert_eq!(replayed["status"], "pending");
    assert_eq!(f.status("pending").await, MessageStatus::Pending);
    let nothing = cli
        .deliveries(&["replay", "--status", "cancelled"])
        .await
        .success();
    assert!(nothing.stdout.contains("no messages match"), "{nothing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_inspects_retries_replays_and_cancels_on_a_sqlite_file() {
    let dir = TempDir::new();
    let database_url = dir.sqlite_url("outbox.db");
    let fixture = populate(&database_url).await;
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        database_url: database_url.clone(),
    };
    exercise(&cli, &fixture).await;

    // The database named by the environment, as `serve` reads it too.
    let out = run_in(
        dir.path(),
        &["deliveries", "list", "--json"],
        &[("ROUNDTRIP_DATABASE_URL", &database_url)],
    )
    .await
    .success();
    assert_eq!(out.listed().len(), fixture.ids.len());

    // On a terminal: statuses in colour (unless NO_COLOR), and a bulk replay shows its
    // progress on stderr, but never with --json. After `exercise`, four messages are
    // succeeded and the rest pending.
    let db = database_url.as_str();
    let list = ["deliveries", "list", "--database-url", db];
    let coloured = run_on_terminal(dir.path(), &list, &[]).await;
    assert_eq!(coloured.code, Some(0), "{coloured:?}");
    assert!(
        coloured.stdout.contains("\u{1b}[32msucceeded\u{1b}[0m")
            && coloured.stdout.contains("\u{1b}[33mpending\u{1b}[0m"),
        "{coloured:?}"
    );
    let plain = run_on_terminal(dir.path(), &list, &[("NO_COLOR", "1")]).await;
    assert_eq!(plain.code, Some(0), "{plain:?}");
    assert!(!plain.stdout.contains('\u{1b}'), "{plain:?}");
    assert!(plain.stdout.contains("succeeded"), "{plain:?}");

    let replay = [
        "deliveries",
        "replay",
        "--status",
        "succeeded",
        "--since",
        "1h",
        "--database-url",
        db,
    ];
    let progress = run_on_terminal(dir.path(), &replay, &[]).await;
    assert_eq!(progress.code, Some(0), "{progress:?}");
    assert!(
        progress.stdout.contains("\rreplayed 4/4"),
        "progress on a terminal: {progress:?}"
    );
    assert!(
        progress.stdout.contains("4 message(s) replayed, 0 skipped"),
        "{progress:?}"
    );
    for which in ["flaky", "contract"] {
        cli.deliveries(&["cancel", fixture.id(which)])
            .await
            .success();
    }
    let json_replay = [
        "deliveries",
        "replay",
        "--status",
        "cancelled",
        "--json",
        "--database-url",
        db,
    ];
    let quiet = run_on_terminal(dir.path(), &json_replay, &[]).await;
    assert_eq!(quiet.code, Some(0), "{quiet:?}");
    assert_eq!(
        quiet.json(),
        json!({"replayed": 2, "skipped": 0}),
        "only the JSON, even on a terminal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_inspects_retries_replays_and_cancels_on_postgres() {
    let schema = TestSchema::new().await;
    let dir = TempDir::new();
    let fixture = populate(&schema.database_url()).await;
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        database_url: schema.database_url(),
    };
    exercise(&cli, &fixture).await;
}

#[tokio::test]
async fn a_postgres_schema_with_no_outbox_is_an_error_and_is_not_created() {
    // A mistyped `schema=` must not give an empty outbox that lists nothing.
    let schema = TestSchema::new().await;
    let dir = TempDir::new();
    let url = schema.database_url();
    for command in [
        vec!["deliveries", "list", "--database-url", &url],
        vec!["deliveries", "list", "--json", "--database-url", &url],
        vec![
            "deliveries",
            "replay",
            "--status",
            "failed",
            "--database-url",
            &url,
        ],
    ] {
        let out = run_in(dir.path(), &command, &[])
            .await
            .fails(1, "no roundtrip outbox in schema");
        assert!(
            out.stderr.contains(&schema.name),
            "names the schema: {out:?}"
        );
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    let mut conn = roundtrip_test::postgres::admin(None).await;
    let created: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)",
    )
    .bind(&schema.name)
    .fetch_one(&mut conn)
    .await
    .expect("the catalog answers");
    assert!(!created, "looking does not create the schema");
}

#[tokio::test]
async fn a_database_the_cli_cannot_open_is_a_clear_error() {
    let dir = TempDir::new();
    let missing = dir.path().join("missing.db");
    let sqlite_missing = format!("sqlite://{}", missing.display());
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, "this is not a database").expect("written");
    let sqlite_garbage = format!("sqlite://{}", garbage.display());
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let unreachable = format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{closed}/app?schema=x");

    let cases: [(&str, &str); 5] = [
        (&sqlite_missing, "does not exist"),
        (&sqlite_garbage, "not a SQLite database"),
        (&unreachable, "cannot open the PostgreSQL outbox"),
        (
            "mysql://root@127.0.0.1/app",
            "expected sqlite:// or postgres://",
        ),
        ("sqlite://", "names no file"),
    ];
    for (url, why) in cases {
        for command in [
            vec!["deliveries", "list", "--database-url", url],
            vec!["deliveries", "list", "--json", "--database-url", url],
            vec![
                "deliveries",
                "replay",
                "--status",
                "failed",
                "--database-url",
                url,
            ],
        ] {
            let out = run_in(dir.path(), &command, &[]).await.fails(1, why);
            assert!(out.stdout.is_empty(), "{out:?}");
            assert!(
                !out.stderr.contains(PASSWORD),
                "the password is not repeated: {out:?}"
            );
            assert!(
                out.took < Duration::from_secs(30),
                "gives up in time: {out:?}"
            );
        }
    }
    assert!(!missing.exists(), "looking does not create the file");
    assert_eq!(
        std::fs::read_to_string(&garbage).expect("still there"),
        "this is not a database"
    );

    // No URL at all, and no outbox in the current directory.
    let out = run_in(dir.path(), &["deliveries", "list"], &[])
        .await
        .fails(1, "no outbox at roundtrip-outbox.db");
    assert!(
        out.stderr.contains("--database-url"),
        "says what to do: {out:?}"
    );
    assert!(!dir.path().join("roundtrip-outbox.db").exists());
}

#[tokio::test]
async fn openapi_prints_writes_and_lints_the_document() {
    let dir = TempDir::new();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
            .expect("the committed document"),
    )
    .expect("JSON");
    let printed = run_in(dir.path(), &["openapi"], &[]).await.success();
    assert_eq!(printed.json(), committed);

    let file = dir.path().join("doc.json");
    let file_arg = file.display().to_string();
    let written = run_in(dir.path(), &["openapi", "-o", &file_arg], &[])
        .await
        .success();
    assert!(written.stdout.is_empty(), "{written:?}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("written"),
        printed.stdout
    );
    let nowhere = dir.path().join("no/such/dir/doc.json");
    run_in(
        dir.path(),
        &["openapi", "--output", &nowhere.display().to_string()],
        &[],
    )
    .await
    .fails(1, "cannot write");

    // The invoices callback keeps FastAPI's spellings: warnings, which only --strict
    // fails on.
    let lint = run_in(dir.path(), &["openapi", "lint"], &[])
        .await
        .success();
    assert!(
        lint.stdout.trim_end().ends_with("0 error(s), 2 warning(s)"),
        "{lint:?}"
    );
    assert!(lint.stdout.contains("$callback_url"), "{lint:?}");
    let strict = run_in(dir.path(), &["openapi", "lint", "--strict"], &[]).await;
    assert_eq!(strict.code, Some(1), "{strict:?}");
    assert!(strict.stdout.contains("2 warning(s)"), "{strict:?}");

    // Not a command.
    let bad = run_in(dir.path(), &["openapi", "validate"], &[]).await;
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("validate"), "{bad:?}");
}

async fn hello() -> Json<Value> {
    Json(json!({"hello": "world"}))
}

#[tokio::test]
async fn openapi_lint_fails_on_errors_and_on_warnings_when_strict() {
    let run = |app: App, strict: bool| async move {
        let mut args = vec!["app", "openapi", "lint"];
        if strict {
            args.push("--strict");
        }
        app.run_with(args).await
    };
    // Two operations with one id: an error.
    let clash = || {
        App::new()
            .route("/a", get(hello).operation_id("same").summary("A"))
            .route("/b", get(hello).operation_id("same").summary("B"))
    };
    assert_eq!(run(clash(), false).await, ExitCode::FAILURE);
    // Clean: passes, strict or not.
    let clean = || App::new().route("/a", get(hello).summary("Say hello"));
    assert_eq!(run(clean(), false).await, ExitCode::SUCCESS);
    assert_eq!(run(clean(), true).await, ExitCode::SUCCESS);
    // An empty response description: a warning.
    let vague = || {
        App::new().route(
            "/a",
            get(hello).summary("Say hello").response_description(" "),
        )
    };
    assert_eq!(run(vague(), false).await, ExitCode::SUCCESS);
    assert_eq!(run(vague(), true).await, ExitCode::FAILURE);
}

#[tokio::test]
async fn serve_says_when_it_cannot_listen_or_open_the_outbox() {
    let dir = TempDir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("its address").port().to_string();
    let database_url = dir.sqlite_url("outbox.db");
    run_in(
        dir.path(),
        &[
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--database-url",
            &database_url,
        ],
        &[],
    )
    .await
    .fails(1, &format!("cannot listen on 127.0.0.1:{port}"));

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let unreachable = format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{closed}/app");
    drop(taken);
    let out = run_in(
        dir.path(),
        &["serve", "--port", "0", "--database-url", &unreachable],
        &[("RUST_LOG", "off")],
    )
    .await
    .fails(1, "deliveries cannot start");
    assert!(!out.stderr.contains(PASSWORD), "{out:?}");
    let out = run_in(dir.path(), &["serve", "--port", "http"], &[]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--port"), "{out:?}");
}

/// The app served by its own binary, killed when dropped.
struct Served {
    child: std::process::Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_works_on_the_sqlite_file_while_the_app_serves_from_it() {
    const SLOW: usize = 24;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new();
    let database_url = dir.sqlite_url("outbox.db");
    let slow = MockReceiver::start().await;
    // Slow answers (8 at a time per destination): deliveries go on for seconds, while the
    // command line works on the file.
    slow.set_behaviour(Behaviour::Delay(Duration::from_secs(1)));
    let gone = MockReceiver::start().await.with_secret(slow.secret());
    gone.set_behaviour(Behaviour::Status(410));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new(env!("CARGO_BIN_EXE_example-invoices"))
        .args(["serve", "--port", &port.to_string(), "--allow-loopback"])
        .current_dir(dir.path())
        .env("ROUNDTRIP_DATABASE_URL", &database_url)
        .env("ROUNDTRIP_SIGNING_SECRET", slow.secret().to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the app starts");
    let _served = Served { child };
    let client = reqwest::Client::new();
    let post = |id: String, url: String| {
        let client = client.clone();
        async move {
            client
                .post(format!("http://127.0.0.1:{port}/invoices/"))
                .query(&[("callback_url", &url)])
                .json(&json!({"id": id, "customer": "ACME", "total": 1.0}))
                .send()
                .await
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match post("gone-1".into(), gone.url("/cb").to_string()).await {
            Ok(response) => {
                assert_eq!(response.status(), 200);
                break;
            }
            Err(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the app did not start"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let response = post("gone-2".into(), gone.url("/cb").to_string())
        .await
        .expect("the API answers");
    assert_eq!(response.status(), 200);
    for i in 0..SLOW {
        let response = post(format!("slow-{i}"), slow.url("/cb").to_string())
            .await
            .expect("the API answers");
        assert_eq!(response.status(), 200);
    }

    // While the app delivers: the command line reads and writes the same file.
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        database_url,
    };
    let failed = loop {
        let out = cli
            .deliveries(&["list", "--status", "failed", "--json"])
            .await
            .success();
        let failed = out.listed();
        if failed.len() == 2 {
            break failed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the 410s did not fail: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        slow.unique_ids().len() < SLOW,
        "the check ran while deliveries were still going"
    );

    // The receiver is back: a retry and a replay, and the running app delivers both.
    gone.set_behaviour(Behaviour::Succeed);
    cli.deliveries(&["retry", &failed[0]]).await.success();
    let replay = cli
        .deliveries(&["replay", "--status", "failed", "--since", "1h", "--json"])
        .await
        .success();
    assert_eq!(replay.json(), json!({"replayed": 1, "skipped": 0}));
    for id in &failed {
        loop {
            let shown = cli
                .deliveries(&["show", id, "--json"])
                .await
                .success()
                .json();
            if shown["status"] == "succeeded" {
                let codes: Vec<&Value> = shown["attempt_log"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| &a["response_status"])
                    .collect();
                assert_eq!(codes, [&json!(410), &json!(200)], "{shown}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the running app did not deliver {id} again: {shown}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    slow.wait_for_unique(SLOW, Duration::from_secs(20))
        .await
        .expect("every slow callback arrives");
    // The receiver has them all; the app records the last attempts a moment later.
    loop {
        let done = cli
            .deliveries(&["list", "--status", "succeeded", "--json", "--limit", "100"])
            .await
            .success();
        if done.listed().len() == SLOW + 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all recorded: {done:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serve_refuses_a_malformed_retry_schedule() {
    let dir = TempDir::new();
    let database_url = dir.sqlite_url("outbox.db");
    for (args, env) in [
        (
            vec!["serve", "--port", "0", "--retry-schedule", "5s,soon"],
            vec![],
        ),
        (
            vec!["serve", "--port", "0"],
            vec![("ROUNDTRIP_RETRY_SCHEDULE", "5s,soon")],
        ),
    ] {
        let mut args = args;
        args.extend_from_slice(&["--database-url", &database_url]);
        let out = run_in(dir.path(), &args, &env).await;
        assert_eq!(out.code, Some(2), "{out:?}");
        assert!(out.stderr.contains("--retry-schedule"), "{out:?}");
        assert!(
            out.stderr.contains("wait 2 of the retry schedule, `soon`"),
            "{out:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_retries_on_the_schedule_it_was_given() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new();
    let database_url = dir.sqlite_url("outbox.db");
    let failing = MockReceiver::start().await;
    failing.set_behaviour(Behaviour::Status(500));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    // Three attempts within a fraction of a second; the default would wait 5 s, then 5 min.
    let child = Command::new(env!("CARGO_BIN_EXE_example-invoices"))
        .args(["serve", "--port", &port.to_string(), "--allow-loopback"])
        .current_dir(dir.path())
        .env("ROUNDTRIP_DATABASE_URL", &database_url)
        .env("ROUNDTRIP_RETRY_SCHEDULE", "50ms,100ms")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the app starts");
    let _served = Served { child };
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sent = client
            .post(format!("http://127.0.0.1:{port}/invoices/"))
            .query(&[("callback_url", failing.url("/cb").as_str())])
            .json(&json!({"id": "inv-1", "customer": "ACME", "total": 1.0}))
            .send()
            .await;
        match sent {
            Ok(response) => {
                assert_eq!(response.status(), 200);
                break;
            }
            Err(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the app did not start"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        database_url,
    };
    let failed = loop {
        let out = cli
            .deliveries(&["list", "--status", "failed", "--json"])
            .await
            .success();
        if let [id] = out.listed().as_slice() {
            break id.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message did not fail within the short schedule: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let shown = cli
        .deliveries(&["show", &failed, "--json"])
        .await
        .success()
        .json();
    assert_eq!(shown["attempts"], 3, "{shown}");
    assert_eq!(failing.count(), 3);
}
