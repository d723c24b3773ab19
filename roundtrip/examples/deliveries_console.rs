//! The deliveries console on a small billing app, with a receiver that fails each message's
//! first delivery: what the browser test drives, and a way to look at the console.
//!
//! ```sh
//! cargo run -p roundtrip --example deliveries_console -- --port 8000
//! # open http://127.0.0.1:8000/admin/console, key: console-demo-key
//! ```
//!
//! At start it registers the receiver (`/receiver/hooks` on the same server) as a webhook
//! endpoint and publishes two `invoice.paid` events; it also queues one message with a
//! hostile payload (markup, a very long word, bytes that are not UTF-8). With no retries,
//! every first delivery fails; a replay succeeds. `GET /receiver/log` shows what the
//! receiver got. Everything stays on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use roundtrip::deliveries::Deliveries;
use roundtrip::delivery::endpoints::NewEndpoint;
use roundtrip::delivery::message::NewMessage;
use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
use roundtrip::subscriptions::Subscriptions;
use roundtrip::{App, HttpError, OperationContext, OperationInput, Webhook};
use schemars::JsonSchema;
use serde::Serialize;

/// The key the console asks for.
const KEY: &str = "console-demo-key";

#[derive(Serialize, JsonSchema)]
struct InvoicePaid {
    /// The invoice.
    invoice_id: String,
    /// What was paid, in cents.
    #[schemars(range(min = 1))]
    amount_cents: u64,
    /// Who paid.
    customer: String,
}

fn invoice_paid() -> Webhook<InvoicePaid> {
    Webhook::post("invoice.paid")
}

struct AdminKey;

impl ApiKeyConfig for AdminKey {
    const NAME: &'static str = "X-Admin-Key";
}

/// The operators' guard: the key in `X-Admin-Key`.
struct Admin;

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let key = ApiKeyHeader::<AdminKey>::from_request_parts(parts, state).await?;
        if key.key == KEY {
            Ok(Admin)
        } else {
            Err(HttpError::forbidden("This key may not operate deliveries"))
        }
    }
}

impl OperationInput for Admin {
    fn describe(ctx: &mut OperationContext<'_>) {
        <ApiKeyHeader<AdminKey> as OperationInput>::describe(ctx);
    }
}

/// What the receiver got: `(webhook-id, status answered)`, in order.
type Log = Arc<Mutex<Vec<(String, u16)>>>;

/// The receiver: the first request of each message gets a 500 with a hostile body, later
/// ones a 200.
fn receiver(log: Log) -> axum::Router {
    let hooks_log = log.clone();
    let hooks = move |headers: HeaderMap| {
        let log = hooks_log.clone();
        async move {
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            let first = !log.iter().any(|(seen, _)| *seen == id);
            let status = if first { 500 } else { 200 };
            log.push((id, status));
            if first {
                let mut body = b"<script>window.__pwned = 'response'</script> ".to_vec();
                body.extend_from_slice(&[0xff, 0xfe, b' ']);
                body.extend(std::iter::repeat_n(b'B', 3000));
                (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
            } else {
                (StatusCode::OK, "ok").into_response()
            }
        }
    };
    let read = move || {
        let log = log.clone();
        async move {
            let log = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let lines: Vec<String> = log
                .iter()
                .map(|(id, status)| format!("{id} {status}"))
                .collect();
            lines.join("\n")
        }
    };
    axum::Router::new()
        .route("/receiver/hooks", axum::routing::post(hooks))
        .route("/receiver/log", axum::routing::get(read))
        // The browser asks for one when it shows the plain-text log.
        .route(
            "/favicon.ico",
            axum::routing::get(|| async { StatusCode::NO_CONTENT }),
        )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(8000);
    let db = std::env::temp_dir().join(format!(
        "roundtrip-console-demo-{}-{port}.db",
        std::process::id()
    ));
    let log: Log = Arc::default();
    let subscriptions = Subscriptions::new();
    let deliveries = Deliveries::new().console("/console");
    let app = App::new()
        .title("Billing")
        .webhook(invoice_paid())
        .database_url(format!("sqlite://{}", db.display()))
        // The receiver runs on this machine.
        .allow_loopback_deliveries()
        .subscriptions(subscriptions.clone())
        .include(subscriptions.router::<Admin, ()>().prefix("/admin"))
        .deliveries(deliveries.clone())
        .include(deliveries.router::<Admin, ()>().prefix("/admin"))
        .merge_axum(receiver(log))
        // No retries: a failed first delivery fails the message, for the console to replay.
        .configure_dispatcher(|config| {
            config
                .retry_schedule(RetrySchedule::from_delays(Vec::new()).with_jitter(0.0))
                .poll_interval(Duration::from_millis(100))
        });
    let built = app.build()?;
    let outbox = built.outbox().await?;
    let publisher = built.publisher();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let hooks = url::Url::parse(&format!("http://{addr}/receiver/hooks"))?;
    subscriptions
        .create(
            NewEndpoint::new(hooks.clone())
                .description("The billing team's receiver")
                .event_type("invoice.paid"),
        )
        .await?;
    for (invoice, customer) in [("inv_0001", "ACME Corp"), ("inv_0002", "Initech")] {
        publisher
            .publish(
                &invoice_paid(),
                &InvoicePaid {
                    invoice_id: invoice.into(),
                    amount_cents: 1250,
                    customer: customer.into(),
                },
            )
            .await?;
    }
    let mut hostile = b"{\"note\": \"<script>window.__pwned = 'payload'</script><img src=x onerror=\\\"window.__pwned='img'\\\">\", \"long\": \"".to_vec();
    hostile.extend(std::iter::repeat_n(b'A', 20_000));
    hostile.extend_from_slice(b"\", \"bytes\": \"");
    hostile.extend_from_slice(&[0xc3, 0x28, 0xff]);
    hostile.extend_from_slice(b"\"}");
    outbox
        .enqueue(vec![NewMessage::webhook(
            "hostile.<b>event</b>",
            hooks,
            Bytes::from(hostile),
        )])
        .await?;
    println!("console: http://{addr}/admin/console  (key: {KEY})");
    built
        .serve_on(listener, roundtrip::shutdown_signal())
        .await?;
    let _ = std::fs::remove_file(&db);
    Ok(())
}
