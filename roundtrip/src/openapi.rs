//! The OpenAPI side: the document's model, the runtime expressions of callbacks, and the
//! schema registry and validation errors that extractors of your own work with.
//!
//! Chosen re-exports of `roundtrip-openapi`. The model and the runtime expressions are
//! re-exported whole: they are the OpenAPI 3.1 specification written as types, and
//! [`expr`] carries the expressions' grammar. Of the schema registry and the validator, only
//! what an [`OperationInput`](crate::OperationInput) or an
//! [`OperationOutput`](crate::OperationOutput) of your own needs is here; the linter and the
//! naming rules are reached through the CLI (`openapi lint`) and the builder.

#[doc(inline)]
pub use roundtrip_openapi::{HttpUrl, expr, model};

/// The registry that turns Rust types into the document's `components/schemas`.
pub mod schema {
    #[doc(inline)]
    pub use roundtrip_openapi::schema::{
        COMPONENTS_PREFIX, NameCollision, SchemaRegistry, component_ref,
    };
}

/// Validation errors in FastAPI's shape.
pub mod validate {
    #[doc(inline)]
    pub use roundtrip_openapi::validate::{
        LocItem, ParamInfo, SchemaError, ValidationError, Validator,
    };
}
