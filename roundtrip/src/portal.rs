//! The portal: a page an API hands to one of its customers, where that customer manages
//! their own webhook endpoints — adds one, chooses its event types, reads its delivery log,
//! rotates its secret, sends a test event and replays a failure — and sees nobody else's.
//!
//! ```no_run
//! use std::time::Duration;
//! use roundtrip::deliveries::Deliveries;
//! use roundtrip::portal::Portal;
//! use roundtrip::security::{ApiKeyConfig, ApiKeyHeader};
//! use roundtrip::subscriptions::Subscriptions;
//! use roundtrip::App;
//!
//! struct AdminKey;
//! impl ApiKeyConfig for AdminKey {
//!     const NAME: &'static str = "X-Admin-Key";
//! }
//!
//! let subscriptions = Subscriptions::new();
//! let deliveries = Deliveries::new();
//! let key = std::env::var("PORTAL_KEY").expect("32 bytes or more");
//! let portal = Portal::new(key.as_bytes(), &deliveries, &subscriptions).expect("a long key");
//! let app = App::new()
//!     .subscriptions(subscriptions)
//!     .deliveries(deliveries)
//!     // The page at /portal, its API at /portal/api/..., and POST /portal/links (behind
//!     // the admin key) that mints a customer's link.
//!     .include(portal.router::<ApiKeyHeader<AdminKey>, ()>());
//! // In your own code: the link for customer `cus_42`, valid for an hour.
//! let link = portal.link("cus_42", Duration::from_secs(3600)).expect("a valid id");
//! ```
//!
//! # Policy
//!
//! * **A link is a signed, expiring grant.** [`Portal::link`] signs the customer id and an
//!   expiry with HMAC-SHA256 under the portal's key. The token travels in the link's
//!   fragment (`/portal#token=...`), which browsers never send to servers, so it stays out
//!   of access logs and `Referer`; the page sends it as a bearer token. An expired,
//!   tampered or foreign token is a 401.
//! * **Ownership lives on the endpoint.** An endpoint belongs to a customer when its
//!   metadata's [`CUSTOMER_KEY`] is that customer's id. The portal writes it on the
//!   endpoints it creates, and never lets a customer change metadata. Every operation
//!   checks it on the server; someone else's endpoint or message is a 404, as if it did not
//!   exist. A message belongs to the customer who owns its endpoint, so callbacks (which
//!   have no endpoint) never show in a portal.
//! * **Publishing to one customer**: [`Publisher::publish_to_customer`](crate::Publisher::publish_to_customer)
//!   (crate::Publisher::publish_to_customer) sends an event only to that customer's
//!   endpoints; `publish` sends to every subscriber.
//! * **The page** is one HTML document with its script and style embedded, under a
//!   Content-Security-Policy that runs only them. Payloads and response bodies are shown
//!   as text (`textContent`), never as markup. Secrets are shown once, when created or
//!   rotated.
//! * Listing a customer's endpoints reads the endpoint table page by page and keeps the
//!   customer's: fine for thousands of endpoints, not for millions.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::extract::OriginalUri;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit as _, Mac as _};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use roundtrip_delivery::endpoints::EndpointFilter;
use roundtrip_openapi::validate::LocItem;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::HttpUrl;
use crate::deliveries::{
    Deliveries, DeliveryError, DeliveryStatus, EndpointView, EventInfo, MessageDetail, MessageList,
    MessageQuery, MessageSummary, SecretRotationRequest, TestEventRequest, TestEventSent,
};
use crate::error::HttpError;
use crate::extract::{Json, Path, Query};
use crate::operation::{OperationInput, OperationOutput};
use crate::router::Router;
use crate::routing::{get, post};
use crate::subscriptions::{
    Subscriptions, WebhookEndpoint, WebhookEndpointCreated, WebhookEndpointIn,
    WebhookEndpointPatch, WebhookSecretRotated,
};

pub use crate::delivery::publish::CUSTOMER_KEY;

/// The shortest portal key, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// The longest a link may last: 30 days.
pub const MAX_LINK_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The domain of the signature, so a portal token can never pass for another signature
/// made with the same key.
const SIGNED_PREFIX: &str = "roundtrip-portal-v1";

const HTML: &str = include_str!("portal/portal.html");
const CSS: &str = include_str!("portal/portal.css");
const SCRIPT: &str = include_str!("portal/portal.js");

/// The portal of an app: signs customers' links and serves their page and its API.
/// Cheap to clone.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

struct Inner {
    key: Vec<u8>,
    deliveries: Deliveries,
    subscriptions: Subscriptions,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal").finish_non_exhaustive()
    }
}

/// Why a portal could not be made or a link signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortalError {
    /// The key is shorter than [`MIN_KEY_BYTES`].
    #[error("the portal key has {0} bytes; it needs at least 32 random bytes")]
    ShortKey(usize),
    /// The customer id is empty, longer than 128 characters, or has characters other
    /// than letters, digits and `_-.:@`.
    #[error("`{0}` is not a customer id: use 1 to 128 letters, digits and `_-.:@`")]
    CustomerId(String),
    /// The link would last longer than [`MAX_LINK_TTL`], or not at all.
    #[error("a portal link lasts between 1 second and 30 days")]
    Ttl,
}

/// Why a token was refused (all answer the same 401: the reason is only logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a portal token.
    Malformed,
    /// The signature does not match.
    Signature,
    /// It expired.
    Expired,
}

/// A customer's signed link to the portal.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PortalLink {
    /// The page's path with the token in its fragment: append it to the API's origin.
    pub url: String,
    /// The token alone, for a page served elsewhere.
    pub token: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

fn valid_customer(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:@".contains(&b))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Portal {
    /// A portal signing links with `key` (at least 32 random bytes; keep it secret, and
    /// the same across the app's processes), over the app's deliveries and subscriptions
    /// (give the same values to [`App::deliveries`](crate::App::deliveries) and
    /// [`App::subscriptions`](crate::App::subscriptions)).
    pub fn new(
        key: &[u8],
        deliveries: &Deliveries,
        subscriptions: &Subscriptions,
    ) -> Result<Self, PortalError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(PortalError::ShortKey(key.len()));
        }
        Ok(Portal {
            inner: Arc::new(Inner {
                key: key.to_vec(),
                deliveries: deliveries.clone(),
                subscriptions: subscriptions.clone(),
            }),
        })
    }

    fn mac(&self, customer: &str, expires: u64) -> Hmac<Sha256> {
        // A key of any length is accepted by HMAC; the length was checked in `new`.
        let mut mac =
            <Hmac<Sha256>>::new_from_slice(&self.inner.key).expect("HMAC takes keys of any length");
        mac.update(format!("{SIGNED_PREFIX}\n{customer}\n{expires}").as_bytes());
        mac
    }

    /// A token for `customer`, valid for `ttl`.
    pub fn token(
        &self,
        customer: &str,
        ttl: Duration,
    ) -> Result<(String, SystemTime), PortalError> {
        if !valid_customer(customer) {
            return Err(PortalError::CustomerId(customer.to_owned()));
        }
        if ttl < Duration::from_secs(1) || ttl > MAX_LINK_TTL {
            return Err(PortalError::Ttl);
        }
        // Rounded up to the second: a link lasts at least `ttl`.
        let expires = (SystemTime::now() + ttl)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .unwrap_or(0);
        let signature = self.mac(customer, expires).finalize().into_bytes();
        let token = format!("{}.{expires}.{}", b64(customer.as_bytes()), b64(&signature));
        Ok((token, UNIX_EPOCH + Duration::from_secs(expires)))
    }

    /// The link for `customer`, valid for `ttl`, to the page served at `/portal` (prefix
    /// it with wherever the router is mounted).
    pub fn link(&self, customer: &str, ttl: Duration) -> Result<PortalLink, PortalError> {
        self.link_at("/portal", customer, ttl)
    }

    fn link_at(
        &self,
        page: &str,
        customer: &str,
        ttl: Duration,
    ) -> Result<PortalLink, PortalError> {
        let (token, expires_at) = self.token(customer, ttl)?;
        Ok(PortalLink {
            url: format!("{page}#token={token}"),
            token,
            expires_at: expires_at.into(),
        })
    }

    /// The customer a token was signed for, if it is genuine and has not expired at `now`.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<String, TokenError> {
        let mut parts = token.split('.');
        let (Some(customer), Some(expires), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let customer = engine
            .decode(customer)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|c| valid_customer(c))
            .ok_or(TokenError::Malformed)?;
        if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TokenError::Malformed);
        }
        let expires: u64 = expires.parse().map_err(|_| TokenError::Malformed)?;
        let signature = engine
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(&customer, expires)
            .verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now >= expires {
            return Err(TokenError::Expired);
        }
        Ok(customer)
    }

    /// The customer of a request's bearer token, or the 401 that refuses it.
    fn customer(&self, headers: &HeaderMap) -> Result<Customer, PortalApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(PortalApiError::Unauthorized)?;
        match self.verify(token, SystemTime::now()) {
            Ok(customer) => Ok(Customer(customer)),
            Err(why) => {
                tracing::info!(reason = ?why, "portal token refused");
                Err(PortalApiError::Unauthorized)
            }
        }
    }

    /// Whether `endpoint_id` is an endpoint of `customer`; a missing endpoint is not.
    async fn owns(&self, customer: &Customer, endpoint_id: &str) -> Result<bool, PortalApiError> {
        match self.inner.subscriptions.get(endpoint_id).await {
            Ok(endpoint) => Ok(owned_by(&endpoint.metadata, customer)),
            Err(err) if err.is_not_found() || err.is_invalid() => Ok(false),
            Err(err) => Err(PortalApiError::Subscriptions(err)),
        }
    }

    async fn own_endpoint(
        &self,
        customer: &Customer,
        endpoint_id: &str,
    ) -> Result<(), PortalApiError> {
        if self.owns(customer, endpoint_id).await? {
            Ok(())
        } else {
            Err(PortalApiError::NotFound("No webhook endpoint has this id"))
        }
    }

    async fn own_message(
        &self,
        customer: &Customer,
        message_id: &str,
    ) -> Result<MessageDetail, PortalApiError> {
        const NONE: &str = "No message has this id";
        let detail = match self.inner.deliveries.message(message_id).await {
            Ok(detail) => detail,
            Err(DeliveryError::NotFound(_)) => return Err(PortalApiError::NotFound(NONE)),
            Err(err) => return Err(err.into()),
        };
        match &detail.message.endpoint_id {
            Some(endpoint) if self.owns(customer, endpoint).await? => Ok(detail),
            _ => Err(PortalApiError::NotFound(NONE)),
        }
    }

    async fn endpoints(&self, customer: &Customer) -> Result<PortalEndpoints, PortalApiError> {
        let mut filter = EndpointFilter::new();
        filter.limit = Some(1000);
        let mut data = Vec::new();
        // Bounded: 1000 pages of 1000 endpoints.
        for _ in 0..1000 {
            let page = self.inner.subscriptions.list(&filter).await?;
            for endpoint in &page.endpoints {
                if owned_by(&endpoint.metadata, customer) {
                    data.push(self.inner.deliveries.endpoint(&endpoint.id).await?);
                }
            }
            match page.next {
                Some(next) => filter.after = Some(next),
                None => break,
            }
        }
        Ok(PortalEndpoints { data })
    }

    async fn create(
        &self,
        customer: &Customer,
        body: PortalEndpointIn,
    ) -> Result<WebhookEndpointCreated, PortalApiError> {
        let mut metadata = Map::new();
        metadata.insert(CUSTOMER_KEY.to_owned(), Value::String(customer.0.clone()));
        let created = self
            .inner
            .subscriptions
            .api_create(WebhookEndpointIn {
                url: body.url,
                description: body.description,
                event_types: body.event_types,
                secret: None,
                metadata,
            })
            .await?;
        Ok(created.0)
    }

    async fn update(
        &self,
        customer: &Customer,
        endpoint_id: &str,
        body: PortalEndpointPatch,
    ) -> Result<WebhookEndpoint, PortalApiError> {
        self.own_endpoint(customer, endpoint_id).await?;
        let patch = WebhookEndpointPatch {
            url: body.url,
            description: body.description,
            event_types: body.event_types,
            metadata: None,
        };
        Ok(self
            .inner
            .subscriptions
            .api_update(endpoint_id.to_owned(), patch)
            .await?
            .0)
    }

    async fn messages(
        &self,
        customer: &Customer,
        query: PortalMessageQuery,
    ) -> Result<MessageList, PortalApiError> {
        self.own_endpoint(customer, &query.endpoint_id).await?;
        let query = MessageQuery {
            status: query.status,
            endpoint_id: Some(query.endpoint_id),
            before: query.before,
            limit: query.limit,
            ..MessageQuery::default()
        };
        Ok(self.inner.deliveries.list(&query).await?)
    }

    /// The page, its API, and the operation that mints links behind the app's guard `G`:
    ///
    /// * `GET /portal`: the page (it shows nothing without a token);
    /// * `/portal/api/...`: the customer's operations, each behind the bearer token of a
    ///   link (kept out of the app's document: they are the page's, not the API's);
    /// * `POST /portal/links`: a customer's link, behind `G` (documented).
    pub fn router<G, S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        G: FromRequestParts<S> + OperationInput + Send + 'static,
    {
        let p = self.clone();
        let mint =
            move |_: G, OriginalUri(uri): OriginalUri, Json(body): Json<PortalLinkRequest>| {
                let p = p.clone();
                async move {
                    let page = uri
                        .path()
                        .strip_suffix("/links")
                        .unwrap_or("/portal")
                        .to_owned();
                    let ttl = Duration::from_secs(body.ttl_seconds.unwrap_or(3600));
                    p.link_at(&page, &body.customer_id, ttl)
                        .map(Json)
                        .map_err(|err| {
                            let loc = match err {
                                PortalError::Ttl => "ttl_seconds",
                                _ => "customer_id",
                            };
                            PortalApiError::Invalid(loc, err.to_string())
                        })
                }
            };
        let p = self.clone();
        let list = move |headers: HeaderMap| {
            let p = p.clone();
            async move {
                let customer = p.customer(&headers)?;
                p.endpoints(&customer).await.map(Json)
            }
        };
        let p = self.clone();
        let create = move |headers: HeaderMap, Json(body): Json<PortalEndpointIn>| {
            let p = p.clone();
            async move {
                let customer = p.customer(&headers)?;
                p.create(&customer, body)
                    .await
                    .map(|created| (StatusCode::CREATED, Json(created)))
            }
        };
        let p = self.clone();
        let read = move |headers: HeaderMap, Path(path): Path<EndpointIdPath>| {
            let p = p.clone();
            async move {
                let customer = p.customer(&headers)?;
                p.own_endpoint(&customer, &path.endpoint_id).await?;
                Ok::<_, PortalApiError>(Json(p.inner.deliveries.endpoint(&path.endpoint_id).await?))
            }
        };
        let p = self.clone();
        let update = move |headers: HeaderMap,
                           Path(path): Path<EndpointIdPath>,
                           Json(body): Json<PortalEndpointPatch>| {
            let p = p.clone();
            async move {
                let customer = p.customer(&headers)?;
                p.update(&customer, &path.endpoint_id, body).await.map(Json)
            }
        };
        let p = self.clone();
        let rotate = move |headers: HeaderMap, Path(path): Path<EndpointIdPath>| {
            let p = p.clone();
            async move {
                let customer = p.customer(&headers)?;
                p.own_endpoint(&customer, &path.endpoint_id).await?;
                let rotated: WebhookSecretRotated = p
                    .inner
                    .deliveries
                    .rotate_secret(&path.endpoint_id, &SecretRotationRequest::default())
                    .await?;
                Ok::<_, PortalApiError>(Json(rotated))
            }
        };
        let p = self.clone();
        let test = move |headers: HeaderMap,
                         Path(path): Path<EndpointIdPath>,
                         Json(body): Json<TestEventRequest>| {
            let p = p.clone();
            async move {
                let customer = p.customer(&headers)?;
                p.own_endpoint(&customer, &path.endpoint_id).await?;
                let sent: TestEventSent = p
                    .inner
                    .deliveries
                    .send_test(&path.endpoint_id, &body)
                    .await?;
                Ok::<_, PortalApiError>(Json(sent))
            }
        };
        let p = self.clone();
        let messages = move |headers: HeaderMap, Query(query): Query<PortalMessageQuery>| {
            let p = p.clone();
            async move {
                let customer = p.customer(&headers)?;
                p.messages(&customer, query).await.map(Json)
            }
        };
        let p = self.clone();
        let message = move |headers: HeaderMap, Path(path): Path<MessageIdPath>| {
            let p = p.clone();
            async move {
                let customer = p.customer(&headers)?;
                p.own_message(&customer, &path.message_id).await.map(Json)
            }
        };
        let p = self.clone();
        let replay = move |headers: HeaderMap, Path(path): Path<MessageIdPath>| {
            let p = p.clone();
            async move {
                let customer = p.customer(&headers)?;
                p.own_message(&customer, &path.message_id).await?;
                let replayed: MessageSummary = p.inner.deliveries.replay(&path.message_id).await?;
                Ok::<_, PortalApiError>(Json(replayed))
            }
        };
        let p = self.clone();
        let events = move |headers: HeaderMap| {
            let p = p.clone();
            async move {
                p.customer(&headers)?;
                let data: Vec<EventInfo> = p
                    .inner
                    .deliveries
                    .events()
                    .data
                    .into_iter()
                    .filter(|e| e.kind == crate::deliveries::DeliveryKind::Webhook)
                    .collect();
                Ok::<_, PortalApiError>(Json(PortalEvents { data }))
            }
        };
        Router::new()
            .route("/portal", get(page).hidden())
            .route(
                "/portal/links",
                post(mint)
                    .name("create_portal_link")
                    .tag("portal")
                    .description(
                        "Signs a link to the portal for one customer: the page where they \
                         manage their own webhook endpoints. Hand it to that customer only.",
                    ),
            )
            .route(
                "/portal/api/endpoints",
                get(list).hidden().post(create).hidden(),
            )
            .route(
                "/portal/api/endpoints/{endpoint_id}",
                get(read).hidden().patch(update).hidden(),
            )
            .route(
                "/portal/api/endpoints/{endpoint_id}/rotate-secret",
                post(rotate).hidden(),
            )
            .route(
                "/portal/api/endpoints/{endpoint_id}/test",
                post(test).hidden(),
            )
            .route("/portal/api/messages", get(messages).hidden())
            .route("/portal/api/messages/{message_id}", get(message).hidden())
            .route(
                "/portal/api/messages/{message_id}/replay",
                post(replay).hidden(),
            )
            .route("/portal/api/events", get(events).hidden())
    }
}

fn owned_by(metadata: &Map<String, Value>, customer: &Customer) -> bool {
    metadata.get(CUSTOMER_KEY).and_then(Value::as_str) == Some(customer.0.as_str())
}

/// The customer a request's token names.
struct Customer(String);

/// A link to mint.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PortalLinkRequest {
    /// The customer the link is for: 1 to 128 letters, digits and `_-.:@`.
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9_.:@-]+$"))]
    pub customer_id: String,
    /// How long the link works, in seconds (an hour by default, 30 days at most).
    #[serde(default)]
    #[schemars(range(min = 1, max = 2592000))]
    pub ttl_seconds: Option<u64>,
}

/// An endpoint a customer adds.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PortalEndpointIn {
    /// Where to send the events.
    pub url: HttpUrl,
    /// What the endpoint is for.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub description: String,
    /// The events to receive; none to receive every event.
    #[serde(default)]
    #[schemars(length(max = 256), inner(length(min = 1, max = 255)))]
    pub event_types: Vec<String>,
}

/// Changes a customer makes to an endpoint.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PortalEndpointPatch {
    /// A new URL.
    #[serde(default)]
    pub url: Option<HttpUrl>,
    /// A new description.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// New event types (empty: every event).
    #[serde(default)]
    #[schemars(length(max = 256), inner(length(min = 1, max = 255)))]
    pub event_types: Option<Vec<String>>,
}

/// A customer's delivery log query: one of their endpoints.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PortalMessageQuery {
    /// The endpoint (`ep_...`).
    #[schemars(pattern(r"^ep_[0-9A-Za-z]{27}$"))]
    pub endpoint_id: String,
    /// Only messages in these states.
    #[serde(default)]
    pub status: Vec<DeliveryStatus>,
    /// Only messages older than this one: the `next` of the previous page.
    #[serde(default)]
    #[schemars(pattern(r"^msg_[0-9A-Za-z]{27}$"))]
    pub before: Option<String>,
    /// At most this many (50 by default).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

/// An endpoint id in a path.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct EndpointIdPath {
    /// `ep_...`
    #[schemars(pattern(r"^ep_[0-9A-Za-z]{27}$"))]
    pub endpoint_id: String,
}

/// A message id in a path.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct MessageIdPath {
    /// `msg_...`
    #[schemars(pattern(r"^msg_[0-9A-Za-z]{27}$"))]
    pub message_id: String,
}

/// A customer's endpoints with their health.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PortalEndpoints {
    /// Oldest first.
    pub data: Vec<EndpointView>,
}

/// The events a customer can subscribe to.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PortalEvents {
    /// The app's webhooks, with schemas and example payloads.
    pub data: Vec<EventInfo>,
}

/// How a portal operation fails.
#[derive(Debug)]
enum PortalApiError {
    Unauthorized,
    NotFound(&'static str),
    Invalid(&'static str, String),
    Deliveries(DeliveryError),
    Subscriptions(crate::subscriptions::SubscriptionError),
}

impl From<DeliveryError> for PortalApiError {
    fn from(err: DeliveryError) -> Self {
        PortalApiError::Deliveries(err)
    }
}

impl From<crate::subscriptions::SubscriptionError> for PortalApiError {
    fn from(err: crate::subscriptions::SubscriptionError) -> Self {
        PortalApiError::Subscriptions(err)
    }
}

impl IntoResponse for PortalApiError {
    fn into_response(self) -> Response {
        match self {
            PortalApiError::Unauthorized => HttpError::unauthorized(
                "This portal link is not valid or has expired: ask for a new one",
            )
            .header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
            .into_response(),
            PortalApiError::NotFound(m) => HttpError::not_found(m).into_response(),
            PortalApiError::Invalid(field, message) => {
                crate::error::RequestValidationError::new(vec![crate::error::value_error(
                    vec![LocItem::key("body"), LocItem::key(field)],
                    &message,
                    Value::Null,
                )])
                .into_response()
            }
            PortalApiError::Deliveries(err) => err.into_response(),
            PortalApiError::Subscriptions(err) => err.into_response(),
        }
    }
}

impl OperationOutput for PortalApiError {}

/// The page's Content-Security-Policy: only its own embedded script and style run, and it
/// talks only to its own origin.
fn policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hash = |text: &str| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
        };
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; \
             connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
            hash(SCRIPT),
            hash(CSS)
        )
    })
}

/// The page: the same for every customer; the token in the link's fragment does the rest.
async fn page() -> Response {
    let html = HTML.replace("/*STYLE*/", CSS).replace("/*SCRIPT*/", SCRIPT);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(policy())
                .unwrap_or(HeaderValue::from_static("default-src 'none'")),
        )],
        html,
    )
        .into_response()
}
