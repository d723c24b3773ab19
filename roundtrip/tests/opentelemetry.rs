//! OpenTelemetry (the `opentelemetry` feature): a request that carries a `traceparent`
//! sends a callback to a receiver that fails once; the SDK's in-memory exporters then hold
//! the request's span (a child of the caller's), one span per attempt (each linked to the
//! request's span), and the delivery metrics. With `send_traceparent`, the receiver gets
//! the attempt's trace context; without it, none.
//!
//! Each test installs the global providers; nextest runs every test in its own process.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::trace::{SpanKind, Status, TraceId};
use opentelemetry::{Key, KeyValue, Value as OtelValue, global};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::telemetry::Telemetry;
use roundtrip::{App, Callback, Json, Notify, Query, SendError, post};
use roundtrip_test::{Behaviour, MockReceiver, TempDir, TestClient};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[derive(Serialize, Deserialize, JsonSchema)]
struct Order {
    id: String,
}

#[derive(Deserialize, JsonSchema)]
struct Target {
    callback_url: String,
}

fn order_paid() -> Callback<Order> {
    Callback::post("order_paid", "{$request.query.callback_url}/orders")
}

async fn pay(
    Query(t): Query<Target>,
    notify: Notify<Order>,
    Json(order): Json<Order>,
) -> Result<Json<Value>, SendError> {
    let _ = t.callback_url;
    let id = notify.send(order).await?;
    Ok(Json(json!({"message": id.to_string()})))
}

struct Exporters {
    spans: InMemorySpanExporter,
    metrics: InMemoryMetricExporter,
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
}

fn install() -> Exporters {
    let spans = InMemorySpanExporter::default();
    let metrics = InMemoryMetricExporter::default();
    let tracer = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let meter = SdkMeterProvider::builder()
        .with_periodic_exporter(metrics.clone())
        .build();
    global::set_tracer_provider(tracer.clone());
    global::set_meter_provider(meter.clone());
    Exporters {
        spans,
        metrics,
        tracer,
        meter,
    }
}

/// Sends one order with the caller's `traceparent`, to a receiver that fails the first
/// attempt; returns the receiver once both attempts arrived and are recorded.
async fn pay_once(dir: &TempDir, telemetry: Telemetry) -> MockReceiver {
    let receiver = MockReceiver::start().await;
    receiver.set_behaviour(Behaviour::FailTimes {
        times: 1,
        status: 503,
    });
    let built = App::new()
        .route("/orders/", post(pay).callback(order_paid()))
        .database_url(dir.sqlite_url("outbox.db"))
        .signing_secret(receiver.secret())
        .allow_loopback_deliveries()
        .configure_dispatcher(|config| {
            config.retry_schedule(
                RetrySchedule::from_delays([Duration::from_millis(20)]).with_jitter(0.0),
            )
        })
        .opentelemetry(telemetry)
        .build()
        .expect("builds");
    let workers = built
        .start_delivery()
        .await
        .expect("workers start")
        .expect("workers");
    let outbox = built.outbox().await.expect("outbox");
    let client = TestClient::new(built);
    let response = client
        .post(&format!(
            "/orders/?callback_url={}",
            receiver.url("/hooks").as_str().trim_end_matches('/')
        ))
        .header(
            "traceparent",
            &format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"),
        )
        .json(&json!({"id": "o-1"}))
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    let id: Value = response.json();
    let id = id["message"]
        .as_str()
        .expect("a message id")
        .parse()
        .expect("an id");
    receiver
        .wait_for(2, Duration::from_secs(10))
        .await
        .expect("two attempts arrive");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let message = outbox.get(&id).await.expect("read").expect("stored");
        if message.meta.status == roundtrip::delivery::outbox::MessageStatus::Succeeded {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not recorded: {:?}",
            message.meta
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    workers.shutdown(Duration::from_secs(2)).await;
    receiver
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a OtelValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::from(key.to_owned()))
        .map(|kv| &kv.value)
}

/// Every data point of the counters and histograms, as `name{attributes}` → value (a
/// histogram's value is its count).
fn points(metrics: &[ResourceMetrics]) -> BTreeMap<String, f64> {
    let mut points = BTreeMap::new();
    let key = |name: &str, attributes: &mut dyn Iterator<Item = &KeyValue>| {
        let mut attributes: Vec<String> = attributes
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        attributes.sort();
        format!("{name}{{{}}}", attributes.join(","))
    };
    for resource in metrics {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics() {
                let name = metric.name();
                match metric.data() {
                    AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                        for p in sum.data_points() {
                            points.insert(key(name, &mut p.attributes()), p.value() as f64);
                        }
                    }
                    AggregatedMetrics::I64(MetricData::Sum(sum)) => {
                        for p in sum.data_points() {
                            points.insert(key(name, &mut p.attributes()), p.value() as f64);
                        }
                    }
                    AggregatedMetrics::F64(MetricData::Histogram(histogram)) => {
                        for p in histogram.data_points() {
                            points.insert(key(name, &mut p.attributes()), p.count() as f64);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_spans_linked_to_the_request_that_enqueued_them() {
    let exporters = install();
    let dir = TempDir::new();
    let receiver = pay_once(&dir, Telemetry::new().send_traceparent(true)).await;
    exporters.tracer.force_flush().expect("flushed");
    let spans = exporters.spans.get_finished_spans().expect("spans");

    // The request: a server span, child of the caller's span.
    let requests: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Server)
        .collect();
    assert_eq!(requests.len(), 1, "{spans:#?}");
    let request = requests[0];
    assert_eq!(request.name, "POST /orders/");
    assert_eq!(
        request.span_context.trace_id(),
        TraceId::from_hex(CALLER_TRACE).expect("hex")
    );
    assert_eq!(request.parent_span_id.to_string(), CALLER_SPAN);
    assert_eq!(
        attribute(request, "http.response.status_code"),
        Some(&OtelValue::I64(200))
    );

    // Two attempts, each the root of its own trace, linked to the request's span.
    let mut attempts: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "deliver order_paid")
        .collect();
    attempts.sort_by_key(|s| s.start_time);
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    for (number, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt.span_kind, SpanKind::Client);
        assert_ne!(
            attempt.span_context.trace_id(),
            request.span_context.trace_id()
        );
        let links: Vec<_> = attempt.links.iter().collect();
        assert_eq!(links.len(), 1, "{attempt:#?}");
        assert_eq!(
            links[0].span_context.trace_id(),
            request.span_context.trace_id()
        );
        assert_eq!(
            links[0].span_context.span_id(),
            request.span_context.span_id()
        );
        assert_eq!(
            attribute(attempt, "roundtrip.attempt"),
            Some(&OtelValue::I64(number as i64 + 1))
        );
    }
    assert_eq!(
        attribute(attempts[0], "http.response.status_code"),
        Some(&OtelValue::I64(503))
    );
    assert!(
        matches!(attempts[0].status, Status::Error { .. }),
        "{:?}",
        attempts[0].status
    );
    assert_eq!(
        attribute(attempts[1], "roundtrip.outcome"),
        Some(&OtelValue::from("succeeded"))
    );

    // Each attempt told the receiver its own span.
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 2);
    for (delivery, attempt) in deliveries.iter().zip(&attempts) {
        let expected = format!(
            "00-{}-{}-01",
            attempt.span_context.trace_id(),
            attempt.span_context.span_id()
        );
        assert_eq!(delivery.header("traceparent"), Some(expected.as_str()));
    }

    // The metrics count what /metrics counts.
    exporters.meter.force_flush().expect("flushed");
    let metrics = exporters.metrics.get_finished_metrics().expect("metrics");
    let points = points(&metrics);
    let expect = [
        (
            "roundtrip.messages.enqueued{kind=callback,name=order_paid}",
            1.0,
        ),
        (
            "roundtrip.delivery.attempts{error=http_5xx,kind=callback,name=order_paid,outcome=retry}",
            1.0,
        ),
        (
            "roundtrip.delivery.attempts{error=none,kind=callback,name=order_paid,outcome=succeeded}",
            1.0,
        ),
        (
            "roundtrip.delivery.retries_scheduled{kind=callback,name=order_paid}",
            1.0,
        ),
        ("roundtrip.delivery.lag{kind=callback,name=order_paid}", 1.0),
        (
            "roundtrip.delivery.attempt.duration{kind=callback,name=order_paid}",
            2.0,
        ),
        ("roundtrip.delivery.requests_in_flight{}", 0.0),
    ];
    for (key, value) in expect {
        assert_eq!(points.get(key), Some(&value), "{key} in {points:#?}");
    }
    assert!(
        !points
            .keys()
            .any(|k| k.starts_with("roundtrip.messages.failed")),
        "{points:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_get_no_traceparent_unless_asked() {
    let exporters = install();
    let dir = TempDir::new();
    let receiver = pay_once(&dir, Telemetry::new()).await;
    for delivery in receiver.deliveries() {
        assert_eq!(delivery.header("traceparent"), None);
    }
    // The attempts still have their spans.
    exporters.tracer.force_flush().expect("flushed");
    let spans = exporters.spans.get_finished_spans().expect("spans");
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.name == "deliver order_paid")
            .count(),
        2
    );
}
