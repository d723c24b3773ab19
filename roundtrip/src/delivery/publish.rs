//! Sending declared webhooks: [`Publisher`], to a given URL or to every webhook endpoint
//! subscribed to the event (the app's subscriptions).

use std::any::TypeId;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use roundtrip_delivery::message::{MessageKind, NewMessage};
use roundtrip_delivery::outbox::MessageId;
use schemars::JsonSchema;
use serde::Serialize;

use super::notify::{
    SendOptions, build_message, check_target, http_method, serialize_checked, store, store_all,
};
use super::runtime::PreparedDelivery;
use super::send_error::SendError;
use crate::callback::WebhookSpec;
use crate::operation::OperationInput;

/// The endpoint metadata key that names the customer an endpoint belongs to.
pub const CUSTOMER_KEY: &str = "customer_id";

/// Sends the app's declared webhooks to a given URL. Clone it freely; get it from
/// [`BuiltApp::publisher`](crate::BuiltApp::publisher) or as a handler argument.
#[derive(Clone)]
pub struct Publisher {
    pub(crate) delivery: PreparedDelivery,
    pub(crate) webhooks: Arc<Vec<WebhookSpec>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("webhooks", &self.webhooks.len())
            .finish()
    }
}

impl Publisher {
    /// Sends `webhook` with `payload` to `url`, signed by the app's secrets (or those the
    /// options name). The webhook must be declared on the app.
    pub async fn send_to<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        url: &str,
        payload: &P,
        options: SendOptions,
    ) -> Result<MessageId, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        let message = self.message_to(webhook, url, payload, options).await?;
        store(
            &self.delivery,
            MessageKind::Webhook,
            webhook.event(),
            message,
        )
        .await
    }

    /// Builds and checks the message [`send_to`](Self::send_to) would store, without
    /// storing it: for an enqueue inside the application's own database transaction
    /// (`enqueue_in` on `SqliteOutbox` or `PgOutbox`), so that a business row and its
    /// webhook commit together or not at all. The URL's host is resolved and checked
    /// against the SSRF policy, as a callback's is.
    pub async fn message_to<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        url: &str,
        payload: &P,
        options: SendOptions,
    ) -> Result<NewMessage, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        let event = webhook.event();
        let declared = self.declared::<P>(event)?;
        let parsed = url::Url::parse(url).map_err(|err| SendError::Refused {
            name: event.to_owned(),
            reason: format!("not a URL: {err}"),
            loc: Vec::new(),
            input: None,
        })?;
        let method = declared.method;
        let body = serialize_checked(event, payload, self.delivery.max_payload_bytes())?;
        check_target(&self.delivery, &parsed)
            .await
            .map_err(|err| SendError::refused(event, &err, None))?;
        Ok(build_message(
            MessageKind::Webhook,
            event,
            parsed,
            method,
            body,
            options,
        ))
    }
}

impl Publisher {
    /// Publishes `webhook` with `payload` to every enabled endpoint subscribed to it: one
    /// message per endpoint, each with the endpoint's URL and signed with its secrets, all
    /// stored in one outbox write (all or none). Answers the message ids, in the endpoints'
    /// order; none when nobody subscribed.
    ///
    /// The payload is checked against its schema and the size limit first, so a bug fails
    /// even when nobody listens. The app needs [`App::subscriptions`](crate::App::subscriptions).
    pub async fn publish<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        payload: &P,
    ) -> Result<Vec<MessageId>, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        self.publish_with(webhook, payload, SendOptions::new())
            .await
    }

    /// [`publish`](Self::publish) with an idempotency key: a second publish with the same
    /// key stores nothing new for the endpoints the first one reached. (A signing key is
    /// ignored: each endpoint's own secrets sign.)
    pub async fn publish_with<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        payload: &P,
        options: SendOptions,
    ) -> Result<Vec<MessageId>, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        let messages = self.messages(webhook, payload, options).await?;
        store_all(
            &self.delivery,
            MessageKind::Webhook,
            webhook.event(),
            messages,
        )
        .await
    }

    /// Publishes `webhook` to the endpoints of one customer only: those whose metadata's
    /// [`customer_id`](CUSTOMER_KEY) is `customer` (the endpoints that
    /// customer added in the [portal](crate::portal)). Other customers' endpoints never see
    /// the event. Answers the message ids; none when the customer has no endpoint for it.
    pub async fn publish_to_customer<P, R>(
        &self,
        customer: &str,
        webhook: &crate::Webhook<P, R>,
        payload: &P,
        options: SendOptions,
    ) -> Result<Vec<MessageId>, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        let messages = self
            .build_messages(webhook, payload, options, Some(customer))
            .await?;
        store_all(
            &self.delivery,
            MessageKind::Webhook,
            webhook.event(),
            messages,
        )
        .await
    }

    /// Builds and checks the messages [`publish_with`](Self::publish_with) would store, one
    /// per subscribed endpoint, without storing them: for an enqueue inside the
    /// application's own database transaction (`enqueue_in`), so that a business row and
    /// its fan-out commit together or not at all. Empty when nobody subscribed.
    pub async fn messages<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        payload: &P,
        options: SendOptions,
    ) -> Result<Vec<NewMessage>, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        self.build_messages(webhook, payload, options, None).await
    }

    async fn build_messages<P, R>(
        &self,
        webhook: &crate::Webhook<P, R>,
        payload: &P,
        options: SendOptions,
        customer: Option<&str>,
    ) -> Result<Vec<NewMessage>, SendError>
    where
        P: Serialize + JsonSchema + 'static,
    {
        let event = webhook.event();
        let declared = self.declared::<P>(event)?;
        let method = http_method(declared.method);
        let body = Bytes::from(serialize_checked(
            event,
            payload,
            self.delivery.max_payload_bytes(),
        )?);
        let subscriptions =
            self.delivery
                .endpoints()
                .ok_or_else(|| SendError::NoSubscriptions {
                    name: event.to_owned(),
                })?;
        let endpoints =
            subscriptions
                .matching(event)
                .await
                .map_err(|reason| SendError::Unavailable {
                    name: event.to_owned(),
                    reason,
                })?;
        let mut messages = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            if let Some(customer) = customer {
                let owner = endpoint
                    .metadata
                    .get(CUSTOMER_KEY)
                    .and_then(serde_json::Value::as_str);
                if owner != Some(customer) {
                    continue;
                }
            }
            // Checked at registration; the policy may have changed since.
            if let Err(err) =
                roundtrip_delivery::ssrf::check_url(&endpoint.url, self.delivery.ssrf())
            {
                tracing::warn!(
                    endpoint_id = %endpoint.id,
                    url = %roundtrip_delivery::message::redact_url(&endpoint.url),
                    error = %err,
                    "not publishing `{event}` to a webhook endpoint the SSRF policy refuses"
                );
                continue;
            }
            let mut message = NewMessage::webhook(event, endpoint.url, body.clone())
                .method(method.clone())
                .endpoint_id(&endpoint.id);
            if let Some(key) = &options.idempotency_key {
                // One key per endpoint: the same key would otherwise deduplicate the whole
                // fan-out into its first message.
                message = message.idempotency_key(format!("{key}/{}", endpoint.id));
            }
            messages.push(message);
        }
        Ok(messages)
    }

    /// The declared webhook `event` with payload `P`.
    fn declared<P: 'static>(&self, event: &str) -> Result<&WebhookSpec, SendError> {
        self.webhooks
            .iter()
            .find(|w| w.event == event && w.payload_type == TypeId::of::<P>())
            .ok_or(SendError::NotAttached {
                payload: std::any::type_name::<P>(),
            })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Publisher {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Publisher>().cloned().ok_or_else(|| {
            crate::error::operation_error_response(
                "Publisher used outside a roundtrip app (no publisher in the request)",
            )
        })
    }
}

impl OperationInput for Publisher {}
