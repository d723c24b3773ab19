//! The API of FastAPI's "OpenAPI Webhooks" tutorial, in roundtrip.
//!
//! The app declares the webhook `new-subscription`: the request it sends to the URLs its
//! users registered when one of their users subscribes. The declaration is published
//! under the document's top-level `webhooks`.

use chrono::{DateTime, Utc};
use roundtrip::{App, Json, Webhook, get};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A new subscription, as the webhook announces it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Subscription {
    /// Who subscribed.
    pub username: String,
    /// What they pay each month.
    pub monthly_fee: f64,
    /// When the subscription starts.
    pub start_date: DateTime<Utc>,
}

/// The webhook, declared once: documented under `webhooks`.
pub fn new_subscription() -> Webhook<Subscription> {
    Webhook::post("new-subscription").description(
        "When a new user subscribes to your service we'll send you a POST request with this\n\
         data to the URL that you register for the event `new-subscription` in the dashboard.",
    )
}

/// The users of the service.
pub async fn read_users() -> Json<Value> {
    Json(json!(["Rick", "Morty"]))
}

/// The app, ready to build or serve.
pub fn app() -> App {
    App::new()
        .title("Webhooks API")
        .webhook(new_subscription())
        .route("/users/", get(read_users))
}
