//! Server-sent events: axum's [`Sse`] and [`Event`], documented as FastAPI 0.165
//! documents its `EventSourceResponse`.
//!
//! ```
//! use std::convert::Infallible;
//! use futures_util::stream;
//! use roundtrip::response::sse::{Event, Sse};
//!
//! async fn events() -> Sse<impl futures_util::Stream<Item = Result<Event, axum::Error>>> {
//!     Sse::new(stream::iter((0..3).map(|i| {
//!         // `event: tick`, `data: "tick 0"` (JSON, as FastAPI sends it), `id: 0`
//!         Ok(Event::default().event("tick").json_data(format!("tick {i}"))?.id(i.to_string()))
//!     })))
//! }
//! ```
//!
//! Each field is written in the order the event is built, each event ends with a blank
//! line, and the response is `text/event-stream` with `Cache-Control: no-cache`.

pub use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;

use crate::operation::{OperationContext, OperationOutput};

/// The schema of one event, as FastAPI publishes it under `itemSchema`.
fn event_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "data": {"type": "string"},
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer", "minimum": 0}
        }
    })
}

/// Documented as `text/event-stream` whose items are events (OpenAPI 3.2's
/// `itemSchema`), as FastAPI documents an `EventSourceResponse`.
impl<S, E> OperationOutput for Sse<S>
where
    S: Stream<Item = Result<Event, E>>,
{
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.success_stream("text/event-stream", event_schema());
    }
}
