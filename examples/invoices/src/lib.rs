//! The invoices API of FastAPI's "OpenAPI Callbacks" tutorial, in roundtrip.
//!
//! `POST /invoices/` creates an invoice; when the request carries a `callback_url`, the
//! API notifies that URL with an `InvoiceEvent`. The callback is declared once, by
//! [`invoice_notification`]: it is documented under the operation's `callbacks`, exactly
//! as FastAPI documents it, and it is what the handler sends through `Notify`. The message
//! is committed to the outbox before the handler answers; the app's workers then deliver
//! it, signed, with retries.

use roundtrip::{App, Callback, HttpUrl, Json, Notify, Query, SendError, SendOptions, post};

pub mod transactional;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An invoice to create.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Invoice {
    /// The invoice's id, which the callback URL carries back.
    pub id: String,
    /// An optional title.
    pub title: Option<String>,
    /// Who pays.
    pub customer: String,
    /// How much.
    pub total: f64,
}

/// What the API tells the callback URL about an invoice.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceEvent {
    /// What happened.
    pub description: String,
    /// Whether the invoice is paid.
    pub paid: bool,
}

/// What the receiver of the callback answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceEventReceived {
    /// Whether the receiver took the event.
    pub ok: bool,
}

/// The query of `POST /invoices/`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CallbackUrl {
    /// Where to send the notification.
    pub callback_url: Option<HttpUrl>,
}

/// The callback, declared once: it documents the request the API sends back.
pub fn invoice_notification() -> Callback<InvoiceEvent, InvoiceEventReceived> {
    Callback::post(
        "invoice_notification",
        "{$callback_url}/invoices/{$request.body.id}",
    )
}

/// Create an invoice.
///
/// This will (let's imagine) let the API user (some external developer) create an
/// invoice.
///
/// And this path operation will:
///
/// * Send the invoice to the client.
/// * Collect the money from the client.
/// * Send a notification back to the API user (the external developer), as a callback.
///     * At this point is that the API will somehow send a POST request to the
///         external API with the notification of the invoice event
///         (e.g. "payment successful").
#[roundtrip::handler]
pub async fn create_invoice(
    Query(query): Query<CallbackUrl>,
    notify: Notify<InvoiceEvent>,
    Json(invoice): Json<Invoice>,
) -> Result<Json<Value>, SendError> {
    // Send the invoice, collect the money, send the notification (the callback).
    if query.callback_url.is_some() {
        let event = InvoiceEvent {
            description: format!("Invoice {} for {} paid", invoice.id, invoice.customer),
            paid: true,
        };
        // A client that repeats its request does not notify twice.
        let options = SendOptions::new().idempotency_key(format!("invoice-{}-paid", invoice.id));
        notify.send_with(event, options).await?;
    }
    Ok(Json(json!({"msg": "Invoice received"})))
}

/// The environment variable that turns the deliveries API and console on (off when unset):
/// the key operators give in `X-Console-Key`.
pub const CONSOLE_KEY_ENV: &str = "INVOICES_CONSOLE_KEY";

/// The key operators must give, once [`with_console`] set it.
static CONSOLE_KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

struct ConsoleKeyName;

impl roundtrip::security::ApiKeyConfig for ConsoleKeyName {
    const NAME: &'static str = "X-Console-Key";
}

/// The operators' guard: the console key in `X-Console-Key` (401 when missing, 403 when
/// wrong).
pub struct Operator;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Operator {
    type Rejection = roundtrip::HttpError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use roundtrip::security::ApiKeyHeader;
        let given = ApiKeyHeader::<ConsoleKeyName>::from_request_parts(parts, state).await?;
        match CONSOLE_KEY.get() {
            Some(key) if !key.is_empty() && given.key == *key => Ok(Operator),
            _ => Err(roundtrip::HttpError::forbidden(
                "This key may not operate deliveries",
            )),
        }
    }
}

impl roundtrip::OperationInput for Operator {
    fn describe(ctx: &mut roundtrip::OperationContext<'_>) {
        <roundtrip::security::ApiKeyHeader<ConsoleKeyName> as roundtrip::OperationInput>::describe(
            ctx,
        );
    }
}

/// `app` with the deliveries API under `/admin/deliveries` and its console at
/// `/admin/console`, both behind `key` (in `X-Console-Key`; the console asks for it).
pub fn with_console(app: App, key: String) -> App {
    let _ = CONSOLE_KEY.set(key);
    let deliveries = roundtrip::deliveries::Deliveries::new().console("/console");
    app.deliveries(deliveries.clone())
        .include(deliveries.router::<Operator, ()>().prefix("/admin"))
}

/// The app, ready to build or serve.
pub fn app() -> App {
    App::new().title("Invoices API").route(
        "/invoices/",
        post(create_invoice).callback(invoice_notification()),
    )
}
