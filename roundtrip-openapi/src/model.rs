//! The OpenAPI 3.1 document model: plain data that serializes to the published JSON.
//!
//! Schemas are kept as `serde_json::Value` (JSON Schema 2020-12, as schemars produces
//! them); everything else is typed so that a document can only be built with valid keys.
//! Maps are [`IndexMap`]s so the document keeps the order in which the app declared things.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Specification extensions (`x-...` keys) carried by most objects.
pub type Extensions = IndexMap<String, Value>;

/// The root of an OpenAPI 3.1 document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenApi {
    /// The OpenAPI version: `3.1.0` for documents roundtrip builds, `3.2.0` when one
    /// uses a 3.2 keyword (`itemSchema`, for server-sent events).
    pub openapi: String,
    /// Metadata about the API.
    pub info: Info,
    /// The default `$schema` for Schema Objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema_dialect: Option<String>,
    /// Servers that host the API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
    /// The paths and their operations.
    #[serde(default)]
    pub paths: IndexMap<String, PathItem>,
    /// Requests the API sends to its users' endpoints on its own initiative.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub webhooks: IndexMap<String, PathItem>,
    /// Reusable schemas and security schemes.
    #[serde(default, skip_serializing_if = "Components::is_empty")]
    pub components: Components,
    /// Security requirements that apply to every operation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security: Vec<SecurityRequirement>,
    /// Tags with their descriptions, in the order the docs UIs should show them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Additional external documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_docs: Option<ExternalDocs>,
    /// Specification extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl OpenApi {
    /// An empty 3.1.0 document with the given title and version.
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        OpenApi {
            openapi: "3.1.0".to_owned(),
            info: Info {
                title: title.into(),
                version: version.into(),
                ..Info::default()
            },
            json_schema_dialect: None,
            servers: Vec::new(),
            paths: IndexMap::new(),
            webhooks: IndexMap::new(),
            components: Components::default(),
            security: Vec::new(),
            tags: Vec::new(),
            external_docs: None,
            extensions: Extensions::new(),
        }
    }

    /// Every operation in `paths` with its path and method, in document order.
    pub fn operations(&self) -> impl Iterator<Item = (&str, Method, &Operation)> {
        self.paths
            .iter()
            .flat_map(|(path, item)| item.operations().map(move |(m, op)| (path.as_str(), m, op)))
    }
}

/// Metadata about the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    /// The title of the API.
    pub title: String,
    /// A short summary of the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// A description of the API; CommonMark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A URL to the terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    /// Contact information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// License information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<License>,
    /// The version of the API (not of OpenAPI).
    pub version: String,
    /// Specification extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// Contact information for the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// The name of the contact person or organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A URL pointing to the contact information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// License information for the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct License {
    /// The license name.
    pub name: String,
    /// An SPDX license expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// A URL to the license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A server that hosts the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// The server URL.
    pub url: String,
    /// A description of the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Variables substituted in the URL.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub variables: IndexMap<String, ServerVariable>,
}

/// A variable in a server URL template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerVariable {
    /// Allowed values.
    #[serde(rename = "enum", default, skip_serializing_if = "Vec::is_empty")]
    pub enumeration: Vec<String>,
    /// The default value.
    pub default: String,
    /// A description of the variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A tag with its description.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    /// The tag name, as operations refer to it.
    pub name: String,
    /// A description of the tag; CommonMark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// External documentation for the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_docs: Option<ExternalDocs>,
}

/// A link to external documentation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalDocs {
    /// The URL of the documentation.
    pub url: String,
    /// A description of the documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An HTTP method an operation can be declared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`
    Get,
    /// `PUT`
    Put,
    /// `POST`
    Post,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `HEAD`
    Head,
    /// `PATCH`
    Patch,
    /// `TRACE`
    Trace,
}

impl Method {
    /// Every method, in the order OpenAPI lists them in a path item.
    pub const ALL: [Method; 8] = [
        Method::Get,
        Method::Put,
        Method::Post,
        Method::Delete,
        Method::Options,
        Method::Head,
        Method::Patch,
        Method::Trace,
    ];

    /// The lower-case name used as a key in a path item (`get`, `post`, ...).
    pub fn as_lower(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Options => "options",
            Method::Head => "head",
            Method::Patch => "patch",
            Method::Trace => "trace",
        }
    }

    /// The upper-case HTTP name (`GET`, `POST`, ...).
    pub fn as_upper(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Head => "HEAD",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
        }
    }

    /// Parses a method name in any case.
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_upper().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_upper())
    }
}

/// The operations available on one path (or one callback expression, or one webhook).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PathItem {
    /// A summary for all operations of the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// A description for all operations of the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `GET`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get: Option<Operation>,
    /// `PUT`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub put: Option<Operation>,
    /// `POST`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<Operation>,
    /// `DELETE`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<Operation>,
    /// `OPTIONS`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Operation>,
    /// `HEAD`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Operation>,
    /// `PATCH`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Operation>,
    /// `TRACE`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Operation>,
    /// Parameters shared by all operations of the path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    /// Specification extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl PathItem {
    /// The slot of one method.
    pub fn operation_mut(&mut self, method: Method) -> &mut Option<Operation> {
        match method {
            Method::Get => &mut self.get,
            Method::Put => &mut self.put,
            Method::Post => &mut self.post,
            Method::Delete => &mut self.delete,
            Method::Options => &mut self.options,
            Method::Head => &mut self.head,
            Method::Patch => &mut self.patch,
            Method::Trace => &mut self.trace,
        }
    }

    /// The operation of one method, if declared.
    pub fn operation(&self, method: Method) -> Option<&Operation> {
        match method {
            Method::Get => self.get.as_ref(),
            Method::Put => self.put.as_ref(),
            Method::Post => self.post.as_ref(),
            Method::Delete => self.delete.as_ref(),
            Method::Options => self.options.as_ref(),
            Method::Head => self.head.as_ref(),
            Method::Patch => self.patch.as_ref(),
            Method::Trace => self.trace.as_ref(),
        }
    }

    /// The declared operations with their methods.
    pub fn operations(&self) -> impl Iterator<Item = (Method, &Operation)> {
        Method::ALL
            .into_iter()
            .filter_map(|m| self.operation(m).map(|op| (m, op)))
    }
}

/// One API operation: a method on a path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Tags that group the operation in the docs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// A short summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// A longer description; CommonMark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// External documentation for the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_docs: Option<ExternalDocs>,
    /// A unique identifier for the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// Path, query, header and cookie parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    /// The request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<RequestBody>,
    /// Responses by status code (`"200"`, `"4XX"`, `"default"`).
    #[serde(default)]
    pub responses: IndexMap<String, Response>,
    /// Requests the API may send back because of this operation, by callback name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub callbacks: IndexMap<String, Callback>,
    /// Whether the operation is deprecated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    /// Security requirements; `None` inherits the document's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Vec<SecurityRequirement>>,
    /// Servers for this operation only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
    /// Specification extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A callback: path items keyed by the runtime expression that gives their URL.
pub type Callback = IndexMap<String, PathItem>;

/// A security requirement: scheme name to the scopes it needs.
pub type SecurityRequirement = IndexMap<String, Vec<String>>;

/// Where a parameter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParameterIn {
    /// A segment of the path.
    Path,
    /// The query string.
    Query,
    /// A request header.
    Header,
    /// A cookie.
    Cookie,
}

impl ParameterIn {
    /// The name FastAPI uses as the first element of an error's `loc`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterIn::Path => "path",
            ParameterIn::Query => "query",
            ParameterIn::Header => "header",
            ParameterIn::Cookie => "cookie",
        }
    }
}

/// One parameter of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// The parameter's name (for headers, the header name).
    pub name: String,
    /// Where it is read from.
    #[serde(rename = "in")]
    pub location: ParameterIn,
    /// A description; CommonMark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the request must carry it (always true for path parameters).
    pub required: bool,
    /// Whether the parameter is deprecated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    /// The parameter's schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// An example value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
    /// Specification extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// The body of a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestBody {
    /// A description; CommonMark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The body's schema by media type.
    pub content: IndexMap<String, MediaType>,
    /// Whether a body is required.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Specification extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// The schema and examples of one media type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaType {
    /// The schema of the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// The schema of each item of a sequential media type (`text/event-stream`, NDJSON):
    /// OpenAPI 3.2's `itemSchema`. A document that uses it declares `openapi: 3.2.0`.
    #[serde(
        rename = "itemSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub item_schema: Option<Value>,
    /// An example of the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
    /// Specification extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// One documented response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// A description of the response (required by OpenAPI).
    pub description: String,
    /// Headers the response carries.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, Header>,
    /// The body's schema by media type; empty for no body.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub content: IndexMap<String, MediaType>,
    /// Specification extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A header carried by a response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// A description of the header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The header's schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

/// Reusable parts of the document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Components {
    /// Schemas referenced as `#/components/schemas/<name>`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub schemas: IndexMap<String, Value>,
    /// Security schemes referenced by security requirements.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub security_schemes: IndexMap<String, SecurityScheme>,
    /// Specification extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl Components {
    /// True when there is nothing to publish.
    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty() && self.security_schemes.is_empty() && self.extensions.is_empty()
    }
}

/// How a client authenticates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SecurityScheme {
    /// An API key in a header, query parameter or cookie.
    #[serde(rename = "apiKey")]
    ApiKey {
        /// The header, query parameter or cookie name.
        name: String,
        /// Where the key is sent.
        #[serde(rename = "in")]
        location: ParameterIn,
        /// A description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// HTTP authentication (`basic`, `bearer`, ...).
    #[serde(rename = "http")]
    Http {
        /// The HTTP authentication scheme name.
        scheme: String,
        /// A hint about the bearer token's format.
        #[serde(
            rename = "bearerFormat",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        bearer_format: Option<String>,
        /// A description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// OAuth2 flows.
    #[serde(rename = "oauth2")]
    OAuth2 {
        /// The supported flows.
        flows: Box<OAuthFlows>,
        /// A description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// OpenID Connect discovery.
    #[serde(rename = "openIdConnect")]
    OpenIdConnect {
        /// The discovery URL.
        #[serde(rename = "openIdConnectUrl")]
        open_id_connect_url: String,
        /// A description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

/// The OAuth2 flows a scheme supports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthFlows {
    /// The implicit flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implicit: Option<OAuthFlow>,
    /// The resource owner password flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<OAuthFlow>,
    /// The client credentials flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_credentials: Option<OAuthFlow>,
    /// The authorization code flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_code: Option<OAuthFlow>,
}

/// One OAuth2 flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthFlow {
    /// The authorization URL (implicit and authorization code flows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    /// The token URL (password, client credentials and authorization code flows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// The refresh URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_url: Option<String>,
    /// Available scopes with their descriptions.
    pub scopes: IndexMap<String, String>,
}
