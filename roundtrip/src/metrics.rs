//! Prometheus metrics of deliveries: what was enqueued, what every attempt did, how long
//! messages waited, and how many requests are in flight.
//!
//! Metrics are off by default. [`App::metrics_route`](crate::App::metrics_route) counts and serves
//! them at a path (kept out of the OpenAPI document); [`App::metrics`](crate::App::metrics) counts
//! into a [`DeliveryMetrics`] handle you serve yourself, on an admin port for example, with
//! [`DeliveryMetrics::encode`].
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `roundtrip_messages_enqueued_total` | counter | `kind`, `name` |
//! | `roundtrip_delivery_attempts_total` | counter | `kind`, `name`, `outcome`, `error` |
//! | `roundtrip_delivery_retries_scheduled_total` | counter | `kind`, `name` |
//! | `roundtrip_messages_failed_total` | counter | `kind`, `name` |
//! | `roundtrip_delivery_lag_seconds` | histogram | `kind`, `name` |
//! | `roundtrip_delivery_attempt_duration_seconds` | histogram | `kind`, `name` |
//! | `roundtrip_delivery_requests_in_flight` | gauge | |
//!
//! Label values are bounded: `kind` is `callback` or `webhook`, `name` the declared
//! callback or webhook name, `outcome` one of `succeeded`, `retry` and `failed`, and
//! `error` one of `none`, `http_3xx`, `http_4xx`, `http_5xx` (the receiver answered
//! with that class of status) or the attempt's error kind (`connect`, `timeout`, `io`,
//! `refused`, `secret`, `other`). URLs, ids and secrets are never labels.
//!
//! What is counted, and what is not:
//! * Enqueues are counted when `send` or `publish` stores a new message in this process;
//!   a send swallowed by its idempotency key is not a new message. Messages enqueued
//!   inside the application's own transaction (`enqueue_in`) are not counted here.
//! * Attempts are counted by the process whose workers make them. A message failed
//!   because its workers crashed too often (the crash cap) is not an attempt, so it is
//!   not counted as failed either.

use std::sync::Arc;
use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use roundtrip_delivery::message::{Decision, MessageKind, MessageMeta};
use roundtrip_delivery::worker::{AttemptObserver, AttemptReport};

use crate::delivery::CountEnqueued;

/// Upper bounds of the lag buckets, in seconds: from 5 ms to a day, since a message that
/// waits out the retry schedule is delivered hours after it was enqueued.
const LAG_BUCKETS: [f64; 21] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    1800.0, 3600.0, 7200.0, 18000.0, 36000.0, 86400.0,
];

/// Upper bounds of the attempt duration buckets, in seconds (the default total timeout is
/// 15 s).
const DURATION_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
];

/// The labels of a message: its kind and declared name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    kind: &'static str,
    name: String,
}

impl MessageLabels {
    fn of(message: &MessageMeta) -> Self {
        MessageLabels {
            kind: message.kind.as_str(),
            name: message.name.clone(),
        }
    }
}

/// The labels of an attempt: the message's, what followed, and what went wrong.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    kind: &'static str,
    name: String,
    outcome: &'static str,
    error: &'static str,
}

type HistogramFamily = Family<MessageLabels, Histogram, fn() -> Histogram>;

struct Inner {
    registry: Registry,
    enqueued: Family<MessageLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    retries: Family<MessageLabels, Counter>,
    failed: Family<MessageLabels, Counter>,
    lag: HistogramFamily,
    duration: HistogramFamily,
    in_flight: Gauge,
}

/// The delivery metrics of an app, counted as messages are enqueued and attempted, and
/// written in Prometheus' text format.
///
/// Cloning is cheap: clones count into the same metrics.
///
/// ```
/// use roundtrip::App;
/// use roundtrip::metrics::DeliveryMetrics;
///
/// let metrics = DeliveryMetrics::new();
/// let app = App::new().metrics(&metrics);
/// // Serve `metrics.encode()` wherever suits (an admin port, say). A family appears once
/// // something is counted in it; the in-flight gauge is always there.
/// assert!(metrics.encode().contains("roundtrip_delivery_requests_in_flight 0"));
/// ```
#[derive(Clone)]
pub struct DeliveryMetrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DeliveryMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryMetrics")
            .field("in_flight", &self.inner.in_flight.get())
            .finish_non_exhaustive()
    }
}

impl Default for DeliveryMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn lag_histogram() -> Histogram {
    Histogram::new(LAG_BUCKETS)
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl DeliveryMetrics {
    /// The content type of [`encode`](Self::encode)'s text: Prometheus' text format 0.0.4.
    pub const CONTENT_TYPE: &'static str =
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

    /// Fresh metrics, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("roundtrip");
        let enqueued = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages_enqueued",
            "Messages stored in the outbox by send or publish, by kind and name",
            enqueued.clone(),
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Delivery attempts, by what followed (succeeded, retry, failed) and what went wrong (none, http_4xx, timeout...)",
            attempts.clone(),
        );
        let retries = Family::<MessageLabels, Counter>::default();
        registry.register(
            "delivery_retries_scheduled",
            "Attempts after which a retry was scheduled",
            retries.clone(),
        );
        let failed = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages_failed",
            "Messages that failed for good (retries exhausted, or 410 Gone): dead letters, to replay",
            failed.clone(),
        );
        let lag: HistogramFamily = Family::new_with_constructor(lag_histogram);
        registry.register_with_unit(
            "delivery_lag",
            "Time from enqueue to successful delivery",
            Unit::Seconds,
            lag.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "delivery_attempt_duration",
            "Time one attempt took, from connecting to reading the stored part of the response",
            Unit::Seconds,
            duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "delivery_requests_in_flight",
            "Delivery requests being sent right now",
            in_flight.clone(),
        );
        DeliveryMetrics {
            inner: Arc::new(Inner {
                registry,
                enqueued,
                attempts,
                retries,
                failed,
                lag,
                duration,
                in_flight,
            }),
        }
    }

    /// The metrics in Prometheus' text format (version 0.0.4, served as
    /// [`CONTENT_TYPE`](Self::CONTENT_TYPE)).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; a metric that could not be written is left out
        // rather than failing the scrape.
        let _ =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.inner.registry);
        text
    }

    /// Counts `count` new messages of `kind` named `name` stored in the outbox.
    pub(crate) fn count_enqueued(&self, kind: MessageKind, name: &str, count: u64) {
        if count == 0 {
            return;
        }
        self.inner
            .enqueued
            .get_or_create(&MessageLabels {
                kind: kind.as_str(),
                name: name.to_owned(),
            })
            .inc_by(count);
    }
}

/// The metrics an app counts into, and the observer that counts its attempts (kept to
/// take it out again when the metrics are replaced).
#[derive(Clone)]
pub(crate) struct AttachedMetrics {
    pub(crate) metrics: DeliveryMetrics,
    observer: Arc<dyn AttemptObserver>,
}

impl AttachedMetrics {
    pub(crate) fn new(metrics: DeliveryMetrics, observer: Arc<dyn AttemptObserver>) -> Self {
        AttachedMetrics { metrics, observer }
    }

    /// The observer counting the attempts, as the app's delivery holds it.
    pub(crate) fn observer(&self) -> &Arc<dyn AttemptObserver> {
        &self.observer
    }
}

impl CountEnqueued for DeliveryMetrics {
    fn count_enqueued(&self, kind: MessageKind, name: &str, count: u64) {
        DeliveryMetrics::count_enqueued(self, kind, name, count);
    }
}

/// What went wrong in an attempt, as a bounded label value.
pub(crate) fn error_label(report: &AttemptReport<'_>) -> &'static str {
    if let Some(error) = &report.attempt.error {
        return error.kind.as_str();
    }
    match report.attempt.response_status {
        Some(300..=399) => "http_3xx",
        Some(400..=499) => "http_4xx",
        Some(500..=599) => "http_5xx",
        Some(200..=299) | None => "none",
        Some(_) => "other",
    }
}

impl AttemptObserver for DeliveryMetrics {
    fn started(&self, _message: &MessageMeta) {
        self.inner.in_flight.inc();
    }

    fn finished(&self, report: &AttemptReport<'_>) {
        let inner = &self.inner;
        inner.in_flight.dec();
        let labels = MessageLabels::of(report.message);
        inner
            .attempts
            .get_or_create(&AttemptLabels {
                kind: labels.kind,
                name: labels.name.clone(),
                outcome: report.decision.as_str(),
                error: error_label(report),
            })
            .inc();
        inner
            .duration
            .get_or_create(&labels)
            .observe(report.attempt.duration.as_secs_f64());
        match report.decision {
            Decision::Succeeded => {
                let lag = SystemTime::now()
                    .duration_since(report.message.created_at)
                    .unwrap_or_default();
                inner.lag.get_or_create(&labels).observe(lag.as_secs_f64());
            }
            Decision::Retry { .. } => {
                inner.retries.get_or_create(&labels).inc();
            }
            Decision::Failed { .. } => {
                inner.failed.get_or_create(&labels).inc();
            }
        }
    }
}
