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

/// The app, ready to build or serve.
pub fn app() -> App {
    App::new().title("Invoices API").route(
        "/invoices/",
        post(create_invoice).callback(invoice_notification()),
    )
}
