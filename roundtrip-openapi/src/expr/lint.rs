//! Warnings for expressions that only FastAPI's dialect accepts.

use std::fmt;

use super::ast::RuntimeExpr;
use super::check::{Declared, bind_callback_url};
use super::template::Template;

/// A warning that an expression is written in FastAPI's dialect, with the spec's spelling
/// to use instead.
///
/// roundtrip accepts and documents the expression as written; other OpenAPI tools that
/// follow the spec's grammar may not understand it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LintWarning {
    template: String,
    position: usize,
    written: RuntimeExpr,
    suggested: RuntimeExpr,
}

impl LintWarning {
    /// The template the expression is in, as written.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The position of the expression's `$` in the template, counted in characters from 1.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The expression as written.
    pub fn written(&self) -> &RuntimeExpr {
        &self.written
    }

    /// The same expression in the spec's spelling.
    pub fn suggested(&self) -> &RuntimeExpr {
        &self.suggested
    }
}

impl fmt::Display for LintWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" at position {}: \"{}\" is FastAPI's spelling, not an OpenAPI runtime \
             expression; tools that follow the spec expect \"{}\"",
            self.template, self.position, self.written, self.suggested
        )
    }
}

impl Template {
    /// Warns about every expression that only FastAPI's dialect accepts, in order.
    ///
    /// ```
    /// use roundtrip_openapi::expr::Template;
    ///
    /// let template = Template::parse("{$callback_url}/invoices/{$request.body.id}")?;
    /// let suggested: Vec<String> =
    ///     template.lint().iter().map(|w| w.suggested().to_string()).collect();
    /// assert_eq!(suggested, ["$request.query.callback_url", "$request.body#/id"]);
    /// # Ok::<(), roundtrip_openapi::expr::ParseError>(())
    /// ```
    pub fn lint(&self) -> Vec<LintWarning> {
        self.positioned_expressions()
            .into_iter()
            .filter(|(_, expr)| expr.is_fastapi_dialect())
            .map(|(position, expr)| LintWarning {
                template: self.to_string(),
                position,
                written: expr.clone(),
                suggested: expr.to_spec(),
            })
            .collect()
    }

    /// [`lint`](Self::lint) for a template attached to an operation: the spelling suggested
    /// for `$callback_url` is that of the input it stands for there (a body field is
    /// `$request.body#/callback_url`, not a query parameter).
    pub fn lint_for(&self, declared: &Declared<'_>) -> Vec<LintWarning> {
        let mut warnings = self.lint();
        if let Ok(bound) = bind_callback_url(declared) {
            for warning in &mut warnings {
                if warning.written == RuntimeExpr::CallbackUrl {
                    warning.suggested = bound.to_spec();
                }
            }
        }
        warnings
    }
}
