//! The API of FastAPI's "OpenAPI Webhooks" tutorial, in roundtrip.
//!
//! The app declares the webhook `new-subscription`: the request it sends to the URLs its
//! users registered when one of their users subscribes. The declaration is published
//! under the document's top-level `webhooks`.
//!
//! [`app_with_subscriptions`] is the same app with webhook subscriptions: its users register
//! their URLs through a management API under `/admin` (behind an admin key), and
//! [`Publisher::publish`](roundtrip::Publisher::publish) sends each event to every URL that
//! subscribed to it, signed with that URL's own secret. The demo (`example-webhooks demo`)
//! runs it; [`app`] stays the tutorial, so its document is the one FastAPI writes.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use roundtrip::deliveries::Deliveries;
use roundtrip::metrics::DeliveryMetrics;
use roundtrip::portal::Portal;
use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
use roundtrip::subscriptions::Subscriptions;
use roundtrip::{
    App, HttpError, Json, OperationContext, OperationInput, Publisher, SendError, Webhook, get,
    post,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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

/// The header that carries the admin key of the management API.
pub struct AdminKey;

impl ApiKeyConfig for AdminKey {
    const NAME: &'static str = "X-Admin-Key";
}

/// The admin key the app was started with.
#[derive(Clone)]
struct ExpectedKey(Arc<str>);

/// The guard of the management API: `X-Admin-Key` must hold the app's admin key. A missing
/// key is FastAPI's 401; a wrong one is a 403.
pub struct Admin;

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let given = ApiKeyHeader::<AdminKey>::from_request_parts(parts, state).await?;
        let Some(ExpectedKey(expected)) = parts.extensions.get::<ExpectedKey>() else {
            return Err(HttpError::internal("Internal Server Error"));
        };
        if same_key(given.key.as_bytes(), expected.as_bytes()) {
            Ok(Admin)
        } else {
            Err(HttpError::forbidden("The admin key is not valid"))
        }
    }
}

impl OperationInput for Admin {
    fn describe(ctx: &mut OperationContext<'_>) {
        <ApiKeyHeader<AdminKey> as OperationInput>::describe(ctx);
        ctx.http_error(403, "The admin key is not valid");
    }
}

/// Compares keys in time that does not depend on where they differ.
fn same_key(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = given.len() ^ expected.len();
    for (i, byte) in expected.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(i).copied().unwrap_or(0));
    }
    difference == 0
}

/// The app with webhook subscriptions: the management API under `/admin`, guarded by
/// `admin_key` in `X-Admin-Key`.
pub fn app_with_subscriptions(subscriptions: &Subscriptions, admin_key: &str) -> App {
    app()
        .subscriptions(subscriptions.clone())
        .include(subscriptions.router::<Admin, ()>().prefix("/admin"))
        .layer(axum::Extension(ExpectedKey(Arc::from(admin_key))))
}

/// The environment variable holding the admin key of `serve`.
pub const ADMIN_KEY_ENV: &str = "WEBHOOKS_ADMIN_KEY";

/// A user subscribes to the service: every endpoint subscribed to `new-subscription`
/// gets the event.
pub async fn subscribe(
    publisher: Publisher,
    Json(subscription): Json<Subscription>,
) -> Result<Json<Value>, SendError> {
    let ids = publisher
        .publish(&new_subscription(), &subscription)
        .await?;
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    Ok(Json(json!({"messages": ids})))
}

/// The app as `serve` runs it, operated over HTTP. Behind `admin_key` in `X-Admin-Key`:
/// the management API and the deliveries API under `/admin`, the console at
/// `/admin/console`, the delivery metrics at `/metrics`, and `POST /portal/links`, which
/// signs a customer's link to the portal at `/portal`. Open to all: `POST /subscriptions/`,
/// where a user subscribes and the event is published.
///
/// The portal's signing key is derived from the admin key: changing the admin key ends
/// every portal link handed out.
pub fn operated_app(subscriptions: &Subscriptions, admin_key: &str) -> App {
    let deliveries = Deliveries::new().console("/console");
    let portal_key = Sha256::digest(format!("example-webhooks portal\n{admin_key}").as_bytes());
    let portal = Portal::new(&portal_key, &deliveries, subscriptions)
        .expect("a SHA-256 digest is 32 bytes, the portal's shortest key");
    let metrics = DeliveryMetrics::new();
    let serving = metrics.clone();
    let scrape = get(move |_: Admin| {
        let metrics = serving.clone();
        async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    DeliveryMetrics::CONTENT_TYPE,
                )],
                metrics.encode(),
            )
        }
    })
    .hidden();
    app_with_subscriptions(subscriptions, admin_key)
        .route("/subscriptions/", post(subscribe).status(202))
        .metrics(&metrics)
        .route("/metrics", scrape)
        .deliveries(deliveries.clone())
        .include(deliveries.router::<Admin, ()>().prefix("/admin"))
        .include(portal.router::<Admin, ()>())
}

/// The admin key from [`ADMIN_KEY_ENV`], or why `serve` cannot start without it.
pub fn admin_key_from_env() -> Result<String, String> {
    match std::env::var(ADMIN_KEY_ENV) {
        Ok(key) if key.trim().len() >= 16 => Ok(key.trim().to_owned()),
        Ok(key) if !key.trim().is_empty() => Err(format!(
            "{ADMIN_KEY_ENV} is too short ({} characters): use at least 16, for example \
             `export {ADMIN_KEY_ENV}=$(openssl rand -hex 24)`",
            key.trim().chars().count()
        )),
        _ => Err(format!(
            "{ADMIN_KEY_ENV} is not set: `serve` guards the subscription API (/admin) and \
             /metrics with it; set it, for example `export {ADMIN_KEY_ENV}=$(openssl rand -hex 24)`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn keys_match_only_when_equal() {
        assert!(same_key(b"abc", b"abc"));
        assert!(!same_key(b"abd", b"abc"));
        assert!(!same_key(b"ab", b"abc"));
        assert!(!same_key(b"abcd", b"abc"));
        assert!(!same_key(b"", b"abc"));
    }
}
