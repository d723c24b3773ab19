//! Callbacks whose expression reads the response (`{$response.body#/id}`,
//! `$response.header.x`, `$statusCode`): `send` checks the payload and keeps the message
//! here, and once the handler has answered the message is resolved against that answer
//! and committed, before the answer leaves the server.
//!
//! So such a message is as durable as any other when the client hears of it, and nothing
//! is announced that will not be sent: if resolving or committing fails, the client gets
//! that error instead of the handler's answer. A handler that answers with an error (400
//! or above) announced nothing, so its kept messages are dropped.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use roundtrip_delivery::message::MessageKind;
use roundtrip_delivery::outbox::MessageId;
use roundtrip_openapi::expr::{ResponseSource, RuntimeExpr, Source};
use serde_json::Value;

use super::notify::{
    BoundCallback, Captured, SendOptions, View, build_message, callback_method, check_target,
    resolve_url, store_all,
};
use super::send_error::SendError;

/// The most of a response body read to resolve `$response.body` expressions.
const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// A message checked by `send`, waiting for the response.
pub(crate) struct Draft {
    pub(crate) callback: BoundCallback,
    pub(crate) captured: Arc<Captured>,
    pub(crate) id: MessageId,
    pub(crate) body: Vec<u8>,
    pub(crate) options: SendOptions,
}

/// The messages a request's handler sent through callbacks that read the response; in
/// the request's extensions while the handler runs.
#[derive(Clone, Default)]
pub(crate) struct PendingSends(Arc<Mutex<Vec<Draft>>>);

impl PendingSends {
    pub(crate) fn push(&self, draft: Draft) {
        match self.0.lock() {
            Ok(mut drafts) => drafts.push(draft),
            Err(poisoned) => poisoned.into_inner().push(draft),
        }
    }

    fn take(&self) -> Vec<Draft> {
        match self.0.lock() {
            Ok(mut drafts) => std::mem::take(&mut *drafts),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    /// Resolves the kept messages against `response` and commits them: the answer to send
    /// is `response` if that worked, the error's answer if not.
    pub(crate) async fn commit(&self, response: Response) -> Response {
        let drafts = self.take();
        if drafts.is_empty() {
            return response;
        }
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            tracing::debug!(
                %status,
                dropped = drafts.len(),
                "the handler answered with an error; its response callbacks are not sent"
            );
            return response;
        }
        let reads_body = drafts.iter().any(|d| {
            d.callback
                .template
                .expressions()
                .any(|e| matches!(e, RuntimeExpr::Response(Source::Body(_))))
        });
        let (parts, body) = response.into_parts();
        let (json, body) = if reads_body {
            match axum::body::to_bytes(body, MAX_RESPONSE_BODY).await {
                Ok(bytes) => (serde_json::from_slice(&bytes).ok(), Body::from(bytes)),
                Err(err) => {
                    return crate::error::operation_error_response(&format!(
                        "cannot read the handler's answer to resolve its response callbacks: {err}"
                    ));
                }
            }
        } else {
            (None, body)
        };
        let answer = Answer {
            status: status.as_u16(),
            headers: &parts.headers,
            body: json,
        };
        match store(drafts, &answer).await {
            Ok(()) => Response::from_parts(parts, body),
            Err(err) => err.into_response(),
        }
    }
}

/// The handler's answer, as expressions read it.
struct Answer<'a> {
    status: u16,
    headers: &'a HeaderMap,
    body: Option<Value>,
}

impl ResponseSource for Answer<'_> {
    fn status(&self) -> u16 {
        self.status
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    fn body(&self) -> Option<&Value> {
        self.body.as_ref()
    }
}

/// Resolves and checks every draft, then commits them all in one outbox write.
async fn store(drafts: Vec<Draft>, answer: &Answer<'_>) -> Result<(), SendError> {
    let Some(delivery) = drafts.first().map(|d| d.callback.delivery.clone()) else {
        return Ok(());
    };
    let mut messages = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let callback = &draft.callback;
        let name = &callback.spec.name;
        let view = View::new(&draft.captured);
        let url = resolve_url(callback, &view, Some(answer))?;
        check_target(&delivery, &url).await.map_err(|err| {
            SendError::refused(name, &err, Some((&callback.template, &view, Some(answer))))
        })?;
        let message = build_message(
            MessageKind::Callback,
            name,
            url,
            callback_method(callback),
            draft.body,
            draft.options,
        )
        .with_id(draft.id);
        messages.push(message);
    }
    let names: Vec<String> = messages.iter().map(|m| m.name().to_owned()).collect();
    store_all(
        &delivery,
        MessageKind::Callback,
        &names.join(", "),
        messages,
    )
    .await?;
    Ok(())
}
