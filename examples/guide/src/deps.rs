//! Per-request caching of dependencies: a dependency two others use is resolved once
//! (FastAPI's default), unless one asks for it fresh (`use_cache=False`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::FromRequestParts;
use http::request::Parts;
use roundtrip::depends::{Dependency, Depends, Fresh};
use roundtrip::{Json, OperationInput};

/// This request's count of `Calls` resolutions: FastAPI's `request.state.calls`.
pub(crate) struct RequestCalls(Arc<AtomicI64>);

impl<S: Send + Sync> FromRequestParts<S> for RequestCalls {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        #[derive(Clone)]
        struct Count(Arc<AtomicI64>);
        let count = parts
            .extensions
            .get_or_insert_with(|| Count(Arc::default()))
            .clone();
        Ok(RequestCalls(count.0))
    }
}

impl OperationInput for RequestCalls {}

/// FastAPI's `call_counter`: counts each time it is resolved in this request.
#[derive(Clone)]
pub(crate) struct Calls(Arc<AtomicI64>);

impl Calls {
    fn n(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Dependency for Calls {
    type Inputs = RequestCalls;
    type Rejection = Infallible;

    async fn resolve(RequestCalls(count): RequestCalls) -> Result<Self, Infallible> {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(Calls(count))
    }

    /// Shared: one resolution serves the whole request.
    fn share(&self) -> Option<Self> {
        Some(self.clone())
    }
}

/// FastAPI's `first`: depends on `call_counter`.
pub(crate) struct First(Calls);

impl Dependency for First {
    type Inputs = Depends<Calls>;
    type Rejection = Infallible;

    async fn resolve(Depends(calls): Depends<Calls>) -> Result<Self, Infallible> {
        Ok(First(calls))
    }
}

/// FastAPI's `second`: depends on `call_counter` too.
pub(crate) struct Second;

impl Dependency for Second {
    type Inputs = Depends<Calls>;
    type Rejection = Infallible;

    async fn resolve(Depends(_calls): Depends<Calls>) -> Result<Self, Infallible> {
        Ok(Second)
    }
}

/// FastAPI's `uncached`: `Depends(call_counter, use_cache=False)`.
pub(crate) struct Uncached;

impl Dependency for Uncached {
    type Inputs = Fresh<Calls>;
    type Rejection = Infallible;

    async fn resolve(Fresh(_calls): Fresh<Calls>) -> Result<Self, Infallible> {
        Ok(Uncached)
    }
}

fn calls(n: i64) -> Json<BTreeMap<String, i64>> {
    Json(BTreeMap::from([("calls".to_owned(), n)]))
}

/// `first` and `second` share one `call_counter`: one call.
pub(crate) async fn cached(
    Depends(a): Depends<First>,
    Depends(_b): Depends<Second>,
) -> Json<BTreeMap<String, i64>> {
    calls(a.0.n())
}

/// `uncached` resolves `call_counter` again: two calls.
pub(crate) async fn not_cached(
    Depends(a): Depends<First>,
    Depends(_c): Depends<Uncached>,
) -> Json<BTreeMap<String, i64>> {
    calls(a.0.n())
}
