//! The webhooks API.
//!
//! * `example-webhooks demo` runs the whole round trip on this machine with no setup: the
//!   API on an embedded SQLite outbox with its subscription API, a local receiver that
//!   verifies signatures, the receiver subscribed to `new-subscription` through the
//!   management API, one event published, and its arrival. Add `--exit` to stop once it
//!   arrived, `--port N` to pick the API's port.
//! * `serve` (the default) runs the app operated over HTTP ([`example_webhooks::operated_app`]):
//!   the subscription API under `/admin` and `/metrics`, behind the key in
//!   `WEBHOOKS_ADMIN_KEY` (it refuses to start without one), and `POST /subscriptions/`.
//! * Any other command is the app's command line: `openapi` (the tutorial's document),
//!   `deliveries`...

use std::process::ExitCode;
use std::time::Duration;

use roundtrip::delivery::signing::{Secret, Verifier};
use roundtrip::subscriptions::Subscriptions;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("demo") {
        let exit_after = args.iter().any(|a| a == "--exit");
        let port = args
            .iter()
            .position(|a| a == "--port")
            .and_then(|i| args.get(i + 1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(8000u16);
        return match run_demo(port, exit_after).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("demo failed: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let serving = matches!(args.get(1).map(String::as_str), None | Some("serve"))
        && !args.iter().any(|a| a == "--help" || a == "-h");
    if !serving {
        return example_webhooks::app().run().await;
    }
    let admin_key = match example_webhooks::admin_key_from_env() {
        Ok(key) => key,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    example_webhooks::operated_app(&Subscriptions::new(), &admin_key)
        .run()
        .await
}

/// `whsec_abcd…`: enough to recognise a secret, not enough to use it.
fn shortened(secret: &str) -> String {
    format!("{}…", secret.chars().take(10).collect::<String>())
}

async fn run_demo(port: u16, exit_after: bool) -> Result<(), String> {
    let db =
        std::env::temp_dir().join(format!("roundtrip-webhooks-demo-{}.db", std::process::id()));
    let admin_key = Secret::generate()
        .map_err(|e| e.to_string())?
        .to_string()
        .replace("whsec_", "admin_");

    // The API, on an embedded SQLite outbox, with its subscription API under /admin. Loopback
    // is refused by default; the demo allows it because its receiver runs on this machine.
    let subscriptions = Subscriptions::new();
    let built = example_webhooks::app_with_subscriptions(&subscriptions, &admin_key)
        .database_url(format!("sqlite://{}", db.display()))
        .allow_loopback_deliveries()
        .build()
        .map_err(|e| e.to_string())?;
    let publisher = built.publisher();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            format!("cannot listen on 127.0.0.1:{port}: {e} (pick another with --port)")
        })?;
    let api_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(built.serve_on(listener, async move {
        tokio::select! {
            _ = stop_rx => {},
            () = roundtrip::shutdown_signal() => {},
        }
    }));
    println!("Webhooks API on http://{api_addr}  (docs: http://{api_addr}/docs)");
    println!("subscription API: http://{api_addr}/admin/endpoints  (X-Admin-Key: {admin_key})");
    println!("outbox: {}", db.display());

    // The API user's server. Its address is known now; it starts once it has a secret.
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("receiver: {e}"))?;
    let receiver_addr = receiver.local_addr().map_err(|e| e.to_string())?;

    // The user subscribes through the management API, and gets the endpoint's secret once.
    // reqwest is built without a default TLS provider in this workspace; pick ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let endpoint = json!({
        "url": format!("http://{receiver_addr}/webhooks"),
        "description": "the demo's receiver",
        "event_types": ["new-subscription"],
    });
    println!("\nPOST /admin/endpoints\n  {endpoint}");
    let response = client
        .post(format!("http://{api_addr}/admin/endpoints"))
        .header("X-Admin-Key", &admin_key)
        .json(&endpoint)
        .send()
        .await
        .map_err(|e| format!("subscribing failed: {e}"))?;
    let status = response.status();
    let created: Value = response
        .json()
        .await
        .map_err(|e| format!("the subscription answer is not JSON: {e}"))?;
    if status != reqwest::StatusCode::CREATED {
        return Err(format!("subscribing answered {status}: {created}"));
    }
    let secret_text = created["secret"].as_str().unwrap_or_default().to_owned();
    let secret = Secret::parse(&secret_text).map_err(|e| format!("the secret: {e}"))?;
    println!(
        "  -> {status} endpoint {} with secret {} (shown only now)",
        created["endpoint"]["id"].as_str().unwrap_or("?"),
        shortened(&secret_text)
    );

    let inbox = example_receiver::Inbox::default();
    let receiver_router = example_receiver::router(Verifier::new(secret), inbox.clone());
    tokio::spawn(async move { axum::serve(receiver, receiver_router).await });

    // A user subscribes to the service: the event goes to every endpoint that wants it.
    let event = example_webhooks::Subscription {
        username: "Rick".into(),
        monthly_fee: 9.99,
        start_date: chrono::Utc::now(),
    };
    let ids = publisher
        .publish(&example_webhooks::new_subscription(), &event)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "\npublish new-subscription {}\n  -> {} message(s): {}",
        serde_json::to_string(&event).unwrap_or_default(),
        ids.len(),
        ids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );

    let received = inbox.wait_for(1, Duration::from_secs(10)).await;
    match received.first() {
        Some(event) => println!(
            "\nnew-subscription delivered to {}{} with a valid signature\n  webhook-id {}\n  {}",
            receiver_addr, event.path, event.id, event.payload
        ),
        None => return Err("the webhook did not arrive within 10 s".to_owned()),
    }
    println!(
        "\nInspect it: cargo run -p example-webhooks -- deliveries list --database-url sqlite://{}",
        db.display()
    );

    if exit_after {
        let _ = stop_tx.send(());
    } else {
        println!("\nThe API keeps running; open http://{api_addr}/docs, Ctrl-C to stop.");
    }
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(err) => Err(err.to_string()),
    }
}
