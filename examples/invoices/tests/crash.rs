//! Crash safety: the invoices app, run as a child process, is killed with SIGKILL while it
//! delivers, then started again on the same outbox. Every callback is delivered at least
//! once; repeats happen only for attempts that were in flight at the kill.

use std::process::{Command, Stdio};
use std::time::Duration;

use roundtrip_test::{Behaviour, ChildGuard, MockReceiver, TempDir, free_port};
use serde_json::json;

const INVOICES: usize = 40;

struct Server {
    child: ChildGuard,
    port: u16,
}

async fn spawn(dir: &TempDir, secret: &str, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_example-invoices"))
        .args(["serve", "--port", &port.to_string(), "--allow-loopback"])
        .env("ROUNDTRIP_DATABASE_URL", dir.sqlite_url("outbox.db"))
        .env("ROUNDTRIP_SIGNING_SECRET", secret)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the example starts");
    let mut child = ChildGuard(child);
    child
        .wait_listening(port, Duration::from_secs(30))
        .await
        .expect("the server starts");
    Server { child, port }
}

#[tokio::test]
async fn a_kill_mid_delivery_loses_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new();
    let receiver = MockReceiver::start().await;
    // Slow answers keep many attempts in flight when the kill comes.
    receiver.set_behaviour(Behaviour::Delay(Duration::from_millis(150)));
    let secret = receiver.secret().to_string();
    let port = free_port();
    let mut server = spawn(&dir, &secret, port).await;

    let client = reqwest::Client::new();
    let callback_url = receiver.url("/events").to_string();
    for i in 0..INVOICES {
        let response = client
            .post(format!("http://127.0.0.1:{}/invoices/", server.port))
            .query(&[("callback_url", &callback_url)])
            .json(&json!({"id": format!("inv-{i}"), "customer": "ACME", "total": 1.0}))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(response.status(), 200);
    }

    receiver
        .wait_for(3, Duration::from_secs(20))
        .await
        .expect("deliveries begin");
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    let before_restart = receiver.deliveries().len();
    assert!(
        receiver.unique_ids().len() < INVOICES,
        "the kill came before everything was delivered"
    );

    receiver.set_behaviour(Behaviour::Succeed);
    let _restarted = spawn(&dir, &secret, free_port()).await;
    let deliveries = receiver
        .wait_for_unique(INVOICES, Duration::from_secs(30))
        .await
        .expect("every callback arrives after the restart");

    assert_eq!(receiver.unique_ids().len(), INVOICES);
    assert!(deliveries.iter().all(|d| d.verified));
    let repeats = deliveries.len() - INVOICES;
    // Only what was in flight (sent but not recorded) at the kill can repeat: at most the
    // deliveries the receiver saw before the restart, and never more than the workers'
    // in-flight bound.
    assert!(repeats <= before_restart.min(64), "{repeats} repeats");
}
