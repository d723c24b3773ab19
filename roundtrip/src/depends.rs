//! Dependencies: FastAPI's `Depends(...)`. A [`Dependency`] declares the extractors it
//! reads; [`Depends<D>`] runs them, documents their parameters on every operation that
//! uses it, merges their validation errors into the handler's one 422, and hands the
//! resolved value to the handler.
//!
//! ```
//! use roundtrip::depends::{Dependency, Depends};
//! use roundtrip::{HttpError, Json, Query};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct PageParams {
//!     #[serde(default)]
//!     skip: i64,
//!     #[serde(default = "ten")]
//!     #[schemars(range(max = 100))]
//!     limit: i64,
//! }
//! fn ten() -> i64 { 10 }
//!
//! /// FastAPI's `def pagination(skip: int = 0, limit: Annotated[int, Query(le=100)] = 10)`.
//! #[derive(serde::Serialize, schemars::JsonSchema)]
//! struct Pagination { skip: i64, limit: i64 }
//!
//! impl Dependency for Pagination {
//!     type Inputs = Query<PageParams>;
//!     type Rejection = HttpError;
//!
//!     async fn resolve(Query(p): Query<PageParams>) -> Result<Self, HttpError> {
//!         Ok(Pagination { skip: p.skip, limit: p.limit })
//!     }
//! }
//!
//! async fn list_items(Depends(page): Depends<Pagination>) -> Json<Pagination> {
//!     Json(page)
//! }
//!
//! // `skip` and `limit` are documented as query parameters of `GET /items/`.
//! let app = roundtrip::App::new().route("/items/", roundtrip::get(list_items));
//! # app.into_router().expect("the app builds");
//! ```
//!
//! A dependency's inputs may be any extractors a handler could take (several as a tuple),
//! including security schemes, `State`, and other `Depends<_>`, so dependencies nest.
//!
//! # Cleanup after the handler
//!
//! FastAPI's dependencies with `yield` run code after the handler: commit a session on
//! success, roll it back on any error, close it always. A dependency takes a [`Cleanup`]
//! among its inputs and registers that code with [`Cleanup::defer`]; it runs once the
//! handler has answered, before the answer is sent, on every path (success, an error
//! answer, a panic, a client gone), and is told the [`Outcome`]:
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::{Arc, Mutex};
//! use roundtrip::depends::{Cleanup, Dependency};
//!
//! #[derive(Clone, Default)]
//! struct Session { pending: Arc<Mutex<Vec<String>>> }
//!
//! impl Dependency for Session {
//!     type Inputs = Cleanup;
//!     type Rejection = Infallible;
//!
//!     async fn resolve(cleanup: Cleanup) -> Result<Self, Infallible> {
//!         let session = Session::default();
//!         let pending = session.pending.clone();
//!         cleanup.defer(move |outcome| async move {
//!             let writes = std::mem::take(&mut *pending.lock().unwrap());
//!             if outcome.succeeded() { /* commit `writes` */ } else { /* roll back */ }
//!         });
//!         Ok(session)
//!     }
//!
//!     // One session per request, however many dependencies ask for it.
//!     fn share(&self) -> Option<Self> { Some(self.clone()) }
//! }
//! ```
//!
//! Cleanups run in the reverse order of their registration, as nested `yield`s unwind.
//!
//! # One resolution per request
//!
//! As in FastAPI, a dependency used several times in one request (by the handler and by
//! another dependency, say) is resolved once, when it can be shared: its
//! [`Dependency::share`] returns a second handle on the value (usually `Some(self.clone())`
//! for a value that is an `Arc` or holds them). A value that cannot be shared is resolved
//! again for each use. [`Fresh<D>`] always resolves again: FastAPI's `use_cache=False`.
//!
//! # Overrides
//!
//! Tests replace a dependency as FastAPI's `app.dependency_overrides` does: put a
//! [`DependencyOverrides`] in the request's extensions (`TestClient::extension(..)` does
//! it for every request, and `App::layer(axum::Extension(..))` for a whole app). A
//! `Depends<D>` with an override for `D` uses it and reads none of `D`'s inputs, so an
//! overridden `CurrentUser` needs no credentials.
//!
//! The app's state is replaced by building the app with another one: write the app as a
//! function of its state (`fn app_with(state: AppState) -> App<AppState>`) and give tests
//! their own (`App::with_state`); a dependency that reads `State<_>` then sees it.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::error::{Rejection, RequestValidationError};
use crate::handler::{Collector, sort_rejection};
use crate::operation::{OperationContext, OperationInput};
pub use crate::scope::Outcome;
use crate::scope::RequestScope;

/// A value computed from the request before the handler runs: FastAPI's dependency
/// function.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a dependency",
    note = "implement `roundtrip::depends::Dependency` for `{Self}`: name the extractors it reads in `type Inputs` and compute it in `resolve`"
)]
pub trait Dependency: Sized + Send + 'static {
    /// The extractors the dependency reads: one (`Query<PageParams>`), several as a tuple
    /// (`(Header<H>, Depends<Db>)`), or none (`()`). Their parameters are documented on
    /// the operation and their validation errors join the handler's 422.
    type Inputs: DependencyInputs;

    /// What the dependency answers when it refuses the request (usually
    /// [`HttpError`](crate::HttpError)). A [`RequestValidationError`] or a
    /// [`Rejection::Invalid`] joins the handler's 422.
    type Rejection: IntoResponse + 'static;

    /// Computes the value from the extracted inputs.
    fn resolve(inputs: Self::Inputs) -> impl Future<Output = Result<Self, Self::Rejection>> + Send;

    /// Adds what the inputs do not say to the operation (an extra response, say).
    /// The inputs document themselves.
    fn describe(ctx: &mut OperationContext<'_>) {
        let _ = ctx;
    }

    /// A second handle on the resolved value, so that the next `Depends<Self>` of the same
    /// request gets it instead of resolving again (FastAPI's per-request cache).
    ///
    /// The default, `None`, resolves the dependency for each use: an owned value cannot
    /// be handed out twice in Rust unless it can be cloned. A value that shares its state
    /// (an `Arc`, a pool, a counter) returns `Some(self.clone())`.
    fn share(&self) -> Option<Self> {
        None
    }
}

/// The extractors a [`Dependency`] reads: one extractor, a tuple of up to eight, or `()`.
pub trait DependencyInputs: Sized + Send {
    /// Documents the extractors.
    fn describe(ctx: &mut OperationContext<'_>);
}

/// Runs a dependency's extractors for an app with state `S`.
///
/// All of them run, so a request with errors in several gets every error in one 422, as
/// a handler's arguments do.
pub trait ExtractInputs<S>: DependencyInputs {
    /// Runs the extractors; a [`Rejection`] refuses the request (validation errors that
    /// the handler merges with its other errors, or any other answer as is).
    fn extract(
        parts: &mut Parts,
        state: &S,
    ) -> impl Future<Output = Result<Self, Rejection>> + Send;
}

impl<T: OperationInput + Send> DependencyInputs for T {
    fn describe(ctx: &mut OperationContext<'_>) {
        <T as OperationInput>::describe(ctx);
    }
}

impl<S, T> ExtractInputs<S> for T
where
    T: FromRequestParts<S> + OperationInput + Send,
    T::Rejection: 'static,
    S: Send + Sync,
{
    async fn extract(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        T::from_request_parts(parts, state)
            .await
            .map_err(sort_rejection)
    }
}

impl DependencyInputs for () {
    fn describe(_ctx: &mut OperationContext<'_>) {}
}

impl<S: Send + Sync> ExtractInputs<S> for () {
    async fn extract(_parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        Ok(())
    }
}

macro_rules! tuple_inputs {
    ($($ty:ident),+) => {
        impl<$($ty,)+> DependencyInputs for ($($ty,)+)
        where
            $($ty: OperationInput + Send,)+
        {
            fn describe(ctx: &mut OperationContext<'_>) {
                $( <$ty as OperationInput>::describe(ctx); )+
            }
        }

        #[allow(non_snake_case)]
        impl<S, $($ty,)+> ExtractInputs<S> for ($($ty,)+)
        where
            S: Send + Sync,
            $($ty: FromRequestParts<S> + OperationInput + Send,
              <$ty as FromRequestParts<S>>::Rejection: 'static,)+
        {
            async fn extract(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
                let mut collector = Collector::default();
                $(
                    let $ty = match $ty::from_request_parts(parts, state).await {
                        Ok(value) => Some(value),
                        Err(rejection) => match collector.absorb(sort_rejection(rejection)) {
                            None => None,
                            Some(response) => return Err(Rejection::Response(response)),
                        },
                    };
                )+
                if let Some(errors) = collector.into_errors() {
                    return Err(Rejection::Invalid(RequestValidationError::new(errors)));
                }
                match ($($ty,)+) {
                    ($(Some($ty),)+) => Ok(($($ty,)+)),
                    // Every `None` went through the collector, which answered above.
                    _ => Err(Rejection::Response(crate::error::operation_error_response(
                        "a dependency input produced no value and no error",
                    ))),
                }
            }
        }
    };
}

tuple_inputs!(T1);
tuple_inputs!(T1, T2);
tuple_inputs!(T1, T2, T3);
tuple_inputs!(T1, T2, T3, T4);
tuple_inputs!(T1, T2, T3, T4, T5);
tuple_inputs!(T1, T2, T3, T4, T5, T6);
tuple_inputs!(T1, T2, T3, T4, T5, T6, T7);
tuple_inputs!(T1, T2, T3, T4, T5, T6, T7, T8);

/// The resolved value of a [`Dependency`], as a handler argument: FastAPI's
/// `Annotated[T, Depends(dep)]`.
///
/// Within one request it is resolved once when the dependency can be shared (see
/// [`Dependency::share`]), and once for each place it appears otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct Depends<D>(pub D);

/// A dependency resolved again even if this request already resolved it: FastAPI's
/// `Depends(dep, use_cache=False)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fresh<D>(pub D);

impl<D> std::ops::Deref for Fresh<D> {
    type Target = D;
    fn deref(&self) -> &D {
        &self.0
    }
}

impl<D> std::ops::DerefMut for Fresh<D> {
    fn deref_mut(&mut self) -> &mut D {
        &mut self.0
    }
}

impl<D> std::ops::Deref for Depends<D> {
    type Target = D;
    fn deref(&self) -> &D {
        &self.0
    }
}

impl<D> std::ops::DerefMut for Depends<D> {
    fn deref_mut(&mut self) -> &mut D {
        &mut self.0
    }
}

impl<S, D> FromRequestParts<S> for Depends<D>
where
    D: Dependency,
    D::Inputs: ExtractInputs<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        if let Some(value) = DependencyCache::shared::<D>(&parts.extensions) {
            return Ok(Depends(value));
        }
        resolve::<D, S>(parts, state).await.map(Depends)
    }
}

impl<S, D> FromRequestParts<S> for Fresh<D>
where
    D: Dependency,
    D::Inputs: ExtractInputs<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        resolve::<D, S>(parts, state).await.map(Fresh)
    }
}

/// Resolves `D` (or its override) and remembers a shared handle on it for the rest of
/// the request, unless one is remembered already (FastAPI keeps the first).
async fn resolve<D, S>(parts: &mut Parts, state: &S) -> Result<D, Rejection>
where
    D: Dependency,
    D::Inputs: ExtractInputs<S>,
    S: Send + Sync,
{
    if let Some(overrides) = parts.extensions.get::<DependencyOverrides>()
        && let Some(replacement) = overrides.resolve::<D>(parts)
    {
        return replacement;
    }
    let inputs = D::Inputs::extract(parts, state).await?;
    let value = D::resolve(inputs).await.map_err(sort_rejection)?;
    if let Some(copy) = value.share() {
        DependencyCache::remember(&mut parts.extensions, copy);
    }
    Ok(value)
}

/// The dependencies a request has resolved and may share, by type. It is put in the
/// request's extensions by the first shareable dependency, so requests that share
/// nothing pay nothing.
#[derive(Clone, Default)]
struct DependencyCache(Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send>>>>);

impl DependencyCache {
    fn shared<D: Dependency>(extensions: &http::Extensions) -> Option<D> {
        let cache = extensions.get::<DependencyCache>()?;
        let entries = cache.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&TypeId::of::<D>())?
            .downcast_ref::<D>()?
            .share()
    }

    fn remember<D: Dependency>(extensions: &mut http::Extensions, value: D) {
        let cache = match extensions.get::<DependencyCache>() {
            Some(cache) => cache.clone(),
            None => {
                let cache = DependencyCache::default();
                extensions.insert(cache.clone());
                cache
            }
        };
        let mut entries = cache.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .entry(TypeId::of::<D>())
            .or_insert_with(|| Box::new(value));
    }
}

/// Documents the dependency's inputs. A parameter that two dependencies share (the same
/// name and location) is documented once.
impl<D: Dependency> OperationInput for Depends<D> {
    fn describe(ctx: &mut OperationContext<'_>) {
        <D::Inputs as DependencyInputs>::describe(ctx);
        D::describe(ctx);
    }
}

impl<D: Dependency> OperationInput for Fresh<D> {
    fn describe(ctx: &mut OperationContext<'_>) {
        <Depends<D> as OperationInput>::describe(ctx);
    }
}

/// Registers code to run after the handler, as a dependency's input: FastAPI's code after
/// `yield` (see [the module docs](self#cleanup-after-the-handler)).
pub struct Cleanup {
    scope: Arc<RequestScope>,
}

impl Cleanup {
    /// Runs `cleanup` after the handler has answered (or panicked, or lost its client),
    /// with the [`Outcome`]. The request's answer waits for it.
    pub fn defer<F, Fut>(&self, cleanup: F)
    where
        F: FnOnce(Outcome) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.scope
            .defer(Box::new(move |outcome| Box::pin(cleanup(outcome))));
    }
}

impl std::fmt::Debug for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cleanup").finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Cleanup {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        match parts.extensions.get::<Arc<RequestScope>>() {
            Some(scope) => Ok(Cleanup {
                scope: scope.clone(),
            }),
            None => Err(crate::error::operation_error_response(
                "`Cleanup` was used outside a documented roundtrip operation (a plain axum route, say); it has nothing to run its code after",
            )),
        }
    }
}

/// Documents nothing; it asks the operation to keep a request scope.
impl OperationInput for Cleanup {
    fn describe(ctx: &mut OperationContext<'_>) {
        ctx.needs_scope();
    }
}

// The error is boxed: a `Rejection` is large, and most replacements never fail.
type Replacement = Arc<dyn Fn(&Parts) -> Result<Box<dyn Any + Send>, Box<Rejection>> + Send + Sync>;

/// Replacements for dependencies, by type: FastAPI's `app.dependency_overrides`.
///
/// Put it in the request's extensions: `TestClient::new(router).extension(overrides)` in
/// tests, or `App::layer(axum::Extension(overrides))`.
///
/// ```
/// use roundtrip::depends::DependencyOverrides;
/// use http::StatusCode;
/// # #[derive(Clone)] struct CurrentUser { name: String }
/// # struct Admin;
/// let overrides = DependencyOverrides::new()
///     .value(CurrentUser { name: "alice".into() })
///     .with(|_parts| Err::<Admin, _>(StatusCode::FORBIDDEN));
/// assert!(overrides.overrides::<CurrentUser>());
/// ```
#[derive(Clone, Default)]
pub struct DependencyOverrides {
    replacements: HashMap<TypeId, Replacement>,
}

impl DependencyOverrides {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every `Depends<D>` gets a clone of `value`.
    pub fn value<D: Clone + Send + Sync + 'static>(mut self, value: D) -> Self {
        let replacement: Replacement = Arc::new(move |_parts| Ok(Box::new(value.clone())));
        self.replacements.insert(TypeId::of::<D>(), replacement);
        self
    }

    /// Every `Depends<D>` is computed by `f` from the request's head (method, URI,
    /// headers, extensions); an `Err` refuses the request with that response.
    pub fn with<D, E, F>(mut self, f: F) -> Self
    where
        D: Send + 'static,
        E: IntoResponse + 'static,
        F: Fn(&Parts) -> Result<D, E> + Send + Sync + 'static,
    {
        let replacement: Replacement = Arc::new(move |parts| match f(parts) {
            Ok(value) => Ok(Box::new(value)),
            Err(refusal) => Err(Box::new(sort_rejection(refusal))),
        });
        self.replacements.insert(TypeId::of::<D>(), replacement);
        self
    }

    /// Whether `D` is replaced.
    pub fn overrides<D: 'static>(&self) -> bool {
        self.replacements.contains_key(&TypeId::of::<D>())
    }

    fn resolve<D: 'static>(&self, parts: &Parts) -> Option<Result<D, Rejection>> {
        let replacement = self.replacements.get(&TypeId::of::<D>())?;
        Some(match replacement(parts) {
            Ok(boxed) => {
                let any: Box<dyn Any> = boxed;
                // Only `value` and `with` insert, both under `D`'s own id.
                any.downcast::<D>().map(|d| *d).map_err(|_| {
                    Rejection::Response(crate::error::operation_error_response(
                        "a dependency override produced a value of another type",
                    ))
                })
            }
            Err(refusal) => Err(*refusal),
        })
    }
}

impl std::fmt::Debug for DependencyOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DependencyOverrides")
            .field("count", &self.replacements.len())
            .finish()
    }
}
