//! The application: metadata, routes, webhooks and docs, built into an axum router and
//! an OpenAPI document in one pass.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use http::StatusCode;
use indexmap::IndexMap;
use roundtrip_openapi::model::{Contact, ExternalDocs, Info, License, OpenApi, Server, Tag};
use roundtrip_openapi::schema::SchemaRegistry;
use serde_json::{Map, Value};

mod attach;
mod document;
mod operations;
mod published;
pub(crate) mod setup;

use operations::{Builder, Inherited};
pub use setup::OperationInfo;

use crate::callback::WebhookSpec;
use crate::deliveries::Deliveries;
use crate::delivery::{Contracts, CountEnqueued, DeliverySetup, EndpointDirectory};
use crate::error::detail_response;
use crate::metrics::AttachedMetrics;
use crate::router::Router;
use crate::routing::Route;
use crate::subscriptions::Subscriptions;

/// Doc comments recorded by `#[roundtrip::handler]`, found by the handler's type name.
#[doc(hidden)]
pub struct HandlerDoc {
    /// The handler's `std::any::type_name`.
    pub type_name: fn() -> &'static str,
    /// The doc comment, as written.
    pub doc: &'static str,
}

inventory::collect!(HandlerDoc);

fn handler_docs() -> &'static HashMap<&'static str, &'static str> {
    static DOCS: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    DOCS.get_or_init(|| {
        inventory::iter::<HandlerDoc>
            .into_iter()
            .map(|d| ((d.type_name)(), d.doc))
            .collect()
    })
}

/// Why an app could not be built: every problem found, each saying what and where.
#[derive(Debug, Clone)]
pub struct BuildError {
    problems: Vec<String>,
}

impl BuildError {
    /// The problems, one sentence each.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the app cannot be built:")?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BuildError {}

/// A roundtrip application: FastAPI's `FastAPI()`.
///
/// ```
/// use roundtrip::{App, Json, get};
/// async fn root() -> Json<serde_json::Value> { Json(serde_json::json!({"hello": "world"})) }
/// let app = App::new().title("Hello API").route("/", get(root));
/// let router = app.into_router().expect("the app builds");
/// ```
#[must_use]
pub struct App<S = ()> {
    pub(crate) info: Info,
    servers: Vec<Server>,
    tags: Vec<Tag>,
    external_docs: Option<ExternalDocs>,
    openapi_url: Option<String>,
    docs_url: Option<String>,
    redoc_url: Option<String>,
    swagger_ui_parameters: Map<String, Value>,
    body_limit: usize,
    server_limits: crate::server_limits::ServerLimits,
    multipart_limits: crate::extract::MultipartLimits,
    pub(crate) root: Router<S>,
    pub(crate) webhooks: Vec<WebhookSpec>,
    state: S,
    pub(crate) delivery: DeliverySetup,
    pub(crate) setup: setup::AppSetup,
    /// Delivery metrics, when the app counts them (their observer is in `delivery`).
    metrics: Option<AttachedMetrics>,
    /// OpenTelemetry's delivery instruments, when the app reports to it (their observer
    /// is in `delivery`).
    #[cfg(feature = "opentelemetry")]
    telemetry: Option<crate::telemetry::OtelMetrics>,
    /// Webhook subscriptions, when the app has them (they sign and observe through
    /// `delivery`).
    subscriptions: Option<Subscriptions>,
    /// Deliveries APIs, bound to the app's delivery and document when it is built.
    deliveries: Vec<Deliveries>,
}

/// The default largest request body: 2 MiB, as axum's default.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

impl App<()> {
    /// An app without state, titled `roundtrip`, version `0.1.0`.
    pub fn new() -> Self {
        App::with_state(())
    }
}

impl Default for App<()> {
    fn default() -> Self {
        App::new()
    }
}

impl<S: Clone + Send + Sync + 'static> App<S> {
    /// An app whose handlers share `state` (through axum's `State<S>`).
    pub fn with_state(state: S) -> Self {
        App {
            info: Info {
                title: "roundtrip".to_owned(),
                version: "0.1.0".to_owned(),
                ..Info::default()
            },
            servers: Vec::new(),
            tags: Vec::new(),
            external_docs: None,
            openapi_url: Some("/openapi.json".to_owned()),
            docs_url: Some("/docs".to_owned()),
            redoc_url: Some("/redoc".to_owned()),
            swagger_ui_parameters: Map::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            server_limits: crate::server_limits::ServerLimits::default(),
            multipart_limits: crate::extract::MultipartLimits::default(),
            root: Router::new(),
            webhooks: Vec::new(),
            state,
            delivery: Default::default(),
            setup: Default::default(),
            metrics: None,
            #[cfg(feature = "opentelemetry")]
            telemetry: None,
            subscriptions: None,
            deliveries: Vec::new(),
        }
    }

    /// The API's title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.info.title = title.into();
        self
    }

    /// The API's version (not roundtrip's, not OpenAPI's).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.info.version = version.into();
        self
    }

    /// A one-line summary of the API.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.info.summary = Some(summary.into());
        self
    }

    /// A description of the API; CommonMark.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.info.description = Some(description.into());
        self
    }

    /// A URL to the terms of service.
    pub fn terms_of_service(mut self, url: impl Into<String>) -> Self {
        self.info.terms_of_service = Some(url.into());
        self
    }

    /// Contact information.
    pub fn contact(mut self, contact: Contact) -> Self {
        self.info.contact = Some(contact);
        self
    }

    /// License information.
    pub fn license(mut self, license: License) -> Self {
        self.info.license = Some(license);
        self
    }

    /// A server that hosts the API.
    pub fn server(mut self, url: impl Into<String>, description: Option<&str>) -> Self {
        self.servers.push(Server {
            url: url.into(),
            description: description.map(str::to_owned),
            ..Server::default()
        });
        self
    }

    /// Describes a tag (FastAPI's `openapi_tags`); tags are listed in this order.
    pub fn tag(mut self, tag: Tag) -> Self {
        self.tags.push(tag);
        self
    }

    /// External documentation for the whole API.
    pub fn external_docs(mut self, docs: ExternalDocs) -> Self {
        self.external_docs = Some(docs);
        self
    }

    /// Where the document is served (`/openapi.json`); `None` serves no document and no
    /// docs UIs, as FastAPI's `openapi_url=None`.
    pub fn openapi_url(mut self, url: Option<&str>) -> Self {
        self.openapi_url = url.map(str::to_owned);
        self
    }

    /// Where Swagger UI is served (`/docs`); `None` turns it off.
    pub fn docs_url(mut self, url: Option<&str>) -> Self {
        self.docs_url = url.map(str::to_owned);
        self
    }

    /// Where ReDoc is served (`/redoc`); `None` turns it off.
    pub fn redoc_url(mut self, url: Option<&str>) -> Self {
        self.redoc_url = url.map(str::to_owned);
        self
    }

    /// Swagger UI settings merged over the defaults (FastAPI's `swagger_ui_parameters`).
    pub fn swagger_ui_parameters(mut self, parameters: Map<String, Value>) -> Self {
        self.swagger_ui_parameters = parameters;
        self
    }

    /// The largest request body accepted, in bytes; larger ones get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How `serve` treats connections: header and idle timeouts and a connection cap
    /// (see [`ServerLimits`](crate::ServerLimits) for the defaults).
    pub fn server_limits(mut self, limits: crate::server_limits::ServerLimits) -> Self {
        self.server_limits = limits;
        self
    }

    /// Caps on `multipart/form-data` bodies (parts, field and file sizes), beside the
    /// body limit; see [`MultipartLimits`](crate::MultipartLimits) for the defaults.
    pub fn multipart_limits(mut self, limits: crate::extract::MultipartLimits) -> Self {
        self.multipart_limits = limits;
        self
    }

    /// The connection limits `serve` applies.
    pub fn get_server_limits(&self) -> crate::server_limits::ServerLimits {
        self.server_limits
    }

    /// Adds a route at `path`.
    pub fn route(mut self, path: impl Into<String>, route: Route<S>) -> Self {
        self.root = self.root.route(path, route);
        self
    }

    /// Includes a router: FastAPI's `include_router`.
    pub fn include(mut self, router: Router<S>) -> Self {
        self.root = self.root.include(router);
        self
    }

    /// Serves a plain axum router beside the documented routes, undocumented.
    pub fn merge_axum(mut self, router: axum::Router<S>) -> Self {
        self.root = self.root.merge_axum(router);
        self
    }

    /// Wraps the whole app in a tower layer (middleware): every route, the document, the
    /// docs pages, mounted apps, static files and the 404/405 fallbacks. Each layer wraps
    /// the ones added before it, as FastAPI's `add_middleware`: the last added sees a
    /// request first. `axum::middleware::from_fn` writes one from an async function.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response: IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Error:
            Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.setup
            .layers
            .push(Box::new(move |router| router.layer(layer)));
        self
    }

    /// Where the outbox lives: `sqlite://path/to/file.db` (the default is an embedded
    /// SQLite file, `roundtrip-outbox.db`, or `ROUNDTRIP_DATABASE_URL`) or
    /// `postgres://...` for several processes sharing one outbox.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.delivery.store = Some(crate::delivery::Store::Url(url.into()));
        self
    }

    /// An embedded SQLite outbox with these options.
    pub fn sqlite(mut self, options: roundtrip_delivery::sqlite::SqliteOptions) -> Self {
        self.delivery.store = Some(crate::delivery::Store::Sqlite(options));
        self
    }

    /// An outbox the caller opened (to share it with their own code, or in tests).
    pub fn outbox(mut self, outbox: Arc<dyn roundtrip_delivery::outbox::Outbox>) -> Self {
        self.delivery.store = Some(crate::delivery::Store::Given(outbox));
        self
    }

    /// The secret that signs every callback and webhook (Standard Webhooks, `whsec_...`).
    /// Without one, `ROUNDTRIP_SIGNING_SECRET` is read, and failing that a random secret
    /// is used (with a warning: receivers cannot verify it).
    pub fn signing_secret(mut self, secret: roundtrip_delivery::signing::Secret) -> Self {
        self.delivery.secrets = Some(Arc::new(roundtrip_delivery::worker::StaticSecrets::new(
            secret,
        )));
        self
    }

    /// Where the signing secrets come from, chosen per message (per customer, or several
    /// during a rotation).
    pub fn secret_source(mut self, source: impl roundtrip_delivery::worker::SecretSource) -> Self {
        self.delivery.secrets = Some(Arc::new(source));
        self
    }

    /// Which addresses callbacks and webhooks may reach. The default refuses loopback,
    /// private, link-local and every other non-public range; local demos and tests allow
    /// loopback with `SsrfPolicy::new().allow_loopback(true)`.
    pub fn ssrf_policy(mut self, policy: roundtrip_delivery::ssrf::SsrfPolicy) -> Self {
        self.delivery.ssrf = policy;
        self
    }

    /// How the host names of callback and webhook URLs are resolved (the system's resolver
    /// by default): `send` resolves a name and checks every address before it stores the
    /// message, and the workers connect only to checked addresses. Tests inject names with
    /// [`StaticResolver`](roundtrip_delivery::ssrf::StaticResolver).
    pub fn resolver(mut self, resolver: impl roundtrip_delivery::ssrf::Resolve) -> Self {
        self.delivery.resolver = Arc::new(resolver);
        self
    }

    /// Lets deliveries reach loopback addresses, keeping the rest of the SSRF policy.
    pub fn allow_loopback_deliveries(mut self) -> Self {
        self.delivery.ssrf = self.delivery.ssrf.allow_loopback(true);
        self
    }

    /// Adjusts the delivery workers' settings (concurrency, timeouts, retry schedule...).
    /// The app's signing secrets, SSRF policy and response checks are set before `f` runs;
    /// several adjustments apply in the order given.
    pub fn configure_dispatcher(
        mut self,
        f: impl Fn(
            roundtrip_delivery::worker::DispatcherConfig,
        ) -> roundtrip_delivery::worker::DispatcherConfig
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.delivery.configure.push(Arc::new(f));
        self
    }

    /// The largest payload `send` accepts, in bytes (256 KiB by default). A larger one is
    /// refused before anything is stored, with the 422 the operation documents, and a
    /// warning in the log that names this setting.
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.delivery.max_payload_bytes = bytes;
        self
    }

    /// Whether `serve` starts delivery workers in this process (on by default). Turn it
    /// off for processes that only enqueue.
    pub fn delivery_workers(mut self, start: bool) -> Self {
        self.delivery.start_workers = start;
        self
    }

    /// Declares a webhook under the document's top-level `webhooks`.
    pub fn webhook<P, R>(mut self, webhook: crate::Webhook<P, R>) -> Self {
        self.webhooks.push(webhook.into_spec());
        self
    }

    /// Builds the app into an axum router, ready to serve.
    pub fn into_router(self) -> Result<axum::Router, BuildError> {
        Ok(self.build()?.router)
    }

    /// Builds the document alone.
    pub fn openapi(self) -> Result<OpenApi, BuildError> {
        Ok(Arc::unwrap_or_clone(self.build()?.openapi))
    }

    /// Builds the app: the router, the document, and the delivery setup.
    pub fn build(self) -> Result<BuiltApp, BuildError> {
        let App {
            info,
            servers,
            tags,
            external_docs,
            openapi_url,
            docs_url,
            redoc_url,
            swagger_ui_parameters,
            body_limit,
            server_limits,
            multipart_limits,
            root,
            webhooks,
            state,
            delivery,
            setup,
            metrics,
            #[cfg(feature = "opentelemetry")]
            telemetry,
            subscriptions,
            deliveries,
        } = self;
        let setup::AppSetup {
            layers,
            exceptions,
            lifespans,
            lifespan_layers,
            mounts,
            root_path,
            operation_ids,
        } = setup;
        let exceptions = (!exceptions.is_empty()).then(|| Arc::new(exceptions));

        let mut doc = document::start(info, servers, tags, external_docs);

        let mut delivery = delivery;
        if let Some(attached) = &metrics {
            delivery
                .counters
                .push(Arc::new(attached.metrics.clone()) as Arc<dyn CountEnqueued>);
        }
        #[cfg(feature = "opentelemetry")]
        if let Some(telemetry) = telemetry {
            delivery.counters.push(Arc::new(telemetry));
        }
        if let Some(subscriptions) = &subscriptions {
            delivery.endpoints =
                Some(Arc::new(subscriptions.clone()) as Arc<dyn EndpointDirectory>);
        }
        let mut builder = Builder {
            registry: SchemaRegistry::new(),
            paths: IndexMap::new(),
            seen: HashSet::new(),
            problems: Vec::new(),
            security_schemes: IndexMap::new(),
            callbacks: Vec::new(),
            exceptions: exceptions.clone(),
            operation_ids,
        };
        let inherited = Inherited::default();
        let deferred_router = builder.build_router(root, &inherited);

        document::add_webhooks(
            &mut doc,
            &webhooks,
            &mut builder.registry,
            &mut builder.problems,
        );

        let Builder {
            registry,
            paths,
            mut problems,
            security_schemes,
            callbacks,
            ..
        } = builder;
        // Every callback is known now: the delivery is built with their contracts, and the
        // handlers that send through it are installed.
        let sends_anything = !callbacks.is_empty() || !webhooks.is_empty();
        let delivery = delivery.prepare(Contracts::new(&webhooks, &callbacks));
        let router = deferred_router(&delivery);
        let publisher = crate::delivery::publish::Publisher {
            delivery: delivery.clone(),
            webhooks: Arc::new(webhooks.clone()),
        };
        if let Some(subscriptions) = &subscriptions {
            subscriptions.bind(
                &delivery,
                webhooks.iter().map(|w| w.event.clone()).collect(),
            );
        }
        document::finish(
            &mut doc,
            paths,
            registry,
            security_schemes,
            subscriptions.is_some().then_some(&webhooks[..]),
        );

        let mut router = router;
        let mut lifespans = lifespans;
        for mount in mounts {
            match published::mount(router, mount, &mut lifespans) {
                Ok(mounted) => router = mounted,
                Err((unchanged, problem)) => {
                    router = unchanged;
                    problems.push(problem);
                }
            }
        }
        if let Some(openapi_url) = &openapi_url {
            for (name, url) in [("docs_url", &docs_url), ("redoc_url", &redoc_url)] {
                if url.as_deref() == Some(openapi_url.as_str()) {
                    problems.push(format!("{name} and openapi_url are both `{openapi_url}`"));
                }
            }
            if docs_url.is_some() && docs_url == redoc_url {
                problems.push("docs_url and redoc_url are the same".to_owned());
            }
        }
        if !problems.is_empty() {
            return Err(BuildError { problems });
        }

        let openapi = Arc::new(doc);
        for each in &deliveries {
            each.bind(&delivery, subscriptions.as_ref(), &openapi);
        }
        if let Some(openapi_url) = &openapi_url {
            let docs = roundtrip_docs::DocsRoutes::new(openapi_url.clone())
                .title(openapi.info.title.clone())
                .docs_url(docs_url.as_deref())
                .redoc_url(redoc_url.as_deref())
                .swagger_ui_parameters(swagger_ui_parameters);
            router =
                published::document_routes(router, &openapi, openapi_url, &docs, root_path.clone());
        }

        if !webhooks.is_empty() {
            router = router.layer(axum::Extension(publisher.clone()));
        }
        let (not_found, not_allowed) = (exceptions.clone(), exceptions);
        let mut router = router
            .fallback(move |method: http::Method, uri: http::Uri| async move {
                let response = detail_response(StatusCode::NOT_FOUND, "Not Found");
                crate::exceptions::answer_error(response, not_found.as_deref(), &method, &uri)
            })
            .method_not_allowed_fallback(move |method: http::Method, uri: http::Uri| async move {
                let response =
                    detail_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
                crate::exceptions::answer_error(response, not_allowed.as_deref(), &method, &uri)
            });
        // axum's own default is the same 2 MiB, and the multipart extractor falls back to
        // the default limits: each layer (an extension on every request, which grows the
        // request's extension map past its first allocation) is only added for another value.
        if body_limit != DEFAULT_BODY_LIMIT {
            router = router.layer(DefaultBodyLimit::max(body_limit));
        }
        if multipart_limits != crate::extract::MultipartLimits::default() {
            router = router.layer(axum::Extension(multipart_limits));
        }
        let mut router = router.with_state(state);
        if let Some(root_path) = root_path {
            router = router.layer(axum::Extension(published::RootPath(root_path)));
        }
        for layer in layers.into_iter().chain(lifespan_layers) {
            router = layer(router);
        }

        Ok(BuiltApp {
            router,
            openapi,
            delivery,
            publisher,
            sends_anything,
            lifespans,
            server_limits,
            subscriptions,
        })
    }
}

/// A built app: its router, its document, and its delivery.
pub struct BuiltApp {
    /// The router, state applied.
    pub router: axum::Router,
    /// The document it serves.
    pub openapi: Arc<OpenApi>,
    pub(crate) delivery: crate::delivery::PreparedDelivery,
    pub(crate) publisher: crate::delivery::publish::Publisher,
    pub(crate) sends_anything: bool,
    pub(crate) lifespans: Vec<Arc<dyn crate::lifespan::LifespanHook>>,
    pub(crate) server_limits: crate::server_limits::ServerLimits,
    /// The app's webhook subscriptions, for the CLI's deliveries commands.
    pub(crate) subscriptions: Option<Subscriptions>,
}

impl BuiltApp {
    /// Sends the app's declared webhooks.
    pub fn publisher(&self) -> crate::delivery::publish::Publisher {
        self.publisher.clone()
    }

    /// The outbox, opened (and migrated) if it was not yet.
    pub async fn outbox(
        &self,
    ) -> Result<
        Arc<dyn roundtrip_delivery::outbox::Outbox>,
        crate::delivery::error::DeliverySetupError,
    > {
        self.delivery.outbox().await
    }

    /// The SQLite file of the outbox, when it is an embedded one.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        self.delivery.sqlite_path()
    }

    /// Runs the app's lifespans (its own, then its mounted apps'), as `serve` does before
    /// it accepts a connection; the answer stops them with `shutdown().await`.
    pub async fn startup(&self) -> Result<crate::lifespan::Started, crate::lifespan::StartupError> {
        crate::lifespan::start_all(&self.lifespans).await
    }

    /// Starts the delivery workers in this process, as `serve` does; `None` when the app
    /// sends nothing or its workers are turned off.
    pub async fn start_delivery(
        &self,
    ) -> Result<
        Option<crate::delivery::runtime::DeliveryWorkers>,
        crate::delivery::error::DeliverySetupError,
    > {
        self.delivery.start_workers(self.sends_anything).await
    }
}

impl From<BuiltApp> for axum::Router {
    fn from(app: BuiltApp) -> Self {
        app.router
    }
}

impl std::fmt::Debug for BuiltApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltApp")
            .field("title", &self.openapi.info.title)
            .finish_non_exhaustive()
    }
}
