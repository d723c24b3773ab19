//! OpenTelemetry (the `opentelemetry` feature, off by default): a span for each request
//! and each delivery attempt, the attempt linked to the request that enqueued its message,
//! `traceparent` sent to receivers as an option, and the delivery metrics of `/metrics`
//! as OpenTelemetry instruments.
//!
//! [`App::opentelemetry`](crate::App::opentelemetry) turns it on for an app; spans and metrics go
//! to the global providers of `opentelemetry::global`, which [`install_otlp`] points at an
//! OTLP/HTTP collector (`serve --otlp-endpoint http://127.0.0.1:4318` does both). Tests install
//! providers of their own (the SDK's in-memory exporters).
//!
//! | span | kind | name | links |
//! |---|---|---|---|
//! | a request | server | `GET /path` | its parent is the request's `traceparent`, if any |
//! | an attempt | client | `deliver {callback or webhook name}` | the span that enqueued the
//! message |
//!
//! | instrument | type | attributes |
//! |---|---|---|
//! | `roundtrip.messages.enqueued` | counter | `kind`, `name` |
//! | `roundtrip.delivery.attempts` | counter | `kind`, `name`, `outcome`, `error` |
//! | `roundtrip.delivery.retries_scheduled` | counter | `kind`, `name` |
//! | `roundtrip.messages.failed` | counter | `kind`, `name` |
//! | `roundtrip.delivery.lag` | histogram (s) | `kind`, `name` |
//! | `roundtrip.delivery.attempt.duration` | histogram (s) | `kind`, `name` |
//! | `roundtrip.delivery.requests_in_flight` | up-down counter | |
//!
//! They count what the Prometheus metrics count (see [`crate::metrics`]), with the same
//! bounded attribute values.

use std::time::{Duration, SystemTime};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::context::FutureExt as _;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use roundtrip_delivery::message::{Decision, MessageKind, MessageMeta};
use roundtrip_delivery::worker::{AttemptObserver, AttemptReport};

use crate::delivery::CountEnqueued;

/// The instrumentation scope of roundtrip's spans and instruments.
const SCOPE: &str = "roundtrip";

/// How an app reports to OpenTelemetry.
#[derive(Clone, Debug, Default)]
pub struct Telemetry {
    pub(crate) send_traceparent: bool,
}

impl Telemetry {
    /// Spans and metrics, without `traceparent` sent to receivers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends each delivery attempt's W3C trace context (`traceparent`, `tracestate`) to
    /// the receiver, so that its spans join the attempt's trace. Off by default: it hands
    /// your trace ids to the receivers, who may be other companies.
    pub fn send_traceparent(mut self, send: bool) -> Self {
        self.send_traceparent = send;
        self
    }
}

/// The span of one request: its parent is the caller's `traceparent`, and the handler runs
/// inside it, so the messages it enqueues store its context.
pub(crate) async fn trace_request(request: Request, next: Next) -> Response {
    let parent = roundtrip_delivery::telemetry::extract_headers(request.headers());
    let tracer = global::tracer_provider().tracer(SCOPE);
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let span = tracer
        .span_builder(format!("{method} {path}"))
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", method),
            KeyValue::new("url.path", path),
        ])
        .start_with_context(&tracer, &parent);
    let cx = parent.with_span(span);
    let response = next.run(request).with_context(cx.clone()).await;
    let span = cx.span();
    let status = response.status();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        span.set_status(Status::error(status.to_string()));
    }
    span.end();
    response
}

/// The delivery metrics as OpenTelemetry instruments.
#[derive(Clone)]
pub(crate) struct OtelMetrics {
    enqueued: Counter<u64>,
    attempts: Counter<u64>,
    retries: Counter<u64>,
    failed: Counter<u64>,
    lag: Histogram<f64>,
    duration: Histogram<f64>,
    in_flight: UpDownCounter<i64>,
}

fn message_attributes(kind: MessageKind, name: &str) -> [KeyValue; 2] {
    [
        KeyValue::new("kind", kind.as_str()),
        KeyValue::new("name", name.to_owned()),
    ]
}

impl CountEnqueued for OtelMetrics {
    fn count_enqueued(&self, kind: MessageKind, name: &str, count: u64) {
        OtelMetrics::count_enqueued(self, kind, name, count);
    }
}

impl OtelMetrics {
    /// The instruments, from the global meter provider.
    pub(crate) fn global() -> Self {
        OtelMetrics::new(&global::meter_provider().meter(SCOPE))
    }

    fn new(meter: &Meter) -> Self {
        OtelMetrics {
            enqueued: meter
                .u64_counter("roundtrip.messages.enqueued")
                .with_description("Messages stored in the outbox by send or publish")
                .build(),
            attempts: meter
                .u64_counter("roundtrip.delivery.attempts")
                .with_description("Delivery attempts, by what followed and what went wrong")
                .build(),
            retries: meter
                .u64_counter("roundtrip.delivery.retries_scheduled")
                .with_description("Attempts after which a retry was scheduled")
                .build(),
            failed: meter
                .u64_counter("roundtrip.messages.failed")
                .with_description("Messages that failed for good: dead letters, to replay")
                .build(),
            lag: meter
                .f64_histogram("roundtrip.delivery.lag")
                .with_unit("s")
                .with_description("Time from enqueue to successful delivery")
                .build(),
            duration: meter
                .f64_histogram("roundtrip.delivery.attempt.duration")
                .with_unit("s")
                .with_description("Time one attempt took")
                .build(),
            in_flight: meter
                .i64_up_down_counter("roundtrip.delivery.requests_in_flight")
                .with_description("Delivery requests being sent right now")
                .build(),
        }
    }

    /// Counts `count` new messages of `kind` named `name`.
    pub(crate) fn count_enqueued(&self, kind: MessageKind, name: &str, count: u64) {
        if count > 0 {
            self.enqueued.add(count, &message_attributes(kind, name));
        }
    }
}

impl AttemptObserver for OtelMetrics {
    fn started(&self, _message: &MessageMeta) {
        self.in_flight.add(1, &[]);
    }

    fn finished(&self, report: &AttemptReport<'_>) {
        self.in_flight.add(-1, &[]);
        let labels = message_attributes(report.message.kind, &report.message.name);
        let [kind, name] = labels.clone();
        self.attempts.add(
            1,
            &[
                kind,
                name,
                KeyValue::new("outcome", report.decision.as_str()),
                KeyValue::new("error", crate::metrics::error_label(report)),
            ],
        );
        self.duration
            .record(report.attempt.duration.as_secs_f64(), &labels);
        match report.decision {
            Decision::Succeeded => {
                let lag = SystemTime::now()
                    .duration_since(report.message.created_at)
                    .unwrap_or_default();
                self.lag.record(lag.as_secs_f64(), &labels);
            }
            Decision::Retry { .. } => self.retries.add(1, &labels),
            Decision::Failed { .. } => self.failed.add(1, &labels),
        }
    }
}

/// Why the OTLP exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("the OTLP exporter cannot start: {0}")]
pub struct OtlpError(String);

/// The OTLP exporters [`install_otlp`] started: [`shutdown`](Self::shutdown) sends what
/// is still buffered.
#[derive(Debug)]
pub struct OtlpExporters {
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
}

impl OtlpExporters {
    /// Sends what is buffered and stops the exporters (within a few seconds).
    pub fn shutdown(self) {
        let _ = self.tracer.shutdown_with_timeout(Duration::from_secs(5));
        let _ = self.meter.shutdown_with_timeout(Duration::from_secs(5));
    }
}

/// Points OpenTelemetry's global providers at an OTLP/HTTP collector at `endpoint` (for
/// example `http://127.0.0.1:4318`; traces go to `/v1/traces`, metrics to `/v1/metrics`).
/// The service is named `OTEL_SERVICE_NAME`, or else `service_name`.
pub fn install_otlp(endpoint: &str, service_name: &str) -> Result<OtlpExporters, OtlpError> {
    let base = endpoint.trim_end_matches('/');
    let parsed =
        url::Url::parse(base).map_err(|e| OtlpError(format!("`{endpoint}` is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(OtlpError(format!(
            "`{endpoint}` is not an http:// or https:// URL"
        )));
    }
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{base}/v1/traces"))
        .build()
        .map_err(|e| OtlpError(e.to_string()))?;
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_endpoint(format!("{base}/v1/metrics"))
        .build()
        .map_err(|e| OtlpError(e.to_string()))?;
    let resource = match std::env::var("OTEL_SERVICE_NAME") {
        Ok(name) if !name.is_empty() => Resource::builder().build(),
        _ => Resource::builder()
            .with_service_name(service_name.to_owned())
            .build(),
    };
    let tracer = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let meter = SdkMeterProvider::builder()
        .with_periodic_exporter(metrics)
        .with_resource(resource)
        .build();
    global::set_tracer_provider(tracer.clone());
    global::set_meter_provider(meter.clone());
    Ok(OtlpExporters { tracer, meter })
}
