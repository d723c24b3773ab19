//! HTML from templates, with minijinja (Jinja2's syntax): FastAPI's `Jinja2Templates`.
//! Enabled by roundtrip's `templates` feature.
//!
//! ```
//! use roundtrip::templates::{TemplateError, Templates};
//! use roundtrip::{Html, Path};
//!
//! # let dir = std::env::temp_dir();
//! let templates = Templates::new(dir); // e.g. concat!(env!("CARGO_MANIFEST_DIR"), "/templates")
//!
//! # #[allow(dead_code)]
//! async fn hello(templates: Templates, name: String) -> Result<Html<String>, TemplateError> {
//!     templates.render("hello.html", minijinja::context! { name })
//! }
//! ```
//!
//! Templates whose name ends in `.html`, `.htm` or `.xml` are auto-escaped, so values
//! from a request cannot inject markup.

use std::path::PathBuf;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::operation::OperationOutput;
use crate::response::Html;

/// A directory of templates, loaded on first use and kept.
#[derive(Clone)]
pub struct Templates {
    env: Arc<minijinja::Environment<'static>>,
}

impl Templates {
    /// Templates found under `dir` by their relative name (`pages/hello.html`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let mut env = minijinja::Environment::new();
        env.set_loader(minijinja::path_loader(dir.into()));
        Templates { env: Arc::new(env) }
    }

    /// Templates from an environment set up by hand (filters, globals, another loader).
    pub fn from_environment(env: minijinja::Environment<'static>) -> Self {
        Templates { env: Arc::new(env) }
    }

    /// Renders template `name` with `context` as an HTML answer.
    pub fn render<C: Serialize>(
        &self,
        name: &str,
        context: C,
    ) -> Result<Html<String>, TemplateError> {
        let template = self.env.get_template(name).map_err(TemplateError)?;
        template.render(context).map(Html).map_err(TemplateError)
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

/// A template that is missing or failed to render: a bug of the app, answered `500
/// Internal Server Error` and logged with minijinja's explanation.
#[derive(Debug)]
pub struct TemplateError(pub minijinja::Error);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template error: {:#}", self.0)
    }
}

impl std::error::Error for TemplateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for TemplateError {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        crate::scope::internal_server_error()
    }
}

/// FastAPI documents no 500.
impl OperationOutput for TemplateError {}
