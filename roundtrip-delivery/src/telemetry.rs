//! OpenTelemetry for deliveries (the `opentelemetry` feature): the trace context a message
//! was enqueued under, stored with it, and a span for each attempt linked to it.
//!
//! Spans come from the global tracer provider (`opentelemetry::global`), as an
//! instrumentation library's should: the application chooses the exporter. Without one,
//! the global provider is a no-op and this costs a few allocations per attempt.
//!
//! An attempt is **linked** to the span that enqueued its message, not its child: the
//! request that enqueued it ended long before (retries come hours later), and one message
//! has many attempts. Each attempt's span is the root of its own trace, as OpenTelemetry's
//! messaging conventions advise for a consumer that processes a stored message.

use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    Link, SpanContext, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde_json::{Map, Value};

use crate::message::{Decision, MessageMeta, NewAttempt, redact_url};

/// The metadata keys the W3C trace context is stored under.
const TRACE_KEYS: [&str; 2] = ["traceparent", "tracestate"];

/// The instrumentation scope of delivery spans.
const SCOPE: &str = "roundtrip-delivery";

/// Stores the current trace context (the span of the request that is enqueueing, say) in a
/// new message's metadata. Nothing is stored when there is no valid span.
pub(crate) fn capture(metadata: &mut Map<String, Value>) {
    let cx = Context::current();
    if !cx.span().span_context().is_valid() {
        return;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    for key in TRACE_KEYS {
        if let Some(value) = carrier.remove(key).filter(|v| !v.is_empty()) {
            metadata.insert(key.to_owned(), Value::String(value));
        }
    }
}

/// The span context a message was enqueued under, if one was stored.
pub fn enqueued_under(meta: &MessageMeta) -> Option<SpanContext> {
    let carrier: HashMap<String, String> = TRACE_KEYS
        .iter()
        .filter_map(|key| {
            let value = meta.metadata.get(*key)?.as_str()?;
            Some(((*key).to_owned(), value.to_owned()))
        })
        .collect();
    let cx = TraceContextPropagator::new().extract(&carrier);
    let span = cx.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// Writes `traceparent` (and `tracestate`) for the current span into an attempt's headers.
pub(crate) fn inject_headers(headers: &mut HeaderMap) {
    struct Headers<'a>(&'a mut HeaderMap);
    impl Injector for Headers<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(key.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                self.0.insert(name, value);
            }
        }
    }
    TraceContextPropagator::new().inject_context(&Context::current(), &mut Headers(headers));
}

/// Reads a W3C trace context from HTTP headers (a request's `traceparent`).
pub fn extract_headers(headers: &HeaderMap) -> Context {
    struct Headers<'a>(&'a HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(HeaderName::as_str).collect()
        }
    }
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// The span of one attempt: started before it, ended with what it found.
pub(crate) fn attempt_context(meta: &MessageMeta, number: u32) -> Context {
    let tracer = global::tracer_provider().tracer(SCOPE);
    let links = enqueued_under(meta)
        .map(|span| vec![Link::with_context(span)])
        .unwrap_or_default();
    let span = tracer
        .span_builder(format!("deliver {}", meta.name))
        .with_kind(SpanKind::Client)
        .with_links(links)
        .with_attributes([
            KeyValue::new("roundtrip.message.id", meta.id.to_string()),
            KeyValue::new("roundtrip.message.kind", meta.kind.as_str()),
            KeyValue::new("roundtrip.message.name", meta.name.clone()),
            KeyValue::new("roundtrip.attempt", i64::from(number)),
            KeyValue::new("http.request.method", meta.method.to_string()),
            KeyValue::new("url.full", redact_url(&meta.url).to_string()),
        ])
        .start_with_context(&tracer, &Context::new());
    Context::new().with_span(span)
}

/// Ends an attempt's span with its response, error and decision.
pub(crate) fn finish_attempt(cx: &Context, attempt: &NewAttempt, decision: &Decision) {
    let span = cx.span();
    if let Some(code) = attempt.response_status {
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(code)));
    }
    if let Some(error) = &attempt.error {
        span.set_attribute(KeyValue::new("error.type", error.kind.as_str()));
    }
    span.set_attribute(KeyValue::new("roundtrip.outcome", decision.as_str()));
    span.set_attribute(KeyValue::new(
        "roundtrip.attempt.duration_ms",
        i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX),
    ));
    if !matches!(decision, Decision::Succeeded) {
        let why = match (&attempt.error, attempt.response_status) {
            (Some(error), _) => error.kind.as_str().to_owned(),
            (None, Some(code)) => format!("the receiver answered {code}"),
            (None, None) => "failed".to_owned(),
        };
        span.set_status(Status::error(why));
    }
    span.end();
}
