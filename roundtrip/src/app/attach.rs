//! What an app attaches beside its routes, declared on [`App`]: delivery metrics,
//! OpenTelemetry, webhook subscriptions and the deliveries API. Each is built by its own
//! module; the app plugs it into its delivery when it is built.

use std::sync::Arc;

use roundtrip_delivery::worker::AttemptObserver;

use super::App;
use crate::deliveries::Deliveries;
use crate::metrics::{AttachedMetrics, DeliveryMetrics};
use crate::subscriptions::Subscriptions;
#[cfg(feature = "opentelemetry")]
use crate::telemetry::{OtelMetrics, Telemetry};

impl<S: Clone + Send + Sync + 'static> App<S> {
    /// Counts the app's deliveries into `metrics`: enqueues by `send` and `publish`, and
    /// every attempt of this process's workers. Serve them yourself with
    /// [`DeliveryMetrics::encode`], or use [`metrics_route`](Self::metrics_route).
    /// A second call replaces the first.
    pub fn metrics(mut self, metrics: &DeliveryMetrics) -> Self {
        if let Some(previous) = self.metrics.take() {
            self.delivery
                .observers
                .retain(|o| !Arc::ptr_eq(o, previous.observer()));
        }
        let observer: Arc<dyn AttemptObserver> = Arc::new(metrics.clone());
        self.delivery.observers.push(observer.clone());
        self.metrics = Some(AttachedMetrics::new(metrics.clone(), observer));
        self
    }

    /// Counts the app's deliveries (as [`metrics`](Self::metrics) does) and serves them in
    /// Prometheus' text format at `path`, for example `/metrics`. The route is kept out of
    /// the OpenAPI document. Off by default: the metrics name the app's callbacks and
    /// webhooks, so mount it where only your monitoring can reach it, or guard it with a
    /// layer.
    pub fn metrics_route(self, path: impl Into<String>) -> Self {
        let metrics = self
            .metrics
            .as_ref()
            .map(|attached| attached.metrics.clone())
            .unwrap_or_default();
        let serving = metrics.clone();
        let route = crate::routing::get(move || {
            let metrics = serving.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, DeliveryMetrics::CONTENT_TYPE)],
                    metrics.encode(),
                )
            }
        })
        .hidden();
        self.metrics(&metrics).route(path, route)
    }

    /// Reports the app to OpenTelemetry's global providers: a span for each request
    /// (wrapping the layers added before this call) and each delivery attempt, and the
    /// delivery metrics. See [`crate::telemetry`].
    #[cfg(feature = "opentelemetry")]
    pub fn opentelemetry(mut self, telemetry: Telemetry) -> Self {
        let metrics = OtelMetrics::global();
        self.telemetry = Some(metrics.clone());
        self.delivery
            .observers
            .push(Arc::new(metrics) as Arc<dyn AttemptObserver>);
        let send = telemetry.send_traceparent;
        self.configure_dispatcher(move |config| config.send_traceparent(send))
            .layer(axum::middleware::from_fn(crate::telemetry::trace_request))
    }

    /// Adds webhook subscriptions: the endpoints are stored beside the outbox, sign the
    /// messages bound for them, and are disabled when they answer 410 or keep failing.
    /// [`Publisher::publish`](crate::Publisher::publish) sends an event to every endpoint that
    /// wants it. Mount [`Subscriptions::router`] to manage them over HTTP.
    pub fn subscriptions(mut self, subscriptions: Subscriptions) -> Self {
        self.delivery.endpoint_secrets = Some(Arc::new(subscriptions.clone()));
        self.delivery
            .observers
            .push(Arc::new(subscriptions.clone()));
        self.subscriptions = Some(subscriptions);
        self
    }

    /// Adds the deliveries API: bound to the app's outbox, its subscriptions and its
    /// document's events when the app is built. Mount [`Deliveries::router`] to serve it.
    pub fn deliveries(mut self, deliveries: Deliveries) -> Self {
        self.deliveries.push(deliveries);
        self
    }
}
