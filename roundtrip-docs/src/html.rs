//! The HTML pages that start Swagger UI and ReDoc, written as FastAPI writes them.

use serde_json::{Map, Value};

use crate::assets::{
    OAUTH2_REDIRECT_JS, REDOC_BUNDLE, REDOC_FAVICON, REDOC_VERSION, SWAGGER_UI_BUNDLE,
    SWAGGER_UI_CSS, SWAGGER_UI_FAVICON, SWAGGER_UI_VERSION,
};
use crate::escape;

/// The Swagger UI parameters used unless overridden: FastAPI's
/// `swagger_ui_default_parameters`, plus `validatorUrl: null`.
///
/// FastAPI's defaults are `dom_id: "#swagger-ui"`, `layout: "BaseLayout"`,
/// `deepLinking: true`, `showExtensions: true` and `showCommonExtensions: true`.
/// `validatorUrl: null` keeps Swagger UI from sending the document to validator.swagger.io
/// (its badge does so by default), so the page makes no request off the server.
pub fn swagger_ui_default_parameters() -> Map<String, Value> {
    let mut parameters = Map::new();
    parameters.insert("dom_id".into(), "#swagger-ui".into());
    parameters.insert("layout".into(), "BaseLayout".into());
    parameters.insert("deepLinking".into(), true.into());
    parameters.insert("showExtensions".into(), true.into());
    parameters.insert("showCommonExtensions".into(), true.into());
    parameters.insert("validatorUrl".into(), Value::Null);
    parameters
}

/// What [`swagger_ui_html`] puts in the page: the title, the document's URL, the asset URLs
/// and the Swagger UI parameters.
///
/// [`SwaggerUiConfig::new`] points the assets at the ones [`DocsRoutes`](crate::DocsRoutes)
/// serves under `/docs`; [`SwaggerUiConfig::assets_under`] moves them.
#[derive(Debug, Clone, PartialEq)]
pub struct SwaggerUiConfig {
    title: String,
    openapi_url: String,
    js_url: String,
    css_url: String,
    favicon_url: Option<String>,
    oauth2_redirect_url: Option<String>,
    init_oauth: Option<Map<String, Value>>,
    parameters: Map<String, Value>,
}

impl SwaggerUiConfig {
    /// A page titled "Swagger UI" that loads the OpenAPI document from `openapi_url`, with
    /// the embedded assets under `/docs` and the OAuth2 redirect at `/docs/oauth2-redirect`.
    pub fn new(openapi_url: impl Into<String>) -> Self {
        Self {
            title: "Swagger UI".to_owned(),
            openapi_url: openapi_url.into(),
            js_url: String::new(),
            css_url: String::new(),
            favicon_url: None,
            oauth2_redirect_url: None,
            init_oauth: None,
            parameters: Map::new(),
        }
        .assets_under("/docs")
    }

    /// Sets the page title (HTML-escaped when written).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Points the bundle, the stylesheet, the favicon and the OAuth2 redirect at the
    /// embedded copies served under `docs_url` (as [`DocsRoutes`](crate::DocsRoutes) does).
    ///
    /// The asset URLs carry the Swagger UI version (`?v=`), so they can be cached forever.
    pub fn assets_under(mut self, docs_url: &str) -> Self {
        let base = crate::routes::normalize_base(docs_url);
        self.js_url = versioned(&base, SWAGGER_UI_BUNDLE.name, SWAGGER_UI_VERSION);
        self.css_url = versioned(&base, SWAGGER_UI_CSS.name, SWAGGER_UI_VERSION);
        self.favicon_url = Some(versioned(
            &base,
            SWAGGER_UI_FAVICON.name,
            SWAGGER_UI_VERSION,
        ));
        self.oauth2_redirect_url = Some(format!("{base}/{OAUTH2_REDIRECT}"));
        self
    }

    /// Sets the URL of `swagger-ui-bundle.js`.
    pub fn js_url(mut self, url: impl Into<String>) -> Self {
        self.js_url = url.into();
        self
    }

    /// Sets the URL of `swagger-ui.css`.
    pub fn css_url(mut self, url: impl Into<String>) -> Self {
        self.css_url = url.into();
        self
    }

    /// Sets the favicon URL; `None` writes no icon link.
    pub fn favicon_url(mut self, url: Option<String>) -> Self {
        self.favicon_url = url;
        self
    }

    /// Sets Swagger UI's `oauth2RedirectUrl`; `None` leaves it unset.
    ///
    /// A URL that starts with `/` is prefixed with the page's origin in the browser
    /// (`window.location.origin`), as FastAPI does.
    pub fn oauth2_redirect_url(mut self, url: Option<String>) -> Self {
        self.oauth2_redirect_url = url;
        self
    }

    /// Calls `ui.initOAuth(init_oauth)` after start-up, like FastAPI's
    /// `swagger_ui_init_oauth` (e.g. `clientId`, `usePkceWithAuthorizationCodeGrant`).
    pub fn init_oauth(mut self, init_oauth: Map<String, Value>) -> Self {
        self.init_oauth = Some(init_oauth);
        self
    }

    /// Adds Swagger UI parameters, like FastAPI's `swagger_ui_parameters`: each key
    /// replaces the default of the same name (see [`swagger_ui_default_parameters`]) and any
    /// earlier value. They may also override `url` and `oauth2RedirectUrl`.
    pub fn parameters(mut self, parameters: Map<String, Value>) -> Self {
        self.parameters.extend(parameters);
        self
    }
}

/// Where Swagger UI's OAuth2 redirect page is served, below the docs URL.
pub(crate) const OAUTH2_REDIRECT: &str = "oauth2-redirect";

/// The HTML page that starts Swagger UI, like FastAPI's `get_swagger_ui_html`.
///
/// The title and the URLs are escaped for HTML, and every value written into the script
/// is escaped so that no string can end the `<script>` element.
///
/// FastAPI also lists `SwaggerUIBundle.SwaggerUIStandalonePreset` among the presets, but that
/// name is undefined in `swagger-ui-bundle.js` (the preset ships in another file), so it has
/// no effect there; this page lists only `SwaggerUIBundle.presets.apis`.
pub fn swagger_ui_html(config: &SwaggerUiConfig) -> String {
    let mut parameters = Map::new();
    parameters.insert("url".into(), config.openapi_url.clone().into());
    parameters.extend(swagger_ui_default_parameters());
    parameters.extend(config.parameters.clone());
    let mut script = format!(
        "const config = {};\n",
        escape::script_json(&Value::Object(parameters))
    );
    if let Some(redirect) = &config.oauth2_redirect_url
        && !config.parameters.contains_key("oauth2RedirectUrl")
    {
        let origin = if redirect.starts_with('/') {
            "window.location.origin + "
        } else {
            ""
        };
        script.push_str(&format!(
            "config.oauth2RedirectUrl = {origin}{};\n",
            escape::script_str(redirect)
        ));
    }
    script.push_str("config.presets = [SwaggerUIBundle.presets.apis];\n");
    script.push_str("const ui = SwaggerUIBundle(config);\n");
    if let Some(init_oauth) = &config.init_oauth {
        script.push_str(&format!(
            "ui.initOAuth({});\n",
            escape::script_json(&Value::Object(init_oauth.clone()))
        ));
    }
    script.push_str("window.ui = ui;\n");

    let favicon = config
        .favicon_url
        .as_deref()
        .map(|url| format!("<link rel=\"icon\" href=\"{}\">\n", escape::html(url)))
        .unwrap_or_default();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link type="text/css" rel="stylesheet" href="{css}">
{favicon}<title>{title}</title>
</head>
<body>
<div id="swagger-ui">
</div>
<script src="{js}"></script>
<!-- `SwaggerUIBundle` is now available on the page -->
<script>
{script}</script>
</body>
</html>
"#,
        css = escape::html(&config.css_url),
        title = escape::html(&config.title),
        js = escape::html(&config.js_url),
    )
}

/// The page served at Swagger UI's OAuth2 redirect URL: it runs `oauth2-redirect.js`, which
/// hands the authorization response back to the Swagger UI window that opened it.
pub(crate) fn oauth2_redirect_html() -> String {
    format!(
        "<!doctype html>\n<html lang=\"en-US\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Swagger UI: OAuth2 Redirect</title>\n</head>\n<body>\n\
         <script src=\"{}\"></script>\n</body>\n</html>\n",
        // Relative to `<docs_url>/oauth2-redirect`, so it works wherever the docs are mounted.
        escape::html(&format!(
            "{}?v={SWAGGER_UI_VERSION}",
            OAUTH2_REDIRECT_JS.name
        )),
    )
}

/// What [`redoc_html`] puts in the page: the title, the document's URL, the bundle's URL
/// and ReDoc's options.
#[derive(Debug, Clone, PartialEq)]
pub struct RedocConfig {
    title: String,
    openapi_url: String,
    js_url: String,
    favicon_url: Option<String>,
    options: Map<String, Value>,
}

impl RedocConfig {
    /// A page titled "ReDoc" that loads the OpenAPI document from `openapi_url`, with the
    /// embedded bundle under `/redoc`.
    pub fn new(openapi_url: impl Into<String>) -> Self {
        Self {
            title: "ReDoc".to_owned(),
            openapi_url: openapi_url.into(),
            js_url: String::new(),
            favicon_url: None,
            options: Map::new(),
        }
        .assets_under("/redoc")
    }

    /// Sets the page title (HTML-escaped when written).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Points the bundle and the favicon at the embedded copies served under `redoc_url`
    /// (as [`DocsRoutes`](crate::DocsRoutes) does), with the ReDoc version in the URL.
    pub fn assets_under(mut self, redoc_url: &str) -> Self {
        let base = crate::routes::normalize_base(redoc_url);
        self.js_url = versioned(&base, REDOC_BUNDLE.name, REDOC_VERSION);
        self.favicon_url = Some(versioned(&base, REDOC_FAVICON.name, REDOC_VERSION));
        self
    }

    /// Sets the URL of `redoc.standalone.js`.
    pub fn js_url(mut self, url: impl Into<String>) -> Self {
        self.js_url = url.into();
        self
    }

    /// Sets the favicon URL; `None` writes no icon link.
    pub fn favicon_url(mut self, url: Option<String>) -> Self {
        self.favicon_url = url;
        self
    }

    /// Adds ReDoc options (the second argument of `Redoc.init`, e.g. `hideDownloadButton`,
    /// `expandResponses`, `theme`); each key replaces any earlier value.
    pub fn options(mut self, options: Map<String, Value>) -> Self {
        self.options.extend(options);
        self
    }
}

/// The HTML page that starts ReDoc, like FastAPI's `get_redoc_html`.
///
/// Unlike FastAPI's page, it links no Google Fonts: ReDoc falls back to the system's fonts
/// and the page makes no request off the server. The title and URLs are escaped for HTML
/// and for the script.
pub fn redoc_html(config: &RedocConfig) -> String {
    let favicon = config
        .favicon_url
        .as_deref()
        .map(|url| format!("<link rel=\"icon\" href=\"{}\">\n", escape::html(url)))
        .unwrap_or_default();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{favicon}<title>{title}</title>
<style>
body {{ margin: 0; padding: 0; }}
</style>
</head>
<body>
<noscript>ReDoc requires JavaScript to function. Please enable it to browse the documentation.</noscript>
<div id="redoc-container"></div>
<script src="{js}"></script>
<script>
Redoc.init({spec}, {options}, document.getElementById("redoc-container"));
</script>
</body>
</html>
"#,
        title = escape::html(&config.title),
        js = escape::html(&config.js_url),
        spec = escape::script_str(&config.openapi_url),
        options = escape::script_json(&Value::Object(config.options.clone())),
    )
}

fn versioned(base: &str, name: &str, version: &str) -> String {
    format!("{base}/{name}?v={version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swagger_page_has_fastapi_defaults_and_no_validator() {
        let html = swagger_ui_html(&SwaggerUiConfig::new("/openapi.json"));
        for expected in [
            r#""url":"/openapi.json""#,
            r##""dom_id":"#swagger-ui""##,
            r#""layout":"BaseLayout""#,
            r#""deepLinking":true"#,
            r#""showExtensions":true"#,
            r#""showCommonExtensions":true"#,
            r#""validatorUrl":null"#,
            r#"config.oauth2RedirectUrl = window.location.origin + "/docs/oauth2-redirect";"#,
            "config.presets = [SwaggerUIBundle.presets.apis];",
            r#"<script src="/docs/swagger-ui-bundle.js?v=5"#,
            r#"href="/docs/swagger-ui.css?v=5"#,
            "<title>Swagger UI</title>",
        ] {
            assert!(html.contains(expected), "missing {expected} in\n{html}");
        }
        assert!(!html.contains("initOAuth"));
    }

    #[test]
    fn swagger_parameters_override_defaults() {
        let mut overrides = Map::new();
        overrides.insert("deepLinking".into(), false.into());
        overrides.insert(
            "syntaxHighlight".into(),
            serde_json::json!({"theme": "obsidian"}),
        );
        overrides.insert("oauth2RedirectUrl".into(), "https://example.test/cb".into());
        let mut oauth = Map::new();
        oauth.insert("clientId".into(), "abc".into());
        let html = swagger_ui_html(
            &SwaggerUiConfig::new("/openapi.json")
                .parameters(overrides)
                .init_oauth(oauth),
        );
        assert!(html.contains(r#""deepLinking":false"#));
        assert!(!html.contains(r#""deepLinking":true"#));
        assert!(html.contains(r#""syntaxHighlight":{"theme":"obsidian"}"#));
        assert!(html.contains(r#""oauth2RedirectUrl":"https://example.test/cb""#));
        assert!(!html.contains("window.location.origin"));
        assert!(html.contains(r#"ui.initOAuth({"clientId":"abc"});"#));
    }

    #[test]
    fn absolute_oauth2_redirect_is_not_prefixed_with_the_origin() {
        let html = swagger_ui_html(
            &SwaggerUiConfig::new("/o.json")
                .oauth2_redirect_url(Some("https://docs.example.test/cb".into())),
        );
        assert!(html.contains(r#"config.oauth2RedirectUrl = "https://docs.example.test/cb";"#));
        let html = swagger_ui_html(&SwaggerUiConfig::new("/o.json").oauth2_redirect_url(None));
        assert!(!html.contains("oauth2RedirectUrl"));
    }

    #[test]
    fn hostile_title_and_urls_are_escaped_in_both_pages() {
        let title = r#"</title><script>alert("t")</script>"#;
        let url = r#"/o.json?a="><script>alert('u')</script>"#;
        let swagger = swagger_ui_html(
            &SwaggerUiConfig::new(url)
                .title(title)
                .css_url(url)
                .js_url(url)
                .oauth2_redirect_url(Some(url.into())),
        );
        let redoc = redoc_html(&RedocConfig::new(url).title(title).js_url(url));
        for html in [&swagger, &redoc] {
            assert_eq!(html.matches("<script").count(), 2, "{html}");
            assert_eq!(html.matches("</script>").count(), 2, "{html}");
            assert_eq!(html.matches("<title>").count(), 1, "{html}");
            assert_eq!(html.matches("</title>").count(), 1, "{html}");
            assert!(html.contains(
                "<title>&lt;/title&gt;&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;</title>"
            ));
            assert!(html.contains(
                r#"src="/o.json?a=&quot;&gt;&lt;script&gt;alert(&#x27;u&#x27;)&lt;/script&gt;""#
            ));
            // In the script the URL is a JSON string with `<` and `>` escaped.
            assert!(html.contains(
                r#""/o.json?a=\"\u003e\u003cscript\u003ealert('u')\u003c/script\u003e""#
            ));
        }
    }

    #[test]
    fn redoc_page_loads_the_document_without_google_fonts() {
        let mut options = Map::new();
        options.insert("hideDownloadButton".into(), true.into());
        let html = redoc_html(
            &RedocConfig::new("/openapi.json")
                .title("Invoices - ReDoc")
                .options(options),
        );
        assert!(html.contains(r#"Redoc.init("/openapi.json", {"hideDownloadButton":true}, "#));
        assert!(html.contains(r#"<script src="/redoc/redoc.standalone.js?v=2"#));
        assert!(html.contains(r#"<link rel="icon" href="/redoc/favicon-32x32.png?v=2"#));
        assert!(html.contains("<title>Invoices - ReDoc</title>"));
        assert!(!html.contains("fonts.googleapis.com"));
    }

    #[test]
    fn oauth2_redirect_page_loads_the_versioned_script_relatively() {
        let html = oauth2_redirect_html();
        assert!(html.contains(&format!(
            r#"<script src="oauth2-redirect.js?v={SWAGGER_UI_VERSION}"></script>"#
        )));
    }
}
