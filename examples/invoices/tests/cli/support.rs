//! What the command-line tests share: running the binary, and an outbox populated with
//! messages in every state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roundtrip::delivery::message::NewMessage;
use roundtrip::delivery::outbox::{MessageFilter, MessageId, MessageStatus, Outbox};
use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::delivery::ssrf::SsrfPolicy;
use roundtrip_test::{Behaviour, MockReceiver, TestClient};
use serde_json::{Value, json};

pub(crate) const USER: &str = "cli-user-u5";
pub(crate) const PASSWORD: &str = "cli-pass-p8";

/// What one run of the command line did.
pub(crate) struct Out {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) took: Duration,
    pub(crate) args: Vec<String>,
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
    pub(crate) fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "{self:?}");
        assert!(!self.stderr.contains("error"), "{self:?}");
        self
    }

    /// Asserts a non-zero exit `code` and that stderr says `why`.
    #[track_caller]
    pub(crate) fn fails(self, code: i32, why: &str) -> Self {
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
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// The ids of a `list --json`, in order.
    #[track_caller]
    pub(crate) fn listed(&self) -> Vec<String> {
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
    pub(crate) fn rows(&self) -> Vec<&str> {
        self.stdout.lines().skip(1).collect()
    }
}

/// Runs the app binary in `dir` with these arguments, without the caller's database
/// environment.
pub(crate) async fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
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
pub(crate) async fn run_on_terminal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
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
pub(crate) struct Cli {
    pub(crate) dir: PathBuf,
    pub(crate) database_url: String,
}

impl Cli {
    /// `deliveries <args> --database-url <url>`.
    pub(crate) async fn deliveries(&self, args: &[&str]) -> Out {
        let mut all = vec!["deliveries"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &self.database_url]);
        run_in(&self.dir, &all, &[]).await
    }
}

/// Messages in every state, and what is known about each.
pub(crate) struct Fixture {
    pub(crate) ids: BTreeMap<&'static str, String>,
    pub(crate) outbox: Arc<dyn Outbox>,
    /// The port of the receiver the message with credentials went to.
    pub(crate) creds_port: u16,
    pub(crate) _receivers: Vec<MockReceiver>,
}

impl Fixture {
    pub(crate) fn id(&self, which: &str) -> &str {
        self.ids
            .get(which)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no message `{which}`"))
    }

    pub(crate) fn set(&self, which: &[&str]) -> BTreeSet<String> {
        which.iter().map(|w| self.id(w).to_owned()).collect()
    }

    pub(crate) async fn status(&self, which: &str) -> MessageStatus {
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
pub(crate) async fn populate(database_url: &str) -> Fixture {
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

pub(crate) fn as_set(ids: Vec<String>) -> BTreeSet<String> {
    ids.into_iter().collect()
}
