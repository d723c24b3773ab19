//! Callbacks and webhooks, declared once: the same typed value documents the request the
//! API sends back (FastAPI's "OpenAPI Callbacks" and "OpenAPI Webhooks") and is the sender
//! that delivers it.
//!
//! ```
//! use roundtrip::Callback;
//! # #[derive(serde::Serialize, schemars::JsonSchema)] struct InvoiceEvent { paid: bool }
//! # #[derive(serde::Deserialize, schemars::JsonSchema)] struct InvoiceEventReceived { ok: bool }
//! fn invoice_notification() -> Callback<InvoiceEvent, InvoiceEventReceived> {
//!     Callback::post("invoice_notification", "{$callback_url}/invoices/{$request.body.id}")
//! }
//! ```
//!
//! The expression is parsed when the callback is declared; a mistake in it is reported
//! with its position when the app is built, never when a message is sent.

use std::any::TypeId;
use std::marker::PhantomData;

use indexmap::IndexMap;
use roundtrip_openapi::expr::{ParseError, Template};
use roundtrip_openapi::model::{MediaType, Method, Operation, PathItem, RequestBody};
use roundtrip_openapi::naming::{operation_id, summary_from_name};
use roundtrip_openapi::schema::SchemaRegistry;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::extract::validation::ValidatorFn;
use crate::response_docs::{ExtraResponse, add_validation_error_response, json_response_object};

/// A callback: a request the API sends to a URL that the triggering request carries.
///
/// `P` is the payload (the request body sent), `R` the response the receiver is expected
/// to answer with (any JSON by default). Attach it to an operation with
/// [`Route::callback`](crate::Route::callback) or to every operation of a router with
/// [`Router::callback`](crate::Router::callback); the handler sends it through a
/// [`Notify<P>`](crate::Notify) argument.
#[must_use]
pub struct Callback<P, R = Value> {
    spec: CallbackSpec,
    _types: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for Callback<P, R> {
    fn clone(&self) -> Self {
        Callback {
            spec: self.spec.clone(),
            _types: PhantomData,
        }
    }
}

impl<P, R> std::fmt::Debug for Callback<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("name", &self.spec.name)
            .field("expression", &self.spec.expression)
            .field("methods", &self.spec.methods)
            .finish()
    }
}

/// A callback with its types erased, as routes and routers keep it.
#[derive(Clone)]
pub(crate) struct CallbackSpec {
    pub(crate) name: String,
    pub(crate) expression: String,
    pub(crate) template: Result<Template, ParseError>,
    pub(crate) methods: Vec<Method>,
    pub(crate) summary: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) operation_id: Option<String>,
    pub(crate) payload_type: TypeId,
    pub(crate) payload_schema: fn(&mut SchemaRegistry) -> Value,
    pub(crate) response_schema: fn(&mut SchemaRegistry) -> Value,
    pub(crate) response_validator: ValidatorFn,
    pub(crate) responses: Vec<ExtraResponse>,
}

impl<P, R> Callback<P, R>
where
    P: Serialize + JsonSchema + 'static,
    R: JsonSchema + 'static,
{
    /// A callback sent with `POST`. `name` is the key under the operation's `callbacks`
    /// (FastAPI uses the callback function's name); `expression` gives the URL, for example
    /// `{$callback_url}/invoices/{$request.body.id}` or
    /// `{$request.query.callback_url}/invoices/{$request.body#/id}`.
    pub fn post(name: impl Into<String>, expression: impl Into<String>) -> Self {
        Self::on(Method::Post, name, expression)
    }

    /// A callback sent with `PUT`.
    pub fn put(name: impl Into<String>, expression: impl Into<String>) -> Self {
        Self::on(Method::Put, name, expression)
    }

    /// A callback sent with any method.
    pub fn on(method: Method, name: impl Into<String>, expression: impl Into<String>) -> Self {
        let expression = expression.into();
        Callback {
            spec: CallbackSpec {
                name: name.into(),
                template: Template::parse(&expression),
                expression,
                methods: vec![method],
                summary: None,
                description: None,
                operation_id: None,
                payload_type: TypeId::of::<P>(),
                payload_schema: |r| r.schema_for::<P>(),
                response_schema: |r| r.schema_for::<R>(),
                response_validator: crate::extract::validation::type_validator::<R>,
                responses: Vec::new(),
            },
            _types: PhantomData,
        }
    }
}

impl<P, R> Callback<P, R> {
    /// Documents another method on the same expression (a receiver that accepts `POST`
    /// and `PUT`, say). Messages are sent with the first method.
    pub fn also(mut self, method: Method) -> Self {
        if !self.spec.methods.contains(&method) {
            self.spec.methods.push(method);
        }
        self
    }

    /// The summary; by default the name in title case (`Invoice Notification`).
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.spec.summary = Some(summary.into());
        self
    }

    /// The description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.spec.description = Some(description.into());
        self
    }

    /// The operation id; by default FastAPI's `<name><expression>_<method>` scheme.
    pub fn operation_id(mut self, id: impl Into<String>) -> Self {
        self.spec.operation_id = Some(id.into());
        self
    }

    /// Documents another response the receiver may give, with a JSON body of type `T`.
    pub fn response<T: JsonSchema>(mut self, status: u16, description: &str) -> Self {
        self.spec
            .responses
            .push(ExtraResponse::with_body::<T>(status, description));
        self
    }

    /// The name this callback is documented under.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.spec.expression
    }

    /// The parsed expression, or the error that will fail the app's build.
    pub fn template(&self) -> Result<&Template, &ParseError> {
        self.spec.template.as_ref()
    }

    pub(crate) fn into_spec(self) -> CallbackSpec {
        self.spec
    }
}

impl CallbackSpec {
    /// The callback as a Callback Object: `{<expression>: {<method>: Operation}}`.
    pub(crate) fn document(&self, registry: &mut SchemaRegistry) -> IndexMap<String, PathItem> {
        let mut item = PathItem::default();
        for &method in &self.methods {
            let op = message_operation(
                registry,
                MessageDoc {
                    name: &self.name,
                    path: &self.expression,
                    method,
                    summary: self.summary.as_deref(),
                    description: self.description.as_deref(),
                    operation_id: self.operation_id.as_deref(),
                    payload_schema: self.payload_schema,
                    response_schema: self.response_schema,
                    responses: &self.responses,
                },
            );
            *item.operation_mut(method) = Some(op);
        }
        let mut callback = IndexMap::new();
        callback.insert(self.expression.clone(), item);
        callback
    }
}

/// What a callback or webhook operation is made of.
pub(crate) struct MessageDoc<'a> {
    pub(crate) name: &'a str,
    pub(crate) path: &'a str,
    pub(crate) method: Method,
    pub(crate) summary: Option<&'a str>,
    pub(crate) description: Option<&'a str>,
    pub(crate) operation_id: Option<&'a str>,
    pub(crate) payload_schema: fn(&mut SchemaRegistry) -> Value,
    pub(crate) response_schema: fn(&mut SchemaRegistry) -> Value,
    pub(crate) responses: &'a [ExtraResponse],
}

/// The operation FastAPI writes for a callback or webhook: the payload as a required
/// JSON body, the declared response as `200`, and the `422` every operation with a body
/// gets.
pub(crate) fn message_operation(registry: &mut SchemaRegistry, doc: MessageDoc<'_>) -> Operation {
    let mut op = Operation {
        operation_id: Some(
            doc.operation_id
                .map(str::to_owned)
                .unwrap_or_else(|| operation_id(doc.name, doc.path, doc.method.as_lower())),
        ),
        summary: Some(
            doc.summary
                .map(str::to_owned)
                .unwrap_or_else(|| summary_from_name(doc.name)),
        ),
        description: doc.description.map(str::to_owned),
        ..Operation::default()
    };
    let mut content = IndexMap::new();
    content.insert(
        "application/json".to_owned(),
        MediaType {
            schema: Some((doc.payload_schema)(registry)),
            ..MediaType::default()
        },
    );
    op.request_body = Some(RequestBody {
        content,
        required: true,
        ..RequestBody::default()
    });
    op.responses.insert(
        "200".to_owned(),
        json_response_object("Successful Response", (doc.response_schema)(registry)),
    );
    for extra in doc.responses {
        op.responses
            .insert(extra.status.to_string(), extra.document(registry));
    }
    add_validation_error_response(registry, &mut op);
    op
}

/// A webhook: an event the API sends to URLs its users registered, published under the
/// document's top-level `webhooks`.
///
/// ```
/// use roundtrip::Webhook;
/// # #[derive(serde::Serialize, schemars::JsonSchema)] struct Subscription { username: String }
/// fn new_subscription() -> Webhook<Subscription> {
///     Webhook::post("new-subscription")
///         .description("When a new user subscribes to your service we'll send you a POST request.")
/// }
/// ```
#[must_use]
pub struct Webhook<P, R = Value> {
    spec: WebhookSpec,
    _types: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for Webhook<P, R> {
    fn clone(&self) -> Self {
        Webhook {
            spec: self.spec.clone(),
            _types: PhantomData,
        }
    }
}

impl<P, R> std::fmt::Debug for Webhook<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("event", &self.spec.event)
            .field("method", &self.spec.method)
            .finish()
    }
}

/// A webhook with its types erased, as the app keeps it.
#[derive(Clone)]
pub(crate) struct WebhookSpec {
    pub(crate) event: String,
    pub(crate) method: Method,
    pub(crate) name: String,
    pub(crate) summary: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) operation_id: Option<String>,
    pub(crate) payload_type: TypeId,
    pub(crate) payload_schema: fn(&mut SchemaRegistry) -> Value,
    pub(crate) response_schema: fn(&mut SchemaRegistry) -> Value,
    pub(crate) response_validator: ValidatorFn,
    pub(crate) responses: Vec<ExtraResponse>,
}

impl<P, R> Webhook<P, R>
where
    P: Serialize + JsonSchema + 'static,
    R: JsonSchema + 'static,
{
    /// A webhook for `event`, sent with `POST`.
    pub fn post(event: impl Into<String>) -> Self {
        Self::on(Method::Post, event)
    }

    /// A webhook for `event`, sent with any method.
    pub fn on(method: Method, event: impl Into<String>) -> Self {
        let event = event.into();
        // FastAPI names the operation after the function that declares the webhook; the
        // event name with its non-word characters replaced is that name in the usual case.
        let name = event
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Webhook {
            spec: WebhookSpec {
                event,
                method,
                name,
                summary: None,
                description: None,
                operation_id: None,
                payload_type: TypeId::of::<P>(),
                payload_schema: |r| r.schema_for::<P>(),
                response_schema: |r| r.schema_for::<R>(),
                response_validator: crate::extract::validation::type_validator::<R>,
                responses: Vec::new(),
            },
            _types: PhantomData,
        }
    }
}

impl<P, R> Webhook<P, R> {
    /// The function-style name used for the default operation id and summary
    /// (`new_subscription` for the event `new-subscription`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.spec.name = name.into();
        self
    }

    /// The summary; by default the name in title case.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.spec.summary = Some(summary.into());
        self
    }

    /// The description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.spec.description = Some(description.into());
        self
    }

    /// The operation id; by default FastAPI's `<name><event>_<method>` scheme.
    pub fn operation_id(mut self, id: impl Into<String>) -> Self {
        self.spec.operation_id = Some(id.into());
        self
    }

    /// Documents another response the receiver may give, with a JSON body of type `T`.
    pub fn response<T: JsonSchema>(mut self, status: u16, description: &str) -> Self {
        self.spec
            .responses
            .push(ExtraResponse::with_body::<T>(status, description));
        self
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.spec.event
    }

    pub(crate) fn into_spec(self) -> WebhookSpec {
        self.spec
    }
}

impl WebhookSpec {
    pub(crate) fn document(&self, registry: &mut SchemaRegistry) -> PathItem {
        let mut item = PathItem::default();
        *item.operation_mut(self.method) = Some(message_operation(
            registry,
            MessageDoc {
                name: &self.name,
                path: &self.event,
                method: self.method,
                summary: self.summary.as_deref(),
                description: self.description.as_deref(),
                operation_id: self.operation_id.as_deref(),
                payload_schema: self.payload_schema,
                response_schema: self.response_schema,
                responses: &self.responses,
            },
        ));
        item
    }
}
