//! Serves an OpenAPI document with the embedded Swagger UI and ReDoc, on 127.0.0.1 only.
//!
//! ```sh
//! cargo run -p roundtrip-docs --example docs_preview -- --port 8000 --openapi openapi.json
//! # then open http://127.0.0.1:8000/docs and http://127.0.0.1:8000/redoc
//! ```
//!
//! The port also comes from `PORT`, the file from `OPENAPI_FILE`. The document is read once
//! at start and served at `/openapi.json`; the page title is its `info.title`.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;
use http::header::CONTENT_TYPE;
use roundtrip_docs::DocsRoutes;

struct Args {
    port: u16,
    openapi: String,
}

const USAGE: &str =
    "usage: docs_preview [--port PORT] --openapi FILE   (or PORT=…, OPENAPI_FILE=…)";

fn parse_args() -> Result<Args, String> {
    let mut port = std::env::var("PORT").ok();
    let mut openapi = std::env::var("OPENAPI_FILE").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = Some(args.next().ok_or("--port needs a value")?),
            "--openapi" => openapi = Some(args.next().ok_or("--openapi needs a file")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let port = match port {
        Some(port) => port
            .parse()
            .map_err(|_| format!("the port must be a number from 0 to 65535, not {port:?}"))?,
        None => 8000,
    };
    let openapi = openapi.ok_or_else(|| format!("no OpenAPI file given\n{USAGE}"))?;
    Ok(Args { port, openapi })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("docs_preview: {message}");
            return ExitCode::from(2);
        }
    };
    let document = match std::fs::read(&args.openapi) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("docs_preview: cannot read {}: {err}", args.openapi);
            return ExitCode::FAILURE;
        }
    };
    let title = match serde_json::from_slice::<serde_json::Value>(&document) {
        Ok(value) => value
            .pointer("/info/title")
            .and_then(|title| title.as_str())
            .unwrap_or("API")
            .to_owned(),
        Err(err) => {
            eprintln!("docs_preview: {} is not JSON: {err}", args.openapi);
            return ExitCode::FAILURE;
        }
    };

    let app: Router = Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { ([(CONTENT_TYPE, "application/json")], document) }
            }),
        )
        .merge(DocsRoutes::new("/openapi.json").title(title).router());

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("docs_preview: cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(addr);
    eprintln!(
        "docs_preview: serving {} at http://{addr}/docs and http://{addr}/redoc",
        args.openapi
    );
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        eprintln!("docs_preview: server error: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
