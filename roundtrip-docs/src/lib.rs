//! Swagger UI and ReDoc, embedded in the binary and served with no network access.
//!
//! [`DocsRoutes`] serves both pages and their assets as an [`axum::Router`], the way FastAPI
//! serves `/docs` and `/redoc`. [`swagger_ui_html`] and [`redoc_html`] write the pages alone,
//! like FastAPI's `get_swagger_ui_html` and `get_redoc_html`, for custom routes.
//!
//! The assets are `swagger-ui-dist` [`SWAGGER_UI_VERSION`] and ReDoc [`REDOC_VERSION`], from
//! the npm registry, committed under `assets/` and included with `include_bytes!`: nothing
//! is downloaded at build time and the pages load nothing from another host at run time
//! (see `assets/README.md` for what is switched off, and how to update).
//!
//! ```
//! use axum::{Router, routing::get};
//! use roundtrip_docs::DocsRoutes;
//!
//! async fn openapi() -> &'static str { r#"{"openapi":"3.1.0"}"# }
//!
//! let app: Router = Router::new()
//!     .route("/openapi.json", get(openapi))
//!     .merge(DocsRoutes::new("/openapi.json").title("Invoices API").router());
//! ```

mod assets;
mod escape;
mod html;
mod routes;

pub use assets::{REDOC_VERSION, SWAGGER_UI_VERSION};
pub use html::{
    RedocConfig, SwaggerUiConfig, redoc_html, swagger_ui_default_parameters, swagger_ui_html,
};
pub use routes::DocsRoutes;
