//! Handlers: plain async functions whose arguments are axum extractors, run so that the
//! validation errors of *all* arguments are reported together, as FastAPI does.
//!
//! axum stops at the first extractor that fails. roundtrip runs every extractor; those
//! that fail with a validation error (roundtrip's `Path`, `Query`, `Header`, `Cookie`,
//! `Json`, `Form`) have their errors collected, and the client gets one 422 listing them
//! all. Any other rejection (from any axum extractor) is answered at once, as in axum.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use roundtrip_openapi::validate::ValidationError;

use crate::error::{Rejection, RequestValidationError, location_rank};
use crate::extract::BodyRejection;
use crate::operation::{OperationContext, OperationInput, OperationOutput};

/// A boxed, sendable future, as handlers return.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An async function usable as a documented roundtrip handler.
///
/// Implemented for `async fn`s of up to 16 arguments where every argument is an axum
/// extractor that implements [`OperationInput`], the last one may consume the body, and
/// the return type implements `IntoResponse` and [`OperationOutput`].
///
/// The argument that reads the body (`Json`, `Form`, `Multipart`, `String`, `Bytes`) must
/// be the last one. When it is not, the function is not a handler;
/// `#[roundtrip::handler]` names the argument that must move:
///
/// ```compile_fail
/// use roundtrip::{Json, Notify, post};
/// # #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)] struct Invoice { id: String }
/// #[roundtrip::handler]
/// async fn create_invoice(Json(invoice): Json<Invoice>, notify: Notify<Invoice>) -> Json<Invoice> {
///     Json(invoice)
/// }
/// ```
///
/// ```compile_fail
/// use roundtrip::{Json, Notify, post};
/// # #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)] struct Invoice { id: String }
/// async fn create_invoice(Json(invoice): Json<Invoice>, notify: Notify<Invoice>) -> Json<Invoice> {
///     Json(invoice)
/// }
/// let route: roundtrip::Route = post(create_invoice);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a roundtrip handler",
    note = "a handler is an `async fn` whose arguments are extractors implementing `OperationInput` and whose return type implements `IntoResponse + OperationOutput`",
    note = "the argument that reads the body (`Json`, `Form`, `Multipart`, `String`, `Bytes`) must be the last one; `#[roundtrip::handler]` on the function names the argument to move"
)]
pub trait Handler<T, S>: Clone + Send + Sync + Sized + 'static {
    /// Extracts the arguments, calls the function and turns its result into a response.
    fn call(self, req: Request, state: S) -> BoxFuture<Response>;

    /// Documents the handler's inputs and outputs.
    fn describe(ctx: &mut OperationContext<'_>);
}

/// Errors collected from the extractors that have run so far.
#[derive(Default)]
pub(crate) struct Collector {
    errors: Vec<ValidationError>,
    failed: bool,
}

/// Validation errors of the app's and routers' dependencies, waiting in the request's
/// extensions for the handler's own, to be answered in one 422.
#[derive(Clone)]
pub(crate) struct EarlierErrors(pub(crate) Vec<ValidationError>);

impl Collector {
    /// A collector that starts with the errors the operation's inherited dependencies
    /// found, if any.
    pub(crate) fn after_earlier(extensions: &mut http::Extensions) -> Self {
        match extensions.remove::<EarlierErrors>() {
            Some(EarlierErrors(errors)) => Collector {
                errors,
                failed: true,
            },
            None => Collector::default(),
        }
    }

    /// The validation errors collected, if any extractor failed with one.
    pub(crate) fn into_errors(self) -> Option<Vec<ValidationError>> {
        self.failed.then_some(self.errors)
    }

    /// Keeps a validation rejection's errors; any other rejection is returned, to be
    /// answered at once.
    pub(crate) fn absorb(&mut self, rejection: Rejection) -> Option<Response> {
        match rejection {
            Rejection::Invalid(invalid) => {
                self.errors.extend(invalid.into_errors());
                self.failed = true;
                None
            }
            Rejection::Response(response) => Some(response),
        }
    }

    pub(crate) fn finish(self) -> Option<Response> {
        if !self.failed {
            return None;
        }
        let mut errors = self.errors;
        errors.sort_by_key(location_rank);
        Some(RequestValidationError::new(errors).into_response())
    }
}

/// Sorts an extractor's rejection by its type: roundtrip's validation errors
/// ([`Rejection`], [`RequestValidationError`], a [`BodyRejection`] that did not validate)
/// are kept to be merged; anything else becomes the response it answers with.
///
/// A downcast of the rejection in place (no allocation): that is why handlers and
/// dependencies ask for rejections that are `'static`, as every extractor's is.
pub(crate) fn sort_rejection<R: IntoResponse + 'static>(rejection: R) -> Rejection {
    fn take<T: 'static>(slot: &mut dyn Any) -> Option<T> {
        slot.downcast_mut::<Option<T>>().and_then(Option::take)
    }
    let mut slot = Some(rejection);
    if let Some(rejection) = take::<Rejection>(&mut slot) {
        return rejection;
    }
    if let Some(invalid) = take::<RequestValidationError>(&mut slot) {
        return Rejection::Invalid(invalid);
    }
    if let Some(body) = take::<BodyRejection>(&mut slot) {
        return body.into();
    }
    match slot {
        Some(other) => Rejection::Response(other.into_response()),
        // A downcast above took it: each of those returned.
        None => Rejection::Response(crate::error::operation_error_response(
            "a rejection was taken without an answer",
        )),
    }
}

macro_rules! impl_handler {
    ([$($ty:ident),*], $last:ident) => {
        #[allow(non_snake_case, unused_mut, unused_variables)]
        impl<F, Fut, S, Res, M, $($ty,)* $last> Handler<(M, $($ty,)* $last,), S> for F
        where
            F: FnOnce($($ty,)* $last,) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Res> + Send,
            S: Send + Sync + 'static,
            Res: IntoResponse + OperationOutput,
            $( $ty: FromRequestParts<S> + OperationInput + Send,
               <$ty as FromRequestParts<S>>::Rejection: 'static, )*
            $last: FromRequest<S, M> + OperationInput + Send,
            <$last as FromRequest<S, M>>::Rejection: 'static,
        {
            fn call(self, req: Request, state: S) -> BoxFuture<Response> {
                // The request is taken apart here and its head boxed, so that the future
                // holds a pointer where it would hold the request, and the handler's own
                // future is boxed below: this one then stays under 1 KiB, the allocator's
                // fast size classes, whatever the extractors and handler.
                let (parts, body) = req.into_parts();
                let parts = Box::new(parts);
                Box::pin(async move {
                    let mut parts = *parts;
                    let mut collector = Collector::after_earlier(&mut parts.extensions);
                    $(
                        let $ty = match $ty::from_request_parts(&mut parts, &state).await {
                            Ok(value) => Some(value),
                            Err(rejection) => match collector.absorb(sort_rejection(rejection)) {
                                None => None,
                                Some(response) => return response,
                            },
                        };
                    )*
                    let req = Request::from_parts(parts, body);
                    let $last = match $last::from_request(req, &state).await {
                        Ok(value) => Some(value),
                        Err(rejection) => match collector.absorb(sort_rejection(rejection)) {
                            None => None,
                            Some(response) => return response,
                        },
                    };
                    if let Some(response) = collector.finish() {
                        return response;
                    }
                    match ($($ty,)* $last,) {
                        ($(Some($ty),)* Some($last),) => {
                            Box::pin(self($($ty,)* $last,)).await.into_response()
                        }
                        // Every `None` above went through the collector, which answered.
                        _ => crate::error::operation_error_response("extractor produced no value and no error"),
                    }
                })
            }

            fn describe(ctx: &mut OperationContext<'_>) {
                $( $ty::describe(ctx); )*
                $last::describe(ctx);
                Res::describe(ctx);
            }
        }
    };
}

impl<F, Fut, S, Res> Handler<((),), S> for F
where
    F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Res> + Send,
    S: Send + Sync + 'static,
    Res: IntoResponse + OperationOutput,
{
    fn call(self, mut req: Request, _state: S) -> BoxFuture<Response> {
        let earlier = Collector::after_earlier(req.extensions_mut()).finish();
        Box::pin(async move {
            match earlier {
                Some(invalid) => invalid,
                None => self().await.into_response(),
            }
        })
    }

    fn describe(ctx: &mut OperationContext<'_>) {
        Res::describe(ctx);
    }
}

impl_handler!([], T1);
impl_handler!([T1], T2);
impl_handler!([T1, T2], T3);
impl_handler!([T1, T2, T3], T4);
impl_handler!([T1, T2, T3, T4], T5);
impl_handler!([T1, T2, T3, T4, T5], T6);
impl_handler!([T1, T2, T3, T4, T5, T6], T7);
impl_handler!([T1, T2, T3, T4, T5, T6, T7], T8);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8], T9);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9], T10);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10], T11);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11], T12);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12], T13);
impl_handler!(
    [T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13],
    T14
);
impl_handler!(
    [T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14],
    T15
);
impl_handler!(
    [
        T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15
    ],
    T16
);
