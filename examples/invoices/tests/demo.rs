//! The README's demo as a user runs it (`cargo run -p example-invoices -- demo`): a child
//! process of the example binary, on a free port, in a temporary directory. Its output
//! shows the invoice POST answered 200 and the callback delivered with a valid signature.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use roundtrip_test::{ChildGuard, TempDir};

/// The last line the demo prints about its round trip; the API keeps running after it.
const DONE: &str = "Inspect it: ";

#[test]
fn the_demo_creates_an_invoice_and_its_callback_arrives_signed() {
    let dir = TempDir::new();
    let mut demo = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_example-invoices"))
            .args(["demo", "--port", "0"])
            .current_dir(dir.path())
            // The demo's SQLite outbox goes to the temp dir: this one, removed at the end.
            .env("TMPDIR", dir.path())
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the demo starts"),
    );

    // Lines arrive on a channel so that waiting for them has a deadline.
    let stdout = demo.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut output = String::new();
    let finished = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                output.push_str(&line);
                output.push('\n');
                if line.starts_with(DONE) {
                    break true;
                }
            }
            // The demo closed its stdout (it exited) before finishing the round trip.
            Err(mpsc::RecvTimeoutError::Disconnected) => break false,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("the demo did not finish its round trip within a minute:\n{output}")
            }
        }
    };

    // The demo keeps serving after the round trip: stop it.
    let _ = demo.0.kill();
    let status = demo.0.wait().expect("the demo is waited for");
    let mut stderr = String::new();
    if let Some(mut err) = demo.0.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert!(
        finished,
        "the demo stopped early ({status}):\n{output}\n{stderr}"
    );

    assert!(
        output.contains("Invoices API on http://127.0.0.1:"),
        "{output}"
    );
    let outbox = output
        .lines()
        .find_map(|l| l.strip_prefix("outbox: "))
        .expect("the demo names its outbox");
    assert!(
        std::path::Path::new(outbox).starts_with(dir.path()),
        "the outbox {outbox} is outside the test's directory {}",
        dir.path().display()
    );
    assert!(
        output.contains("POST /invoices/?callback_url=http://127.0.0.1:"),
        "{output}"
    );
    assert!(output.contains("  -> 200 OK"), "{output}");
    let delivered = output
        .lines()
        .find(|l| l.starts_with("callback delivered to 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no delivery line:\n{output}"));
    assert!(
        delivered.contains("/events/") && delivered.ends_with(" with a valid signature"),
        "{delivered}"
    );
    assert!(output.contains("  webhook-id "), "{output}");
}
