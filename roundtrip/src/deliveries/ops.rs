//! The deliveries operations over an opened outbox: what the API's handlers, the public
//! methods of [`Deliveries`](super::Deliveries) and the CLI's `deliveries` commands run.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use roundtrip_delivery::endpoints::{EndpointFilter, Rotation};
use roundtrip_delivery::message::{MessageStatus, NewMessage};
use roundtrip_delivery::outbox::{MessageFilter, Outbox};
use serde_json::Value;

use crate::subscriptions::{Subscriptions, WebhookEndpoint, WebhookSecretRotated};

use super::filters::{check_endpoint_id, invalid, message_filter, message_id, replay_filter};
use super::models::{
    DeliveryKind, EndpointHealth, EndpointQuery, EndpointView, EndpointViewList, EventInfo,
    MessageDetail, MessageList, MessageQuery, MessageSummary, ReplayRequest, ReplayResult,
    SecretRotationRequest, TestEventRequest, TestEventSent,
};
use super::{DeliveryError, HEALTH_CAP};

/// The operations, over an opened outbox.
pub(crate) struct Ops {
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) subscriptions: Option<Subscriptions>,
    pub(crate) catalogue: Arc<Vec<EventInfo>>,
    pub(crate) health_window: Duration,
}

impl Ops {
    pub(crate) async fn list(&self, query: &MessageQuery) -> Result<MessageList, DeliveryError> {
        let filter = message_filter(query).map_err(DeliveryError::Invalid)?;
        let page = self
            .outbox
            .list(&filter)
            .await
            .map_err(DeliveryError::store)?;
        Ok(MessageList {
            data: page.messages.iter().map(Into::into).collect(),
            next: page.next.map(|id| id.to_string()),
        })
    }

    pub(crate) async fn message(&self, id: &str) -> Result<MessageDetail, DeliveryError> {
        let id = message_id(id)?;
        let message = self
            .outbox
            .get(&id)
            .await
            .map_err(DeliveryError::store)?
            .ok_or_else(|| DeliveryError::NotFound(format!("no message {id}")))?;
        let attempts = self
            .outbox
            .attempts(&id)
            .await
            .map_err(DeliveryError::store)?;
        let utf8 = std::str::from_utf8(&message.body).is_ok();
        Ok(MessageDetail {
            message: (&message.meta).into(),
            payload: String::from_utf8_lossy(&message.body).into_owned(),
            payload_utf8: utf8,
            attempts: attempts.iter().map(Into::into).collect(),
        })
    }

    pub(crate) async fn retry(&self, id: &str) -> Result<MessageSummary, DeliveryError> {
        let id = message_id(id)?;
        let meta = self.outbox.retry(&id).await.map_err(DeliveryError::store)?;
        Ok((&meta).into())
    }

    pub(crate) async fn replay(&self, id: &str) -> Result<MessageSummary, DeliveryError> {
        let id = message_id(id)?;
        let current = self
            .outbox
            .get(&id)
            .await
            .map_err(DeliveryError::store)?
            .ok_or_else(|| DeliveryError::NotFound(format!("no message {id}")))?;
        if current.meta.status.is_live() {
            return Err(DeliveryError::Conflict(format!(
                "message {id} is {} and has not finished: retry it to deliver it now",
                current.meta.status
            )));
        }
        let meta = self.outbox.retry(&id).await.map_err(DeliveryError::store)?;
        Ok((&meta).into())
    }

    pub(crate) async fn replay_since(
        &self,
        request: &ReplayRequest,
    ) -> Result<ReplayResult, DeliveryError> {
        let filter = replay_filter(request).map_err(DeliveryError::Invalid)?;
        let replayed = self
            .outbox
            .replay(&filter)
            .await
            .map_err(DeliveryError::store)?;
        Ok(ReplayResult { replayed })
    }

    pub(crate) async fn cancel(&self, id: &str) -> Result<MessageSummary, DeliveryError> {
        let id = message_id(id)?;
        let meta = self
            .outbox
            .cancel(&id)
            .await
            .map_err(DeliveryError::store)?;
        Ok((&meta).into())
    }

    async fn health(&self, endpoint: &str) -> Result<EndpointHealth, DeliveryError> {
        let since = SystemTime::now()
            .checked_sub(self.health_window)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut filter = MessageFilter::new()
            .endpoint_id(endpoint)
            .created_after(since)
            .limit(MessageFilter::MAX_LIMIT);
        let mut health = EndpointHealth {
            window_seconds: self.health_window.as_secs(),
            succeeded: 0,
            failed: 0,
            pending: 0,
            success_rate: None,
            capped: false,
            last_error: None,
            last_error_at: None,
        };
        let mut seen = 0usize;
        loop {
            let page = self
                .outbox
                .list(&filter)
                .await
                .map_err(DeliveryError::store)?;
            for m in &page.messages {
                match m.status {
                    MessageStatus::Succeeded => health.succeeded += 1,
                    MessageStatus::Failed | MessageStatus::Cancelled => health.failed += 1,
                    _ => health.pending += 1,
                }
                if health.last_error.is_none()
                    && m.status != MessageStatus::Succeeded
                    && let Some(error) = &m.last_error
                {
                    health.last_error = Some(error.clone());
                    health.last_error_at = Some(super::models::utc(m.created_at));
                }
            }
            seen += page.messages.len();
            match page.next {
                Some(next) if seen < HEALTH_CAP => filter = filter.before(next),
                Some(_) => {
                    health.capped = true;
                    break;
                }
                None => break,
            }
        }
        let finished = health.succeeded + health.failed;
        if finished > 0 {
            health.success_rate = Some(health.succeeded as f64 / finished as f64);
        }
        Ok(health)
    }

    fn subscriptions(&self) -> Result<&Subscriptions, DeliveryError> {
        self.subscriptions.as_ref().ok_or_else(|| {
            DeliveryError::NotFound(
                "no webhook endpoint has this id: this app has no webhook subscriptions".to_owned(),
            )
        })
    }

    pub(crate) async fn endpoints(
        &self,
        query: &EndpointQuery,
    ) -> Result<EndpointViewList, DeliveryError> {
        let mut problems = Vec::new();
        if let Some(after) = &query.after
            && let Err(e) = check_endpoint_id(after, &["query", "after"])
        {
            problems.push(*e);
        }
        if let Some(limit) = query.limit
            && !(1..=100).contains(&limit)
        {
            problems.push(invalid(
                &["query", "limit"],
                "from 1 to 100",
                Value::from(limit),
            ));
        }
        if !problems.is_empty() {
            return Err(DeliveryError::Invalid(problems));
        }
        let Some(subscriptions) = &self.subscriptions else {
            return Ok(EndpointViewList {
                data: Vec::new(),
                next: None,
            });
        };
        let mut filter = EndpointFilter::new();
        filter.after = query.after.clone();
        filter.limit = Some(query.limit.unwrap_or(20) as usize);
        let page = subscriptions
            .list(&filter)
            .await
            .map_err(DeliveryError::Subscriptions)?;
        let mut data = Vec::with_capacity(page.endpoints.len());
        for endpoint in &page.endpoints {
            data.push(EndpointView {
                endpoint: WebhookEndpoint::from(endpoint),
                health: self.health(&endpoint.id).await?,
            });
        }
        Ok(EndpointViewList {
            data,
            next: page.next,
        })
    }

    pub(crate) async fn endpoint(&self, id: &str) -> Result<EndpointView, DeliveryError> {
        check_endpoint_id(id, &["path", "endpoint_id"])
            .map_err(|e| DeliveryError::Invalid(vec![*e]))?;
        let endpoint = self
            .subscriptions()?
            .get(id)
            .await
            .map_err(DeliveryError::Subscriptions)?;
        Ok(EndpointView {
            endpoint: WebhookEndpoint::from(&endpoint),
            health: self.health(&endpoint.id).await?,
        })
    }

    pub(crate) async fn rotate_secret(
        &self,
        id: &str,
        request: &SecretRotationRequest,
    ) -> Result<WebhookSecretRotated, DeliveryError> {
        check_endpoint_id(id, &["path", "endpoint_id"])
            .map_err(|e| DeliveryError::Invalid(vec![*e]))?;
        let mut rotation = Rotation::new();
        if let Some(seconds) = request.grace_seconds {
            if seconds > 2_592_000 {
                return Err(DeliveryError::Invalid(vec![invalid(
                    &["body", "grace_seconds"],
                    "at most 30 days (2592000 seconds)",
                    Value::from(seconds),
                )]));
            }
            rotation = rotation.grace(Duration::from_secs(seconds));
        }
        let rotated = self
            .subscriptions()?
            .rotate_secret(id, rotation)
            .await
            .map_err(DeliveryError::Subscriptions)?;
        Ok(WebhookSecretRotated {
            endpoint: (&rotated.endpoint).into(),
            secret: rotated.secret.to_string(),
            previous_expires_at: rotated.previous_expires_at.into(),
        })
    }

    pub(crate) async fn send_test(
        &self,
        id: &str,
        request: &TestEventRequest,
    ) -> Result<TestEventSent, DeliveryError> {
        check_endpoint_id(id, &["path", "endpoint_id"])
            .map_err(|e| DeliveryError::Invalid(vec![*e]))?;
        let endpoint = self
            .subscriptions()?
            .get(id)
            .await
            .map_err(DeliveryError::Subscriptions)?;
        if !endpoint.is_enabled() {
            return Err(DeliveryError::Conflict(format!(
                "endpoint {id} is disabled: enable it before sending it a test event"
            )));
        }
        let webhooks: Vec<&EventInfo> = self
            .catalogue
            .iter()
            .filter(|e| e.kind == DeliveryKind::Webhook && endpoint.wants(&e.name))
            .collect();
        let event = match &request.event_type {
            Some(wanted) => webhooks
                .iter()
                .find(|e| &e.name == wanted)
                .copied()
                .ok_or_else(|| {
                    let names: Vec<&str> = webhooks.iter().map(|e| e.name.as_str()).collect();
                    DeliveryError::Invalid(vec![invalid(
                        &["body", "event_type"],
                        &format!(
                            "`{wanted}` is not an event this endpoint receives; it receives: {}",
                            if names.is_empty() {
                                "none".to_owned()
                            } else {
                                names.join(", ")
                            }
                        ),
                        Value::String(wanted.clone()),
                    )])
                })?,
            None => webhooks.first().copied().ok_or_else(|| {
                DeliveryError::Conflict(format!(
                    "endpoint {id} receives no event this API declares"
                ))
            })?,
        };
        let body = serde_json::to_vec(&event.example).unwrap_or_default();
        let method =
            http::Method::from_bytes(event.method.as_bytes()).unwrap_or(http::Method::POST);
        let message =
            NewMessage::webhook(event.name.clone(), endpoint.url.clone(), Bytes::from(body))
                .method(method)
                .endpoint_id(&endpoint.id)
                .metadata("test", Value::Bool(true));
        let message_id = message.id().to_string();
        self.outbox
            .enqueue(vec![message])
            .await
            .map_err(DeliveryError::store)?;
        Ok(TestEventSent {
            message_id,
            event_type: event.name.clone(),
            payload: event.example.clone(),
        })
    }
}
