//! The invoices API.
//!
//! * `example-invoices demo` runs the whole round trip on this machine with no setup: the
//!   API on an embedded SQLite outbox, a local receiver that verifies signatures, one
//!   invoice created, and its callback arriving. Add `--exit` to stop once it arrived.
//! * Any other command is the app's command line: `serve`, `openapi`, `deliveries`...

use std::process::ExitCode;
use std::time::Duration;

use roundtrip::delivery::signing::{Secret, Verifier};
use roundtrip::delivery::ssrf::SsrfPolicy;

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
        return demo(port, exit_after).await;
    }
    let app = example_invoices::app();
    // Off unless the operators' key is set.
    let app = match std::env::var(example_invoices::CONSOLE_KEY_ENV) {
        Ok(key) if !key.trim().is_empty() => example_invoices::with_console(app, key),
        Ok(_) => {
            eprintln!(
                "error: {} is empty; set it to the key operators give the console, or unset it",
                example_invoices::CONSOLE_KEY_ENV
            );
            return ExitCode::FAILURE;
        }
        Err(_) => app,
    };
    app.run().await
}

async fn demo(port: u16, exit_after: bool) -> ExitCode {
    match run_demo(port, exit_after).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo failed: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run_demo(port: u16, exit_after: bool) -> Result<(), String> {
    let secret = Secret::generate().map_err(|e| e.to_string())?;
    let db = std::env::temp_dir().join(format!("roundtrip-demo-{}.db", std::process::id()));

    // The API user's server: verifies every signature with the shared secret.
    let inbox = example_receiver::Inbox::default();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("receiver: {e}"))?;
    let receiver_addr = receiver.local_addr().map_err(|e| e.to_string())?;
    let receiver_router = example_receiver::router(Verifier::new(secret.clone()), inbox.clone());
    tokio::spawn(async move { axum::serve(receiver, receiver_router).await });

    // The API, on an embedded SQLite outbox. Loopback is refused by default; the demo
    // allows it because its receiver runs on this machine.
    let app = example_invoices::app()
        .database_url(format!("sqlite://{}", db.display()))
        .signing_secret(secret)
        .ssrf_policy(SsrfPolicy::new().allow_loopback(true));
    let built = app.build().map_err(|e| e.to_string())?;
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

    println!("Invoices API on http://{api_addr}  (docs: http://{api_addr}/docs)");
    println!("outbox: {}", db.display());
    let callback_url = format!("http://{receiver_addr}/events");
    let invoice = serde_json::json!({"id": "inv-0001", "title": "Consulting", "customer": "ACME Corp", "total": 1234.5});
    println!("\nPOST /invoices/?callback_url={callback_url}\n  {invoice}");
    // reqwest is built without a default TLS provider in this workspace; pick ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://{api_addr}/invoices/"))
        .query(&[("callback_url", &callback_url)])
        .json(&invoice)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    println!(
        "  -> {} {}",
        response.status(),
        response.text().await.unwrap_or_default()
    );

    let received = inbox.wait_for(1, Duration::from_secs(10)).await;
    match received.first() {
        Some(event) => println!(
            "\ncallback delivered to {}{} with a valid signature\n  webhook-id {}\n  {}",
            receiver_addr, event.path, event.id, event.payload
        ),
        None => return Err("the callback did not arrive within 10 s".to_owned()),
    }
    println!(
        "\nInspect it: cargo run -p example-invoices -- deliveries list --database-url sqlite://{}",
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
