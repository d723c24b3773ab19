//! `openapi`, `openapi lint` and `serve`, with their exit codes; the command line on the
//! SQLite file while the app serves from it.

use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use roundtrip::{App, Json, get};
use roundtrip_test::{Behaviour, ChildGuard, MockReceiver, TempDir};
use serde_json::{Value, json};

use super::support::*;

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

    let closed = roundtrip_test::free_port();
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
    let port = roundtrip_test::free_port();
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
    let _served = ChildGuard(child);
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
    let port = roundtrip_test::free_port();
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
    let _served = ChildGuard(child);
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
