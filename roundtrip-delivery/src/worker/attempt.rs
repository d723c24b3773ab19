//! One HTTP attempt: check the target, sign, send, read a capped response.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue};

use super::hooks::{ResponseCheck, SecretSource};
use crate::message::{AttemptErrorKind, Message, NewAttempt};
use crate::retry::AttemptOutcome;
use crate::signing::Signer;
use crate::ssrf::{SsrfPolicy, check_url};

pub(crate) struct Transport {
    client: reqwest::Client,
    policy: SsrfPolicy,
    secrets: Arc<dyn SecretSource>,
    check: Option<Arc<dyn ResponseCheck>>,
    body_cap: usize,
    user_agent: HeaderValue,
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    send_traceparent: bool,
}

pub(crate) struct TransportConfig {
    pub(crate) client: reqwest::Client,
    pub(crate) policy: SsrfPolicy,
    pub(crate) secrets: Arc<dyn SecretSource>,
    pub(crate) check: Option<Arc<dyn ResponseCheck>>,
    pub(crate) body_cap: usize,
    pub(crate) user_agent: HeaderValue,
    /// Whether attempts carry the W3C `traceparent` of their span (the `opentelemetry`
    /// feature).
    pub(crate) send_traceparent: bool,
}

impl Transport {
    pub(crate) fn new(config: TransportConfig) -> Self {
        Transport {
            client: config.client,
            policy: config.policy,
            secrets: config.secrets,
            check: config.check,
            body_cap: config.body_cap,
            user_agent: config.user_agent,
            send_traceparent: config.send_traceparent,
        }
    }

    /// Makes attempt `number` of `message`.
    pub(crate) async fn attempt(
        &self,
        message: &Message,
        number: u32,
    ) -> (NewAttempt, AttemptOutcome) {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let fail = |outcome: AttemptOutcome, clock: Instant| {
            let kind = outcome.error_kind().unwrap_or(AttemptErrorKind::Other);
            let attempt = NewAttempt::new(number, started_at, clock.elapsed())
                .error(kind, outcome.to_string());
            (attempt, outcome)
        };
        let meta = &message.meta;
        if let Err(refused) = check_url(&meta.url, &self.policy) {
            return fail(AttemptOutcome::Refused(refused), clock);
        }
        let secrets = match self.secrets.secrets(meta).await {
            Ok(secrets) => secrets,
            Err(e) => {
                return fail(
                    AttemptOutcome::Secret(format!("no signing secret for this message: {e}")),
                    clock,
                );
            }
        };
        let signer = match Signer::from_secrets(secrets) {
            Ok(signer) => signer,
            Err(e) => {
                return fail(AttemptOutcome::Secret(e.to_string()), clock);
            }
        };
        let timestamp = started_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let signature = match signer.headers(meta.id.as_str(), timestamp, &message.body) {
            Ok(headers) => headers,
            Err(e) => {
                return fail(AttemptOutcome::Other(e.to_string()), clock);
            }
        };
        let mut headers: HeaderMap = message.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, self.user_agent.clone());
        for (name, value) in signature {
            headers.insert(name, value);
        }
        #[cfg(feature = "opentelemetry")]
        if self.send_traceparent {
            crate::telemetry::inject_headers(&mut headers);
        }
        let request = self
            .client
            .request(meta.method.clone(), meta.url.clone())
            .headers(headers)
            .body(message.body.clone());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return fail(AttemptOutcome::from_reqwest_error(&e), clock);
            }
        };
        let code = response.status().as_u16();
        let headers = response.headers().clone();
        let outcome =
            AttemptOutcome::from_response(response.status(), response.headers(), SystemTime::now());
        // Read at most the cap, then stop: a 5 GB body is never buffered.
        let mut body = BytesMut::new();
        let mut truncated = false;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.body_cap.saturating_sub(body.len());
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                // The status is what counts; a body cut short is only noted.
                Err(_) => {
                    truncated = true;
                    break;
                }
            }
        }
        drop(response);
        let body: Bytes = body.freeze();
        let violation = match &self.check {
            Some(check) if (200..300).contains(&code) => check.check(meta, code, &body),
            _ => None,
        };
        let attempt = NewAttempt::new(number, started_at, clock.elapsed())
            .response(code, body, truncated)
            .response_headers(&headers)
            .contract_violation(violation);
        (attempt, outcome)
    }
}

/// The `host:port` a message goes to, for the per-destination limit.
pub(crate) fn destination(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}
