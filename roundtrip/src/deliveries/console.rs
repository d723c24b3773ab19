//! The console: one page, its HTML, CSS and script embedded in the binary, served behind
//! the deliveries router's guard. It shows no data by itself; its script reads everything
//! from the deliveries API, with the key the guard wants.

use std::sync::OnceLock;

use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderValue, StatusCode, header};
use roundtrip_openapi::model::{OpenApi, ParameterIn, SecurityScheme};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Deliveries, TAG};

const HTML: &str = include_str!("console/console.html");
const CSS: &str = include_str!("console/console.css");
const SCRIPT: &str = include_str!("console/console.js");

/// How the console's script sends the key the guard wants, from the document's security
/// scheme of the deliveries operations.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Auth {
    /// `none`, `header`, `query`, `cookie`, `bearer` or `basic`.
    kind: &'static str,
    /// The header, query parameter or cookie name.
    name: Option<String>,
}

impl Auth {
    /// The scheme the document requires on the deliveries' message listing.
    pub(crate) fn of(doc: &OpenApi) -> Self {
        let none = Auth {
            kind: "none",
            name: None,
        };
        let Some((_, _, op)) = doc.operations().find(|(path, method, op)| {
            path.ends_with("/deliveries/messages")
                && method.as_upper() == "GET"
                && op.tags.iter().any(|t| t == TAG)
        }) else {
            return none;
        };
        let requirements = op.security.as_ref().unwrap_or(&doc.security);
        let Some(scheme) = requirements
            .iter()
            .flat_map(|r| r.keys())
            .find_map(|name| doc.components.security_schemes.get(name))
        else {
            return none;
        };
        match scheme {
            SecurityScheme::ApiKey { name, location, .. } => Auth {
                kind: match location {
                    ParameterIn::Query => "query",
                    ParameterIn::Cookie => "cookie",
                    _ => "header",
                },
                name: Some(name.clone()),
            },
            SecurityScheme::Http { scheme, .. } if scheme.eq_ignore_ascii_case("basic") => Auth {
                kind: "basic",
                name: None,
            },
            // Other HTTP schemes, OAuth2 and OpenID Connect send a bearer token.
            _ => Auth {
                kind: "bearer",
                name: None,
            },
        }
    }
}

/// What the page's script is told: where the API is, how to send the key, whether the
/// guard let this request in.
#[derive(Serialize)]
struct PageConfig<'a> {
    api: String,
    auth: &'a Auth,
    locked: bool,
}

/// The `src` of the API relative to a page served at `path`: the API's paths start with
/// `/deliveries/` under the same prefix.
fn api_base(path: &str) -> String {
    let depth = path.trim_start_matches('/').matches('/').count();
    if depth == 0 {
        "./deliveries/".to_owned()
    } else {
        format!("{}deliveries/", "../".repeat(depth))
    }
}

/// The page's Content-Security-Policy: only its own embedded script and style run, and it
/// talks only to its own origin.
fn policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hash = |text: &str| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
        };
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; \
             connect-src 'self'; img-src 'self' data:; form-action 'none'; \
             frame-ancestors 'none'; base-uri 'none'",
            hash(SCRIPT),
            hash(CSS)
        )
    })
}

/// The page for `config`. The configuration is JSON in a data block, with `<`, `>` and `&`
/// escaped so no value can close the block.
fn page(config: &PageConfig<'_>) -> String {
    let json = serde_json::to_string(config)
        .unwrap_or_else(|_| "{}".to_owned())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    // Each marker is looked for in the template only, never in what was put in before.
    let mut out = String::with_capacity(HTML.len() + CSS.len() + SCRIPT.len() + json.len());
    let mut rest = HTML;
    for (marker, value) in [
        ("/*CSS*/", CSS),
        ("{/*CONFIG*/}", json.as_str()),
        ("/*SCRIPT*/", SCRIPT),
    ] {
        match rest.split_once(marker) {
            Some((before, after)) => {
                out.push_str(before);
                out.push_str(value);
                rest = after;
            }
            None => debug_assert!(false, "the console template lost its {marker} marker"),
        }
    }
    out.push_str(rest);
    out
}

/// The console's route at `path`.
pub(crate) fn router<G, S>(deliveries: Deliveries, path: &str) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    G: FromRequestParts<S> + Send + 'static,
{
    let api = api_base(path);
    let handler = move |State(state): State<S>, request: Request| {
        let deliveries = deliveries.clone();
        let api = api.clone();
        async move {
            let (mut parts, _) = request.into_parts();
            // The guard's status, and its challenge: a browser asks for HTTP Basic itself.
            let (status, challenge) = match G::from_request_parts(&mut parts, &state).await {
                Ok(_) => (StatusCode::OK, None),
                Err(rejection) => {
                    let refused = rejection.into_response();
                    let challenge = refused.headers().get(header::WWW_AUTHENTICATE).cloned();
                    (refused.status(), challenge)
                }
            };
            let auth = deliveries.console_auth();
            let config = PageConfig {
                api,
                auth: &auth,
                locked: status != StatusCode::OK,
            };
            let mut response: Response = (status, page(&config)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            if let Ok(value) = HeaderValue::from_str(policy()) {
                headers.insert(header::CONTENT_SECURITY_POLICY, value);
            }
            if let Some(challenge) = challenge {
                headers.insert(header::WWW_AUTHENTICATE, challenge);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            response
        }
    };
    axum::Router::new().route(path, axum::routing::get(handler))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_is_found_from_the_page() {
        assert_eq!(api_base("/console"), "./deliveries/");
        assert_eq!(api_base("/ops/console"), "../deliveries/");
        assert_eq!(api_base("/console/"), "../deliveries/");
    }

    fn doc_with(scheme: SecurityScheme) -> OpenApi {
        let mut doc = OpenApi::new("t", "1");
        doc.components
            .security_schemes
            .insert("guard".to_owned(), scheme);
        let op = roundtrip_openapi::model::Operation {
            tags: vec![TAG.to_owned()],
            security: Some(vec![
                [("guard".to_owned(), Vec::new())].into_iter().collect(),
            ]),
            ..Default::default()
        };
        doc.paths
            .entry("/ops/deliveries/messages".to_owned())
            .or_default()
            .get = Some(op);
        doc
    }

    #[test]
    fn the_key_is_sent_as_the_guards_scheme_says() {
        let api_key = |location| SecurityScheme::ApiKey {
            name: "X-Key".to_owned(),
            location,
            description: None,
        };
        for (scheme, kind, name) in [
            (api_key(ParameterIn::Header), "header", Some("X-Key")),
            (api_key(ParameterIn::Query), "query", Some("X-Key")),
            (api_key(ParameterIn::Cookie), "cookie", Some("X-Key")),
        ] {
            let auth = Auth::of(&doc_with(scheme));
            assert_eq!((auth.kind, auth.name.as_deref()), (kind, name));
        }
        let http = |scheme: &str| SecurityScheme::Http {
            scheme: scheme.to_owned(),
            bearer_format: None,
            description: None,
        };
        assert_eq!(Auth::of(&doc_with(http("basic"))).kind, "basic");
        assert_eq!(Auth::of(&doc_with(http("bearer"))).kind, "bearer");
        assert_eq!(Auth::of(&OpenApi::new("t", "1")).kind, "none");
    }

    #[test]
    fn the_config_cannot_close_its_block() {
        let auth = Auth {
            kind: "header",
            name: Some("</script><script>alert(1)</script>".into()),
        };
        let html = page(&PageConfig {
            api: "./deliveries/".into(),
            auth: &auth,
            locked: false,
        });
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("\\u003c/script\\u003e"));
    }
}
