//! `deliveries list|show|retry|replay|cancel` on SQLite and PostgreSQL, and databases the
//! command line cannot open.

use std::collections::BTreeSet;
use std::time::Duration;

use roundtrip::delivery::outbox::{MessageId, MessageStatus};
use roundtrip_test::TempDir;
use roundtrip_test::postgres::TestSchema;
use serde_json::{Value, json};

use super::support::*;

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
    let closed = roundtrip_test::free_port();
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
