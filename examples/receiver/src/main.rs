//! Runs the receiver: `example-receiver --port 9000 --secret whsec_...` (or the secret in
//! `ROUNDTRIP_SIGNING_SECRET`). It listens on 127.0.0.1 only.

use roundtrip::delivery::signing::{Secret, Verifier};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut port = 9000u16;
    let mut secret = std::env::var(roundtrip::SIGNING_SECRET_ENV).ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(port),
            "--secret" => secret = args.next(),
            other => {
                eprintln!(
                    "unknown argument {other}; usage: example-receiver [--port N] [--secret whsec_...]"
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    let Some(secret) = secret.and_then(|s| Secret::parse(&s).ok()) else {
        eprintln!(
            "give the signing secret with --secret or {}",
            roundtrip::SIGNING_SECRET_ENV
        );
        return std::process::ExitCode::from(2);
    };
    let router = example_receiver::router(Verifier::new(secret), Default::default());
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("receiver on http://127.0.0.1:{port}");
    match axum::serve(listener, router).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("receiver failed: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
