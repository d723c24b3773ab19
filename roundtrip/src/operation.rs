//! How handlers document themselves: the [`OperationInput`] and [`OperationOutput`]
//! traits and the [`OperationContext`] they write into.
//!
//! A handler's extractors and return type each describe their part of the operation
//! (a parameter, a request body, a response), so nothing is written twice. The context is
//! passed explicitly; there is no hidden global state.

use std::any::TypeId;

use indexmap::IndexMap;
use roundtrip_openapi::model::{
    MediaType, Operation, Parameter, ParameterIn, RequestBody, Response, SecurityScheme,
};
use roundtrip_openapi::naming::field_title;
use roundtrip_openapi::schema::{SchemaRegistry, set_title};
use schemars::JsonSchema;
use serde_json::Value;

/// An extractor that contributes parameters, a request body or security to the
/// operation's document.
///
/// Every argument of a roundtrip handler implements it. The default method documents
/// nothing, so an extractor that has nothing to publish needs only an empty impl:
///
/// ```
/// # use roundtrip::OperationInput;
/// struct CurrentUser;
/// impl OperationInput for CurrentUser {}
/// ```
///
/// For extractors from other crates, wrap them in [`Undocumented`](crate::extract::Undocumented).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say how it is documented",
    label = "this extractor has no `OperationInput` impl",
    note = "roundtrip documents a handler from its arguments: add `impl roundtrip::OperationInput for {Self} {{}}` (an empty impl documents nothing), or wrap a foreign extractor in `roundtrip::extract::Undocumented<_>`"
)]
pub trait OperationInput {
    /// Adds this input's parameters, body or security requirements to the operation.
    fn describe(ctx: &mut OperationContext<'_>) {
        let _ = ctx;
    }
}

/// A return type that documents the responses it produces.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say which responses it produces",
    label = "this return type has no `OperationOutput` impl",
    note = "roundtrip documents a handler from its return type: use `Json<T>`, `Html<T>`, `String`, `NoContent`, `Redirect`, `Result<T, E>`..., or add `impl roundtrip::OperationOutput for {Self} {{}}`"
)]
pub trait OperationOutput {
    /// Adds the responses this type produces to the operation.
    fn describe(ctx: &mut OperationContext<'_>) {
        let _ = ctx;
    }
}

/// The primary (successful) response an output declares.
#[derive(Debug, Clone, Default)]
pub(crate) struct Success {
    pub(crate) status: Option<u16>,
    pub(crate) content: Option<(String, Value)>,
    /// The content is a sequence of items (server-sent events), each of this schema.
    pub(crate) item_schema: bool,
    pub(crate) declared: bool,
}

/// A requirement an input places on its route, checked when the app is built.
#[derive(Debug, Clone)]
pub(crate) enum Requirement {
    /// A `Notify<P>` needs a callback whose payload type is `P` on the same operation.
    Callback {
        payload: TypeId,
        payload_name: &'static str,
    },
}

/// The operation being documented, handed to each input and output in turn.
pub struct OperationContext<'a> {
    pub(crate) registry: &'a mut SchemaRegistry,
    pub(crate) operation: &'a mut Operation,
    pub(crate) path_params: &'a [String],
    pub(crate) success: Success,
    pub(crate) in_error_branch: bool,
    pub(crate) has_inputs: bool,
    pub(crate) security_schemes: &'a mut IndexMap<String, SecurityScheme>,
    pub(crate) requirements: Vec<Requirement>,
    pub(crate) errors: Vec<String>,
    /// Whether the body extractor shares the raw body with `Notify` (roundtrip's `Json`).
    pub(crate) shares_body: bool,
    /// Something the operation uses runs after the handler (a cleanup, a background
    /// task), so each request gets a scope.
    pub(crate) scoped: bool,
}

impl<'a> OperationContext<'a> {
    /// The schema of `T`: a `$ref` to a component for named types.
    pub fn schema_for<T: JsonSchema + ?Sized>(&mut self) -> Value {
        empty_schema_for_true(self.registry.schema_for::<T>())
    }

    /// The schema of `T` in an answer: like [`schema_for`](Self::schema_for), and a type
    /// whose answers differ from its input gets its `-Output` schema.
    pub fn output_schema_for<T: JsonSchema + ?Sized>(&mut self) -> Value {
        empty_schema_for_true(self.registry.output_schema_for::<T>())
    }

    /// The schema of `T` with a top-level `$ref` followed.
    pub fn resolved_schema_for<T: JsonSchema + ?Sized>(&mut self) -> Value {
        self.registry.resolved_schema_for::<T>()
    }

    /// The registry the document's components come from.
    pub fn registry(&mut self) -> &mut SchemaRegistry {
        self.registry
    }

    /// The operation's id, for inputs that name components after it (form bodies).
    pub fn operation_id(&self) -> &str {
        self.operation.operation_id.as_deref().unwrap_or_default()
    }

    /// The names of the path's parameters, in the order the path template has them.
    pub fn path_params(&self) -> &[String] {
        self.path_params
    }

    /// Adds a parameter; a second one with the same name and location replaces the first.
    pub fn add_parameter(&mut self, parameter: Parameter) {
        self.has_inputs = true;
        let params = &mut self.operation.parameters;
        match params
            .iter_mut()
            .find(|p| p.name == parameter.name && p.location == parameter.location)
        {
            Some(existing) => *existing = parameter,
            None => params.push(parameter),
        }
    }

    /// Adds one parameter per property of an object schema, as FastAPI does for each
    /// argument of a path operation. `rename` maps a property name to the wire name
    /// (headers turn `x_request_id` into `x-request-id`).
    pub fn add_parameters_from_object(
        &mut self,
        location: ParameterIn,
        object: &Value,
        rename: fn(&str) -> String,
    ) {
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(props) = object.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (name, schema) in props {
            let wire = rename(name);
            let mut schema = roundtrip_openapi::schema::publish(schema);
            set_title(&mut schema, &field_title(&wire));
            let description = schema
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned);
            self.add_parameter(Parameter {
                required: location == ParameterIn::Path || required.contains(&name.as_str()),
                name: wire,
                location,
                description,
                deprecated: schema.get("deprecated") == Some(&Value::Bool(true)),
                schema: Some(schema),
                example: None,
                extensions: Default::default(),
            });
        }
    }

    /// Sets the request body.
    pub fn set_request_body(&mut self, media_type: &str, schema: Value, required: bool) {
        self.has_inputs = true;
        let mut content = IndexMap::new();
        content.insert(
            media_type.to_owned(),
            MediaType {
                schema: Some(schema),
                ..MediaType::default()
            },
        );
        self.operation.request_body = Some(RequestBody {
            content,
            required,
            ..RequestBody::default()
        });
    }

    /// Marks the body as optional (for `Option<Json<T>>`).
    pub fn set_request_body_optional(&mut self) {
        if let Some(body) = &mut self.operation.request_body {
            body.required = false;
        }
    }

    /// Declares the successful response: its status when the output fixes one (204 for
    /// [`NoContent`](crate::response::NoContent)), and its content. Ignored inside the
    /// error type of a `Result`.
    pub fn success(&mut self, status: Option<u16>, content: Option<(&str, Value)>) {
        if self.in_error_branch {
            return;
        }
        self.success = Success {
            status: status.or(self.success.status),
            content: content.map(|(m, s)| (m.to_owned(), s)),
            item_schema: false,
            declared: true,
        };
    }

    /// Declares a successful response that is a sequence of items (server-sent events,
    /// NDJSON): documented with OpenAPI 3.2's `itemSchema` under `media_type`, as FastAPI
    /// documents `EventSourceResponse`.
    pub fn success_stream(&mut self, media_type: &str, item_schema: Value) {
        if self.in_error_branch {
            return;
        }
        self.success = Success {
            status: self.success.status,
            content: Some((media_type.to_owned(), item_schema)),
            item_schema: true,
            declared: true,
        };
    }

    /// Declares another response, such as an error a `Result`'s error type produces.
    pub fn response(&mut self, status: u16, description: &str, content: Option<(&str, Value)>) {
        let entry = self
            .operation
            .responses
            .entry(status.to_string())
            .or_insert_with(|| Response {
                description: description.to_owned(),
                ..Response::default()
            });
        if let Some((media, schema)) = content {
            entry.content.insert(
                media.to_owned(),
                MediaType {
                    schema: Some(schema),
                    ..MediaType::default()
                },
            );
        }
    }

    /// Documents an error the operation answers as an [`HttpError`](crate::HttpError)
    /// does (`{"detail": "..."}`): the 403 of a guard, say.
    pub fn http_error(&mut self, status: u16, description: &str) {
        self.response(
            status,
            description,
            Some(("application/json", http_error_schema())),
        );
    }

    /// Runs `f` as the error branch of a `Result`: its `success` calls are ignored.
    pub fn error_branch(&mut self, f: impl FnOnce(&mut Self)) {
        let previous = std::mem::replace(&mut self.in_error_branch, true);
        f(self);
        self.in_error_branch = previous;
    }

    /// Requires a security scheme with the given scopes, and publishes the scheme under
    /// `name` in `components.securitySchemes`.
    ///
    /// The operation's 401 is documented with it: a scheme answers 401 when credentials
    /// are missing or unreadable. (FastAPI leaves it out, so clients and fuzzers meet an
    /// answer the document does not have.)
    pub fn security(&mut self, name: &str, scheme: SecurityScheme, scopes: Vec<String>) {
        self.http_error(401, "Not authenticated");
        self.security_schemes.insert(name.to_owned(), scheme);
        let mut requirement = IndexMap::new();
        requirement.insert(name.to_owned(), scopes);
        self.operation
            .security
            .get_or_insert_with(Vec::new)
            .push(requirement);
    }

    /// Reports a problem that must stop the app from being built (a schema that cannot be
    /// enforced, say).
    pub fn error(&mut self, problem: impl Into<String>) {
        self.errors.push(problem.into());
    }

    /// Asks for a request scope: something runs after the handler.
    pub(crate) fn needs_scope(&mut self) {
        self.scoped = true;
    }

    pub(crate) fn require(&mut self, requirement: Requirement) {
        self.requirements.push(requirement);
    }
}

/// schemars writes "any value" as the boolean schema `true`; FastAPI writes `{}`.
fn empty_schema_for_true(schema: Value) -> Value {
    match schema {
        Value::Bool(true) => Value::Object(Default::default()),
        other => other,
    }
}

macro_rules! undocumented_inputs {
    ($($ty:ty),* $(,)?) => {
        $(impl OperationInput for $ty {})*
    };
}

undocumented_inputs!(
    http::Method,
    http::Uri,
    http::Version,
    http::HeaderMap,
    http::request::Parts,
    axum::extract::Request,
    axum::extract::OriginalUri,
    axum::extract::MatchedPath,
    axum::extract::RawQuery,
    axum::extract::RawPathParams,
    axum::extract::RawForm,
    axum::body::Body,
    bytes::Bytes,
    String,
);

impl<S> OperationInput for axum::extract::State<S> {}
impl<T> OperationInput for axum::extract::Extension<T> {}
impl<T> OperationInput for axum::extract::ConnectInfo<T> {}

impl<T: OperationInput> OperationInput for Option<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let had_body = ctx.operation.request_body.is_some();
        let before: Vec<(String, ParameterIn)> = ctx
            .operation
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.location))
            .collect();
        T::describe(ctx);
        // Whatever `T` added is optional now.
        for p in &mut ctx.operation.parameters {
            if p.location != ParameterIn::Path && !before.contains(&(p.name.clone(), p.location)) {
                p.required = false;
            }
        }
        if !had_body {
            ctx.set_request_body_optional();
        }
    }
}

impl<T: OperationInput, E> OperationInput for Result<T, E> {
    fn describe(ctx: &mut OperationContext<'_>) {
        T::describe(ctx);
    }
}

/// The body of an `HttpError` (FastAPI's `HTTPException`): `{"detail": "..."}`, inline so
/// the document gains no component.
pub(crate) fn http_error_schema() -> Value {
    serde_json::json!({
        "type": "object",
        "properties": {"detail": {"type": "string", "title": "Detail"}},
        "required": ["detail"],
        "title": "HTTPError"
    })
}
