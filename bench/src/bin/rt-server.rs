//! The invoices endpoint served by roundtrip for load tests, in two modes:
//!
//! * `plain`: `POST /invoices/` with the query and body validated and documented, exactly
//!   the work the hand-written axum peer does plus roundtrip's; no callback is sent.
//! * `callback`: the same, and every request commits its callback durably to an embedded
//!   SQLite outbox before answering (no idempotency key, so each request is one message).
//!   Workers are off unless `--deliver` is given: the enqueue is what is measured.
//!   `--sync normal` commits without fsync (durable across a process crash, not across a
//!   power loss); the default, `full`, fsyncs every group commit.
//!
//! `GET /` answers `{"hello": "world"}` as the peers do. Listens on 127.0.0.1 only.

use std::process::ExitCode;

use roundtrip::delivery::signing::Secret;
use roundtrip::{App, Callback, HttpUrl, Json, Notify, Query, SendError, get, post};
use roundtrip_bench::arg;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
struct Invoice {
    id: String,
    title: Option<String>,
    customer: String,
    total: f64,
}

#[derive(Serialize, JsonSchema)]
struct InvoiceEvent {
    description: String,
    paid: bool,
}

#[derive(Deserialize, JsonSchema)]
struct CallbackUrl {
    callback_url: Option<HttpUrl>,
}

async fn root() -> Json<Value> {
    Json(json!({"hello": "world"}))
}

async fn create_invoice(
    Query(_q): Query<CallbackUrl>,
    Json(_invoice): Json<Invoice>,
) -> Json<Value> {
    Json(json!({"msg": "Invoice received"}))
}

async fn create_invoice_with_callback(
    Query(q): Query<CallbackUrl>,
    notify: Notify<InvoiceEvent>,
    Json(invoice): Json<Invoice>,
) -> Result<Json<Value>, SendError> {
    if q.callback_url.is_some() {
        notify
            .send(InvoiceEvent {
                description: format!("Invoice {} paid", invoice.id),
                paid: true,
            })
            .await?;
    }
    Ok(Json(json!({"msg": "Invoice received"})))
}

#[tokio::main]
async fn main() -> ExitCode {
    let mode = arg("--mode").unwrap_or_else(|| "plain".to_owned());
    let port = arg("--port").unwrap_or_else(|| "18080".to_owned());
    let deliver = std::env::args().any(|a| a == "--deliver");
    let app = App::new().title("Invoices API").route("/", get(root));
    let app = match mode.as_str() {
        "plain" => app.route("/invoices/", post(create_invoice)),
        "callback" => {
            let db = arg("--db").unwrap_or_else(|| {
                std::env::temp_dir()
                    .join(format!("rt-bench-{}.db", std::process::id()))
                    .display()
                    .to_string()
            });
            let secret = match Secret::generate() {
                Ok(secret) => secret,
                Err(err) => {
                    eprintln!("{err}");
                    return ExitCode::FAILURE;
                }
            };
            let sync = match arg("--sync").as_deref() {
                Some("normal") => roundtrip::delivery::sqlite::Synchronous::Normal,
                _ => roundtrip::delivery::sqlite::Synchronous::Full,
            };
            app.route(
                "/invoices/",
                post(create_invoice_with_callback).callback(Callback::<InvoiceEvent>::post(
                    "invoice_notification",
                    "{$callback_url}/invoices/{$request.body.id}",
                )),
            )
            .sqlite(roundtrip::delivery::sqlite::SqliteOptions::new(db).synchronous(sync))
            .signing_secret(secret)
            .allow_loopback_deliveries()
            .delivery_workers(deliver)
        }
        other => {
            eprintln!("unknown mode {other}: plain or callback");
            return ExitCode::from(2);
        }
    };
    // `--serve axum`: the same app served by `axum::serve` (no header or idle timeout, no
    // connection cap), to measure what roundtrip's own accept loop costs.
    if arg("--serve").as_deref() == Some("axum") {
        let built = match app.build() {
            Ok(built) => built,
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::FAILURE;
            }
        };
        let listener = match tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await {
            Ok(listener) => listener,
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::FAILURE;
            }
        };
        return match axum::serve(listener, built.router)
            .with_graceful_shutdown(roundtrip::shutdown_signal())
            .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{err}");
                ExitCode::FAILURE
            }
        };
    }
    match app.serve(&format!("127.0.0.1:{port}")).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
