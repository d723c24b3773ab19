//! Binding an operation's callbacks when the app is built: each expression is checked
//! against what the operation declares, the callback is documented under the
//! operation's `callbacks`, and the handler's `Notify<P>` arguments are matched to them.
//!
//! Problems are collected, one per mistake: a callback whose expression is wrong is still
//! counted as attached, so a `Notify` of its payload does not get a second, false error.

use std::any::TypeId;
use std::sync::Arc;

use indexmap::IndexMap;
use roundtrip_openapi::expr::{Declared, Template};
use roundtrip_openapi::model::{Operation, SecurityScheme};
use roundtrip_openapi::schema::SchemaRegistry;

use crate::callback::CallbackSpec;

use crate::invoke::OperationSettings;
use crate::operation::Requirement;

/// An operation's callbacks, checked against it, waiting for the app's delivery (built
/// once every route is walked) to become the `Notify` senders of its requests.
pub(crate) type CheckedCallbacks = Vec<(Arc<CallbackSpec>, Template)>;

/// One operation being bound: what it is, and what it declares.
pub(crate) struct OperationBinding<'a> {
    /// `POST /shipments/`, for messages.
    pub(crate) here: &'a str,
    /// The path template's parameters.
    pub(crate) path_params: &'a [String],
    /// The status of the success response.
    pub(crate) status: u16,
    /// Whether the body extractor shares the raw body with `Notify` (roundtrip's `Json`).
    pub(crate) shares_body: bool,
    /// The app's security schemes, for API keys sent in headers.
    pub(crate) security_schemes: &'a IndexMap<String, SecurityScheme>,
}

impl OperationBinding<'_> {
    /// Checks and attaches `callbacks` to `operation`, and checks the handler's
    /// `requirements` against them. The callbacks that fit go to `checked_out`, to be
    /// bound to the delivery once it is built; those seen for the first time are added to
    /// `app_callbacks` (their response contracts are registered once).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn bind<'c>(
        &self,
        operation: &mut Operation,
        callbacks: impl Iterator<Item = &'c CallbackSpec>,
        requirements: Vec<Requirement>,
        registry: &mut SchemaRegistry,
        app_callbacks: &mut Vec<CallbackSpec>,
        settings: &mut OperationSettings,
        checked_out: &mut CheckedCallbacks,
        problems: &mut Vec<String>,
    ) {
        let here = self.here;
        // Every declared callback counts as attached, bound or not.
        let mut attached: Vec<(TypeId, &str)> = Vec::new();
        let mut checked: Vec<(&CallbackSpec, Template)> = Vec::new();
        {
            let declared = self.declared(operation, registry);
            for callback in callbacks {
                if attached.iter().any(|(_, name)| *name == callback.name) {
                    problems.push(format!(
                        "{here}: two callbacks are named `{}`",
                        callback.name
                    ));
                    continue;
                }
                attached.push((callback.payload_type, &callback.name));
                let template = match &callback.template {
                    Ok(template) => template,
                    Err(err) => {
                        problems.push(format!(
                            "{here}: callback `{}` has an invalid expression: {err}",
                            callback.name
                        ));
                        continue;
                    }
                };
                match template.check(&declared) {
                    Ok(bound) => checked.push((callback, bound)),
                    Err(mismatches) => problems.extend(
                        mismatches
                            .iter()
                            .map(|m| format!("{here}: callback `{}`: {m}", callback.name)),
                    ),
                }
            }
        }
        for (callback, template) in checked {
            if template.needs_request_body() && !self.shares_body {
                problems.push(format!(
                    "{here}: callback `{}` reads the request body, which the handler does not \
                     read with `roundtrip::Json` (the extractor that shares it with `Notify`)",
                    callback.name
                ));
                continue;
            }
            operation
                .callbacks
                .insert(callback.name.clone(), callback.document(registry));
            if !app_callbacks.iter().any(|c| c.name == callback.name) {
                app_callbacks.push(callback.clone());
            }
            settings.response_callbacks |= template.needs_response();
            settings.reads_request_body |= template.needs_request_body();
            checked_out.push((Arc::new(callback.clone()), template));
        }
        for requirement in requirements {
            match requirement {
                Requirement::Callback {
                    payload,
                    payload_name,
                } => {
                    let matching = attached.iter().filter(|(t, _)| *t == payload).count();
                    if matching == 0 {
                        problems.push(format!(
                            "{here}: the handler takes a `Notify<{payload_name}>` but the operation has no callback with that payload; attach one with `.callback(..)`"
                        ));
                    } else if matching > 1 {
                        problems.push(format!(
                            "{here}: {matching} callbacks carry `{payload_name}`, so `Notify<{payload_name}>` is ambiguous; give each callback its own payload type"
                        ));
                    }
                    settings.needs_extension = true;
                }
            }
        }
    }

    /// What the operation declares, as its callbacks' expressions read it.
    fn declared<'r>(&self, operation: &Operation, registry: &'r SchemaRegistry) -> Declared<'r> {
        Declared::from_operation(
            self.here,
            operation,
            self.path_params,
            self.status,
            self.security_schemes,
            registry.definitions(),
        )
    }
}
