//! Mistakes in configuration stop the start: the example binary, run as an operator runs
//! it, with a malformed signing secret, database URLs that cannot be parsed, and a bad
//! SSRF setting. Each exits non-zero with a clear message, starts no server, and never
//! prints the password or the secret it was given.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use roundtrip_test::TempDir;

/// The password in every database URL below; it must never be printed.
const PASSWORD: &str = "hunter-secret";

/// What one run printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary with `args` and `env`; a run that starts serving is killed after 30 s
/// (and then fails the test, as its exit code is not the one expected).
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = TempDir::new();
    let mut command = Command::new(env!("CARGO_BIN_EXE_example-invoices"));
    command
        .args(args)
        .current_dir(dir.path())
        .env("TMPDIR", dir.path())
        .env_remove("ROUNDTRIP_DATABASE_URL")
        .env_remove("ROUNDTRIP_SIGNING_SECRET")
        .env_remove("ROUNDTRIP_ALLOW_LOOPBACK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the binary starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("the binary is waited for");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn refused(run: &Run, says: &str, secret: &str) {
    assert!(
        matches!(run.code, Some(code) if code != 0),
        "a mistake must exit non-zero: {run:?}"
    );
    assert!(
        run.stderr.contains(says),
        "stderr should say `{says}`: {run:?}"
    );
    assert!(
        !run.stderr.contains(secret) && !run.stdout.contains(secret),
        "the secret was printed: {run:?}"
    );
    assert!(
        !run.stderr.contains("listening on"),
        "the server started: {run:?}"
    );
}

#[test]
fn a_malformed_signing_secret_stops_serve() {
    let short = "whsec_c2hvcnQta2V5";
    let cases = [
        ("not-a-secret-at-all", "does not start with `whsec_`"),
        // A valid key without the prefix: likely a mistake, refused.
        (
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "does not start with `whsec_`",
        ),
        (short, "24 to 64 bytes"),
        ("whsec_***not base64***", "not valid base64"),
    ];
    for (secret, says) in cases {
        let run = run(
            &["serve", "--port", "0"],
            &[("ROUNDTRIP_SIGNING_SECRET", secret)],
        );
        refused(&run, "ROUNDTRIP_SIGNING_SECRET", secret);
        refused(&run, says, secret);
    }
}

#[test]
fn database_urls_that_cannot_be_parsed_stop_serve_and_the_cli_without_their_password() {
    for url in [
        format!("postgres://app:{PASSWORD}#x@127.0.0.1:5432/test"),
        format!("postgres://app:{PASSWORD}/x@127.0.0.1:5432/test"),
        format!("postgres://app:{PASSWORD}@127.0.0.1:99999/test"),
        format!("mysql://app:{PASSWORD}@127.0.0.1/test"),
        format!("mysql://app:{PASSWORD}#x@127.0.0.1/test"),
        format!("postgres://app:{PASSWORD}@[127.0.0.1/test"),
    ] {
        let serve = run(&["serve", "--port", "0", "--database-url", &url], &[]);
        refused(&serve, "error:", PASSWORD);
        assert!(
            serve.stderr.contains("://127.0.0.1") || serve.stderr.contains("://[127.0.0.1"),
            "the message names the database without its credentials: {serve:?}"
        );
        assert!(!serve.stderr.contains("app:"), "{serve:?}");
        let list = run(&["deliveries", "list", "--database-url", &url], &[]);
        refused(&list, "error:", PASSWORD);
        let from_env = run(
            &["deliveries", "list"],
            &[("ROUNDTRIP_DATABASE_URL", url.as_str())],
        );
        refused(&from_env, "error:", PASSWORD);
    }
}

#[test]
fn a_bad_ssrf_setting_stops_serve() {
    let run = run(
        &["serve", "--port", "0"],
        &[("ROUNDTRIP_ALLOW_LOOPBACK", "maybe")],
    );
    assert_eq!(run.code, Some(2), "{run:?}");
    refused(
        &run,
        "invalid value 'maybe' for '--allow-loopback'",
        "\u{0}",
    );
}
