//! The management API of webhook subscriptions: [`Subscriptions::router`] and the
//! handlers behind it.

use std::time::Duration;

use axum::extract::FromRequestParts;
use roundtrip_delivery::endpoints::{EndpointFilter, EndpointUpdate, NewEndpoint, Rotation};
use roundtrip_openapi::HttpUrl;

use crate::extract::{Json, Path, Query};
use crate::operation::OperationInput;
use crate::response::NoContent;
use crate::router::Router;
use crate::routing::{get, post};
use crate::secret::SecretString;

use super::models::{
    WebhookEndpoint, WebhookEndpointCreated, WebhookEndpointIn, WebhookEndpointList,
    WebhookEndpointPatch, WebhookEndpointPath, WebhookEndpointQuery, WebhookSecretRotated,
    WebhookSecretRotation, given_secret, secret_error,
};
use super::{SubscriptionError, Subscriptions};

impl Subscriptions {
    /// The management router: create, list, read, update, delete, rotate the secret of,
    /// enable and disable endpoints, each operation behind the guard `G` (for example an
    /// [`ApiKeyHeader`](crate::security::ApiKeyHeader), whose scheme the document then
    /// requires on every operation). Its paths start with `/endpoints`; give the router a
    /// prefix to put them elsewhere.
    pub fn router<G, S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        G: FromRequestParts<S> + OperationInput + Send + 'static,
    {
        let s = self.clone();
        let create = move |_: G, Json(body): Json<WebhookEndpointIn>| {
            let s = s.clone();
            async move { s.api_create(body).await }
        };
        let s = self.clone();
        let list = move |_: G, Query(query): Query<WebhookEndpointQuery>| {
            let s = s.clone();
            async move { s.api_list(query).await }
        };
        let s = self.clone();
        let read = move |_: G, Path(path): Path<WebhookEndpointPath>| {
            let s = s.clone();
            async move { s.api_get(path.endpoint_id).await }
        };
        let s = self.clone();
        let update = move |_: G,
                           Path(path): Path<WebhookEndpointPath>,
                           Json(body): Json<WebhookEndpointPatch>| {
            let s = s.clone();
            async move { s.api_update(path.endpoint_id, body).await }
        };
        let s = self.clone();
        let delete = move |_: G, Path(path): Path<WebhookEndpointPath>| {
            let s = s.clone();
            async move { s.api_delete(path.endpoint_id).await }
        };
        let s = self.clone();
        let rotate = move |_: G,
                           Path(path): Path<WebhookEndpointPath>,
                           Json(body): Json<WebhookSecretRotation>| {
            let s = s.clone();
            async move { s.api_rotate(path.endpoint_id, body).await }
        };
        let s = self.clone();
        let enable = move |_: G, Path(path): Path<WebhookEndpointPath>| {
            let s = s.clone();
            async move { s.api_enable(path.endpoint_id).await }
        };
        let s = self.clone();
        let disable = move |_: G, Path(path): Path<WebhookEndpointPath>| {
            let s = s.clone();
            async move { s.api_disable(path.endpoint_id).await }
        };
        const NOT_FOUND: &str = "No webhook endpoint has this id";
        const DUPLICATE: &str = "Another endpoint has the same URL and event types";
        Router::new()
            .tag("webhook endpoints")
            .route(
                "/endpoints",
                post(create)
                    .name("create_endpoint")
                    .status(201)
                    .description(
                        "Registers a webhook endpoint: the URL receives the events it lists (every \
                         event when it lists none), signed with its own secret. The secret is \
                         generated unless one is given, and is returned here only.",
                    )
                    .response_status(409, DUPLICATE)
                    .get(list)
                    .name("list_endpoints")
                    .description(
                        "Lists webhook endpoints, oldest first, without their secrets. Pass \
                         `next` as `after` for the next page.",
                    ),
            )
            .route(
                "/endpoints/{endpoint_id}",
                get(read)
                    .name("get_endpoint")
                    .description("Reads a webhook endpoint, without its secret.")
                    .response_status(404, NOT_FOUND)
                    .patch(update)
                    .name("update_endpoint")
                    .description(
                        "Changes a webhook endpoint's URL, description, event types or metadata; \
                         what the body leaves out stays as it is.",
                    )
                    .response_status(404, NOT_FOUND)
                    .response_status(409, DUPLICATE)
                    .delete(delete)
                    .name("delete_endpoint")
                    .description("Deletes a webhook endpoint and its secrets.")
                    .status(204)
                    .response_status(404, NOT_FOUND),
            )
            .route(
                "/endpoints/{endpoint_id}/rotate-secret",
                post(rotate)
                    .name("rotate_endpoint_secret")
                    .description(
                        "Makes a new signing secret current and returns it. The previous secret \
                         keeps signing until `previous_expires_at`, so receivers see both \
                         signatures meanwhile.",
                    )
                    .response_status(404, NOT_FOUND),
            )
            .route(
                "/endpoints/{endpoint_id}/enable",
                post(enable)
                    .name("enable_endpoint")
                    .description(
                        "Enables a webhook endpoint again, after a 410, a failing window or a \
                         disable, with a fresh health record.",
                    )
                    .response_status(404, NOT_FOUND),
            )
            .route(
                "/endpoints/{endpoint_id}/disable",
                post(disable)
                    .name("disable_endpoint")
                    .description(
                        "Disables a webhook endpoint: it gets no new messages, and its queued ones \
                         wait until it is enabled again.",
                    )
                    .response_status(404, NOT_FOUND),
            )
    }

    pub(crate) async fn api_create(
        &self,
        body: WebhookEndpointIn,
    ) -> Result<Json<WebhookEndpointCreated>, SubscriptionError> {
        let url = body.url.into_url();
        let mut problems = self
            .check_target(Some(&url), Some(&body.event_types), &["body"])
            .await;
        let secret = match body
            .secret
            .as_ref()
            .map(|s| given_secret(s.expose_secret()))
            .transpose()
        {
            Ok(secret) => secret,
            Err(why) => {
                problems.push(secret_error(&why));
                None
            }
        };
        if !problems.is_empty() {
            return Err(SubscriptionError::Invalid(problems));
        }
        let mut endpoint = NewEndpoint::new(url)
            .description(body.description)
            .event_types(body.event_types)
            .metadata(body.metadata);
        if let Some(secret) = secret {
            endpoint = endpoint.secret(secret);
        }
        let created = self
            .endpoints()
            .await?
            .create(endpoint)
            .await
            .map_err(SubscriptionError::Store)?;
        Ok(Json(WebhookEndpointCreated {
            endpoint: (&created.endpoint).into(),
            secret: created.secret.to_string(),
        }))
    }

    async fn api_list(
        &self,
        query: WebhookEndpointQuery,
    ) -> Result<Json<WebhookEndpointList>, SubscriptionError> {
        let mut filter = EndpointFilter::new();
        filter.enabled = query.enabled;
        filter.event_type = query.event_type;
        filter.after = query.after;
        filter.limit = query.limit.map(|l| l as usize);
        let page = self.list(&filter).await?;
        Ok(Json(WebhookEndpointList {
            data: page.endpoints.iter().map(Into::into).collect(),
            next: page.next,
        }))
    }

    async fn api_get(&self, id: String) -> Result<Json<WebhookEndpoint>, SubscriptionError> {
        Ok(Json((&self.get(&id).await?).into()))
    }

    pub(crate) async fn api_update(
        &self,
        id: String,
        body: WebhookEndpointPatch,
    ) -> Result<Json<WebhookEndpoint>, SubscriptionError> {
        let url = body.url.map(HttpUrl::into_url);
        let problems = self
            .check_target(url.as_ref(), body.event_types.as_deref(), &["body"])
            .await;
        if !problems.is_empty() {
            return Err(SubscriptionError::Invalid(problems));
        }
        let mut update = EndpointUpdate::new();
        update.url = url;
        update.description = body.description;
        update.event_types = body.event_types;
        update.metadata = body.metadata;
        let endpoint = self.apply_update(&id, update).await?;
        Ok(Json((&endpoint).into()))
    }

    async fn api_delete(&self, id: String) -> Result<NoContent, SubscriptionError> {
        self.delete(&id).await?;
        Ok(NoContent)
    }

    async fn api_rotate(
        &self,
        id: String,
        body: WebhookSecretRotation,
    ) -> Result<Json<WebhookSecretRotated>, SubscriptionError> {
        let mut rotation = Rotation::new();
        if let Some(text) = body.secret.as_ref().map(SecretString::expose_secret) {
            match given_secret(text) {
                Ok(secret) => rotation = rotation.secret(secret),
                Err(why) => return Err(SubscriptionError::Invalid(vec![secret_error(&why)])),
            }
        }
        if let Some(seconds) = body.grace_seconds {
            rotation = rotation.grace(Duration::from_secs(seconds));
        }
        let rotated = self.rotate_secret(&id, rotation).await?;
        Ok(Json(WebhookSecretRotated {
            endpoint: (&rotated.endpoint).into(),
            secret: rotated.secret.to_string(),
            previous_expires_at: rotated.previous_expires_at.into(),
        }))
    }

    async fn api_enable(&self, id: String) -> Result<Json<WebhookEndpoint>, SubscriptionError> {
        Ok(Json((&self.enable(&id).await?).into()))
    }

    async fn api_disable(&self, id: String) -> Result<Json<WebhookEndpoint>, SubscriptionError> {
        let endpoint = self
            .disable(&id, "disabled through the management API")
            .await?;
        Ok(Json((&endpoint).into()))
    }
}
